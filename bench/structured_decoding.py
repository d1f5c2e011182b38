"""Constrained decoding: what a grammar costs per decoded token, and whether replies match it.

Runs the local backend's own batched decode loop (`LatentBackend.generate`) with no grammar, with
llguidance (masgraph's engine) and with xgrammar (the alternative, through a small adapter here that
implements the same matcher protocol), on the embedded SmolLM2-135M:
- speed: ms per decode step (a step = forward + mask + sample for the whole batch; prefill excluded,
  measured as a 1-token run of the same prompts) and the grammar's own ms per step (mask + advance),
  at batch 1 (a JSON verdict) and batch 8 (rows of different grammars and one free row), greedy;
- correctness: at temperature 1.0, per grammar and seed: complete and valid / cut by the budget /
  complete but invalid (must be 0);
- set-up: the engine's tokenizer set-up and each grammar's first compile.
The machine's load average is printed with the timings (they scale with it; the counts do not).

xgrammar is optional: `pip install --no-deps xgrammar==0.2.9 apache-tvm-ffi` (its triton dependency
is not needed on the CPU).

    python bench/structured_decoding.py [--steps 48] [--repeats 3] [--seeds 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import latent_backend.grammar as grammar_module  # noqa: E402
from latent_backend import GenerationRequest, GrammarSpec, get_backend  # noqa: E402
from latent_backend.grammar import LLGuidanceCompiler, bitmask_words  # noqa: E402
from nodes.debate.verdicts import moderator_schema  # noqa: E402
from nodes.medagents.parse import domains_shape, letter_shape, vote_shape  # noqa: E402

BOX = r"\\boxed\{[0-9]+\}"
SHAPES: dict[str, GrammarSpec] = {
    "verdict_json": GrammarSpec.json_schema(moderator_schema("qa", 96)),
    "domains_json": domains_shape(3, 50),
    "vote_choice": vote_shape(),
    "letter_regex": letter_shape(list("ABCD")),
    "boxed_regex": GrammarSpec.regex(rf"[\s\S]*{BOX}").with_tail(GrammarSpec.regex(rf"\s*{BOX}"), 8),
}
PROMPTS = {
    "verdict_json": "You moderate a debate on 'Is coffee good for health?'. Reply in JSON with the keys "
    '"Whether there is a preference" (Yes or No), "Supported Side", "Reason" and "debate_answer".',
    "domains_json": "Which 3 medical specialties should examine chest pain radiating to the left arm? "
    "Reply with a JSON array of 3 names.",
    "vote_choice": "Does aspirin help in a heart attack? Reply with one word only: YES or NO.",
    "letter_regex": "Which planet is red? A) Venus B) Mars C) Jupiter D) Saturn. Reply: Option: [letter]",
    "boxed_regex": "How many legs do 3 spiders have? Think briefly, then put the number in \\boxed{}.",
    None: "Say something about the weather.",
}
BATCH8: list[str | None] = [
    "verdict_json",
    "domains_json",
    "vote_choice",
    "letter_regex",
    "boxed_regex",
    None,
    "verdict_json",
    "letter_regex",
]


# -- the alternative engine ----------------------------------------------------------------------------
def _cleared(vocab_size: int, ids: set[int]) -> torch.Tensor:
    words = torch.full((bitmask_words(vocab_size),), -1, dtype=torch.int32)
    for token in ids:
        words[token >> 5] &= ~(1 << (token & 31))
    return words


class XGrammarMatcher:
    def __init__(self, matcher: Any, keep: torch.Tensor, nonstop: torch.Tensor) -> None:
        self.matcher, self.keep, self.nonstop = matcher, keep, nonstop
        self.scratch = torch.empty((1, nonstop.numel()), dtype=torch.int32)

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None:
        self.matcher.fill_next_token_bitmask(bitmask, row)
        bitmask[row].bitwise_and_(self.keep)  # xgrammar lets special tokens (<|im_start|>) be text

    def advance(self, token: int) -> bool:
        return bool(self.matcher.accept_token(token))

    def is_terminated(self) -> bool:
        if self.matcher.is_terminated():
            return True
        if not self.matcher.is_completed():
            return False
        self.matcher.fill_next_token_bitmask(self.scratch, 0)  # complete: can anything but EOS follow?
        return not bool((self.scratch[0] & self.nonstop).any())

    def is_accepting(self) -> bool:
        return bool(self.matcher.is_completed())

    def after(self, token: int) -> None:
        """No look-ahead copy here (xgrammar matchers roll back instead of forking): the closing
        search of a row's last tokens is skipped for this engine."""
        return None


class XGrammarCompiler:
    name = "xgrammar"

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: list[int]) -> None:
        import xgrammar

        self.xgr = xgrammar
        info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=eos_ids
        )
        self.compiler = xgrammar.GrammarCompiler(info)
        special = set(tokenizer.all_special_ids) | {
            i for i, t in tokenizer.added_tokens_decoder.items() if t.special
        }
        special = {s for s in special if s < vocab_size} - set(eos_ids)
        self.keep = _cleared(vocab_size, special)
        self.nonstop = _cleared(vocab_size, special | set(eos_ids))
        self.compiled: dict[GrammarSpec, Any] = {}

    def matcher(self, spec: GrammarSpec) -> XGrammarMatcher:
        key = GrammarSpec(spec.kind, spec.value)
        if key not in self.compiled:
            if spec.kind == "json_schema":
                self.compiled[key] = self.compiler.compile_json_schema(str(spec.value), any_whitespace=False)
            elif spec.kind == "regex":
                self.compiled[key] = self.compiler.compile_regex(str(spec.value))
            else:
                ebnf = "root ::= " + " | ".join(json.dumps(o) for o in spec.value)
                self.compiled[key] = self.compiler.compile_grammar(ebnf)
        return XGrammarMatcher(self.xgr.GrammarMatcher(self.compiled[key]), self.keep, self.nonstop)


# -- measuring -----------------------------------------------------------------------------------------
class GrammarClock:
    """Time spent in GrammarRows.mask_ and .advance (the whole grammar cost of a decode loop)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        rows = grammar_module.GrammarRows
        self._mask, self._advance = rows.mask_, rows.advance
        clock = self

        def mask_(rows_self, logits, rows_):  # noqa: ANN001
            started = time.perf_counter()
            clock._mask(rows_self, logits, rows_)
            clock.seconds += time.perf_counter() - started
            clock.steps += 1

        def advance(rows_self, row, token):  # noqa: ANN001
            started = time.perf_counter()
            done = clock._advance(rows_self, row, token)
            clock.seconds += time.perf_counter() - started
            return done

        rows.mask_, rows.advance = mask_, advance


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def requests_for(
    shapes: list[str | None], steps: int, *, grammar: bool, temperature: float = 0.0, seed: int = 0
):
    return [
        GenerationRequest(
            messages=user(PROMPTS[s]),
            max_new_tokens=steps,
            temperature=temperature,
            seed=seed + i,
            grammar=SHAPES[s] if (grammar and s) else None,
        )
        for i, s in enumerate(shapes)
    ]


def timing(
    backend: Any, shapes: list[str | None], steps: int, repeats: int, grammar: bool, clock: GrammarClock
):
    walls, grammar_ms, step_counts = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        backend.generate(requests_for(shapes, 1, grammar=grammar))
        prefill = time.perf_counter() - started
        clock.seconds, clock.steps = 0.0, 0
        started = time.perf_counter()
        results = backend.generate(requests_for(shapes, steps, grammar=grammar))
        decode = time.perf_counter() - started - prefill
        loop_steps = max(r.generated_tokens for r in results)
        walls.append(1e3 * decode / max(loop_steps - 1, 1))
        grammar_ms.append(1e3 * clock.seconds / max(loop_steps, 1))
        step_counts.append(loop_steps)
    return statistics.median(walls), statistics.median(grammar_ms), int(statistics.median(step_counts))


def valid(shape: str, text: str) -> bool:
    spec = SHAPES[shape]
    if spec.kind == "choice":
        return text in spec.value
    if spec.kind == "regex":
        return re.fullmatch(str(spec.value), text) is not None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    schema = spec.schema
    if schema["type"] == "array":
        item = schema["items"]
        return (
            isinstance(value, list)
            and len(value) == schema["minItems"]
            and all(isinstance(v, str) and re.fullmatch(item["pattern"].strip("^$"), v) for v in value)
            and all(item["minLength"] <= len(v) <= item["maxLength"] for v in value)
        )
    properties = schema["properties"]
    return list(value) == list(properties) and all(
        (value[k] in p["enum"]) if "enum" in p else len(value[k]) <= p["maxLength"]
        for k, p in properties.items()
    )


def correctness(backend: Any, seeds: int, steps: int) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for shape in SHAPES:
        results = backend.generate(
            requests_for([shape] * seeds, steps, grammar=True, temperature=1.0, seed=1000)
        )
        ok = sum(r.finish_reason == "stop" and valid(shape, r.text) for r in results)
        cut = sum(r.finish_reason == "length" for r in results)
        counts[shape] = [ok, cut, len(results) - ok - cut]
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--engines", default="llguidance,xgrammar")
    parser.add_argument("--output", default="bench/results/structured_decoding.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    backend = get_backend()
    vocab = backend.model.get_output_embeddings().weight.shape[0]
    makers = {"llguidance": LLGuidanceCompiler, "xgrammar": XGrammarCompiler}
    clock = GrammarClock()
    speed, correct, setup = [], {}, []
    for label, shapes in (("1", ["verdict_json"]), ("8", BATCH8)):
        wall, _, steps = timing(backend, shapes, args.steps, args.repeats, False, clock)
        speed.append(["none", label, f"{wall:.1f}", "-", "-", steps])
    for engine in args.engines.split(","):
        try:
            started = time.perf_counter()
            compiler = makers[engine](backend.tokenizer, vocab, backend.eos_ids)
            tokenizer_ms = 1e3 * (time.perf_counter() - started)
        except ImportError as exc:
            print(f"skipping {engine}: {exc}", file=sys.stderr)
            continue
        compiles = []
        for shape, spec in SHAPES.items():
            started = time.perf_counter()
            compiler.matcher(spec)
            compiles.append(f"{shape} {1e3 * (time.perf_counter() - started):.1f}")
        setup.append([engine, f"{tokenizer_ms:.0f}", ", ".join(compiles)])
        backend.grammar_compiler = compiler
        for label, shapes in (("1", ["verdict_json"]), ("8", BATCH8)):
            wall, grammar_ms, steps = timing(backend, shapes, args.steps, args.repeats, True, clock)
            speed.append(
                [engine, label, f"{wall:.1f}", f"{grammar_ms:.2f}", f"{100 * grammar_ms / wall:.1f}%", steps]
            )
        correct[engine] = correctness(backend, args.seeds, args.steps)
    versions = {p: _version(p) for p in ("torch", "transformers", "llguidance", "xgrammar")}
    lines = [
        "# Constrained decoding: cost per token and correctness",
        "",
        "Command:",
        "",
        "    python " + " ".join(sys.argv),
        "",
        f"Embedded SmolLM2-135M, fp32, CPU, torch threads {torch.get_num_threads()}; {versions}. "
        f"Load average (1 min) {load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        "on 2 cores: wall-clock figures scale with it; compare engines within this table.",
        "",
        f"Speed: greedy, up to {args.steps} new tokens, median of {args.repeats}. Batch 1: a moderator "
        f"verdict (JSON schema); batch 8: {', '.join(s or 'free text' for s in BATCH8)}. `ms/step`: one "
        "decode step of the batch (prefill excluded); `grammar ms/step`: masking and advancing all rows.",
        "",
        "| engine | batch | ms/step | grammar ms/step | grammar share | steps |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in speed),
        "",
        f"Correctness: temperature 1.0, {args.seeds} seeds per grammar, budget {args.steps} tokens: "
        "valid / cut by the budget / complete but invalid.",
        "",
        "| engine | " + " | ".join(SHAPES) + " |",
        "|---|" + "---|" * len(SHAPES),
        *(
            f"| {e} | " + " | ".join("/".join(map(str, c[s])) for s in SHAPES) + " |"
            for e, c in correct.items()
        ),
        "",
        "Set-up: the engine's tokenizer (once per process) and each grammar's first compile, ms.",
        "",
        "| engine | tokenizer | first compile |",
        "|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in setup),
    ]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
