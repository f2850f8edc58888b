"""The `fedmarket` command line: one typer app, one sub-app per party or tool, one session and one error handler."""

from __future__ import annotations

import typer

from market.cli import aggregator, bench, devnet, keys, owner, projects, trainer, zk
from market.cli.audit import audit_command
from market.cli.dashboard import dashboard_command
from market.cli.demo import demo_command
from market.cli.deploy import deploy_command
from market.cli.evaluate import eval_command
from market.cli.session import CHAIN, JSON, SIGNER, RootGroup, command, open_session

app = typer.Typer(
    name="fedmarket",
    help="A federated-learning marketplace on EVM chains with proof-of-contribution rewards.",
    cls=RootGroup,
    callback=open_session,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(owner.app, name="owner")
app.add_typer(trainer.app, name="trainer")
app.add_typer(aggregator.app, name="aggregator")
app.add_typer(keys.app, name="keys")
app.add_typer(devnet.app, name="devnet")
app.add_typer(bench.app, name="bench")
app.add_typer(zk.app, name="zk")
app.add_typer(projects.app, name="projects")
command(app, JSON, name="eval")(eval_command)
command(app, *CHAIN[:2], JSON, name="demo")(demo_command)
command(app, *CHAIN, JSON, name="audit")(audit_command)
command(app, *CHAIN, name="dashboard")(dashboard_command)
command(app, *CHAIN[:1], *SIGNER, JSON, name="deploy")(deploy_command)
