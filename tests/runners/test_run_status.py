"""A run stopped by Ctrl-C or by an error is marked so, never left "running"; resuming finishes it."""

from __future__ import annotations

import pytest

from nodes.chat_models import register_chat_model
from runners import evaluate as evaluation
from runners.item_runner import ItemRunner
from storage.run_store import RunStore
from tests.fakes import ScriptedChatModel


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(f'{{"id": "q{n}", "question": "{n}+{n}?", "answer": "{2 * n}"}}\n' for n in range(3))
    )
    return str(path)


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "interrupted"), (OSError, "failed")])
def test_a_stopped_run_is_marked_and_resumes(tmp_path, data, monkeypatch, error, status):
    register_chat_model("fake-status", ScriptedChatModel(lambda messages: "\\boxed{2}"))
    db = str(tmp_path / "runs.db")
    options = {"model": "fake-status"}
    original = ItemRunner._run

    def stop_at_last(self, position, item):
        if position == 1:
            raise error("stopped")
        return original(self, position, item)

    monkeypatch.setattr(ItemRunner, "_run", stop_at_last)
    with pytest.raises(error):
        evaluation.evaluate(
            "baseline", task="gsm8k", data=data, run_id="r", db=db, options=options, progress=False
        )
    store = RunStore(db)
    assert store.get_run("r").status == status
    assert store.live_owners("r") == set()  # its leases were released
    monkeypatch.setattr(ItemRunner, "_run", original)
    summary = evaluation.evaluate("baseline", task="gsm8k", data=data, run_id="r", db=db, options=options,
                                  progress=False)  # fmt: skip
    assert (summary.n, summary.correct, summary.skipped) == (3, 1, 2)
    assert store.get_run("r").status == "completed"
