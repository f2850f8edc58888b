"""`fedmarket bench ...`: benchmarks that print figures and ratios measured in the same run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from market.cli.output import console, figures
from market.cli.session import JSON, command, session

app = typer.Typer(help="Benchmarks: gas, adversaries, storage, aggregation, proving, command-line start.", no_args_is_help=True)


@command(app, JSON)
def gas() -> None:
    """Gas used by each marketplace entry point, measured on anvil."""
    from market.dev.gasbench import run

    session().show(run(), figures("gas used"))


@command(app, JSON)
def adversary(
    only: list[str] = typer.Option([], "--only", help="Run only this adversary (repeatable; default: all of them)."),
    rounds: int = typer.Option(2, min=1, max=5, help="Rounds per project (the digits example's per-round budget)."),
) -> None:
    """Issue 11's adversaries against the real contracts, each in its own project, against an honest baseline;
    exits 1 if an honest party loses or the owner or a trainer-side adversary gains."""
    from market.dev.adversary import run

    result = run(tuple(only), rounds)
    session().show(result, _adversary_table)
    if not result["ok"]:
        raise typer.Exit(1)


def _adversary_table(data: dict[str, Any]) -> None:
    """One row per adversary: the invariants' figures (exact wei when small, else ether) and the verdict."""
    def amount(wei: int) -> str:
        return "0" if wei == 0 else f"{wei} wei" if abs(wei) < 10**9 else f"{wei / 10**18:.4g} ETH"

    table = Table(title=f"adversaries: what honest trainers lost, what others gained ({data['rounds']} rounds)")
    for column in ("adversary", "state", "stake lost", "reward lost", "owner gain", "adv. gain", "ok"):
        table.add_column(column, justify="left" if column in ("adversary", "state") else "right")
    for name, r in data["adversary"].items():
        verdict = ("[green]yes[/green]" if r["ok"] else "[red]NO[/red]") + (" (capped)" if "aimed_share_capped" in r["checks"] else "")
        table.add_row(name.replace("_", " "), r["state"].lower(), amount(r["honest_stake_lost_wei"]),
                      amount(r["honest_reward_lost_wei"]), amount(r["owner_gain_wei"]), amount(r["adversary_gain_wei"]),
                      verdict)
    console.print(table)
    console.print("capped: v aimed at the adversary's own account takes at most a round's budget over ceil(n / 2) "
                  "(PROTOCOL §3's median cap); its honest trainers' loss is shown, not counted in the maxima")
    console.print(f"funds conserved in every project: {data['funds_conserved']}; {data['wall_seconds']:.0f} s")


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
    budget: float = typer.Option(2400.0, help="Seconds to spend; cases predicted to need more are predicted, not run."),
    predict: tuple[int, int] | None = typer.Option(None, "--predict", metavar="N D",
                                                   help="Print the cost model's prediction for n slots and a d-long "
                                                        "view (zk/costmodel.json), building nothing."),
    ram_mib: float | None = typer.Option(None, "--ram-mib", help="Memory a case may need (default: 70% of RAM)."),
    gas: bool = typer.Option(True, "--gas/--no-gas", help="Also measure postRound and verifier gas on anvil."),
    case: tuple[int, int] | None = typer.Option(None, "--case", metavar="N D",
                                                help="Measure only this case (built if not cached), leaving the grid "
                                                     "and zk/costmodel.json as they are."),
    bits: int = typer.Option(16, "--bits", min=2, max=32, help="quant_bits of the --case circuit (a project's "
                                                                 "quantization width; the grid is at 16)."),
) -> None:
    """Constraints, compile, setup, key load, witness and proving time, memory and gas of round proofs over
    n in {4, 8, 16, 32} and d in {650, 5130, 16384}, and the cost model fitted to them."""
    if bits != 16 and case is None:
        raise typer.BadParameter("--bits applies to one --case; the grid and its cost model are at 16 bits")
    if case is not None:
        from zk.bench import measure_case

        session().show(measure_case(*case, bits=bits), figures("round proof case"))
        return
    if predict is not None:
        from zk.costmodel import load_model
        from zk.costmodel import predict as predict_case

        session().show(predict_case(load_model(), *predict), figures("predicted round proof"))
        return
    from zk.bench import run

    session().show(run(budget_s=budget, ram_mib=ram_mib, gas=gas), figures("round proofs"))


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
