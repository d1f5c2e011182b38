"""Text decoding for `LatentBackend`: a batch of chats decoded on top of their cached prefixes.

Rows are prefilled together (or in length-matched chunks, re-padded into one batch), then decoded
step by step: each row samples with its own seeded generator and warpers, a row under a grammar has
its logits masked first, and finished rows leave the batch (the cache shrinks with them), so a
batch gives each row what a single run would.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from latent_backend import sampling
from latent_backend.batch_cache import Segment, assemble, plan_chunks, row_layers
from latent_backend.grammar import GrammarCompiler, GrammarRows
from latent_backend.kv_store import KVStore
from latent_backend.requests import GenerationRequest, GenerationResult
from latent_backend.streaming import final_text


class TextDecoding:
    """The decode loop. The backend class that inherits it provides the model, the prompts
    (`render_text`, `tokenize`, `_check_length`) and batch assembly (`_prefix`, `_prefill`, `_forward`)."""

    model: Any
    tokenizer: Any
    loaded: Any
    device: torch.device
    eos_ids: list[int]
    grammar_compiler: GrammarCompiler

    @torch.inference_mode()
    def generate(
        self, requests: list[GenerationRequest], store: KVStore | None = None
    ) -> list[GenerationResult]:
        """Decode text for a batch (greedy at temperature 0, else temperature/top-p, seeded per row).

        A row with a grammar has its logits masked by it before sampling; other rows are untouched.
        """
        if not requests:
            return []
        max_new = max(r.max_new_tokens for r in requests)
        texts = [self.render_text(r.messages, think=r.think) for r in requests]
        prompts = [self.tokenize(text) for text in texts]
        for request, prompt in zip(requests, prompts, strict=True):
            self._check_length(
                request.kv["positions"] if request.kv else 0, len(prompt), request.max_new_tokens
            )
        chunks = plan_chunks([len(p) for p in prompts], forwards=1)
        if len(chunks) == 1:
            prefix = self._prefix([r.kv for r in requests], store)
            out, mask, positions = self._prefill(prefix, prompts, decoder_only=False)
            logits, cache, next_position = out.logits[:, -1], out.past_key_values, positions[:, -1] + 1
        else:
            logits, cache, mask, next_position = self._chunked_prefill(requests, prompts, chunks, store)
        generators = [sampling.generator(r.seed) for r in requests]
        warpers = [sampling.warpers(r, self.sampling_defaults) for r in requests]
        grammars = None
        if any(r.grammar for r in requests):
            grammars = GrammarRows(
                self.grammar_compiler,
                [r.grammar for r in requests],
                [r.max_new_tokens for r in requests],
                logits.shape[-1],
            )
        tokens: list[list[int]] = [[] for _ in requests]
        active = list(range(len(requests)))  # rows still decoding; finished rows leave the batch
        for _ in range(max_new):
            logits = logits.float().cpu()
            if grammars is not None:
                grammars.mask_(logits, active)
            still, feed = [], []
            for slot, row in enumerate(active):
                token = sampling.choose(logits[slot], warpers[row], generators[row])
                if token in self.eos_ids:
                    continue
                tokens[row].append(token)
                if requests[row].on_token is not None:
                    requests[row].on_token(token)
                if grammars is not None and grammars.advance(row, token):
                    continue  # only EOS could follow
                if len(tokens[row]) >= requests[row].max_new_tokens or self._hit_stop(
                    tokens[row], requests[row]
                ):
                    continue
                still.append(slot)
                feed.append(token)
            if not still:
                break
            if len(still) < len(active):  # stop spending compute on rows that are done
                keep = torch.tensor(still, dtype=torch.long)
                cache.batch_select_indices(keep.to(self.device))
                mask, next_position = mask[keep], next_position[keep]
                active = [active[slot] for slot in still]
            mask = torch.cat([mask, torch.ones(len(active), 1, dtype=torch.long)], dim=1)
            out = self._forward(
                decoder_only=False,
                input_ids=torch.tensor(feed)[:, None],
                attention_mask=mask,
                position_ids=next_position[:, None],
                past_key_values=cache,
            )
            logits, cache = out.logits[:, -1], out.past_key_values
            next_position = next_position + 1
        complete = grammars.complete if grammars is not None else [False] * len(requests)
        return finished_results(self, requests, tokens, complete, prompts, texts)

    def _chunked_prefill(
        self,
        requests: list[GenerationRequest],
        prompts: list[list[int]],
        chunks: list[list[int]],
        store: KVStore | None,
    ):
        """Prefill rows in length-matched chunks, then re-pad all rows into one decoding batch."""
        rows: list[list[Segment]] = [[] for _ in requests]
        last_logits: list[torch.Tensor | None] = [None] * len(requests)
        next_positions = [0] * len(requests)
        for chunk in chunks:
            prefix = self._prefix([requests[i].kv for i in chunk], store)
            out, mask, positions = self._prefill(prefix, [prompts[i] for i in chunk], decoder_only=False)
            for slot, row in enumerate(chunk):
                rows[row] = [row_layers(out.past_key_values, slot, mask[slot].bool())]
                last_logits[row] = out.logits[slot, -1]
                next_positions[row] = int(positions[slot, -1]) + 1
        merged = assemble(rows, next_positions, dtype=self.loaded.dtype, device=self.device)
        return torch.stack(last_logits), merged.cache, merged.mask, merged.next_position

    def decode(self, tokens: list[int]) -> str:
        """Generated token ids as text (special tokens dropped); streaming decodes with this too."""
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    @property
    def sampling_defaults(self) -> sampling.SamplingDefaults:
        """The model's own top_k / min_p (its generation_config; Qwen3 ships top_k=20)."""
        config = self.model.generation_config
        return sampling.SamplingDefaults(top_k=config.top_k, min_p=config.min_p)

    def _hit_stop(self, tokens: list[int], request: GenerationRequest) -> bool:
        if not request.stop:
            return False
        tail = self.tokenizer.decode(tokens[-16:], skip_special_tokens=True)
        return any(stop and stop in tail for stop in request.stop)


def finished_results(
    backend: Any,
    requests: list[GenerationRequest],
    tokens: list[list[int]],
    complete: list[bool],
    prompts: list[list[int]],
    texts: list[str],
) -> list[GenerationResult]:
    """Each row's result once decoding ended (every backend's): "stop" when the row ended before its
    budget, at a stop string or with its grammar complete, else "length". `backend` decodes token
    ids (`decode`) and finds stop strings (`_hit_stop`)."""
    results = []
    for row, request in enumerate(requests):
        stopped = (
            len(tokens[row]) < request.max_new_tokens
            or backend._hit_stop(tokens[row], request)
            or complete[row]
        )
        reason: Literal["stop", "length"] = "stop" if stopped else "length"
        results.append(
            GenerationResult(
                text=final_text(backend.decode(tokens[row]), request.stop),
                prompt_tokens=len(prompts[row]),
                generated_tokens=len(tokens[row]),
                finish_reason=reason,
                kv_positions=request.kv["positions"] if request.kv else 0,
                token_ids=tokens[row],
                prompt_text=texts[row],
                prompt_ids=prompts[row],
            )
        )
    return results
