"""`fedmarket aggregator ...`: bond for a project and run the round-processing daemon."""

from __future__ import annotations

import typer

from market.cli.output import console
from market.cli.session import CHAIN, JSON, SIGNER, command, session

app = typer.Typer(help="The aggregator: bond, then open, prove and post every round.", no_args_is_help=True)


@command(app, *CHAIN, *SIGNER, JSON)
def register(pid: int) -> None:
    """Deposit the aggregator's bond, once the project's verifier is the one the keys installed here make and g(0)'s
    proof view matches its on-chain commitment (else no round could be proven and the bond would be lost): the
    project opens for trainers."""
    from market.parties.context import check_initial_model, circuit_params, load_context
    from zk.keycheck import check_verifier

    s = session()
    ctx = load_context(s.marketplace, s.storage, pid)
    check_verifier(s.marketplace.chain, ctx.params.verifier, circuit_params(ctx))
    check_initial_model(ctx)
    s.marketplace.bond(pid, s.signer)
    s.show({"pid": pid}, f"bonded project {pid}; it is open for trainers")


@command(app, *CHAIN, *SIGNER)
def run(pid: int, poll: float = typer.Option(1.0, help="Seconds between looks at the chain.")) -> None:
    """Follow the chain: open each round, and when its window closes (or all submitted) validate, score, prove and post.

    State comes from the chain and storage only: after a crash or restart it carries on where
    the chain is, without losing a round or posting one twice.
    """
    from aggregator.node import AggregatorNode
    from market.parties.context import load_context

    s = session()
    node = AggregatorNode(load_context(s.marketplace, s.storage, pid), s.signer)
    node.run(poll_s=poll, log=lambda line: console.print(f"[bold]aggregator[/bold] {line}"))
