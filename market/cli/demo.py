"""`fedmarket demo`: a whole marketplace run with real training, real proofs and settlement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import session
from market.errors import ConfigError

if TYPE_CHECKING:
    from aggregator.node import RoundResult
    from market.dev.demo import DemoRun


def _round_table(result: RoundResult, run: DemoRun) -> Table:
    """One rich table for a posted round."""
    table = Table(title=f"round {result.round}: val. accuracy {100 * result.accuracy:.1f}%, "
                        f"postRound gas {result.gas:,}, proving {result.prove_s:.1f} s")
    for col in ("slot", "trainer", "role", "flag", "score", "reason"):
        table.add_column(col)
    for i, trainer in enumerate(result.trainers):
        role = f"attacker ({run.attack_of[trainer]})" if trainer in run.attackers else "honest"
        flag = "absent" if i not in result.submitted else ("accepted", "SLASHED", "INVALID", "excluded")[result.flags[i]]
        table.add_row(str(i), trainer[:10] + "…", role, flag, str(result.scores[i]), result.reasons.get(trainer, ""))
    return table


def _render_outcome(run: DemoRun, report: Path) -> None:
    """Final balances, the checks and where the report is."""
    from market.dev.report import ether

    table = Table(title="final balances (ether)")
    for col in ("party", "paid in", "taken out"):
        table.add_column(col)
    for party, money in run.balances.items():
        table.add_row(party, ether(money["in"]), ether(money["out"]))
    console.print(table)
    for name, ok in run.checks.items():
        console.print(f"{'[green]PASS' if ok else '[red]FAIL'}[/] {name}")
    console.print(f"report: {report}")


def demo_command(
    trainers: int = typer.Option(8, help="Number of trainers."),
    attackers: int = typer.Option(3, help="How many of them attack."),
    attack: list[str] = typer.Option(["sign_flip", "scaling", "free_rider_zero"], help="Attacks, assigned to attackers in turn."),
    rounds: int = typer.Option(5, help="Training rounds."),
    task: str = typer.Option("digits-softmax", help="Built-in task."),
    devnet: bool = typer.Option(False, "--devnet", help="Run against the devnet (anvil + IPFS), starting it if needed."),
    flower: bool = typer.Option(False, "--flower", help="Every honest trainer trains through a Flower NumPyClient."),
    out: Path = typer.Option(Path("build/demo"), help="Where the report (markdown + PNG) goes."),
) -> None:
    """Deploy, create and fund a project, train it with attackers among the trainers, prove and settle.

    It runs on an embedded chain and content store, or with --devnet on the devnet, or on the
    chain at --rpc with the IPFS node at --ipfs.
    """
    from market.chain.client import Chain
    from market.dev.demo import DemoConfig, run_demo
    from market.dev.report import write_report
    from market.storage import IpfsStorage

    s = session()
    try:
        cfg = DemoConfig(trainers=trainers, attackers=attackers, attacks=tuple(attack), rounds=rounds, task=task, out=out,
                         flower=flower)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    chain = storage = None
    if devnet:
        from market.dev import devnet as dn

        net = dn.up()
        chain, storage = Chain.connect(net.rpc_url), IpfsStorage(net.ipfs_api)
    elif s.rpc or s.ipfs:
        if not (s.rpc and s.ipfs):
            raise ConfigError("--rpc and --ipfs go together")
        chain, storage = Chain.connect(s.rpc), IpfsStorage(s.ipfs)

    def on_round(result: RoundResult, run: DemoRun) -> None:
        console.print(_round_table(result, run))

    if s.as_json:
        run = run_demo(cfg, chain=chain, storage=storage)
    else:
        with console.status("starting") as status:
            run = run_demo(cfg, chain=chain, storage=storage, on_round=on_round, on_phase=status.update)
    report = write_report(run, out)
    figures: dict[str, Any] = {**run.figures, "report": str(report)}
    (out / "demo.json").write_text(json.dumps(figures, indent=1, default=str))
    s.show(figures, lambda _: _render_outcome(run, report))
    if not all(run.checks.values()):
        raise typer.Exit(1)
