"""`fedmarket audit PID`: re-derive every round of a project from the chain and storage, with no party's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import session

#: How the table shows each check's verdict (the JSON keeps the words of market.parties.audit).
_SHOWN = {"match": "[green]ok", "mismatch": "[red]FAIL", "not auditable": "[yellow]n/a", "not checked": "[yellow]skip"}


def _render(data: dict[str, Any]) -> None:
    """One row per round with each check's verdict, then every note and finding."""
    table = Table(title=f"project {data['project']}: {data['rounds_matched']} of {data['rounds_audited']} rounds match "
                        f"(g(r) compared {data['model_tolerance']}, {data['seconds']:.1f} s)")
    for col in ("round", "posts", "valid", "flags", "scores", "proof", "model", "v", "verdict"):
        table.add_column(col, no_wrap=True)
    for r in data["rounds"]:
        posts = str(r["posts"]) + (f" (cure {','.join(map(str, r['cured']))})" if r["cured"] else "") + (
            "" if r["settled"] else " (disputing)")
        valid = f"{sum(s['verdict'] == 'valid' for s in r['slots'])}/{len(r['slots'])}"
        verdict = "[green]MATCH" if r["matched"] else "[red]MISMATCH"
        table.add_row(str(r["round"]), posts, valid, *(_SHOWN[v] for v in r["checks"].values()), verdict)
    console.print(table)
    console.print("n/a: the validation set is not published; skip: no v hashes to vCommit")
    for r in data["rounds"]:
        for note in r["notes"]:
            console.print(f"round {r['round']}: {note}", highlight=False)
        for f in r["findings"]:
            slot = f", slot {f['slot']}" if f["slot"] is not None else ""
            console.print(f"[red]round {f['round']}{slot}, field {f['field']}:[/red] {f['detail']}", highlight=False)


def audit_command(
    pid: int = typer.Argument(..., help="The project id."),
    vk: Path | None = typer.Option(None, "--vk", help="The round circuit's verification_key.json (default: the keys "
                                                      "installed here for the project's circuit settings)."),
) -> None:
    """Re-derive every round from the chain's events and the blobs: updates, flags, scores, proof, g(r) and v.

    Needs no party's keys or data; exits non-zero on the first mismatch, naming its round, slot and field.
    """
    from market.parties.audit import audit_project
    from market.parties.context import load_context

    s = session()
    result = audit_project(load_context(s.marketplace, s.storage, pid), vk)
    s.show(result.as_dict(), _render)
    if result.findings:
        raise result.findings[0].error()
