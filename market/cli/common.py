"""What the party commands share: where the chain, storage and marketplace are, who signs, how errors read."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from eth_account.signers.local import LocalAccount

from market.cli.output import console, err_console
from market.errors import ConfigError, ContractRevert, FedMarketError

#: What to do about the reverts people meet most.
HINTS = {
    "WrongState": "check the project's state with `fedmarket owner status PID`",
    "NotOwner": "sign with the owner's key (--keystore or --dev-account)",
    "NotAggregator": "sign with the project's aggregator key",
    "NotTrainer": "join first: `fedmarket trainer join PID`",
    "AlreadyJoined": "this key already joined; `fedmarket trainer status PID` shows its slot",
    "AlreadySubmitted": "one submission per round; wait for the next round",
    "WindowClosed": "the submission window of this round has closed; wait for the next round",
    "DeadlinePassed": "the deadline passed; anyone may now call the timeout path",
    "DeadlineNotPassed": "wait until the deadline has passed",
    "NotEnoughTrainers": "wait for more trainers to join, or cancel after the join deadline",
    "WrongAmount": "send exactly the stake or bond the project asks for",
    "InvalidProof": "the round proof did not verify: the aggregator's keys or inputs do not match the verifier",
    "NothingToWithdraw": "there is nothing credited to this key in this project",
    "StakeLocked": "stakes are withdrawable once the project has finished or been cancelled",
}

KEYSTORE = typer.Option(None, "--keystore", help="Encrypted keystore (password from $FEDMARKET_PASSWORD or a prompt).")
DEV_ACCOUNT = typer.Option(None, "--dev-account", help="Development account N of the devnet (test chains only).")
RPC = typer.Option("", "--rpc", help="JSON-RPC URL (default: the devnet's).")
IPFS = typer.Option("", "--ipfs", help="IPFS RPC API multiaddr (default: the devnet's).")
MARKET = typer.Option("", "--market", help="FedMarket contract address (default: the devnet's).")
JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


@dataclass(frozen=True)
class Endpoint:
    """Where to talk to: chain RPC URL, IPFS API address and the marketplace contract."""

    rpc: str
    ipfs: str
    market: str


def endpoint(rpc: str, ipfs: str, market: str) -> Endpoint:
    """Fill what was not given from the devnet file; ConfigError says what is missing."""
    if rpc and ipfs and market:
        return Endpoint(rpc, ipfs, market)
    from market.dev.devnet import Devnet

    try:
        net = Devnet.load()
    except ConfigError:
        raise ConfigError("no devnet is up: start one with `fedmarket devnet up`, or pass --rpc, --ipfs and --market") from None
    return Endpoint(rpc or net.rpc_url, ipfs or net.ipfs_api, market or net.contracts["FedMarket"])


def connect(ep: Endpoint):  # noqa: ANN201 - (Marketplace, Storage)
    """The marketplace wrapper and the storage of an endpoint."""
    from market.chain.client import Chain
    from market.chain.marketplace import Marketplace
    from market.storage import IpfsStorage

    return Marketplace(Chain.connect(ep.rpc), ep.market), IpfsStorage(ep.ipfs)


def signer(keystore: Path | None, dev_account: int | None) -> LocalAccount:
    """The signing key named on the command line."""
    from market.chain.keys import resolve_signer

    return resolve_signer(keystore, dev_account)


@contextmanager
def failures() -> Iterator[None]:
    """Turn fedmarket errors into one red line, a hint and exit code 1 (2 for configuration errors)."""
    try:
        yield
    except ContractRevert as exc:
        err_console.print(f"[red]the contract refused:[/red] {exc.name}{exc.error_args}")
        if exc.name in HINTS:
            err_console.print(f"hint: {HINTS[exc.name]}")
        raise typer.Exit(1) from None
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except FedMarketError as exc:
        err_console.print(f"[red]{type(exc).__name__}:[/red] {exc}")
        raise typer.Exit(1) from None


def show(data: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """JSON for scripts, or the command's own rendering for people."""
    if as_json:
        print(json.dumps(data, sort_keys=True, default=str))
    else:
        render(data)


def done(message: str, as_json: bool, **data: Any) -> None:
    """Report a finished action."""
    if as_json:
        print(json.dumps({"ok": True, **data}, sort_keys=True, default=str))
    else:
        console.print(f"[green]✓[/green] {message}")
