"""The one process helper for the devnet tools (anvil, the js-ipfs node): ports, start, readiness, liveness, stop.

Each tool runs in its own session (process group), so stopping it stops everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from market.errors import ToolchainError

# Popen objects of the tools this process started, kept so that stopping one reaps it (no zombie, no warning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_LOG_TAIL = 2000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port` (so a server answering there later is ours)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def spawn(args: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `args` in a new session, stdin closed, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("ab") as out:
            proc = subprocess.Popen(list(args), env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        raise ToolchainError(f"cannot start {args[0]}: {e}") from None
    _CHILDREN[proc.pid] = proc
    return proc


def started_at(pid: int) -> float:
    """When process `pid` started (psutil's clock): with the pid, it names the process even after pid reuse."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error as e:
        raise ToolchainError(f"process {pid} is gone: {e}") from None


def process_alive(pid: int, started: float | None = None) -> bool:
    """Whether process `pid` runs and is not a zombie (and, if `started` is given, is the one created then)."""
    try:
        proc = psutil.Process(pid)
        return (started is None or proc.create_time() == started) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def log_tail(log: Path) -> str:
    """The last lines of a tool's log, for an error message."""
    try:
        return log.read_text(errors="replace")[-_LOG_TAIL:]
    except OSError:
        return ""


def wait_ready(what: str, ready: Callable[[], bool], pid: int, log: Path, timeout: float,
               started: float | None = None, interval: float = 0.05) -> None:
    """Poll `ready` until it holds; ToolchainError with the log's tail if the process dies first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not process_alive(pid, started):
            raise ToolchainError(f"{what} exited during start-up; the end of {log}:\n{log_tail(log)}")
        if time.monotonic() >= deadline:
            raise ToolchainError(f"{what} did not answer within {timeout:g} s; see {log}")
        time.sleep(interval)


def _gone(proc: psutil.Process) -> bool:
    """Whether `proc` has exited, reaping it if it is our child; a zombie that another parent must reap counts as gone."""
    try:
        proc.wait(timeout=0)
        return True
    except psutil.TimeoutExpired:
        return not process_alive(proc.pid)
    except psutil.Error:
        return True


def _signal(pid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    """Send `sig` to the process group `pid` leads (spawn makes each tool lead one) and to each of `procs`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` seconds for `procs` to exit; the ones still running."""
    deadline = time.monotonic() + timeout
    while True:
        procs = [p for p in procs if not _gone(p)]
        if not procs or time.monotonic() >= deadline:
            return procs
        time.sleep(0.05)


def stop_process(pid: int, timeout: float = 10.0, started: float | None = None) -> None:
    """Stop process `pid` and everything it started: SIGTERM, then SIGKILL for what still runs after `timeout`.

    With `started` (its creation time), a different process that now has the pid is left alone.
    """
    try:
        root = psutil.Process(pid)
        family = [] if started is not None and root.create_time() != started else [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not family:
            break
        _signal(pid, family, sig)
        family = _wait_gone(family, wait)
    child = _CHILDREN.pop(pid, None)
    if child is not None:  # reap it; a killed process on a loaded machine may take a while to exit
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=30)
