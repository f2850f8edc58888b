"""`fedmarket keys new|show`: encrypted keystores, the only way a real key reaches fedmarket."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import typer

from market.cli.common import JSON, done, failures

app = typer.Typer(help="Encrypted keystores (scrypt, eth-account): create one, or show its address.", no_args_is_help=True)


def _password(confirm: bool) -> str:
    """The keystore password: $FEDMARKET_PASSWORD, else a prompt (twice when creating)."""
    from market.chain.keys import PASSWORD_ENV
    from market.errors import ConfigError

    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    first = getpass.getpass("keystore password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


@app.command()
def new(path: Path = typer.Argument(..., help="Where to write the keystore (never overwritten)."), as_json: bool = JSON) -> None:
    """Create a new random account in an encrypted keystore."""
    from market.chain.keys import create_keystore

    with failures():
        account = create_keystore(path, _password(confirm=True))
        done(f"new account {account.address} in {path}", as_json, address=account.address, keystore=str(path))


@app.command()
def show(path: Path = typer.Argument(..., help="A keystore file."), as_json: bool = JSON) -> None:
    """Decrypt a keystore and print its address (checks the password)."""
    from market.chain.keys import load_keystore

    with failures():
        account = load_keystore(path, _password(confirm=False))
        done(f"{path}: {account.address}", as_json, address=account.address, keystore=str(path))
