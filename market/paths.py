"""Where the repository's tools and artifacts live (node_modules, contracts, build cache, state).

FEDMARKET_NODE_MODULES, FEDMARKET_BUILD and FEDMARKET_HOME move them anywhere, inside the repository or not;
they are read once, at import, and made absolute against the working directory without resolving symlinks,
so a symlinked folder stays the path the user gave (tools that must see real paths resolve it themselves).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _from_env(name: str, default: Path) -> Path:
    """The folder named by environment variable `name` (`~` expanded, made absolute), else `default`."""
    value = os.environ.get(name)
    return Path(value).expanduser().absolute() if value else default


NODE_MODULES = _from_env("FEDMARKET_NODE_MODULES", ROOT / "node_modules")
CONTRACTS = ROOT / "contracts"
BUILD = _from_env("FEDMARKET_BUILD", ROOT / "build")
STATE = _from_env("FEDMARKET_HOME", ROOT / ".fedmarket")

