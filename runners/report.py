"""`masgraph report RUN_ID [RUN_ID ...]`: evaluation runs compared on one self-contained page.

Per run, the page shows the numbers `masgraph runs show` prints (the same `summarize`), accuracy
against generated tokens and seconds per item (figures), where time and tokens go agent by agent
(the run store's steps), and the items on which the runs' answers differ. HTML embeds its figures
as PNG (one file, no network); `--format md` writes the tables as Markdown.
"""

from __future__ import annotations

import base64
import html
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from runners.evaluate import EvalSummary, summarize
from storage.run_store import Item, RunStore, Step

AGENT_FIELDS = ("calls", "prompt_tokens", "generated_tokens", "latent_steps", "seconds")
EMBEDDED_MODEL_NOTE = (
    "The embedded SmolLM2-135M model is far too small to answer these questions: accuracy near zero is "
    "expected and says nothing about the methods. The token and time columns are the point: they show "
    "what each method costs on the same items."
)


@dataclass
class RunView:
    """One run as the report shows it."""

    label: str
    summary: EvalSummary
    status: str
    agents: dict[str, dict[str, float]]  # agent -> AGENT_FIELDS, summed over the run's items
    answers: dict[str, tuple[str | None, bool | None]]  # item id -> (prediction, correct)
    questions: dict[str, tuple[str, Any]]  # item id -> (question, gold)

    @property
    def per_item(self) -> tuple[float, float]:
        """(generated tokens, seconds) per item."""
        n = max(self.summary.n, 1)
        return self.summary.generated_tokens / n, self.summary.item_seconds / n


def load_runs(store: RunStore, run_ids: list[str]) -> list[RunView]:
    runs = [store.get_run(run_id) for run_id in run_ids]  # an unknown id is a clear error, before any work
    methods = [run.method for run in runs]
    views = []
    for run in runs:
        label = run.method if methods.count(run.method) == 1 else f"{run.method} ({run.id})"
        summary = summarize(store, run.id, run.method, run.task, seconds=0.0, skipped=0)
        items = store.items(run.id)
        views.append(
            RunView(
                label=label,
                summary=summary,
                status=run.status,
                agents=_agent_totals(store, run.id),
                answers={i.item_id: (i.prediction, i.correct) for i in items},
                questions={i.item_id: (i.question or "", i.gold) for i in items},
            )
        )
    return views


def _agent_totals(store: RunStore, run_id: str) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(AGENT_FIELDS, 0.0))
    with store.session() as session:
        query = select(Step).join(Item, Step.item_pk == Item.id).where(Item.run_id == run_id)
        for step in session.scalars(query):
            entry = totals[step.agent]
            entry["calls"] += 1
            for name in AGENT_FIELDS[1:]:
                entry[name] += float(getattr(step, name) or 0)
    return dict(totals)


def disagreements(
    runs: list[RunView],
) -> list[tuple[str, str, Any, list[tuple[str | None, bool | None] | None]]]:
    """Items answered by at least two runs whose answers (or grades) differ."""
    rows = []
    shared = sorted({item for run in runs for item in run.answers})
    for item_id in shared:
        answers = [run.answers.get(item_id) for run in runs]
        given = [a for a in answers if a is not None]
        if len(given) < 2:
            continue
        if len({(str(p).strip().lower() if p is not None else None, c) for p, c in given}) > 1:
            question, gold = next(run.questions[item_id] for run in runs if item_id in run.questions)
            rows.append((item_id, question, gold, answers))
    return rows


# -- rendering -------------------------------------------------------------------------------------
def summary_rows(runs: list[RunView]) -> tuple[list[str], list[list[str]]]:
    header = ["method", "run id", "task", "status", "n", "correct", "accuracy", "failed", "prompt tokens",
              "generated tokens", "item seconds", "tokens / item", "seconds / item"]  # fmt: skip
    rows = []
    for run in runs:
        s, (tokens, seconds) = run.summary, run.per_item
        rows.append([run.label, s.run_id, s.task, run.status, str(s.n), str(s.correct), f"{s.accuracy:.4f}",
                     str(s.failed), str(s.prompt_tokens), str(s.generated_tokens), f"{s.item_seconds:.3f}",
                     f"{tokens:.1f}", f"{seconds:.2f}"])  # fmt: skip
    return header, rows


def agent_rows(runs: list[RunView]) -> tuple[list[str], list[list[str]]]:
    header = [
        "method",
        "agent",
        "calls",
        "prompt tokens",
        "generated tokens",
        "latent steps",
        "seconds",
        "share of time",
    ]
    rows = []
    for run in runs:
        total = sum(a["seconds"] for a in run.agents.values()) or 1.0
        for name, a in sorted(run.agents.items(), key=lambda kv: -kv[1]["seconds"]):
            rows.append([run.label, name, f"{a['calls']:.0f}", f"{a['prompt_tokens']:.0f}", f"{a['generated_tokens']:.0f}",
                         f"{a['latent_steps']:.0f}", f"{a['seconds']:.2f}", f"{a['seconds'] / total:.0%}"])  # fmt: skip
    return header, rows


def disagreement_rows(runs: list[RunView]) -> tuple[list[str], list[list[str]]]:
    header = ["item", "question", "gold"] + [run.label for run in runs]
    rows = []
    for item_id, question, gold, answers in disagreements(runs):
        cells = ["—" if a is None else f"{_short(a[0], 40)} {'✓' if a[1] else '✗'}" for a in answers]
        rows.append([item_id, _short(question, 90), _short(gold, 30), *cells])
    return header, rows


def _short(value: Any, limit: int) -> str:
    text = " ".join(str(value if value is not None else "—").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown(runs: list[RunView]) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(lines)

    parts = ["# masgraph report", "", table(*summary_rows(runs)), "", "## Time and tokens by agent", "",
             table(*agent_rows(runs)), "", "## Items where the methods disagree", ""]  # fmt: skip
    header, rows = disagreement_rows(runs)
    parts.append(table(header, rows) if rows else "None: every item got the same answer from every run.")
    return "\n".join(parts) + "\n"


def render_html(runs: list[RunView], db: str, note: str | None = None) -> str:
    from runners.report_figures import agents_figure, cost_figure

    labels = [run.label for run in runs]
    cost = cost_figure(labels, [r.summary.accuracy for r in runs], [r.per_item[0] for r in runs],
                       [r.per_item[1] for r in runs])  # fmt: skip
    agents = agents_figure(labels, [run.agents for run in runs])
    header, rows = disagreement_rows(runs)
    body = [
        "<h1>masgraph report</h1>",
        f"<p class='meta'>{len(runs)} run(s) from <code>{html.escape(db)}</code>, "
        f"written {time.strftime('%Y-%m-%d %H:%M')}</p>",
        f"<p class='note'>{html.escape(note)}</p>" if note else "",
        "<h2>Runs</h2>",
        _html_table(*summary_rows(runs)),
        "<h2>Accuracy, generated tokens and seconds</h2>",
        _img(cost, "accuracy, generated tokens per item and seconds per item for each run"),
        "<h2>Time and tokens by agent</h2>",
        _img(agents, "seconds and generated tokens of each agent, stacked per run"),
        _html_table(*agent_rows(runs)),
        f"<h2>Items where the methods disagree ({len(rows)})</h2>",
        _html_table(header, rows) if rows else "<p>None: every item got the same answer from every run.</p>",
    ]
    return _PAGE.format(body="\n".join(part for part in body if part))


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>masgraph report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px 32px; color: #222; max-width: 1320px; }}
h1 {{ margin-bottom: 0; }} h2 {{ margin-top: 28px; border-bottom: 1px solid #ddd; }}
.meta {{ color: #666; }} .note {{ background: #fff6d9; border-left: 4px solid #e0b000; padding: 8px 12px; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }} img {{ max-width: 100%; }}
</style></head><body>
{body}
</body></html>
"""


# -- command -----------------------------------------------------------------------------------------
def write_report(run_ids: list[str], *, db: str | None, out: str | Path, fmt: str = "html",
                 note: str | None = None) -> Path:  # fmt: skip
    store = RunStore(db)
    runs = load_runs(store, run_ids)
    text = markdown(runs) if fmt == "md" else render_html(runs, store.db, note)
    path = Path(out).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
