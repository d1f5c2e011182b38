"""The report's figures (matplotlib, no pyplot state): each returns PNG bytes to embed in the page.

Every figure is drawn from the numbers the report's tables print, so a picture never shows what a
table does not.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def cost_figure(
    labels: Sequence[str], accuracy: Sequence[float], tokens: Sequence[float], seconds: Sequence[float]
) -> bytes:
    """Per run: accuracy, generated tokens per item, seconds per item (bars), and accuracy against
    each cost (scatter), so "what does a point of accuracy cost" reads off one picture."""
    figure = Figure(figsize=(12, 6.6), layout="constrained")
    top = figure.subfigures(2, 1, height_ratios=[1, 1.15])
    bars = top[0].subplots(1, 3)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(labels))]
    positions = range(len(labels))
    for axis, values, title, fmt in (
        (bars[0], accuracy, "accuracy", "{:.3f}"),
        (bars[1], tokens, "generated tokens per item", "{:.0f}"),
        (bars[2], seconds, "seconds per item", "{:.3g}"),
    ):
        drawn = axis.barh(list(positions), values, color=colors)
        axis.bar_label(drawn, labels=[fmt.format(v) for v in values], padding=3, fontsize=9)
        axis.set_yticks(list(positions), labels if axis is bars[0] else [""] * len(labels))
        axis.invert_yaxis()
        axis.set_title(title)
        axis.margins(x=0.25)
        axis.spines[["top", "right"]].set_visible(False)
    bars[0].set_xlim(0, 1.15)  # accuracy is a fraction: the same scale whatever the runs scored
    scatters = top[1].subplots(1, 2)
    for axis, costs, name in (
        (scatters[0], tokens, "generated tokens per item"),
        (scatters[1], seconds, "seconds per item"),
    ):
        for index, (label, cost, value, color) in enumerate(
            zip(labels, costs, accuracy, colors, strict=True)
        ):
            axis.scatter([cost], [value], s=90, color=color, zorder=3)
            # Labels step upwards, so runs of similar cost do not write over each other.
            axis.annotate(
                label, (cost, value), textcoords="offset points", xytext=(6, 6 + 13 * index), fontsize=9
            )
        axis.set_xlabel(name)
        axis.set_ylabel("accuracy")
        axis.set_ylim(-0.05, 1.05)
        axis.grid(alpha=0.3)
        axis.margins(x=0.2)
        axis.spines[["top", "right"]].set_visible(False)
    top[1].suptitle("accuracy against cost", fontsize=11)
    return _png(figure)


def agents_figure(labels: Sequence[str], agents: Sequence[dict[str, dict[str, Any]]]) -> bytes:
    """Per run, stacked by agent: seconds and generated tokens (all items summed)."""
    names = sorted({name for run in agents for name in run}, key=lambda n: (_order(n), n))
    figure = Figure(figsize=(12, 1.2 + 0.55 * len(labels) * 2), layout="constrained")
    axes = figure.subplots(1, 2)
    positions = list(range(len(labels)))
    for axis, key, title in (
        (axes[0], "seconds", "seconds by agent"),
        (axes[1], "generated_tokens", "generated tokens by agent"),
    ):
        left = [0.0] * len(labels)
        for index, name in enumerate(names):
            values = [float(run.get(name, {}).get(key) or 0) for run in agents]
            axis.barh(positions, values, left=left, color=PALETTE[index % len(PALETTE)], label=name)
            left = [a + b for a, b in zip(left, values, strict=True)]
        axis.set_yticks(positions, labels if axis is axes[0] else [""] * len(labels))
        axis.invert_yaxis()
        axis.set_title(title)
        axis.spines[["top", "right"]].set_visible(False)
    handles, legend_labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, legend_labels, loc="outside lower center", ncols=min(len(names), 8), frameon=False)
    return _png(figure)


_AGENT_ORDER = ("baseline", "planner", "critic", "refiner", "math", "science", "code", "judger", "summarizer")


def _order(name: str) -> int:
    return _AGENT_ORDER.index(name) if name in _AGENT_ORDER else len(_AGENT_ORDER)
