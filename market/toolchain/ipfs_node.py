"""The devnet IPFS node: npm js-ipfs 0.66.1, offline, API and gateway on loopback; started and stopped by pid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from market.errors import ToolchainError
from market.paths import NODE_MODULES
from market.toolchain.process import free_port, port_free, process_alive, spawn, started_at, stop_process, wait_ready

_RECORD = "node.json"


@dataclass(frozen=True)
class NodeHandle:
    """A started node: its process (pid + creation time, against pid reuse), repo and loopback ports."""

    pid: int
    create_time: float
    repo: str
    api_port: int
    gateway_port: int

    @property
    def api_addr(self) -> str:
        """The RPC API as a multiaddr (what IpfsStorage and ipfshttpclient take)."""
        return f"/ip4/127.0.0.1/tcp/{self.api_port}/http"

    @property
    def api_url(self) -> str:
        """The RPC API as an http URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log(self) -> Path:
        """The daemon's log, beside its repo."""
        return Path(self.repo).parent / "daemon.log"

    def alive(self) -> bool:
        """Whether the node's process still runs (same pid and creation time, not a zombie)."""
        return process_alive(self.pid, self.create_time)


def _node_dir(state_dir: str | os.PathLike[str]) -> Path:
    """Where the node's repo, log and handle live under the devnet state dir."""
    return Path(state_dir) / "ipfs"


def _command(*args: str) -> list[str]:
    """`node <js-ipfs cli> args...`; ToolchainError if node or the npm package is missing."""
    node, cli = shutil.which("node"), NODE_MODULES / "ipfs" / "src" / "cli.js"
    if node is None or not cli.is_file():
        raise ToolchainError(f"js-ipfs needs node and {cli}: run scripts/bootstrap.sh")
    return [node, str(cli), *args]


def api_answers(api_url: str, timeout: float = 2.0) -> bool:
    """Whether an IPFS RPC API answers `version` at `api_url`."""
    try:
        return httpx.post(f"{api_url}/api/v0/version", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def read_handle(state_dir: str | os.PathLike[str]) -> NodeHandle | None:
    """The handle recorded by the last start under `state_dir`, if any."""
    try:
        return NodeHandle(**json.loads((_node_dir(state_dir) / _RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def is_running(state_dir: str | os.PathLike[str]) -> bool:
    """Whether the node recorded under `state_dir` runs and its API answers."""
    handle = read_handle(state_dir)
    return handle is not None and handle.alive() and api_answers(handle.api_url)


def _configure(repo: Path, api_port: int, gateway_port: int) -> None:
    """Create the repo if needed, then make it offline (no bootstrap, MDNS, routing or swarm) on loopback ports."""
    env = {**os.environ, "IPFS_PATH": str(repo)}
    if not (repo / "config").is_file():
        res = subprocess.run(_command("init", "--emptyRepo"), env=env, capture_output=True, timeout=120, check=False)
        if res.returncode != 0:
            raise ToolchainError(f"jsipfs init failed: {res.stderr.decode(errors='replace')[-2000:]}")
    cfg = json.loads((repo / "config").read_text())
    cfg["Addresses"] = {
        "API": f"/ip4/127.0.0.1/tcp/{api_port}", "Gateway": f"/ip4/127.0.0.1/tcp/{gateway_port}", "RPC": "",
        "Swarm": [], "Announce": [], "NoAnnounce": [], "Delegates": [],
    }
    cfg["Bootstrap"] = []
    cfg["Discovery"] = {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}}
    cfg["Routing"] = {"Type": "none"}
    (repo / "config").write_text(json.dumps(cfg, indent=2))
    # A node killed hard leaves its lock and API file behind; no node of ours runs on this repo now.
    shutil.rmtree(repo / "repo.lock", ignore_errors=True)
    (repo / "api").unlink(missing_ok=True)


def _wait_api(handle: NodeHandle, timeout: float) -> None:
    """Block until the node's API answers; ToolchainError (with the log's tail) if it dies or times out."""
    wait_ready("js-ipfs", lambda: api_answers(handle.api_url, timeout=1.0), handle.pid, handle.log, timeout,
               started=handle.create_time, interval=0.2)


def start_node(
    state_dir: str | os.PathLike[str], api_port: int = 5001, gateway_port: int | None = None, timeout: float = 90.0
) -> NodeHandle:
    """Start the node on `api_port` (or return the one already running there) and wait until its API answers."""
    base = _node_dir(state_dir)
    existing = read_handle(state_dir)
    if existing is not None and existing.alive():
        if existing.api_port != api_port:
            raise ToolchainError(f"an IPFS node already runs for {state_dir} on port {existing.api_port}; stop it")
        try:
            _wait_api(existing, timeout)
            return existing
        except ToolchainError:
            if existing.alive():
                raise
    if existing is not None:
        stop_node(existing)  # a dead node (or one that just died): reap it if it was ours, drop its record
    gateway_port = gateway_port or free_port()
    for port in (api_port, gateway_port):
        if not port_free(port):
            raise ToolchainError(f"port {port} on 127.0.0.1 is in use; pick another for the IPFS node")
    repo = base / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    _configure(repo, api_port, gateway_port)
    proc = spawn(_command("daemon", "--offline"), base / "daemon.log", env={**os.environ, "IPFS_PATH": str(repo)})
    try:
        handle = NodeHandle(proc.pid, started_at(proc.pid), str(repo), api_port, gateway_port)
        (base / _RECORD).write_text(json.dumps(asdict(handle)))
        _wait_api(handle, timeout)
    except BaseException:
        stop_process(proc.pid)  # our unreaped child: its pid cannot name another process yet
        (base / _RECORD).unlink(missing_ok=True)
        raise
    return handle


def stop_node(target: NodeHandle | str | os.PathLike[str], timeout: float = 15.0) -> None:
    """Stop a node (by handle, or the one recorded under a state dir) and drop its record; no-op if none runs."""
    handle = target if isinstance(target, NodeHandle) else read_handle(target)
    if handle is None:
        return
    stop_process(handle.pid, timeout, started=handle.create_time)
    state_dir = Path(handle.repo).parent.parent
    if read_handle(state_dir) == handle:
        (_node_dir(state_dir) / _RECORD).unlink(missing_ok=True)


def stop_node_pid(pid: int, timeout: float = 15.0) -> None:
    """Stop the js-ipfs node with process id `pid`; ToolchainError if that pid is some other program."""
    try:
        proc = psutil.Process(pid)
        is_node = proc.name() == "ipfs" and Path(proc.exe()).name.startswith("node")
    except psutil.NoSuchProcess:
        return
    except psutil.Error as e:
        raise ToolchainError(f"cannot inspect process {pid}: {e}") from None
    if not is_node:
        raise ToolchainError(f"process {pid} is not a js-ipfs node; not stopping it")
    stop_process(pid, timeout, started=proc.create_time())
