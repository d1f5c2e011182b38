"""Data loading: every supported record shape, and errors that name the file and line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tasks import TaskError, TaskItem, get_task, item_from_record, load_items, sample_path, stable_id


def write_jsonl(path: Path, rows: list[Any], *, blank_lines: bool = False) -> str:
    lines = [json.dumps(row) if not isinstance(row, str) else row for row in rows]
    path.write_text(("\n\n" if blank_lines else "\n").join(lines) + "\n", encoding="utf-8")
    return str(path)


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return str(path)


# -- files and errors ---------------------------------------------------------------------------
def test_jsonl_generic_items_with_blank_lines(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"id": 7, "question": "2+2?", "answer": "4"},
            {
                "question": "Capital of Italy?",
                "gold": "Rome",
                "context": ["Italy is in Europe.", "It has a capital."],
            },
        ],
        blank_lines=True,
    )
    first, second = load_items(path)
    assert first == TaskItem(id="7", question="2+2?", gold="4")
    assert second.id == stable_id("Capital of Italy?", None)
    assert second.gold == "Rome"
    assert second.context == "Italy is in Europe.\nIt has a capital."


def test_stable_ids_repeat_across_loads(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"question": "q1", "answer": "1"}, {"question": "q2", "answer": "2"}]
    )
    assert [i.id for i in load_items(path)] == [i.id for i in load_items(path)]
    assert len({i.id for i in load_items(path)}) == 2


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "broken.jsonl",
        [
            {"question": "a", "answer": "1"},
            {"question": "b", "answer": "2"},
            '{"question": "c", "answer": ',
        ],
    )
    with pytest.raises(TaskError, match=r"broken\.jsonl line 3: invalid JSON"):
        load_items(path)


def test_missing_field_names_line_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "1"}, {"answer": "2"}])
    with pytest.raises(TaskError, match=r"d\.jsonl line 2: missing field 'question'"):
        load_items(path)
    path = write_jsonl(tmp_path / "e.jsonl", [{"question": "a"}])
    with pytest.raises(TaskError, match=r"e\.jsonl line 1: missing field 'answer'"):
        load_items(path)


def test_non_object_line_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "1"}, [1, 2]])
    with pytest.raises(TaskError, match=r"line 2: expected a JSON object, got list"):
        load_items(path)


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "x", "question": "a", "answer": "1"},
            {"id": "y", "question": "b", "answer": "2"},
            {"id": "x", "question": "c", "answer": "3"},
        ],
    )
    with pytest.raises(TaskError, match=r"duplicate id 'x' at line 1 and line 3"):
        load_items(path)
    same_content = write_jsonl(tmp_path / "e.jsonl", [{"question": "a", "answer": "1"}] * 2)
    with pytest.raises(TaskError, match="duplicate id .* at line 1 and line 2"):
        load_items(same_content)


def test_missing_file_directory_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="not found: .*nope.jsonl"):
        load_items(str(tmp_path / "nope.jsonl"))
    with pytest.raises(TaskError, match="is a directory"):
        load_items(str(tmp_path))
    (tmp_path / "data.csv").write_text("question,answer\n")
    with pytest.raises(TaskError, match="unsupported file type '.csv'"):
        load_items(str(tmp_path / "data.csv"))


def test_invalid_utf8_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b'{"question": "\xff", "answer": "1"}\n')
    with pytest.raises(TaskError, match=r"bad\.jsonl: not UTF-8"):
        load_items(str(tmp_path / "bad.jsonl"))


def test_json_list_reports_item_and_line(tmp_path: Path) -> None:
    path = write_json(tmp_path / "d.json", [{"question": "a", "answer": "1"}, {"question": "b"}])
    with pytest.raises(TaskError, match=r"d\.json item 2 \(line 6\): missing field 'answer'"):
        load_items(path)
    (tmp_path / "bad.json").write_text('[\n  {"question": "a",\n   "answer": }\n]')
    with pytest.raises(TaskError, match=r"bad\.json line 3: invalid JSON"):
        load_items(str(tmp_path / "bad.json"))
    with pytest.raises(TaskError, match="expected a JSON list"):
        load_items(write_json(tmp_path / "scalar.json", 5))


@pytest.mark.parametrize("key", ["data", "items"])
def test_json_object_with_a_list(tmp_path: Path, key: str) -> None:
    path = write_json(tmp_path / "d.json", {"version": 1, key: [{"question": "a", "answer": "1"}]})
    assert [i.gold for i in load_items(path)] == ["1"]


def test_limit(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": f"q{n}", "answer": str(n)} for n in range(5)])
    assert [i.gold for i in load_items(path, limit=2)] == ["0", "1"]
    assert load_items(path, limit=0) == []
    with pytest.raises(TaskError, match="limit"):
        load_items(path, limit=-1)


# -- record shapes ------------------------------------------------------------------------------
def test_medqa_jsonl_shape(tmp_path: Path) -> None:
    options = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "Insulin", "E": "Saline"}
    path = write_jsonl(
        tmp_path / "medqa.jsonl",
        [
            {
                "question": "Which drug?",
                "answer": "Heparin",
                "options": options,
                "meta_info": "step1",
                "answer_idx": "B",
            },
            {
                "question": "Next step?",
                "answer": "Saline",
                "options": options,
                "meta_info": "step2&3",
                "answer_idx": "E",
            },
        ],
    )
    first, second = load_items(path, task="medqa")
    assert first.options == options
    assert (first.gold, first.group, second.gold, second.group) == ("B", "step1", "E", "step2&3")
    assert first.meta == {"answer_text": "Heparin"}


def test_latentmas_medqa_shape(tmp_path: Path) -> None:
    listing = "A. Hemolysis\nB. Oral ulcers\nC. Colorectal cancer\nD. Pancreatic cancer"
    rows = [
        {
            "idx": 0,
            "question": f"Which risk is greatest?\n{listing}\n\n{listing}",
            "options": listing.split("\n"),
            "answer": "Colorectal cancer",
            "query": "...",
            "pid": "0",
        },
        {
            "idx": 1,
            "question": "Which one is an ulcer?",
            "options": listing.split("\n"),
            "answer": "Oral ulcers",
        },
    ]
    first, second = load_items(write_json(tmp_path / "medqa.json", rows), task="medqa")
    assert first.id == "0"
    assert first.options == {
        "A": "Hemolysis",
        "B": "Oral ulcers",
        "C": "Colorectal cancer",
        "D": "Pancreatic cancer",
    }
    assert first.gold == "C"
    assert first.question == "Which risk is greatest?"  # the duplicated option listing is removed
    assert first.meta == {"query": "...", "pid": "0"}
    assert second.gold == "B"


def test_latentmas_answer_matching_no_option_names_the_item(tmp_path: Path) -> None:
    rows = [
        {"idx": 0, "question": "q", "options": ["A. x", "B. y"], "answer": "y"},
        {"idx": 1, "question": "r", "options": ["A. x", "B. y"], "answer": "z"},
    ]
    with pytest.raises(TaskError, match=r"medqa\.json item 2 \(line \d+\): answer 'z' matches no option"):
        load_items(write_json(tmp_path / "medqa.json", rows))


def test_repeated_idx_falls_back_to_content_ids(tmp_path: Path) -> None:
    # LatentMAS's file restarts idx at 0 part-way through: idx is a position, not an identifier.
    rows = [{"idx": n % 2, "question": f"q{n}", "options": ["A. x", "B. y"], "answer": "x"} for n in range(4)]
    items = load_items(write_json(tmp_path / "medqa.json", rows))
    assert len({i.id for i in items}) == 4
    assert [i.meta["idx"] for i in items] == ["0", "1", "0", "1"]
    assert items[0].id == stable_id("q0", {"A": "x", "B": "y"})


def test_aime_problem_field_is_the_question(tmp_path: Path) -> None:
    (item,) = load_items(
        write_jsonl(tmp_path / "aime.jsonl", [{"problem": "Find x.", "answer": 204}]), task="aime2024"
    )
    assert (item.question, item.gold) == ("Find x.", "204")


def test_gsm8k_shape(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "gsm8k.jsonl", [{"question": "How many?", "answer": "500 + 500 = 1000 items.\n#### 1,000"}]
    )
    (item,) = load_items(path, task="gsm8k")
    assert item.gold == "1000"
    assert item.meta == {"solution": "500 + 500 = 1000 items."}


def test_arc_shapes(tmp_path: Path) -> None:
    hub = {
        "id": "Mercury_1",
        "question": "Which is a gas?",
        "choices": {"text": ["rock", "steam", "ice", "wood"], "label": ["1", "2", "3", "4"]},
        "answerKey": "2",
    }
    original = {
        "id": "Mercury_2",
        "question": {
            "stem": "Which is hot?",
            "choices": [{"label": "A", "text": "sun"}, {"label": "B", "text": "snow"}],
        },
        "answerKey": "A",
    }
    gpqa = {"question": "Pick one", "options": ["alpha", "beta", "gamma", "delta"], "answerKey": "D"}
    first, second, third = load_items(
        write_jsonl(tmp_path / "arc.jsonl", [hub, original, gpqa]), task="arc_challenge"
    )
    assert first.options == {
        "A": "rock",
        "B": "steam",
        "C": "ice",
        "D": "wood",
    }  # numeric labels become letters
    assert first.gold == "B"
    assert (second.question, second.options, second.gold) == ("Which is hot?", {"A": "sun", "B": "snow"}, "A")
    assert third.options == {"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"}
    assert third.gold == "D"


def test_mmlu_and_medmcqa_shapes(tmp_path: Path) -> None:
    mmlu = {
        "question": "Largest organ?",
        "subject": "anatomy",
        "choices": ["liver", "skin", "brain", "lung"],
        "answer": 1,
    }
    medmcqa = {
        "id": "u1",
        "question": "Vitamin for clotting?",
        "opa": "A",
        "opb": "C",
        "opc": "D",
        "opd": "K",
        "cop": 3,
        "subject_name": "Biochemistry",
    }
    first, second = load_items(write_jsonl(tmp_path / "d.jsonl", [mmlu, medmcqa]), task="mmlu_medical")
    assert (first.gold, first.group, first.options["B"]) == ("B", "anatomy", "skin")
    assert (second.id, second.gold, second.options, second.group) == (
        "u1",
        "D",
        {"A": "A", "B": "C", "C": "D", "D": "K"},
        "Biochemistry",
    )


def test_winogrande_shape(tmp_path: Path) -> None:
    row = {
        "sentence": "The cup did not fit in the box because _ was too big.",
        "option1": "the cup",
        "option2": "the box",
        "answer": "1",
    }
    (item,) = load_items(write_jsonl(tmp_path / "w.jsonl", [row]), task="winogrande")
    assert (item.options, item.gold) == ({"1": "the cup", "2": "the box"}, "1")
    with pytest.raises(TaskError, match="line 1: field 'answer' must be 1 or 2"):
        load_items(write_jsonl(tmp_path / "bad.jsonl", [{**row, "answer": ""}]))


def test_mbpp_and_humaneval_shapes(tmp_path: Path) -> None:
    mbpp = {
        "task_id": 11,
        "text": "Write a function to add two numbers.",
        "test_list": ["assert add(1, 2) == 3"],
        "test_imports": ["import math"],
    }
    humaneval = {
        "task_id": "HumanEval/0",
        "prompt": "def inc(x):\n    '''Add one.'''\n",
        "entry_point": "inc",
        "test": "def check(candidate):\n    assert candidate(1) == 2\n",
        "canonical_solution": "    return x + 1\n",
    }
    first, second = load_items(write_jsonl(tmp_path / "code.jsonl", [mbpp, humaneval]), task="mbppplus")
    assert (first.id, first.gold) == ("11", "import math\nassert add(1, 2) == 3")
    assert first.meta["test_list"] == ["assert add(1, 2) == 3"]
    assert second.id == "HumanEval/0"
    assert second.gold == humaneval["test"]
    assert second.meta["entry_point"] == "inc"
    assert second.meta["canonical_solution"] == "    return x + 1\n"
    with pytest.raises(TaskError, match="entry_point"):
        item_from_record({**humaneval, "entry_point": "inc(); import os"})


def test_pubmedqa_shapes(tmp_path: Path) -> None:
    rows = {
        "101": {
            "QUESTION": "Does X help?",
            "CONTEXTS": ["Trial one.", "Trial two."],
            "final_decision": "yes",
            "LONG_ANSWER": "It helps.",
        },
        "102": {
            "question": "Is Y safe?",
            "context": {"contexts": ["Safety data."]},
            "final_decision": "maybe",
        },
    }
    first, second = load_items(write_json(tmp_path / "pubmedqa.json", rows), task="pubmedqa")
    assert first.id == "101"
    assert (first.context, first.gold, first.options) == (
        "Trial one.\nTrial two.",
        "A",
        {"A": "yes", "B": "no", "C": "maybe"},
    )
    assert first.meta == {"LONG_ANSWER": "It helps."}
    assert (second.id, second.context, second.gold) == ("102", "Safety data.", "C")
    with pytest.raises(TaskError, match="final_decision"):
        item_from_record({"question": "q", "context": "c", "final_decision": "perhaps"})


def test_medicationqa_and_ciar_shapes(tmp_path: Path) -> None:
    medication = {
        "Question": "How should I take ibuprofen?",
        "Answer": "With food.",
        "Focus (Drug)": "Ibuprofen",
    }
    (item,) = load_items(write_jsonl(tmp_path / "m.jsonl", [medication]), task="medicationqa")
    assert (item.question, item.gold, item.meta) == (
        "How should I take ibuprofen?",
        "With food.",
        {"Focus (Drug)": "Ibuprofen"},
    )
    ciar = [
        {
            "question": "Average speed?",
            "answer": ["1.5", "3/2"],
            "explanation": "2d/(4d/3)",
            "incorrect answer": ["2"],
        }
    ]
    (item,) = load_items(write_json(tmp_path / "ciar.json", ciar), task="ciar")
    assert item.gold == ["1.5", "3/2"]
    assert item.meta == {"explanation": "2d/(4d/3)", "incorrect answer": ["2"]}


def test_task_field_is_kept_and_checked(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"task": "gsm8k", "question": "1+1?", "answer": "2"}])
    assert load_items(path)[0].meta == {"task": "gsm8k"}
    bad_task = write_jsonl(tmp_path / "e.jsonl", [{"task": "chess", "question": "?", "answer": "2"}])
    with pytest.raises(TaskError, match=r"e\.jsonl line 1: unknown task 'chess'; known tasks: .*gsm8k"):
        load_items(bad_task)
    wrong_gold = write_jsonl(
        tmp_path / "f.jsonl",
        [{"question": "a", "answer": "1"}, {"task": "gsm8k", "question": "b", "answer": "two"}],
    )
    with pytest.raises(TaskError, match=r"f\.jsonl line 2: .*'two' is not a number"):
        load_items(wrong_gold)


def test_load_checks_items_against_the_requested_task(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"question": "1+1?", "answer": "2"}, {"question": "Which?", "options": ["x", "y"], "answer": "y"}],
    )
    with pytest.raises(TaskError, match=r"d\.jsonl line 1: .*gold answer '2' is not one of A, B, C, D, E"):
        load_items(path, task="medqa")
    with pytest.raises(TaskError, match=r"d\.jsonl line 2: .*'B' is not a number"):
        load_items(path, task="gsm8k")
    with pytest.raises(TaskError, match="unknown task"):
        load_items(path, task="nonsense")


def test_hub_name_without_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # importing it now raises ImportError
    with pytest.raises(TaskError, match="'datasets' package"):
        load_items("openai/gsm8k")


class FakeHub:
    """A stand-in for the `datasets` package: records how a split is opened and how much is read."""

    def __init__(self, rows: int) -> None:
        self.rows, self.read, self.calls = rows, 0, []

    def load_dataset(self, repo, config, *, split, streaming=False):
        self.calls.append((repo, config, split, streaming))

        def records():
            for n in range(self.rows):
                self.read += 1
                yield {"id": f"r{n}", "question": f"{n} + 1?", "answer": f"#### {n + 1}"}

        return records() if streaming else list(records())


def test_hub_with_a_limit_streams_and_reads_only_the_first_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = FakeHub(rows=1000)
    monkeypatch.setitem(sys.modules, "datasets", hub)
    items = load_items("gsm8k", task="gsm8k", limit=3)
    assert [item.id for item in items] == ["r0", "r1", "r2"] and items[2].gold == "3"
    assert hub.calls == [("openai/gsm8k", "main", "test", True)]
    assert hub.read == 3  # the other 997 rows are never fetched
    assert len(load_items("owner/set:cfg:validation", limit=None)) == 1000
    assert hub.calls[-1] == ("owner/set", "cfg", "validation", False)


# -- shipped samples ----------------------------------------------------------------------------
def test_samples_load_and_validate() -> None:
    demo = load_items(sample_path("demo"), task="mixed")
    assert len(demo) == 6
    assert {item.meta["task"] for item in demo} == {"gsm8k", "arc_easy", "medqa", "custom"}
    medqa = load_items(sample_path("medqa_sample"), task="medqa")
    assert len(medqa) == 5
    assert {item.group for item in medqa} == {"step1", "step2&3"}
    ciar = load_items(sample_path("ciar_sample.json"), task="ciar")
    assert len(ciar) == 3
    assert all(isinstance(item.gold, list) for item in ciar)


def test_latentmas_sample_renders_every_option_once_with_a_stray_quote() -> None:
    """The shipped LatentMAS MedQA sample has an item whose last option ends in a stray '\\n"' (the
    option listing then spans an extra line); its stem must still lose both appended listings."""
    records = json.loads(Path(sample_path("medqa_latentmas_sample.json")).read_text(encoding="utf-8"))
    items = load_items(sample_path("medqa_latentmas_sample.json"), task="medqa")
    assert any(r["options"][-1].endswith('\n"') for r in records)  # the case this test is about
    task = get_task("medqa")
    for record, item in zip(records, items, strict=True):
        listing = "\n".join(f"{key}. {text}" for key, text in item.options.items())
        assert record["question"].count(listing) == 2  # the data lists the options twice
        prompt = task.prompt(item)
        assert prompt == f"{item.question}\n{listing}"
        assert prompt.count(listing) == 1 and not any(
            f"{key}. " in item.question.split("\n")[-1] for key in item.options
        )
    stray = next(i for r, i in zip(records, items, strict=True) if r["options"][-1].endswith('\n"'))
    assert stray.question.endswith('developing?"') or stray.question.endswith('patient?"')
    assert stray.options["D"] == 'Kayser-Fleischer rings\n"'  # option text kept as the data has it


def test_sample_path_rejects_unknown_names() -> None:
    assert Path(sample_path("demo")).name == "demo.jsonl"
    with pytest.raises(TaskError, match="no sample named 'nope'; samples: .*demo"):
        sample_path("nope")
    with pytest.raises(TaskError, match="invalid sample name"):
        sample_path("../base.py")


def test_line_aligned_translation_files_pair_sources_with_references(tmp_path):
    from tasks import load_items

    source = tmp_path / "mt.zh"
    source.write_text("他吃了一个苹果。\n我们走吧。\n", encoding="utf-8")
    reference = tmp_path / "mt.en"
    reference.write_text("He ate an apple.\nLet's go.\n", encoding="utf-8")
    items = load_items(str(source), task="commonmt", reference=str(reference))
    assert [(i.id, i.question, i.gold) for i in items] == [
        ("mt:1", "他吃了一个苹果。", "He ate an apple."),
        ("mt:2", "我们走吧。", "Let's go."),
    ]
    assert [i.gold for i in load_items(str(source), task="commonmt")] == [None, None]

    reference.write_text("He ate an apple.\n", encoding="utf-8")
    with pytest.raises(TaskError, match="line-aligned"):
        load_items(str(source), task="commonmt", reference=str(reference))
    source.write_text("第一句。\n\n第三句。\n", encoding="utf-8")
    with pytest.raises(TaskError, match="line 2"):
        load_items(str(source), task="commonmt")
