"""Shared pytest fixtures; each service's fixtures live in their own plugin module.

The suite runs on pytest-xdist workers (Makefile: `-n auto --dist loadfile --no-loadscope-reorder`): every worker
starts its own anvil and IPFS node on free ports, and the build caches (circuits, keys, solc output) are shared
through file locks."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures_chain", "tests.fixtures_ipfs", "tests.fixtures_zk"]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # A worker starts with COLUMNS=80 and LINES=24 in its environment; rich's console fixes its width from COLUMNS
    # when it is built (at import), so the CLI tests that give their command a wider COLUMNS would get 80.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)

#: At most this many workers: each one runs its own anvil and IPFS node, and the end-to-end tests start several
#: processes of their own.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker a core, at most MAX_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with slow end-to-end cases first, so that the workers start them at once and the short files fill in
    around them; a file's tests stay together and in their order."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
