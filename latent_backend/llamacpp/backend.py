"""The llama.cpp backend: batched generation and latent rollouts over a GGUF model, in process.

The same interface as the transformers backend (`latent_backend.backend.LatentBackend`): chats
are rendered with the GGUF's own template, requests are batched by the same micro-batcher, KV
caches go in and out of the same KV store as handles (recipes plus addresses, see `kv`), replies
are constrained by the same grammars (`latent_backend.grammar`, over llama.cpp's vocabulary).

Row r of a batch is sequence r of the llama.cpp context. Rows need no padding: each has its own
positions; prompts are read row by row, then every decode step (a token, or a latent embedding)
takes one entry per row; finished rows drop out of the next step. Every sequence has its own KV
stream, so a row's result does not depend on its batch (bit-identical to running it alone; the
realignment is computed row by row for the same reason).

Latent rollout per row: the prompt but its last token is read with no outputs; the last token is
read with hidden states on (llama.cpp then outputs every entry, so this is kept to one token per
row); then `latent_steps` times the realigned last hidden state is fed back as an input embedding.
A batch cannot mix token and embedding inputs, so prompts and latent steps are separate decodes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from latent_backend import sampling
from latent_backend.batching import MicroBatcher
from latent_backend.decoding import finished_results
from latent_backend.errors import PromptError
from latent_backend.grammar import GrammarCompiler, GrammarRows, LLGuidanceCompiler
from latent_backend.kv_store import KVStore
from latent_backend.llamacpp import kv
from latent_backend.llamacpp.chat import ChatTemplate
from latent_backend.llamacpp.engine import STATE_FORMAT, Engine, file_key
from latent_backend.llamacpp.realign import align, realignment
from latent_backend.llamacpp.runtime import version
from latent_backend.llamacpp.seq_state import SeqState
from latent_backend.requests import GenerationRequest, GenerationResult, RolloutRequest, RolloutResult

THINK_OPENER = "<think>"
RIDGE_LAMBDA = 1e-5


class LlamaCppBackend:
    kind = "llamacpp"

    def __init__(self, gguf: Path, name: str, *, positions: int | None = None) -> None:
        self.gguf = gguf
        self.engine = Engine(gguf, positions=positions)
        self.chat = ChatTemplate(self.engine)
        # The KV handles' model identity: the file, llama.cpp's version and the state layout.
        self.model_id = f"llamacpp:{name}:{file_key(gguf)}:{version()}:{STATE_FORMAT}"
        self.name = name
        self.batcher = MicroBatcher()
        self.max_positions = self.engine.positions
        self.has_think = THINK_OPENER in self.chat.template or len(self.engine.tokenize(THINK_OPENER)) == 1
        self.sampling_defaults = sampling.SamplingDefaults(
            top_k=self.engine.meta_number("general.sampling.top_k", int),
            min_p=self.engine.meta_number("general.sampling.min_p", float),
        )
        self._realign: dict[bool, tuple[np.ndarray | None, float]] = {}
        self._lock = threading.RLock()  # the context: one batch at a time, whoever calls
        self.eos_ids = [t for t in range(self.engine.n_vocab) if self.engine.is_end(t)]
        self._grammar_compiler: GrammarCompiler | None = None

    @property
    def grammar_compiler(self) -> GrammarCompiler:
        """Constrained decoding over llama.cpp's vocabulary (llguidance; built on first use)."""
        with self._lock:
            if self._grammar_compiler is None:
                self._grammar_compiler = LLGuidanceCompiler.for_llamacpp(
                    self.engine.vocab, self.engine.n_vocab, self.eos_ids
                )
            return self._grammar_compiler

    @grammar_compiler.setter
    def grammar_compiler(self, compiler: GrammarCompiler) -> None:
        self._grammar_compiler = compiler

    # -- prompts ---------------------------------------------------------------------------
    def render_text(self, messages: list[dict[str, str]], *, think: bool = False) -> str:
        """A chat rendered with the model's own template, generation prompt on (the agent's input)."""
        if not messages or not any((m.get("content") or "").strip() for m in messages):
            raise PromptError("empty prompt: every message is empty")
        text = self.chat.render(messages)
        return text + THINK_OPENER if think and self.has_think else text

    def render(self, messages: list[dict[str, str]], *, think: bool = False) -> list[int]:
        return self.tokenize(self.render_text(messages, think=think))

    def tokenize(self, text: str) -> list[int]:
        return self.engine.tokenize(text)

    def decode(self, tokens: list[int]) -> str:
        """Generated token ids as text (special tokens dropped)."""
        return self.engine.detokenize(tokens)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self.render(messages))

    def _check_length(self, cached: int, prompt: int, extra: int) -> None:
        if cached + prompt + extra > self.max_positions:
            raise PromptError(
                f"prompt too long for {self.name}: {prompt} prompt tokens + {cached} cached positions "
                f"+ {extra} new positions > context length {self.max_positions}"
            )

    # -- realignment ---------------------------------------------------------------------------
    def realignment(self, realign: bool = True) -> tuple[np.ndarray | None, float]:
        """(W_a [D, D] fp32, or None for the identity; target norm), from the GGUF's weights."""
        with self._lock:
            if realign not in self._realign:
                rows = np.array(
                    [t for t in range(self.engine.n_vocab) if not self.engine.is_unused(t)], dtype=np.int64
                )
                w_a, target_norm = realignment(self.gguf, rows, RIDGE_LAMBDA)
                self._realign[realign] = (w_a if realign else None, target_norm)
            return self._realign[realign]

    def _align(self, hidden: np.ndarray, realign: bool) -> np.ndarray:
        return align(hidden, *self.realignment(realign))

    # -- rows -------------------------------------------------------------------------------------
    def _load(self, states: list[SeqState | None], cells: int) -> None:
        """Rows 0..n-1 hold `states` (None: empty), in a context with room for `cells` more each."""
        self.engine.ensure(len(states), max((s.cells if s else 0) for s in states) + cells)
        for row, state in enumerate(states):
            self.engine.clear(row)
            if state is not None:
                self.engine.load(row, kv.to_bytes(state, self.engine.slots))

    def _prefill(self, prompts: list[list[int]], starts: list[int], outputs: bool) -> np.ndarray:
        """Read each row's prompt at its positions; the last tokens' outputs (one row per prompt).

        Each row is read in decodes of its own: llama.cpp splits a multi-sequence batch into equal
        shares per sequence, so a long row packed with short ones would be computed in other
        pieces than alone (and its numbers would differ in the last bits). Prefill is compute-bound
        per token, so packing rows would gain little anyway."""
        last = []
        for row, (prompt, start) in enumerate(zip(prompts, starts, strict=True)):
            if not prompt:
                continue
            marks = [False] * (len(prompt) - 1) + [outputs]
            positions = list(range(start, start + len(prompt)))
            last.append(self.engine.decode_tokens(prompt, positions, [row] * len(prompt), marks))
        return np.concatenate(last) if outputs else np.zeros((0, 0), dtype=np.float32)

    def _think(
        self,
        prompts: list[list[int]],
        starts: list[int],
        steps: int,
        realign: bool,
        report: Callable[[int], None] = lambda _step: None,
    ) -> tuple[np.ndarray, list[int]]:
        """Prompts on the loaded rows, then `steps` latent steps: (last hidden states, next positions).
        `report(step)` after the prompt (step 0) and after each latent step."""
        engine = self.engine
        engine.embeddings(False)
        self._prefill([p[:-1] for p in prompts], starts, outputs=False)
        positions = [start + len(prompt) - 1 for prompt, start in zip(prompts, starts, strict=True)]
        rows = list(range(len(prompts)))
        engine.embeddings(True)
        try:
            hidden = engine.decode_tokens([p[-1] for p in prompts], positions, rows, [True] * len(rows))
            report(0)
            for step in range(1, steps + 1):
                positions = [p + 1 for p in positions]
                hidden = engine.decode_embeds(self._align(hidden, realign), positions, rows)
                report(step)
        finally:
            engine.embeddings(False)
        return hidden, [p + 1 for p in positions]

    # -- latent rollout ---------------------------------------------------------------------------
    def rollout(self, requests: list[RolloutRequest], store: KVStore) -> list[RolloutResult]:
        """Run latent agents as a batch; each result's handle is stored in `store`."""
        if not requests:
            return []
        steps, realign = requests[0].latent_steps, requests[0].realign
        if any(r.latent_steps != steps or r.realign != realign for r in requests):
            raise ValueError("a rollout batch needs one latent_steps and realign setting")
        texts = [self.render_text(r.messages, think=r.think) for r in requests]
        prompts = [self.tokenize(text) for text in texts]
        for request, prompt in zip(requests, prompts, strict=True):
            self._check_length(request.kv["positions"] if request.kv else 0, len(prompt), steps)
        with self._lock:
            states = [kv.resolve(self, r.kv, store) if r.kv else None for r in requests]
            starts = [r.kv["next_position"] if r.kv else 0 for r in requests]
            self._load(states, max(map(len, prompts)) + steps)
            cached = [state.cells if state else 0 for state in states]

            def report(step: int) -> None:  # progress for rows that asked for it (streaming)
                for row, request in enumerate(requests):
                    if request.on_step is not None:
                        request.on_step(step, steps, cached[row] + len(prompts[row]) + step)

            try:
                hidden, next_positions = self._think(prompts, starts, steps, realign, report)
                deltas = [
                    kv.delta(self.engine, row, starts[row], next_positions[row], steps, request.handoff)
                    for row, request in enumerate(requests)
                ]
            finally:
                for row in range(len(requests)):
                    self.engine.clear(row)
        results = []
        for row, request in enumerate(requests):
            handle = kv.store_delta(self, request, prompts[row], deltas[row], next_positions[row], store)
            results.append(
                RolloutResult(
                    handle=handle,
                    prompt_tokens=len(prompts[row]),
                    latent_steps=steps,
                    last_hidden=torch.from_numpy(hidden[row].copy()),
                    prompt_text=texts[row],
                    prompt_ids=prompts[row],
                )
            )
        return results

    def recompute(
        self, state: SeqState | None, start: int, prompt: list[int], steps: int, realign: bool, handoff: str
    ):
        """Redo one rollout step alone on a resolved parent state: its delta (see `kv.resolve`)."""
        with self._lock:
            self._load([state], len(prompt) + steps)
            try:
                _, next_positions = self._think([prompt], [start], steps, realign)
                return kv.delta(self.engine, 0, start, next_positions[0], steps, handoff)
            finally:
                self.engine.clear(0)

    # -- decoding ---------------------------------------------------------------------------
    def generate(
        self, requests: list[GenerationRequest], store: KVStore | None = None
    ) -> list[GenerationResult]:
        """Decode text for a batch (greedy at temperature 0, else the sampling warpers, seeded per row)."""
        if not requests:
            return []
        texts = [self.render_text(r.messages, think=r.think) for r in requests]
        prompts = [self.tokenize(text) for text in texts]
        for request, prompt in zip(requests, prompts, strict=True):
            self._check_length(
                request.kv["positions"] if request.kv else 0, len(prompt), request.max_new_tokens
            )
            if request.kv is not None and store is None:
                raise ValueError("a KV handle was given without a KV store")
        with self._lock:
            states = [kv.resolve(self, r.kv, store) if r.kv and store else None for r in requests]
            starts = [r.kv["next_position"] if r.kv else 0 for r in requests]
            budget = max(len(p) + r.max_new_tokens for p, r in zip(prompts, requests, strict=True))
            self._load(states, budget)
            try:
                tokens, complete = self._decode_loop(requests, prompts, starts)
            finally:
                for row in range(len(requests)):
                    self.engine.clear(row)
        return finished_results(self, requests, tokens, complete, prompts, texts)

    def _decode_loop(
        self, requests: list[GenerationRequest], prompts: list[list[int]], starts: list[int]
    ) -> tuple[list[list[int]], list[bool]]:
        """Each row's generated tokens, and whether its grammar (if any) is completely matched.
        A row with a grammar has its logits masked by it before sampling (`GrammarRows`)."""
        engine = self.engine
        engine.embeddings(False)
        logits = self._prefill(prompts, starts, outputs=True)
        positions = [start + len(prompt) for start, prompt in zip(starts, prompts, strict=True)]
        chains = [sampling.warpers(r, self.sampling_defaults) for r in requests]
        rngs = [sampling.generator(r.seed) for r in requests]
        grammars = None
        if any(r.grammar for r in requests):
            budgets = [r.max_new_tokens for r in requests]
            grammars = GrammarRows(
                self.grammar_compiler, [r.grammar for r in requests], budgets, engine.n_vocab
            )
        tokens: list[list[int]] = [[] for _ in requests]
        active = list(range(len(requests)))  # rows still decoding; finished rows leave the batch
        while active:
            if grammars is not None:
                grammars.mask_(torch.from_numpy(logits), active)  # in place: the tensor shares the array
            still = []
            for slot, row in enumerate(active):
                token = sampling.choose(logits[slot], chains[row], rngs[row])
                if engine.is_end(token):
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
                still.append(row)
            active = still
            if active:
                logits = engine.decode_tokens(
                    [tokens[row][-1] for row in active],
                    [positions[row] for row in active],
                    active,
                    [True] * len(active),
                )
                for row in active:
                    positions[row] += 1
        return tokens, grammars.complete if grammars is not None else [False] * len(requests)

    def _hit_stop(self, tokens: list[int], request: GenerationRequest) -> bool:
        if not request.stop:
            return False
        tail = self.decode(tokens[-16:])
        return any(stop and stop in tail for stop in request.stop)

    # -- batched entry points for concurrent callers ---------------------------------------------
    def submit_generate(self, request: GenerationRequest, store: KVStore | None = None) -> GenerationResult:
        # Rows of any length and sampling share a batch: each row samples alone and drops out when done.
        return self.batcher.submit(
            ("generate", id(store)), request, lambda batch: self.generate(batch, store)
        )

    def submit_rollout(self, request: RolloutRequest, store: KVStore) -> RolloutResult:
        key = ("rollout", request.latent_steps, request.realign, id(store))
        return self.batcher.submit(key, request, lambda batch: self.rollout(batch, store))
