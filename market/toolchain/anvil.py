"""Start and stop anvil (from the npm package @foundry-rs/anvil) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from market.errors import ToolchainError
from market.paths import NODE_MODULES


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    """True if a JSON-RPC node answers eth_chainId at `url`."""
    try:
        response = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return response.status_code == 200 and "result" in response.json()
    except (httpx.HTTPError, ValueError):
        return False


def start_anvil(port: int | None = None, log: Path | None = None, chain_id: int = 31337, wait: float = 20.0) -> AnvilHandle:
    """Start anvil in its own process group and wait until it answers."""
    port = port or free_port()
    log = log or Path(f"/tmp/fedmarket-anvil-{port}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [
        str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id),
        "--gas-limit", "30000000", "--code-size-limit", "49152", "--silent",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    handle = AnvilHandle(proc.pid, port, log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolchainError(f"anvil exited with code {proc.returncode}; see {log}")
        if rpc_ready(handle.url, 0.5):
            return handle
        time.sleep(0.05)
    stop_process(proc.pid)
    raise ToolchainError(f"anvil did not answer on {handle.url} within {wait} s; see {log}")


def process_alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True


def stop_process(pid: int, timeout: float = 10.0) -> None:
    """Stop a process group started with start_new_session: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not process_alive(pid):
                return
            time.sleep(0.05)
