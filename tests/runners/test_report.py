"""`masgraph report`: the page carries the numbers `runs show` prints, per-agent totals from the steps,
the items where runs disagree, and its figures inside (no other file, no network)."""

from __future__ import annotations

import json
import re

import pytest

from nodes.chat_models import register_chat_model
from runners.cli import main
from runners.report import disagreements, load_runs, markdown
from storage.run_store import RunStore
from tests.fakes import ScriptedChatModel

ITEMS = [
    {"id": "a", "question": "2 + 2?", "answer": "4"},
    {"id": "b", "question": "1 + 1?", "answer": "2"},
    {"id": "c", "question": "3 + 3?", "answer": "6"},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[str, list[str]]:
    """A baseline that answers 4 to everything, and a text MAS whose judger is right about b too."""
    folder = tmp_path_factory.mktemp("report")
    data = folder / "d.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    db = str(folder / "runs.db")
    register_chat_model("fake-report-4", ScriptedChatModel(lambda m: "It is \\boxed{4}."))
    register_chat_model(
        "fake-report-mas",
        ScriptedChatModel(lambda m: "\\boxed{2}" if "1 + 1" in m[-1].text else "\\boxed{4}"),
    )
    for method, model in (("baseline", "fake-report-4"), ("text_mas", "fake-report-mas")):
        args = ["eval", method, "--task", "gsm8k", "--data", str(data), "--db", db, "--model", model]
        assert main([*args, "--run-id", f"r-{method}", "--no-progress"]) == 0
    return db, ["r-baseline", "r-text_mas"]


def runs_show(db: str, run_id: str, capsys) -> dict:
    capsys.readouterr()
    assert main(["runs", "show", run_id, "--db", db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_html_report_is_one_self_contained_page_with_the_runs_show_numbers(runs, tmp_path, capsys) -> None:
    db, run_ids = runs
    out = tmp_path / "r.html"
    capsys.readouterr()
    assert main(["report", *run_ids, "--db", db, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert len(re.findall(r"src='data:image/png;base64,[A-Za-z0-9+/=]{2000,}'", page)) == 2
    assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", page)  # nothing loaded from elsewhere
    cells = re.findall(r"<td>(.*?)</td>", page)
    for run_id in run_ids:
        shown = runs_show(db, run_id, capsys)
        start = cells.index(run_id) - 1  # the row: method, run id, task, status, n, correct, accuracy, ...
        row = cells[start : start + 11]
        assert row[4:] == [str(shown["n"]), str(shown["correct"]), f"{shown['accuracy']:.4f}", str(shown["failed"]),
                           str(shown["prompt_tokens"]), str(shown["generated_tokens"]), f"{shown['item_seconds']:.3f}"]  # fmt: skip


def test_per_agent_totals_come_from_the_steps(runs) -> None:
    db, run_ids = runs
    baseline, text_mas = load_runs(RunStore(db), run_ids)
    assert set(baseline.agents) == {"baseline"} and baseline.agents["baseline"]["calls"] == 3
    assert set(text_mas.agents) == {"planner", "critic", "refiner", "judger"}
    assert all(agent["calls"] == 3 for agent in text_mas.agents.values())
    generated = sum(a["generated_tokens"] for a in text_mas.agents.values())
    assert generated == text_mas.summary.generated_tokens > 0


def test_the_items_where_runs_disagree_and_only_those(runs) -> None:
    db, run_ids = runs
    rows = disagreements(load_runs(RunStore(db), run_ids))
    assert [(item, gold, answers) for item, _, gold, answers in rows] == [
        ("b", "2", [("4", False), ("2", True)])
    ]
    text = markdown(load_runs(RunStore(db), run_ids))
    assert "| b | 1 + 1? | 2 | 4 ✗ | 2 ✓ |" in text
    assert "| baseline | r-baseline | gsm8k | completed | 3 | 1 | 0.3333 |" in text


def test_an_unknown_run_is_a_clear_error(runs, tmp_path, capsys) -> None:
    db, _ = runs
    assert main(["report", "r-baseline", "nope", "--db", db, "--out", str(tmp_path / "x.html")]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


@pytest.mark.slow
def test_the_report_renders_in_headless_chromium(runs, tmp_path) -> None:
    """The page as a reader sees it: Chromium draws both embedded figures (their colours are on screen)."""
    from PIL import Image

    from runners.report_figures import PALETTE
    from tests.chromium import chromium, screenshot

    if chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    db, run_ids = runs
    page = tmp_path / "r.html"
    assert main(["report", *run_ids, "--db", db, "--out", str(page)]) == 0
    shot = Image.open(screenshot(page, tmp_path / "r.png", width=1400, height=2400)).convert("RGB")
    assert shot.size == (1400, 2400)
    colours = {colour for _, colour in shot.getcolors(shot.width * shot.height)}
    for hex_colour in PALETTE[:2]:  # the two runs' bars
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, f"{hex_colour} is not on the screenshot: a figure did not render"
