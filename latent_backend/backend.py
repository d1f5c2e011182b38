"""The latent backend: batched text generation and latent rollouts over one causal LM.

Every operation takes a batch of single-sequence requests. Sequences of different lengths are
left-padded, and the attention mask and explicit position ids are carried through prefill, latent
steps and decoding, so a batch of N gives the same result as N single runs (up to float
tolerance). Caches go in and out through the `KVStore` as handles (see kv_chain: each rollout
stores only the positions it added, with the recipe to rebuild them); the batch cache is
assembled from fresh copies, so no stored entry is ever mutated by a forward pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from transformers import DynamicCache

from latent_backend.batch_cache import (
    BatchPrefix,
    Segment,
    assemble,
    pad_prompts,
    plan_chunks,
    prompt_positions,
    row_layers,
)
from latent_backend.batching import MicroBatcher
from latent_backend.decoding import TextDecoding
from latent_backend.errors import PromptError
from latent_backend.grammar import GrammarCompiler, LLGuidanceCompiler
from latent_backend.kv_chain import concat, new_handle, resolve, to_entry
from latent_backend.kv_store import KVStore
from latent_backend.models import LoadedModel, load_model
from latent_backend.requests import (
    GenerationRequest,
    GenerationResult,
    KVHandle,
    KVRecipe,
    RolloutRequest,
    RolloutResult,
    decode_tokens,
)

THINK_OPENER = "<think>"
RIDGE_LAMBDA = 1e-5


class LatentBackend(TextDecoding):
    """One model: prompts, realignment, batch assembly and latent rollouts; text decoding comes
    from `TextDecoding`."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.model_id = loaded.model_id
        # Latent steps need hidden states only: calling the decoder stack skips the LM head.
        self.decoder = getattr(self.model, self.model.base_model_prefix)
        self.batcher = MicroBatcher()
        self._realign: dict[bool, tuple[torch.Tensor, torch.Tensor]] = {}
        self._realign_lock = threading.Lock()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        template = self.tokenizer.chat_template or ""
        self.has_think = THINK_OPENER in template or THINK_OPENER in self.tokenizer.get_vocab()
        self._grammar_compiler: GrammarCompiler | None = None

    @property
    def grammar_compiler(self) -> GrammarCompiler:
        """The compiler of constrained decoding (llguidance; built on first use, about a second)."""
        with self._realign_lock:
            if self._grammar_compiler is None:
                vocab = self.model.get_output_embeddings().weight.shape[0]
                self._grammar_compiler = LLGuidanceCompiler(self.tokenizer, vocab, self.eos_ids)
            return self._grammar_compiler

    @grammar_compiler.setter
    def grammar_compiler(self, compiler: GrammarCompiler) -> None:
        self._grammar_compiler = compiler

    @property
    def max_positions(self) -> int:
        """The most positions one sequence may hold (the model's context length)."""
        return self.loaded.max_positions

    # -- prompts ---------------------------------------------------------------------------
    def render_text(self, messages: list[dict[str, str]], *, think: bool = False) -> str:
        """A chat rendered with the model's own template, generation prompt on (the agent's input)."""
        if not messages or not any((m.get("content") or "").strip() for m in messages):
            raise PromptError("empty prompt: every message is empty")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if think and self.has_think:
            text += THINK_OPENER
        return text

    def render(self, messages: list[dict[str, str]], *, think: bool = False) -> list[int]:
        """Token ids of `render_text(messages)`."""
        return self.tokenize(self.render_text(messages, think=think))

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.render(messages))

    def _check_length(self, cached: int, prompt: int, extra: int) -> None:
        limit = self.loaded.max_positions
        if cached + prompt + extra > limit:
            raise PromptError(
                f"prompt too long for {self.model_id}: {prompt} prompt tokens + {cached} cached positions "
                f"+ {extra} new positions > context length {limit}"
            )

    # -- realignment ---------------------------------------------------------------------------
    def vocab_rows(self) -> int:
        """Embedding rows that belong to real tokens: Qwen3 pads its matrices past len(tokenizer),
        and those rows (never trained as tokens) would skew the ridge solve and the target norm."""
        return min(len(self.tokenizer), self.model.get_input_embeddings().weight.shape[0])

    def realignment(self, realign: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_a [D, D], target norm), in fp32 on the model's device: the ridge map from output to
        input space over the tokenizer's rows, computed once per model."""
        with self._realign_lock:
            if realign not in self._realign:
                rows = self.vocab_rows()
                w_in = self.model.get_input_embeddings().weight.detach()[:rows].float().cpu()
                target_norm = w_in.norm(dim=1).mean()
                if realign:
                    w_out = self.model.get_output_embeddings().weight.detach()[:rows].float().cpu()
                    gram = w_out.T @ w_out + RIDGE_LAMBDA * torch.eye(w_out.shape[1])
                    w_a = torch.linalg.solve(gram, w_out.T @ w_in)
                else:
                    w_a = torch.eye(w_in.shape[1])
                self._realign[realign] = (w_a.to(self.device), target_norm.to(self.device))
            return self._realign[realign]

    def _align(self, hidden: torch.Tensor, realign: bool) -> torch.Tensor:
        """Realign in fp32 and cast once to the model's dtype (a no-op for an fp32 model)."""
        w_a, target_norm = self.realignment(realign)
        aligned = hidden.float() @ w_a
        aligned = aligned * (target_norm / aligned.norm(dim=-1, keepdim=True).clamp_min(1e-6))
        return aligned.to(hidden.dtype)

    # -- batch assembly ---------------------------------------------------------------------------
    def _prefix(self, handles: list[KVHandle | None], store: KVStore | None) -> BatchPrefix:
        rows: list[list[Segment]] = []
        for handle in handles:
            if handle is not None and store is None:
                raise ValueError("a KV handle was given without a KV store")
            # Read-only views: the segments are copied into the padded batch cache by assemble.
            rows.append(self._resolve(handle, store) if handle is not None else [])
        return assemble(
            rows,
            [h["next_position"] if h else 0 for h in handles],
            dtype=self.loaded.dtype,
            device=self.device,
        )

    @torch.inference_mode()
    def cache_of(self, handle: KVHandle, store: KVStore) -> Segment:
        """A handle's whole cache as fresh tensors (tests, analysis; batches never concatenate)."""
        return concat(self._resolve(handle, store))

    def _resolve(self, handle: KVHandle, store: KVStore) -> list[Segment]:
        layers = self.model.config.get_text_config().num_hidden_layers
        return resolve(handle, store, model_id=self.model_id, layers=layers, recompute=self._recompute)

    def _prefill(self, prefix: BatchPrefix, prompts: list[list[int]], *, decoder_only: bool):
        """Read left-padded prompts on top of their cached positions.

        Returns (model output, attention mask over cache + prompt, prompt position ids).
        """
        ids, prompt_mask = pad_prompts(prompts, self.tokenizer.pad_token_id)
        positions = prompt_positions(prefix.next_position, prompt_mask)
        mask = torch.cat([prefix.mask, prompt_mask], dim=1)
        out = self._forward(
            decoder_only=decoder_only,
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=prefix.cache if prefix.cache is not None else DynamicCache(),
        )
        return out, mask, positions

    def _forward(self, *, decoder_only: bool, logits_to_keep: int = 1, **inputs: torch.Tensor):
        for name in ("input_ids", "attention_mask", "position_ids", "inputs_embeds"):
            if inputs.get(name) is not None:
                inputs[name] = inputs[name].to(self.device)
        if decoder_only:
            return self.decoder(use_cache=True, **inputs)
        return self.model(use_cache=True, logits_to_keep=logits_to_keep, **inputs)

    # -- latent rollout ---------------------------------------------------------------------------
    @torch.inference_mode()
    def rollout(self, requests: list[RolloutRequest], store: KVStore) -> list[RolloutResult]:
        """Run latent agents as a batch; each result's handle is stored in `store`.

        Rows are grouped into chunks of similar length (see `plan_chunks`), so a long prompt does
        not make every row pay for its padding.
        """
        if not requests:
            return []
        steps = requests[0].latent_steps
        if any(r.latent_steps != steps or r.realign != requests[0].realign for r in requests):
            raise ValueError("a rollout batch needs one latent_steps and realign setting")
        texts = [self.render_text(r.messages, think=r.think) for r in requests]
        prompts = [self.tokenize(text) for text in texts]
        for request, prompt in zip(requests, prompts, strict=True):
            self._check_length(request.kv["positions"] if request.kv else 0, len(prompt), steps)
        results: list[RolloutResult | None] = [None] * len(requests)
        for chunk in plan_chunks([len(p) for p in prompts], forwards=1 + steps):
            for row, result in zip(
                chunk,
                self._rollout_chunk([requests[i] for i in chunk], [prompts[i] for i in chunk], store),
                strict=True,
            ):
                result.prompt_text, result.prompt_ids = texts[row], prompts[row]
                results[row] = result
        return results  # type: ignore[return-value]

    def _rollout_chunk(
        self, requests: list[RolloutRequest], prompts: list[list[int]], store: KVStore
    ) -> list[RolloutResult]:
        steps = requests[0].latent_steps
        prefix = self._prefix([r.kv for r in requests], store)
        cache, mask, hidden, next_position = self._think(
            prefix,
            prompts,
            steps,
            requests[0].realign,
            report=lambda step, mask: self._report_step(requests, step, mask),
        )
        results = []
        for row, request in enumerate(requests):
            delta = self._delta(cache, mask, row, prefix.mask.shape[1], steps, request.handoff)
            handle = new_handle(
                request.kv,
                request,
                prompts[row],
                delta,
                model_id=self.model_id,
                next_position=int(next_position[row]),
            )
            store.put(
                handle["id"], request.namespace, to_entry(delta, self.model_id), persist=request.persist
            )
            results.append(
                RolloutResult(
                    handle=handle,
                    prompt_tokens=len(prompts[row]),
                    latent_steps=steps,
                    last_hidden=hidden[row].float().cpu(),
                )
            )
        return results

    def _think(
        self,
        prefix: BatchPrefix,
        prompts: list[list[int]],
        steps: int,
        realign: bool,
        report: Callable[[int, torch.Tensor], None] = lambda _step, _mask: None,
    ):
        """Prefill prompts on their caches, then `steps` latent steps: (cache, mask, last hidden,
        next positions). `report(step, mask)` after the prompt (step 0) and each step."""
        out, mask, positions = self._prefill(prefix, prompts, decoder_only=True)
        cache = out.past_key_values
        hidden = out.last_hidden_state[:, -1]
        next_position = positions[:, -1] + 1
        ones = torch.ones(len(prompts), 1, dtype=torch.long)
        report(0, mask)
        for step in range(1, steps + 1):
            embeds = self._align(hidden, realign)[:, None, :]
            mask = torch.cat([mask, ones], dim=1)
            out = self._forward(
                decoder_only=True,
                inputs_embeds=embeds,
                attention_mask=mask,
                position_ids=next_position[:, None],
                past_key_values=cache,
            )
            cache = out.past_key_values
            hidden = out.last_hidden_state[:, -1]
            next_position = next_position + 1
            report(step, mask)
        return cache, mask, hidden, next_position

    @staticmethod
    def _delta(
        cache: DynamicCache, mask: torch.Tensor, row: int, prefix_width: int, steps: int, handoff: str
    ):
        """The positions a row's agent added: its prompt and latent steps ("latent": the latter only)."""
        keep = mask[row].bool().clone()
        keep[:prefix_width] = False
        if handoff == "latent":
            keep[: mask.shape[1] - steps] = False
        return row_layers(cache, row, keep)

    def _recompute(self, recipe: KVRecipe, parent: list[Segment], parent_next_position: int) -> Segment:
        """Redo the rollout step that made an entry, alone, on its parent's cache (exact: same ids)."""
        prefix = assemble([parent], [parent_next_position], dtype=self.loaded.dtype, device=self.device)
        steps = recipe["latent_steps"]
        cache, mask, _, _ = self._think(prefix, [decode_tokens(recipe["tokens"])], steps, recipe["realign"])
        return self._delta(cache, mask, 0, prefix.mask.shape[1], steps, recipe["handoff"])

    @staticmethod
    def _report_step(requests: list[RolloutRequest], step: int, mask: torch.Tensor) -> None:
        """Progress for rows that asked for it: latent step i of m, and the row's cached positions."""
        for row, request in enumerate(requests):
            if request.on_step is not None:
                request.on_step(step, request.latent_steps, int(mask[row].sum()))

    # -- batched entry points for concurrent callers ---------------------------------------------
    def submit_generate(self, request: GenerationRequest, store: KVStore | None = None) -> GenerationResult:
        key = ("generate", request.max_new_tokens, request.temperature > 0, id(store))
        return self.batcher.submit(key, request, lambda batch: self.generate(batch, store))

    def submit_rollout(self, request: RolloutRequest, store: KVStore) -> RolloutResult:
        key = ("rollout", request.latent_steps, request.realign, id(store))
        return self.batcher.submit(key, request, lambda batch: self.rollout(batch, store))


_backends: dict[str, LatentBackend] = {}
_backends_lock = threading.Lock()


def get_backend(model_ref: str | None = None) -> LatentBackend:
    """The process-wide backend for a model reference (None: $MASGRAPH_MODEL or the embedded default)."""
    key = model_ref or ""
    with _backends_lock:
        if key not in _backends:
            _backends[key] = LatentBackend(load_model(model_ref))
        return _backends[key]


def configure_batching(max_batch: int, max_wait_s: float | None = None, model_ref: str | None = None) -> None:
    """Let up to `max_batch` concurrent calls share one forward pass (evaluation --batch-size)."""
    get_backend(model_ref).batcher.configure(max_batch=max_batch, max_wait_s=max_wait_s)
