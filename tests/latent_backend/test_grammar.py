"""Constrained decoding: the bitmask, replies that always match their grammar, batches of mixed grammars."""

from __future__ import annotations

import json
import re

import pytest
import torch

from latent_backend import GenerationRequest, GrammarSpec
from latent_backend.grammar import apply_bitmask_, bitmask_words

VERDICT = {
    "type": "object",
    "properties": {
        "preference": {"type": "string", "enum": ["Yes", "No"]},
        "reason": {"type": "string", "minLength": 1, "maxLength": 40},
        "score": {"type": "integer", "minimum": 0, "maximum": 9},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 2, "maxItems": 2},
    },
    "required": ["preference", "reason", "score", "tags"],
    "additionalProperties": False,
}
BOX = r"\\boxed\{[0-9]+\}"
SHAPES = {
    "json": GrammarSpec.json_schema(VERDICT),
    "choice": GrammarSpec.choice(["YES", "NO", "Yes", "No"]),
    "letter": GrammarSpec.regex("(?:Option: )?[A-D]"),
    "boxed": GrammarSpec.regex(rf"[\s\S]*{BOX}").with_tail(GrammarSpec.regex(rf"\s*{BOX}"), 8),
}
PROMPT = (
    "Is coffee good for health? Reply in JSON with a preference (Yes/No), a reason, a score from 0 "
    "to 9 and two tags; or with YES or NO; or with an option letter; or say how many cups a day are "
    "fine and put that number in \\boxed{}."
)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def matches(shape: str, text: str) -> bool:
    if shape == "json":
        value = json.loads(text)
        return (
            list(value) == list(VERDICT["properties"])
            and value["preference"] in ("Yes", "No")
            and 1 <= len(value["reason"]) <= 40
            and isinstance(value["score"], int)
            and 0 <= value["score"] <= 9
            and len(value["tags"]) == 2
            and all(isinstance(t, str) and len(t) <= 12 for t in value["tags"])
        )
    if shape == "choice":
        return text in SHAPES["choice"].value
    pattern = SHAPES[shape].value
    return re.fullmatch(str(pattern), text) is not None


def test_apply_bitmask_masks_exactly_the_cleared_bits() -> None:
    generator = torch.Generator().manual_seed(0)
    vocab = 1000  # not a multiple of 32, and narrower than the bitmask (the model vocab may be wider)
    bitmask = torch.randint(
        -(2**31), 2**31 - 1, (4, bitmask_words(vocab + 40)), dtype=torch.int32, generator=generator
    )
    logits = torch.randn(4, vocab, generator=generator)
    expected = logits.clone()
    slots = [1, 3]
    for slot in slots:
        for token in range(vocab):
            if not (int(bitmask[slot, token >> 5]) >> (token & 31)) & 1:
                expected[slot, token] = float("-inf")
    apply_bitmask_(logits, bitmask, slots)
    assert torch.equal(logits, expected)


@pytest.mark.model
def test_constrained_replies_always_match_their_grammar_when_sampled(backend) -> None:
    """A property over 32 seeds at temperature 1.0: every reply completes and matches its grammar."""
    requests = [
        GenerationRequest(
            messages=user(PROMPT), max_new_tokens=64, temperature=1.0, seed=seed, grammar=SHAPES[shape]
        )
        for seed in range(8)
        for shape in SHAPES
    ]
    results = backend.generate(requests)
    shapes = [shape for _ in range(8) for shape in SHAPES]
    failures = [
        (shape, r.finish_reason, r.text)
        for shape, r in zip(shapes, results, strict=True)
        if r.finish_reason != "stop" or not matches(shape, r.text)
    ]
    assert failures == []
    assert len({r.text for r in results}) > len(SHAPES)  # sampled: the seeds gave different replies


@pytest.mark.model
def test_batched_rows_with_different_grammars_equal_single_runs(backend) -> None:
    requests = [
        GenerationRequest(messages=user(PROMPT), max_new_tokens=40, grammar=SHAPES[shape]) for shape in SHAPES
    ]
    requests.append(GenerationRequest(messages=user("Name a primary color."), max_new_tokens=12))
    requests.append(
        GenerationRequest(
            messages=user(PROMPT), max_new_tokens=24, temperature=0.8, seed=3, grammar=SHAPES["json"]
        )
    )
    batched = backend.generate(requests)
    singles = [backend.generate([r])[0] for r in requests]
    assert [b.token_ids for b in batched] == [s.token_ids for s in singles]
    assert [b.finish_reason for b in batched] == [s.finish_reason for s in singles]
    assert all(matches(shape, r.text) for shape, r in zip(SHAPES, batched, strict=False))


@pytest.mark.model
def test_a_reply_running_out_of_budget_still_ends_in_its_box(backend) -> None:
    """The tail grammar takes over when `reserve` tokens are left; without a tail the reply is cut."""
    question = user(
        "Explain at length how coffee is grown, roasted and brewed, then give a number in \\boxed{}."
    )
    shaped, plain = backend.generate(
        [
            GenerationRequest(messages=question, max_new_tokens=20, grammar=SHAPES["boxed"]),
            GenerationRequest(
                messages=question, max_new_tokens=20, grammar=GrammarSpec.regex(str(SHAPES["boxed"].value))
            ),
        ]
    )
    assert shaped.finish_reason == "stop" and re.search(rf"{BOX}$", shaped.text), shaped.text
    assert plain.finish_reason == "length" and not re.search(BOX, plain.text), plain.text
