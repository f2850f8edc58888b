"""`fedmarket devnet up|down|status`: a local chain and IPFS node with the contracts deployed."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from market.cli.output import console, err_console
from market.dev import devnet
from market.errors import FedMarketError

app = typer.Typer(help="A local devnet: anvil + js-ipfs on 127.0.0.1, contracts deployed.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print one JSON object instead of a table.")


def _show(info: dict[str, object], as_json: bool) -> None:
    """Print devnet information for people or scripts."""
    if as_json:
        print(json.dumps(info, sort_keys=True))
        return
    table = Table(title="fedmarket devnet", show_header=False)
    for key in ("rpc_url", "chain_id", "anvil_pid", "anvil_running", "ipfs_api", "ipfs_pid", "ipfs_running"):
        if key in info:
            table.add_row(key, str(info[key]))
    for name, address in dict(info.get("contracts", {})).items():  # type: ignore[call-overload]
        table.add_row(f"contract {name}", address)
    accounts = list(info.get("accounts", []))  # type: ignore[call-overload]
    if accounts:
        table.add_row("dev accounts", f"{len(accounts)} funded (keys in {devnet.DEVNET_FILE}; development only)")
        table.add_row("account 0", accounts[0]["address"])
    console.print(table)


@app.command()
def up(
    rpc_port: int = typer.Option(devnet.DEFAULT_RPC_PORT, help="anvil JSON-RPC port on 127.0.0.1."),
    ipfs_port: int = typer.Option(devnet.DEFAULT_IPFS_API_PORT, help="IPFS RPC API port on 127.0.0.1."),
    ipfs_api: str = typer.Option("", help="Use this IPFS node (e.g. your Kubo: /ip4/127.0.0.1/tcp/5001/http) instead of starting js-ipfs."),
    as_json: bool = JSON,
) -> None:
    """Start anvil and the IPFS node and deploy the contracts (does nothing if already up)."""
    was_up = devnet.is_up()
    try:
        devnet.up(rpc_port=rpc_port, ipfs_api_port=ipfs_port, ipfs_api=ipfs_api or None)
    except FedMarketError as exc:
        err_console.print(f"[red]devnet up failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if was_up and not as_json:
        console.print("[yellow]devnet already up[/yellow]")
    _show(devnet.status(), as_json)


@app.command()
def down(as_json: bool = JSON) -> None:
    """Stop what `devnet up` started, by pid, and remove the devnet file."""
    try:
        stopped = devnet.down()
    except FedMarketError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"stopped": stopped}))
    else:
        console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(as_json: bool = JSON) -> None:
    """Show the devnet's URL, addresses, accounts and whether its processes run."""
    try:
        info = devnet.status()
    except FedMarketError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _show(info, as_json)
    if not info["anvil_running"]:
        raise typer.Exit(3)
