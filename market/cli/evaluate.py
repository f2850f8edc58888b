"""`fedmarket eval`: robustness, pay and scoring evaluation on digits and on an own-data CSV, with plots."""

from __future__ import annotations

from pathlib import Path

import typer

from market.cli.output import figures
from market.cli.session import session


def eval_command(
    out: Path = typer.Option(Path("build/eval"), help="Folder for the JSON result and the PNG plots."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds; the headline figures are the worst over them."),
    clip_study: bool = typer.Option(
        False, "--clip-study",
        help="Instead: the v-sybil's share, honest shares and Spearman rho under the protocol's median-capped scores, "
        "the uncapped §3 scores (the rule before issue 12) and the median cap at 125%.",
    ),
) -> None:
    """Attacks x attacker counts on digits (10 trainers, alpha 0.5, 10 rounds; jittered ALIE and IPM, free riders of
    honest size included): accuracy, honest trainers slashed and excluded, attackers' pay, free riders' share,
    detection, Spearman rho, v-sybil share; and an own-data project on a CSV generated from scikit-learn."""
    from aggregator.eval.evaluate import run_seeds
    from aggregator.eval.sybil import clip_study_seeds

    try:
        chosen = tuple(int(s) for s in seeds.split(","))
    except ValueError:
        raise typer.BadParameter(f"--seeds takes comma-separated integers, got {seeds!r}") from None
    if clip_study:
        session().show(clip_study_seeds(chosen), figures("v-sybil clip study"))
        return
    session().show(run_seeds(out, chosen), figures("evaluation"))
