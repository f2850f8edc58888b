"""Signing keys: encrypted eth-account keystores, or the devnet's development accounts; never a raw key on the command line."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from market.errors import ConfigError

PASSWORD_ENV = "FEDMARKET_PASSWORD"


def create_keystore(path: Path, password: str, account: LocalAccount | None = None) -> LocalAccount:
    """Write an encrypted keystore (scrypt) for `account`, or for a new random one."""
    account = account or Account.create()
    if path.exists():
        raise ConfigError(f"refusing to overwrite the keystore at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(account.key, password)))
    path.chmod(0o600)
    return account


def load_keystore(path: Path, password: str | None = None) -> LocalAccount:
    """Decrypt a keystore; the password comes from the argument, $FEDMARKET_PASSWORD or a prompt."""
    if not path.exists():
        raise ConfigError(f"no keystore at {path}")
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise ConfigError(f"{path} is not a keystore (not JSON)") from None
    if not isinstance(data, dict) or "version" not in data or not {"crypto", "Crypto"} & data.keys():
        raise ConfigError(f"{path} is not a keystore (JSON without 'version' and 'crypto'; "
                          "`fedmarket keys new` writes one)")
    if password is None:
        password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass(f"password for {path}: ")
    try:
        key = Account.decrypt(data, password)
    except (KeyError, TypeError) as exc:  # a field missing or of the wrong kind
        raise ConfigError(f"{path} is a malformed keystore ({type(exc).__name__}: {exc})") from None
    except ValueError:
        raise ConfigError(f"wrong password for the keystore at {path}") from None
    return Account.from_key(key)


def dev_account(index: int) -> LocalAccount:
    """Development account `index` of the devnet (well-known keys: test chains only)."""
    from market.chain.client import dev_accounts

    if not 0 <= index < 10:
        raise ConfigError(f"development accounts are numbered 0..9, got {index}")
    return dev_accounts(index + 1)[index]


def resolve_signer(keystore: Path | None, dev_index: int | None) -> LocalAccount:
    """The signer named on the command line: exactly one of a keystore or a development account."""
    if (keystore is None) == (dev_index is None):
        raise ConfigError("name exactly one signer: --keystore PATH or --dev-account N")
    if keystore is not None:
        return load_keystore(keystore)
    assert dev_index is not None
    return dev_account(dev_index)
