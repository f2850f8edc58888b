"""`fedmarket keys new|show`: encrypted keystores, the only way a real key reaches fedmarket."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import typer

from market.cli.session import JSON, command, session
from market.errors import ConfigError

app = typer.Typer(help="Encrypted keystores (scrypt, eth-account): create one, or show its address.", no_args_is_help=True)


def _password(confirm: bool) -> str:
    """The keystore password: $FEDMARKET_PASSWORD, else a prompt (twice when creating)."""
    from market.chain.keys import PASSWORD_ENV

    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    first = getpass.getpass("keystore password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


@command(app, JSON)
def new(path: Path = typer.Argument(..., help="Where to write the keystore (never overwritten).")) -> None:
    """Create a new random account in an encrypted keystore."""
    from market.chain.keys import create_keystore

    account = create_keystore(path, _password(confirm=True))
    session().show({"address": account.address, "keystore": str(path)}, f"new account {account.address} in {path}")


@command(app, JSON)
def show(path: Path = typer.Argument(..., help="A keystore file.")) -> None:
    """Decrypt a keystore and print its address (checks the password)."""
    from market.chain.keys import load_keystore

    account = load_keystore(path, _password(confirm=False))
    session().show({"address": account.address, "keystore": str(path)}, f"{path}: {account.address}")
