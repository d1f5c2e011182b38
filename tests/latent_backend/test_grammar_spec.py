"""GrammarSpec: plain data (hashable, JSON round trip), portable regexes, server and GBNF forms."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from latent_backend.grammar_spec import GrammarSpec, portable_regex

SCHEMA = {
    "type": "object",
    "properties": {
        "vote": {"type": "string", "enum": ["yes", "no"]},
        "why": {"type": "string", "maxLength": 30},
    },
    "required": ["vote", "why"],
}
BOXED = GrammarSpec.regex(r"(?s).*\\boxed\{[A-E]\}").with_tail(GrammarSpec.regex(r"\s*\\boxed\{[A-E]\}"), 8)
SPECS = [
    GrammarSpec.json_schema(SCHEMA),
    GrammarSpec.choice(["YES", "NO"]),
    GrammarSpec.regex("[A-D]"),
    BOXED,
]


def test_specs_are_hashable_and_round_trip_through_json() -> None:
    again = [GrammarSpec.from_json(json.loads(json.dumps(spec.to_json()))) for spec in SPECS]
    assert again == SPECS
    assert len({*SPECS, *again}) == len(SPECS)
    assert GrammarSpec.json_schema(json.dumps(SCHEMA)) == SPECS[0]  # text or dict: one canonical value
    assert list(SPECS[0].schema["properties"]) == ["vote", "why"]  # key order is the reply's order


def test_regexes_are_made_portable() -> None:
    assert portable_regex(r"(?s)a.b[.]\\.") == r"a[\s\S]b[.]\\[\s\S]"
    assert portable_regex(r"(?s)[]a.]") == r"[]a.]"  # a ']' opening a class is literal
    assert portable_regex(r"\(?x") == r"\(?x"  # an escaped parenthesis is not a group
    assert portable_regex(r"(?:ab)?c") == "(ab)?c"
    assert BOXED.value == r"[\s\S]*\\boxed\{[A-E]\}"
    for bad in ("(?i)abc", "a(?=b)", "(unclosed"):
        with pytest.raises(ValueError):
            GrammarSpec.regex(bad)
    with pytest.raises(ValueError):
        GrammarSpec.choice([])
    with pytest.raises(ValueError):
        GrammarSpec.regex("x").with_tail(BOXED, 4)  # a tail has no tail of its own
    with pytest.raises(ValueError):
        GrammarSpec.regex("x").with_tail(GrammarSpec.regex("y"), 0)


def test_servers_get_json_schemas_and_choices_come_back_unwrapped() -> None:
    json_spec, choice, letter, _ = SPECS
    assert json_spec.to_openai_response_format() == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
    }
    assert choice.server_schema() == {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["YES", "NO"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    assert letter.to_json_object_response_format()["schema"]["properties"]["answer"] == {
        "type": "string",
        "pattern": "^([A-D])$",
    }
    assert choice.server_value({"answer": "NO"}) == "NO"
    assert json_spec.server_value({"vote": "yes"}) == {"vote": "yes"}
    with pytest.raises(ValueError):
        choice.server_value({"vote": "NO"})


def test_the_spec_module_imports_neither_torch_nor_a_grammar_library() -> None:
    code = (
        "import sys, latent_backend.grammar_spec, latent_backend.requests; "
        "print(sorted(m for m in ('torch', 'llguidance', 'llama_cpp', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gbnf_of_a_choice_needs_no_library() -> None:
    assert GrammarSpec.choice(["yes", 'say "no"']).to_gbnf() == 'root ::= "yes" | "say \\"no\\""'


@pytest.mark.parametrize("spec", SPECS[:1] + SPECS[2:3], ids=["json_schema", "regex"])
def test_gbnf_from_llama_cpp_python_reads_as_the_same_language(spec: GrammarSpec) -> None:
    """The GBNF text, read back by llguidance's GBNF parser, accepts a valid reply and rejects a bad one."""
    pytest.importorskip("llama_cpp")
    llguidance = pytest.importorskip("llguidance")
    good = ['{"vote": "yes", "why": "ok"}']
    # a value outside the enum; a raw control character in a string (invalid JSON); too long
    bad = [
        '{"vote": "maybe", "why": "ok"}',
        '{"vote": "no", "why": "a\x18b"}',
        '{"vote": "no", "why": "' + "x" * 31 + '"}',
    ]
    if spec.kind == "regex":
        good, bad = ["C"], ["E", "CC"]
    grammar = llguidance.grammar_from("gbnf", spec.to_gbnf())
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""
    tokenizer = llguidance.LLTokenizer("byte")
    for text, expected in [(g, True) for g in good] + [(b, False) for b in bad]:
        matcher = llguidance.LLMatcher(tokenizer, grammar)
        accepted = all(matcher.consume_token(b) for b in text.encode()) and matcher.is_accepting()
        assert accepted is expected, text
