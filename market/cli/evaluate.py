"""`fedmarket eval`: robustness and scoring evaluation on digits, with plots."""

from __future__ import annotations

from pathlib import Path

import typer

from market.cli.output import figures
from market.cli.session import session


def eval_command(
    out: Path = typer.Option(Path("build/eval"), help="Folder for the JSON result and the PNG plots."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds; the headline figures are the worst over them."),
) -> None:
    """Attacks x attacker counts on digits (10 trainers, alpha 0.5, 10 rounds): accuracy, detection, Spearman rho."""
    from aggregator.eval.evaluate import run_seeds

    try:
        chosen = tuple(int(s) for s in seeds.split(","))
    except ValueError:
        raise typer.BadParameter(f"--seeds takes comma-separated integers, got {seeds!r}") from None
    session().show(run_seeds(out, chosen), figures("evaluation"))
