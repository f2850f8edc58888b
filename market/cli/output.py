"""The one printer: every command's result is one dict, printed as one JSON object (--json) or drawn for people."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

#: Draws a result for people on `console` (tables, lines).
Render = Callable[[dict[str, Any]], None]


def show(data: dict[str, Any], people: str | Render, as_json: bool) -> None:
    """Print `data` as one JSON object for scripts, or for people through `people`.

    A string `people` is the one line of a finished action: people read it after a tick, and
    the JSON carries `"ok": true` beside the data. A function draws the data itself.
    """
    if as_json:
        print(json.dumps({"ok": True, **data} if isinstance(people, str) else data, sort_keys=True, default=str))
    elif isinstance(people, str):
        console.print(f"[green]✓[/green] {people}")
    else:
        people(data)


def figures(title: str) -> Render:
    """Draws a result as a two-column table of figures titled `title` (benchmarks, evaluations)."""

    def render(data: dict[str, Any]) -> None:
        table = Table(title=title)
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in data.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        console.print(table)

    return render
