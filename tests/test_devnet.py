"""`fedmarket devnet` with a user's own IPFS node: used, never started or stopped by the devnet."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.dev import devnet
from market.errors import StorageError
from market.toolchain.ipfs_node import NodeHandle
from market.toolchain.process import free_port, process_alive

pytestmark = [pytest.mark.anvil, pytest.mark.ipfs]


def test_devnet_uses_a_given_ipfs_node_and_leaves_it_running(tmp_path: Path, ipfs_api: NodeHandle) -> None:
    path = tmp_path / "devnet.json"
    net = devnet.up(rpc_port=free_port(), path=path, ipfs_api=ipfs_api.api_addr)
    try:
        assert net.ipfs_api == ipfs_api.api_addr and net.ipfs_pid == 0
        assert devnet.up(rpc_port=free_port(), path=path).anvil_pid == net.anvil_pid  # up twice: one anvil
        info = devnet.status(path)
        assert info["anvil_running"] and info["ipfs_running"] and info["contracts"]["FedMarket"]
    finally:
        stopped = devnet.down(path)
    assert stopped == [f"anvil (pid {net.anvil_pid})"]
    assert not process_alive(net.anvil_pid) and process_alive(ipfs_api.pid)
    assert not path.exists()


def test_devnet_refuses_an_unreachable_ipfs_node_and_stops_anvil(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        devnet.up(rpc_port=free_port(), path=tmp_path / "devnet.json", ipfs_api=f"/ip4/127.0.0.1/tcp/{free_port()}/http")
    assert not (tmp_path / "devnet.json").exists()
    assert not devnet.is_up(tmp_path / "devnet.json")
