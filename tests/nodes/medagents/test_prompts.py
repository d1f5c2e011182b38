"""MedAgents prompt templates: what fills them, and how overrides are checked."""

from __future__ import annotations

import pytest

from nodes.fields import OptionError
from nodes.medagents.prompts import (
    DEFAULT_PROMPTS,
    TEMPLATE_FIELDS,
    build_report,
    check_prompt_overrides,
    domain_format,
    format_options,
    template_fields,
)


def test_domain_format() -> None:
    assert domain_format(2) == "Medical Field: Field1 | Field2"


def test_report_keeps_key_knowledge() -> None:
    report = build_report({}, "Q?", {"A": "x", "B": "y"}, "KK", "TA")
    assert report == "Question: Q?\nOptions:\nA. x\nB. y\nKey Knowledge: KK\nTotal Analysis: TA"


def test_options_rendering() -> None:
    assert format_options({"A": "x", "B": "y"}) == "A. x\nB. y"
    assert "free text" in format_options({})


def test_default_templates_use_only_declared_fields() -> None:
    for key, template in DEFAULT_PROMPTS.items():
        assert template_fields(template) <= TEMPLATE_FIELDS[key], key
    check_prompt_overrides(DEFAULT_PROMPTS)


def test_overrides_checked() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        check_prompt_overrides({"vote.user": "{domain} {report} {question}"})
    with pytest.raises(ValueError, match="not a valid format string"):
        check_prompt_overrides({"vote.user": "{domain"})
    check_prompt_overrides({"vote.user": "As a {domain} expert, read {report}. YES or NO? {{json}}"})


def test_override_errors_name_the_option() -> None:
    with pytest.raises(OptionError) as info:
        check_prompt_overrides({"no.such": "x"}, option="prompts_file", source="prompts file p.json: ")
    assert info.value.option == "prompts_file" and str(info.value).startswith("prompts file p.json: ")
