"""Shared output helpers: one JSON object for scripts, a rich table for people."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit(result: dict[str, Any], as_json: bool, title: str) -> None:
    """Print `result` as one JSON object (`as_json`) or as a two-column table."""
    if as_json:
        print(json.dumps(result, sort_keys=True, default=str))
        return
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
