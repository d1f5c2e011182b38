"""Constrained decoding: per-row grammars that mask a decode loop's logits (llguidance).

`GrammarCompiler` turns a `GrammarSpec` into matchers for one tokenizer; `GrammarRows` holds the
matchers of one decode loop's rows and masks their logits before sampling (rows without a grammar
are left untouched, so a batch may mix grammars and free text).

Invariants:
- The token bitmask is sized from the model's vocabulary (the logits' width, which may exceed the
  tokenizer's): ids beyond the tokenizer are never allowed.
- A row under a grammar may end (EOS) only where its grammar accepts; the mask enforces it. Once
  only EOS could follow, the row stops without another forward pass.
- Special tokens (`<|im_start|>` ...) are never text: llguidance leaves them out of every mask.
- Compiled grammars are shared, immutable, cached by spec and safe across threads; a matcher
  belongs to one row of one decode loop.
- Bitmask layout (shared by llguidance, xgrammar, outlines): bit `t % 32` of int32 word `t // 32`
  is 1 when token t is allowed. `apply_bitmask_` is ours and library-agnostic.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from latent_backend.errors import GrammarError
from latent_backend.grammar_spec import GrammarSpec


class GrammarMatcher(Protocol):
    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None:
        """Write the allowed next tokens into `bitmask[row]` (int32, CPU)."""

    def advance(self, token: int) -> bool:
        """Consume `token`; False when the grammar does not allow it."""

    def is_terminated(self) -> bool:
        """Nothing but EOS can follow (or EOS was consumed)."""

    def is_accepting(self) -> bool:
        """What was consumed so far is a complete match."""

    def after(self, token: int) -> GrammarMatcher | None:
        """A copy that consumed `token` (None when the grammar does not allow it); self is unchanged."""


class GrammarCompiler(Protocol):
    def matcher(self, spec: GrammarSpec) -> GrammarMatcher: ...


def bitmask_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


_LUTS: dict[torch.dtype, torch.Tensor] = {}


def _lut(dtype: torch.dtype) -> torch.Tensor:
    """[256, 8]: entry (b, k) is 0 if bit k of byte b is set, else -inf."""
    lut = _LUTS.get(dtype)
    if lut is None:
        cleared = ((torch.arange(256).unsqueeze(-1) >> torch.arange(8)) & 1) == 0
        lut = _LUTS[dtype] = torch.zeros(256, 8, dtype=dtype).masked_fill_(cleared, float("-inf"))
    return lut


def apply_bitmask_(logits: torch.Tensor, bitmask: torch.Tensor, slots: Sequence[int]) -> None:
    """logits[s, t] = -inf where bit t of bitmask[s] is 0, for s in `slots` (CPU, in place).

    Bytes expand through a 256x8 table of 0/-inf and are added: several times faster on CPU than
    unpacking bits to booleans and `masked_fill_`. Little-endian int32 words viewed as bytes.
    """
    if not slots:
        return
    vocab = logits.shape[1]
    index = torch.as_tensor(list(slots), dtype=torch.long)
    byte_rows = bitmask.index_select(0, index).contiguous().view(torch.uint8)
    additive = _lut(logits.dtype).index_select(0, byte_rows.reshape(-1).long()).view(len(slots), -1)
    logits.index_add_(0, index, additive[:, :vocab])


def _bit(index: int) -> int:
    """Bit `index` of an int32 word as a Python int (bit 31 is the sign bit)."""
    return (1 << index) - (1 << 32) if index == 31 else 1 << index


def _allowed(words: torch.Tensor) -> list[int]:
    """The token ids whose bits are set in one bitmask row."""
    bits = (words.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    return bits.flatten().nonzero().flatten().tolist()


# -- llguidance -------------------------------------------------------------------------------------
class LLGuidanceMatcher:
    __slots__ = ("_matcher",)

    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None:
        words = bitmask[row]
        self._matcher.unsafe_compute_mask_ptr(words.data_ptr(), words.numel() * 4)

    def advance(self, token: int) -> bool:
        return bool(self._matcher.consume_token(token)) and not self._matcher.is_error()

    def is_terminated(self) -> bool:
        return bool(self._matcher.is_stopped())

    def is_accepting(self) -> bool:
        return bool(self._matcher.is_accepting())

    def after(self, token: int) -> LLGuidanceMatcher | None:
        trial = self._matcher.deep_copy()
        return LLGuidanceMatcher(trial) if trial.consume_token(token) and not trial.is_error() else None


class LLGuidanceCompiler:
    """One per tokenizer: compiles specs once (a pristine matcher each), hands out copies per row."""

    name = "llguidance"
    # Compact JSON, no free whitespace: small models otherwise write whitespace until the budget ends.
    JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]) -> None:
        """For a Hugging Face tokenizer (see `for_llamacpp` for llama.cpp's vocabulary)."""
        import llguidance.hf

        self._setup(llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=list(eos_ids)))

    @classmethod
    def for_llamacpp(cls, vocab: Any, vocab_size: int, eos_ids: Sequence[int]) -> LLGuidanceCompiler:
        """For llama.cpp's own vocabulary (a `llama_vocab_p`): the llama.cpp backend's token ids."""
        import llguidance.llamacpp

        compiler = cls.__new__(cls)
        with warnings.catch_warnings():  # it reads each token with a call llama-cpp-python deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(
                vocab, n_vocab=vocab_size, eos_token=list(eos_ids)
            )
        compiler._setup(tokenizer)
        return compiler

    def _setup(self, tokenizer: Any) -> None:
        import llguidance

        self._llg = llguidance
        self.tokenizer = tokenizer
        self._compiled: dict[tuple[str, Any], Any] = {}
        self._lock = threading.Lock()

    def grammar_text(self, spec: GrammarSpec) -> str:
        matcher = self._llg.LLMatcher
        if spec.kind == "json_schema":
            return matcher.grammar_from_json_schema(str(spec.value), overrides=self.JSON_OPTIONS)
        if spec.kind == "regex":
            return matcher.grammar_from_regex(str(spec.value))
        options = " | ".join(json.dumps(o, ensure_ascii=False) for o in spec.value)
        return matcher.grammar_from_lark(f"start: {options}")

    def _compile(self, spec: GrammarSpec) -> Any:
        key = (spec.kind, spec.value)
        with self._lock:
            template = self._compiled.get(key)
        if template is None:  # compiled outside the lock: a schema may take milliseconds
            template = self._llg.LLMatcher(self.tokenizer, self.grammar_text(spec), log_level=0)
            if template.is_error():
                raise GrammarError(
                    f"cannot compile the {spec.kind} grammar {spec.value!r}: {template.get_error()}"
                )
            with self._lock:
                template = self._compiled.setdefault(key, template)
        return template

    def matcher(self, spec: GrammarSpec) -> LLGuidanceMatcher:
        return LLGuidanceMatcher(self._compile(spec).deep_copy())


# -- one decode loop ----------------------------------------------------------------------------------
class GrammarRows:
    """The grammars of one decode loop's rows, indexed like its requests (None: free text).

    `mask_` before sampling, `advance` after; `advance` returns True when the row is complete and
    must stop. A row with a `tail` switches to it when only `reserve` tokens of its budget remain;
    on its last token a row is held to the tokens that complete its match, when one can.
    """

    CLOSING_DEPTH = 8  # how many last tokens are steered towards a complete match
    MAX_CLOSING_WORK = 2000  # matcher copies per row and step, at most
    MAX_CLOSING_TRIALS = 4096
    MAX_INNER_TRIALS = 64

    def __init__(
        self,
        compiler: GrammarCompiler,
        specs: Sequence[GrammarSpec | None],
        budgets: Sequence[int],
        vocab_size: int,
    ) -> None:
        self.compiler = compiler
        self.specs = list(specs)
        self.budgets = list(budgets)
        self.matchers: list[GrammarMatcher | None] = [compiler.matcher(s) if s else None for s in specs]
        self.written = [0] * len(specs)
        self.complete = [False] * len(specs)
        self._work = 0
        self.bitmask = torch.full((len(specs), bitmask_words(vocab_size)), -1, dtype=torch.int32)

    def mask_(self, logits: torch.Tensor, rows: Sequence[int]) -> None:
        """Mask `logits[slot]` by the grammar of `rows[slot]`, for every row that has one."""
        slots = []
        for slot, row in enumerate(rows):
            matcher = self.matchers[row]
            if matcher is None:
                continue
            spec = self.specs[row]
            if (
                spec is not None
                and spec.tail is not None
                and self.budgets[row] - self.written[row] <= spec.reserve
                and not matcher.is_accepting()
            ):
                self.specs[row] = spec.tail  # the tail keeps whatever was written: it only ends it
                matcher = self.matchers[row] = self.compiler.matcher(spec.tail)
            matcher.fill_bitmask(self.bitmask, slot)
            left = self.budgets[row] - self.written[row]
            if left <= self.CLOSING_DEPTH and not matcher.is_accepting():
                self._only_closing_tokens(matcher, slot, left)
            slots.append(slot)
        apply_bitmask_(logits, self.bitmask, slots)

    def _only_closing_tokens(self, matcher: GrammarMatcher, slot: int, left: int) -> None:
        """On a row's last tokens: keep only the allowed tokens after which its match can complete
        within the budget, if any (a number in an answer box gets its closing brace instead of one
        more digit). Skipped when too many tokens are allowed to try (free text)."""
        words = self.bitmask[slot]
        allowed = _allowed(words)
        if len(allowed) > self.MAX_CLOSING_TRIALS:
            return
        self._work = 0
        closing = [
            t for t in allowed if (nxt := matcher.after(t)) is not None and self._closes(nxt, left - 1)
        ]
        if closing:
            words.zero_()
            for token in closing:
                words[token // 32] |= _bit(token % 32)

    def _closes(self, matcher: GrammarMatcher, tokens: int) -> bool:
        """`matcher`'s match is complete, or can be within `tokens` more (small branchings only)."""
        if matcher.is_accepting():
            return True
        if tokens == 0 or self._work > self.MAX_CLOSING_WORK:
            return False
        self._work += 1
        words = torch.zeros(1, self.bitmask.shape[1], dtype=torch.int32)
        matcher.fill_bitmask(words, 0)
        allowed = _allowed(words[0])
        if len(allowed) > self.MAX_INNER_TRIALS:
            return False
        return any((nxt := matcher.after(t)) is not None and self._closes(nxt, tokens - 1) for t in allowed)

    def advance(self, row: int, token: int) -> bool:
        matcher = self.matchers[row]
        if matcher is None:
            return False
        self.written[row] += 1
        if not matcher.advance(token):
            raise GrammarError(f"the decoder chose token {token}, which the row's grammar does not allow")
        self.complete[row] = matcher.is_accepting()
        return matcher.is_terminated()
