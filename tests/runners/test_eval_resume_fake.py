"""Evaluation resume with a scripted model: a crash mid-item, then --run-id finishes the run.

The crash is a BaseException raised inside a model call (what a kill looks like to the run store:
the process stops, nothing is cleaned up). The real `kill -9` of a separate process is covered by
test_eval_resume.py on the embedded model.
"""

import json
import threading

import pytest

from nodes.chat_models import register_chat_model
from runners.evaluate import evaluate
from storage.run_store import RunStore
from tests.fakes import ScriptedChatModel
from tests.graphs.test_medagents import DEFAULT_REPLIES, stage_of

LETTERS = "ABCDE"


class SimulatedCrash(BaseException):
    pass


def write_items(path) -> list[str]:
    rows = []
    for i in range(3):
        rows.append(
            {
                "id": f"case{i}",
                "question": f"Case {i}: which option is marked [{LETTERS[i]}]?",
                "options": {letter: f"option {letter}" for letter in LETTERS},
                "answer_idx": LETTERS[i],
                "answer": f"option {LETTERS[i]}",
                "meta_info": "step1" if i < 2 else "step2&3",
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return [r["question"] for r in rows]


def reply_for(messages) -> str:
    stage = stage_of(messages)
    if stage == "decision":
        text = messages[-1].text
        return "Option: " + text[text.index("[") + 1]  # the letter the case marks
    return DEFAULT_REPLIES[stage]


def make_model(crash_at: int | None = None) -> ScriptedChatModel:
    count = {"n": 0}
    lock = threading.Lock()

    def reply(messages):
        with lock:
            count["n"] += 1
            n = count["n"]
        if crash_at is not None and n == crash_at:
            raise SimulatedCrash(f"crash at call {n}")
        return reply_for(messages)

    return ScriptedChatModel(reply)


@pytest.mark.parametrize("method", ["syn_verif"])
def test_crash_mid_item_then_resume_loses_and_duplicates_nothing(tmp_path, method):
    data = tmp_path / "medqa.jsonl"
    questions = write_items(data)
    db = str(tmp_path / "eval.db")
    options = {"method": method}

    register_chat_model("fake-reference", reference := make_model())
    summary = evaluate(
        "medagents",
        task="medqa",
        data=str(data),
        db=db,
        run_id="reference",
        progress=False,
        options={**options, "model": "fake-reference"},
    )
    assert (summary.n, summary.correct) == (3, 3)
    calls_per_item = len(reference.calls) // 3
    assert calls_per_item == 18

    register_chat_model("fake-crashing", make_model(crash_at=calls_per_item + 9))  # mid second item
    with pytest.raises(SimulatedCrash):
        evaluate(
            "medagents",
            task="medqa",
            data=str(data),
            db=db,
            run_id="crashy",
            progress=False,
            options={**options, "model": "fake-crashing"},
        )
    store = RunStore(db)
    done = store.finished_item_ids("crashy")
    assert "case0" in done and "case1" not in done  # case2 may have started before the crash surfaced

    register_chat_model("fake-resumed", resumed := make_model())
    summary = evaluate(
        "medagents",
        task="medqa",
        data=str(data),
        db=db,
        run_id="crashy",
        progress=False,
        options={**options, "model": "fake-resumed"},
    )
    assert (summary.n, summary.correct, summary.skipped) == (3, 3, len(done))
    assert summary.groups["step1"]["n"] == 2 and summary.groups["step2&3"]["n"] == 1
    prompts = resumed.prompts()
    assert not any(questions[0] in p for p in prompts)  # the finished item was not re-run
    # The crashed item continued from its checkpoint: fewer calls than starting it over.
    assert len(prompts) < (3 - len(done)) * calls_per_item
    assert sorted(r.item_id for r in store.items("crashy")) == ["case0", "case1", "case2"]
    assert {r.item_id: r.prediction for r in store.items("crashy")} == {
        r.item_id: r.prediction for r in store.items("reference")
    }
    record = store.items("crashy")[1].record
    assert record["pred_answer"] == "B" and record["question_domains"] and record["vote_history"]
