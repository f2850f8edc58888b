"""Where the repository's tools and artifacts live (node_modules, contracts, build cache)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = Path(os.environ.get("FEDMARKET_NODE_MODULES", ROOT / "node_modules"))
CONTRACTS = ROOT / "contracts"
BUILD = Path(os.environ.get("FEDMARKET_BUILD", ROOT / "build"))
STATE = Path(os.environ.get("FEDMARKET_HOME", ROOT / ".fedmarket"))


def node_bin(package_path: str) -> Path:
    """Path of a file inside node_modules, e.g. `node_bin('@foundry-rs/anvil-linux-amd64/bin/anvil')`."""
    return NODE_MODULES / package_path
