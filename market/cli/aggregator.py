"""`fedmarket aggregator ...`: bond for a project and run the round-processing daemon."""

from __future__ import annotations

from pathlib import Path

import typer

from market.cli.common import DEV_ACCOUNT, IPFS, JSON, KEYSTORE, MARKET, RPC, connect, done, endpoint, failures, signer
from market.cli.output import console

app = typer.Typer(help="The aggregator: bond, then open, prove and post every round.", no_args_is_help=True)


@app.command()
def register(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
             rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Deposit the aggregator's bond: the project opens for trainers."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        mk.bond(pid, signer(keystore, dev_account))
        done(f"bonded project {pid}; it is open for trainers", as_json, pid=pid)


@app.command()
def run(
    pid: int,
    poll: float = typer.Option(1.0, help="Seconds between looks at the chain."),
    keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
    rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET,
) -> None:
    """Follow the chain: open each round, and when its window closes (or all submitted) validate, score, prove and post.

    State comes from the chain and storage only: after a crash or restart it carries on where
    the chain is, without losing a round or posting one twice.
    """
    from aggregator.node import AggregatorNode
    from market.parties.context import load_context

    with failures():
        mk, storage = connect(endpoint(rpc, ipfs, market))
        node = AggregatorNode(load_context(mk, storage, pid), signer(keystore, dev_account))
        node.run(poll_s=poll, log=lambda line: console.print(f"[bold]aggregator[/bold] {line}"))
