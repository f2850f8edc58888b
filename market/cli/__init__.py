"""The `fedmarket` command line: one typer app, one sub-app per party or tool."""

from __future__ import annotations

import typer

from market.cli import bench, devnet
from market.cli.evaluate import eval_command

app = typer.Typer(
    name="fedmarket",
    help="A federated-learning marketplace on EVM chains with proof-of-contribution rewards.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(devnet.app, name="devnet")
app.add_typer(bench.app, name="bench")
app.command("eval")(eval_command)
