"""Start and stop anvil (from the npm package @foundry-rs/anvil) on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from market.errors import ToolchainError
from market.paths import NODE_MODULES
from market.toolchain.process import free_port, spawn, stop_process, wait_ready


@dataclass(frozen=True)
class AnvilHandle:
    """A running anvil: its pid, port and log file."""

    pid: int
    port: int
    log: Path

    @property
    def url(self) -> str:
        """The JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"


def anvil_binary() -> Path:
    """The anvil executable shipped in the npm package's platform-specific optional dependency."""
    for candidate in sorted(NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return candidate
    raise ToolchainError(f"anvil not found under {NODE_MODULES}/@foundry-rs: run scripts/bootstrap.sh")


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    """True if a JSON-RPC node answers eth_chainId at `url`."""
    try:
        response = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return response.status_code == 200 and "result" in response.json()
    except (httpx.HTTPError, ValueError):
        return False


def start_anvil(port: int | None = None, log: Path | None = None, chain_id: int = 31337, wait: float = 20.0,
                hardfork: str | None = None) -> AnvilHandle:
    """Start anvil in its own process group and wait until it answers; `hardfork` (e.g. "shanghai") runs an older
    EVM than anvil's latest, as some chains still do."""
    port = port or free_port()
    log = log or Path(f"/tmp/fedmarket-anvil-{port}.log")
    args = [
        str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id),
        "--gas-limit", "30000000", "--code-size-limit", "49152", "--silent", *(["--hardfork", hardfork] if hardfork else []),
    ]
    handle = AnvilHandle(spawn(args, log).pid, port, log)
    try:
        wait_ready("anvil", lambda: rpc_ready(handle.url, 0.5), handle.pid, log, wait)
    except BaseException:
        stop_process(handle.pid)
        raise
    return handle


@contextmanager
def fresh_anvil() -> Iterator[AnvilHandle]:
    """A throwaway anvil for one run (a bench), stopped on the way out whatever happens."""
    handle = start_anvil()
    try:
        yield handle
    finally:
        stop_process(handle.pid)
