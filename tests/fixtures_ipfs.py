"""pytest plugin: one real js-ipfs node for the whole test session, on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from market.toolchain.ipfs_node import NodeHandle, start_node, stop_node
from market.toolchain.process import free_port


@pytest.fixture(scope="session")
def ipfs_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeHandle]:
    """A started js-ipfs node (offline, API on 127.0.0.1); `.api_addr` is what IpfsStorage takes."""
    handle = start_node(tmp_path_factory.mktemp("ipfs-state"), api_port=free_port())
    try:
        yield handle
    finally:
        stop_node(handle)
