"""The dashboard's plots, rendered on the server as inline SVG with matplotlib's object API (no pyplot: the
server renders from several threads, and a Figure of its own is safe in each)."""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure

from market.protocol.constants import ETHER


def _svg(fig: Figure) -> str:
    """The figure as an SVG element (the XML prologue dropped, so that it can sit inside HTML)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def accuracy_svg(rounds: list[dict[str, Any]]) -> str:
    """Validation accuracy of g(r) per settled round, as the aggregator reported it in g(r)'s blob."""
    fig = Figure(figsize=(6.0, 2.8))
    ax = fig.add_subplot()
    points = [(r["round"], 100 * r["val_accuracy"]) for r in rounds if r["val_accuracy"] is not None]
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", color="#1f6feb")
        ax.set_xticks(list(xs))
    ax.set_ylim(0, 100)
    ax.set_xlabel("round")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("accuracy per round")
    ax.grid(alpha=0.3)
    return _svg(fig)


def payouts_svg(trainers: list[dict[str, Any]]) -> str:
    """Per trainer: rewards credited (claimed or not) and stake slashed, in ether."""
    fig = Figure(figsize=(6.0, 2.8))
    ax = fig.add_subplot()
    labels = [f"{t['slot']}: {t['address'][:6]}…" for t in trainers]
    xs = range(len(trainers))
    ax.bar([x - 0.2 for x in xs], [t["paid"] / ETHER for t in trainers], width=0.4, label="rewards", color="#2da44e")
    ax.bar([x + 0.2 for x in xs], [t["slashed"] / ETHER for t in trainers], width=0.4, label="slashed", color="#cf222e")
    ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("ether")
    ax.set_title("payouts per trainer")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _svg(fig)
