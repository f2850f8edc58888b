"""`fedmarket devnet up|down|status`: a local chain and IPFS node with the contracts deployed."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import JSON, command, session
from market.dev import devnet

app = typer.Typer(help="A local devnet: anvil + js-ipfs on 127.0.0.1, contracts deployed.", no_args_is_help=True)


def _render(info: dict[str, Any]) -> None:
    """Devnet information as a table."""
    table = Table(title="fedmarket devnet", show_header=False)
    for key in ("rpc_url", "chain_id", "anvil_pid", "anvil_running", "ipfs_api", "ipfs_pid", "ipfs_running"):
        if key in info:
            table.add_row(key, str(info[key]))
    for name, address in info.get("contracts", {}).items():
        table.add_row(f"contract {name}", address)
    accounts = info.get("accounts", [])
    if accounts:
        table.add_row("dev accounts", f"{len(accounts)} funded (keys in {devnet.DEVNET_FILE}; development only)")
        table.add_row("account 0", accounts[0]["address"])
    console.print(table)


@command(app, JSON)
def up(
    rpc_port: int = typer.Option(devnet.DEFAULT_RPC_PORT, help="anvil JSON-RPC port on 127.0.0.1."),
    ipfs_port: int = typer.Option(devnet.DEFAULT_IPFS_API_PORT, help="IPFS RPC API port on 127.0.0.1."),
    ipfs_api: str = typer.Option("", help="Use this IPFS node (e.g. your Kubo: /ip4/127.0.0.1/tcp/5001/http) instead of starting js-ipfs."),
) -> None:
    """Start anvil and the IPFS node and deploy the contracts (does nothing if already up)."""
    s = session()
    was_up = devnet.is_up()
    devnet.up(rpc_port=rpc_port, ipfs_api_port=ipfs_port, ipfs_api=ipfs_api or None)
    if was_up and not s.as_json:
        console.print("[yellow]devnet already up[/yellow]")
    s.show(devnet.status(), _render)


@command(app, JSON)
def down() -> None:
    """Stop what `devnet up` started, by pid, and remove the devnet file."""
    stopped = devnet.down()
    session().show({"stopped": stopped}, lambda d: console.print("stopped: " + (", ".join(d["stopped"]) or "nothing was running")))


@command(app, JSON)
def status() -> None:
    """Show the devnet's URL, addresses, accounts and whether its processes run (exit code 3 if anvil does not answer)."""
    info = devnet.status()
    session().show(info, _render)
    if not info["anvil_running"]:
        raise typer.Exit(3)
