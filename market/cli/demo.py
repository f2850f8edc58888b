"""`fedmarket demo`: a whole marketplace run with real training, real proofs and settlement."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from market.cli.output import console, err_console
from market.errors import FedMarketError

ETHER = 10**18


def _round_table(result, run) -> Table:  # noqa: ANN001 - RoundResult, DemoRun
    """One rich table for a posted round."""
    table = Table(title=f"round {result.round}: val. accuracy {100 * result.accuracy:.1f}%, "
                        f"postRound gas {result.gas:,}, proving {result.prove_s:.1f} s")
    for col in ("slot", "trainer", "role", "flag", "score", "reason"):
        table.add_column(col)
    for i, trainer in enumerate(result.trainers):
        role = f"attacker ({run.attack_of[trainer]})" if trainer in run.attackers else "honest"
        flag = "absent" if i not in result.submitted else ("accepted", "OUTLIER", "INVALID")[result.flags[i]]
        table.add_row(str(i), trainer[:10] + "…", role, flag, str(result.scores[i]), result.reasons.get(trainer, ""))
    return table


def demo_command(
    trainers: int = typer.Option(8, help="Number of trainers."),
    attackers: int = typer.Option(3, help="How many of them attack."),
    attack: list[str] = typer.Option(["sign_flip", "scaling", "free_rider_copy"], help="Attacks, assigned to attackers in turn."),
    rounds: int = typer.Option(5, help="Training rounds."),
    task: str = typer.Option("digits-softmax", help="Built-in task."),
    devnet: bool = typer.Option(False, "--devnet", help="Run against the devnet (anvil + IPFS), starting it if needed."),
    rpc: str = typer.Option("", help="Run against this JSON-RPC URL (with --ipfs)."),
    ipfs: str = typer.Option("", help="IPFS RPC API multiaddr, e.g. /ip4/127.0.0.1/tcp/5001/http."),
    out: Path = typer.Option(Path("build/demo"), help="Where the report (markdown + PNG) goes."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Deploy, create and fund a project, train it with attackers among the trainers, prove and settle."""
    from market.chain.client import Chain
    from market.dev.demo import DemoConfig, run_demo
    from market.dev.report import write_report
    from market.storage import IpfsStorage

    try:
        cfg = DemoConfig(trainers=trainers, attackers=attackers, attacks=tuple(attack), rounds=rounds, task=task, out=out)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    chain = storage = None
    if devnet:
        from market.dev import devnet as dn

        net = dn.up()
        chain, storage = Chain.connect(net.rpc_url), IpfsStorage(net.ipfs_api)
    elif rpc or ipfs:
        if not (rpc and ipfs):
            err_console.print("[red]--rpc and --ipfs go together[/red]")
            raise typer.Exit(2)
        chain, storage = Chain.connect(rpc), IpfsStorage(ipfs)

    def show(result, run) -> None:  # noqa: ANN001
        console.print(_round_table(result, run))

    try:
        if as_json:
            run = run_demo(cfg, chain=chain, storage=storage)
        else:
            with console.status("starting") as status:
                run = run_demo(cfg, chain=chain, storage=storage, on_round=show, on_phase=status.update)
    except FedMarketError as exc:
        err_console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from None
    report = write_report(run, out)
    figures = {**run.figures, "report": str(report)}
    (out / "demo.json").write_text(json.dumps(figures, indent=1, default=str))
    if as_json:
        print(json.dumps(figures, sort_keys=True, default=str))
    else:
        table = Table(title="final balances (ether)")
        for col in ("party", "paid in", "taken out"):
            table.add_column(col)
        for party, money in run.balances.items():
            table.add_row(party, f"{money['in'] / ETHER:.6f}", f"{money['out'] / ETHER:.6f}")
        console.print(table)
        for name, ok in run.checks.items():
            console.print(f"{'[green]PASS' if ok else '[red]FAIL'}[/] {name}")
        console.print(f"report: {report}")
    if not all(run.checks.values()):
        raise typer.Exit(1)
