"""The debate's prompt templates and the helpers that fill them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodes.debate.context import DebateContext
from nodes.debate.prompts import fill, fill_task, language_name, prompt_templates, round_name
from nodes.fields import OptionError


def test_fill_is_single_pass() -> None:
    template = "A: ##aff_ans## / N: ##neg_ans## / ##unknown##"
    assert (
        fill(template, aff_ans="I say ##neg_ans##", neg_ans="no")
        == "A: I say ##neg_ans## / N: no / ##unknown##"
    )


def test_prompt_templates_and_helpers() -> None:
    qa, mt = prompt_templates("qa"), prompt_templates("translation")
    assert '"debate_answer"' in qa["moderator_prompt"] and '"debate_translation"' in mt["moderator_prompt"]
    assert "##round##" in qa["moderator_prompt"] and "##oppo_ans##" in qa["debate_prompt"]
    assert prompt_templates("qa", {"debate_prompt": "X ##oppo_ans##"})["debate_prompt"] == "X ##oppo_ans##"
    with pytest.raises(ValueError):
        prompt_templates("qa", {"typo_prompt": "x"})
    with pytest.raises(ValueError):
        prompt_templates("summary")
    assert [round_name(n) for n in (1, 3, 10, 11, 22)] == ["first", "third", "tenth", "11th", "22nd"]
    assert [language_name(c) for c in ("zh", "en", "de", "fr", "ja", "zh-CN", "Chinese", "xx")] == [
        "Chinese",
        "English",
        "German",
        "French",
        "Japanese",
        "Chinese",
        "Chinese",
        "xx",
    ]


def test_fill_task_fills_task_fields_and_the_base_answer_only() -> None:
    templates = {"a": "##debate_topic## / ##base_answer## / ##aff_ans##", "b": "##src_lng##->##tgt_lng##"}
    task = {"debate_topic": "T", "src_lng": "Chinese", "tgt_lng": "English"}
    assert fill_task(templates, task, None) == {
        "a": "T / ##base_answer## / ##aff_ans##",
        "b": "Chinese->English",
    }
    assert fill_task(templates, task, "B")["a"] == "T / B / ##aff_ans##"


def test_context_templates_merge_the_prompts_file_under_prompts(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text(
        json.dumps({"debate": {"debate_prompt": "FILE ##oppo_ans##", "base_prompt": "FILE BASE"}}),
        encoding="utf-8",
    )
    templates = DebateContext(prompts={"base_prompt": "MINE"}, prompts_file=str(path)).templates()
    assert templates["debate_prompt"] == "FILE ##oppo_ans##" and templates["base_prompt"] == "MINE"
    translation = DebateContext(mode="translation").templates()
    assert translation == prompt_templates("translation")
    # a file of the original MAD's shape (data fields beside the templates) is accepted as it is
    path.write_text(
        json.dumps({"debate_topic": "", "base_answer": "", "judge_prompt_last1": "J"}), encoding="utf-8"
    )
    assert DebateContext(prompts_file=str(path)).templates()["judge_prompt_last1"] == "J"


def test_unknown_prompt_names_are_rejected_when_the_context_is_made() -> None:
    with pytest.raises(OptionError, match="unknown debate prompt") as caught:
        DebateContext(prompts={"nonsense": "x"})
    assert caught.value.option == "prompts"
    assert DebateContext(prompts=None).prompts == {}  # type: ignore[arg-type]
