"""`fedmarket bench ...`: benchmarks that print figures and ratios measured in the same run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from market.cli.output import figures
from market.cli.session import JSON, command, session

app = typer.Typer(help="Benchmarks: gas, storage, aggregation, proving, command-line start.", no_args_is_help=True)


@command(app, JSON)
def gas() -> None:
    """Gas used by each marketplace entry point, measured on anvil."""
    from market.dev.gasbench import run

    session().show(run(), figures("gas used"))


@command(app, JSON)
def storage() -> None:
    """Add/get throughput of LocalStorage and the IPFS node; commitment hashing speed."""
    from market.storage.bench import run

    session().show(run(), figures("storage"))


@command(app, JSON)
def aggregate() -> None:
    """Outlier rule + scores + average against a NumPy baseline and Flower's Krum."""
    from aggregator.eval.bench import run

    session().show(run(), figures("aggregation"))


@command(app, JSON)
def prove(
    budget: float = typer.Option(2400.0, help="Seconds to spend; the largest cases are skipped (and named) past it."),
) -> None:
    """Constraints, witness and proving time, verification time and gas of round proofs."""
    from zk.bench import run

    session().show(run(budget_s=budget), figures("round proofs"))


def help_start(runs: int) -> dict[str, Any]:
    """Wall time of `fedmarket --help` in a fresh process, `runs` times: the installed command, else `python -m market.cli`."""
    script = Path(sys.executable).with_name("fedmarket")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "market.cli"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*argv, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return {"help_s": statistics.median(times), "help_min_s": min(times), "help_max_s": max(times), "runs": runs,
            "command": " ".join([*argv, "--help"])}


@command(app, JSON)
def cli(runs: int = typer.Option(5, min=1, help="Fresh processes to time; the figure is their median.")) -> None:
    """Start time of `fedmarket --help` (median over fresh processes): the command line imports only what it runs."""
    session().show(help_start(runs), figures("command line"))
