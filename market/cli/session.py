"""One CLI session: the shared options, declared once on the root callback, and what is built from them.

`fedmarket --rpc URL owner status 1` and `fedmarket owner status 1 --rpc URL` both work: the root
callback takes the shared options before the command, and every `SessionCommand` takes the ones it
uses after its own arguments too, borrowing the root's declarations. The endpoint, the marketplace,
the storage and the signer are made on first use, so that `--help` and `keys show` import neither
web3 nor torch. What the options leave out comes from `--deployment FILE` (RPC URL and marketplace, and
the chain id the node must answer with), else from the devnet file. `RootGroup` is the one place a
`FedMarketError` becomes a message and an exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer._click import Context, Parameter  # typer vendors click: its command classes take these
from typer._click.globals import get_current_context
from typer.core import TyperCommand, TyperGroup

from market.cli.output import Render, err_console, show
from market.errors import ConfigError, ContractRevert, FedMarketError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from market.chain.deployment import Deployment
    from market.chain.marketplace import Marketplace
    from market.storage import IpfsStorage

#: The shared options a command takes after its arguments (names of the root callback's parameters).
CHAIN = ("rpc", "ipfs", "market", "deployment")
SIGNER = ("keystore", "dev_account")
JSON = "as_json"


@dataclass(frozen=True)
class Endpoint:
    """Where to talk to: chain RPC URL, IPFS API address and the marketplace contract."""

    rpc: str
    ipfs: str
    market: str


@dataclass
class Session:
    """The shared options of one command line, and the connections and signer built from them on first use."""

    rpc: str = ""
    ipfs: str = ""
    market: str = ""
    deployment: Path | None = None
    keystore: Path | None = None
    dev_account: int | None = None
    as_json: bool = False

    @cached_property
    def deployed(self) -> Deployment | None:
        """The deployment file named by --deployment, read once (None without the option)."""
        from market.chain.deployment import Deployment

        return None if self.deployment is None else Deployment.load(self.deployment)

    @cached_property
    def endpoint(self) -> Endpoint:
        """The options, with what was not given filled from the deployment file, then from the devnet file;
        ConfigError says what is missing."""
        rpc, ipfs, market = self.rpc, self.ipfs, self.market
        if self.deployed is not None:
            rpc, market = rpc or self.deployed.rpc_url, market or self.deployed.market
        if rpc and ipfs and market:
            return Endpoint(rpc, ipfs, market)
        from market.dev.devnet import Devnet

        try:
            net = Devnet.load()
        except ConfigError:
            if self.deployed is not None:
                raise ConfigError("no devnet is up to lend its IPFS node: pass --ipfs with --deployment") from None
            raise ConfigError("no devnet is up: start one with `fedmarket devnet up`, or pass --rpc, --ipfs and --market") from None
        return Endpoint(rpc or net.rpc_url, ipfs or net.ipfs_api, market or net.contracts["FedMarket"])

    @cached_property
    def marketplace(self) -> Marketplace:
        """The marketplace contract at the endpoint, on the deployment file's chain when one is given."""
        from market.chain.client import Chain, checksummed
        from market.chain.marketplace import Marketplace

        address = checksummed(self.endpoint.market, "the marketplace (--market)")
        chain = Chain.connect(self.endpoint.rpc)
        if self.deployed is not None:
            self.deployed.check_chain(chain)
        return Marketplace(chain, address)

    @cached_property
    def storage(self) -> IpfsStorage:
        """The IPFS node at the endpoint."""
        from market.storage import IpfsStorage

        return IpfsStorage(self.endpoint.ipfs)

    @cached_property
    def signer(self) -> LocalAccount:
        """The signing key named by --keystore or --dev-account (exactly one)."""
        from market.chain.keys import resolve_signer

        return resolve_signer(self.keystore, self.dev_account)

    def show(self, data: dict[str, Any], people: str | Render) -> None:
        """Print a command's result: one JSON object under --json, else `people` (see `output.show`)."""
        show(data, people, self.as_json)


def session() -> Session:
    """The session of the command now running."""
    return get_current_context().ensure_object(Session)


def open_session(
    ctx: typer.Context,
    rpc: str = typer.Option("", "--rpc", help="JSON-RPC URL of the chain (default: the deployment's, else the devnet's; "
                                              "for `demo`, an embedded chain)."),
    ipfs: str = typer.Option("", "--ipfs", help="IPFS RPC API multiaddr, e.g. /ip4/127.0.0.1/tcp/5001/http (default: the devnet's)."),
    market: str = typer.Option("", "--market", help="FedMarket contract address (default: the deployment's, else the devnet's)."),
    deployment: Path | None = typer.Option(None, "--deployment", help="A file `fedmarket deploy` wrote: RPC URL, marketplace and "
                                            "chain id come from it (the node must answer with that chain id)."),
    keystore: Path | None = typer.Option(None, "--keystore", help="Encrypted keystore (password from $FEDMARKET_PASSWORD or a prompt)."),
    dev_account: int | None = typer.Option(None, "--dev-account", help="Development account N of the devnet (test chains only)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """The root callback: the shared options, declared once, make the session."""
    ctx.obj = Session(rpc, ipfs, market, deployment, keystore, dev_account, as_json)


class SharedOptions:
    """Mixin for a click command or group that also takes, after its own arguments, the shared options named in
    `shared`, borrowing the root callback's declarations and moving what is given into the session."""

    shared: frozenset[str] = frozenset()
    params: list[Parameter]

    def _shared_params(self, ctx: Context) -> list[Parameter]:
        """The root callback's declarations of this command's shared options."""
        return [p for p in ctx.find_root().command.params if p.name in self.shared]

    def get_params(self, ctx: Context) -> list[Parameter]:
        """Own parameters, then the shared ones (so the parser and --help see them), then --help."""
        params: list[Parameter] = super().get_params(ctx)  # type: ignore[misc]
        return [*params[: len(self.params)], *self._shared_params(ctx), *params[len(self.params) :]]

    def invoke(self, ctx: Context) -> Any:
        """Move the shared options given here into the session, then run the command."""
        current = ctx.ensure_object(Session)
        for param in self._shared_params(ctx):
            value = ctx.params.pop(str(param.name))
            if value != param.default:
                setattr(current, str(param.name), value)
        return super().invoke(ctx)  # type: ignore[misc]


class SessionCommand(SharedOptions, TyperCommand):
    """A command that also takes, after its own arguments, the shared options named in `shared`."""


class SessionGroup(SharedOptions, TyperGroup):
    """A group that takes the shared options named in `shared` after its name too (e.g. `projects --json`)."""


F = TypeVar("F", bound=Callable[..., Any])


def command(app: typer.Typer, *shared: str, name: str | None = None) -> Callable[[F], F]:
    """`app.command` for a command taking the named shared options (CHAIN, SIGNER, JSON) after its arguments."""
    cls = type("SessionCommand", (SessionCommand,), {"shared": frozenset(shared)})
    return app.command(name, cls=cls)


def explain(exc: FedMarketError) -> tuple[int, list[str]]:
    """The exit code and the lines telling a user what failed: 2 for bad input, 1 for the rest; a revert's hint."""
    if isinstance(exc, ContractRevert):
        return 1, [f"the contract refused: {exc}", *([f"hint: {exc.hint}"] if exc.hint else [])]
    if isinstance(exc, ConfigError):
        return 2, [str(exc)]
    return 1, [f"{type(exc).__name__}: {exc}"]


class RootGroup(TyperGroup):
    """The `fedmarket` group: every FedMarketError any command raises ends here as a message and an exit code."""

    def invoke(self, ctx: Context) -> Any:
        """Run the command line; a FedMarketError becomes red lines on stderr and exit code 2 or 1."""
        try:
            return super().invoke(ctx)
        except FedMarketError as exc:
            code, lines = explain(exc)
            err_console.print(lines[0], style="red", markup=False, highlight=False)
            for line in lines[1:]:
                err_console.print(line, markup=False, highlight=False)
            raise typer.Exit(code) from None
        except OSError as exc:  # the file system refused a path the user gave (unwritable, a folder, no space)
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"{where}{exc.strerror or exc}", style="red", markup=False, highlight=False)
            raise typer.Exit(1) from None
