"""The local devnet: anvil and a js-ipfs node on 127.0.0.1, the contracts deployed, all recorded in one file.

`up` twice does not start two; `down` stops, by pid, exactly what `up` started. The devnet file
(`.fedmarket/devnet/devnet.json`) holds the RPC URL, the IPFS API address, the contract addresses
and the funded development accounts (well-known test keys: never use them on a real chain).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market.errors import ConfigError
from market.paths import STATE

if TYPE_CHECKING:  # web3 and httpx are imported by the functions that use them: `fedmarket --help` stays fast
    from market.chain.client import Chain

DEVNET_DIR = STATE / "devnet"
DEVNET_FILE = DEVNET_DIR / "devnet.json"
DEFAULT_RPC_PORT = 8545
DEFAULT_IPFS_API_PORT = 5001


@dataclass
class Devnet:
    """What `devnet up` started and deployed."""

    rpc_url: str
    chain_id: int
    anvil_pid: int
    ipfs_api: str
    ipfs_pid: int
    ipfs_state: str
    contracts: dict[str, str] = field(default_factory=dict)
    accounts: list[dict[str, str]] = field(default_factory=list)

    def save(self, path: Path | None = None) -> None:
        """Write the devnet file atomically."""
        path = path or DEVNET_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | None = None) -> Devnet:
        """Read the devnet file; a clear error if there is none."""
        path = path or DEVNET_FILE
        if not path.exists():
            raise ConfigError(f"no devnet file at {path}: run `fedmarket devnet up` first")
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(**data)

    def chain(self) -> Chain:
        """A Chain connected to this devnet's anvil."""
        from market.chain.client import Chain

        return Chain.connect(self.rpc_url)


def status(path: Path | None = None) -> dict[str, Any]:
    """The devnet file plus whether each process is alive and answering."""
    from market.toolchain.anvil import rpc_ready
    from market.toolchain.process import process_alive

    devnet = Devnet.load(path)
    return {
        **asdict(devnet),
        "anvil_running": process_alive(devnet.anvil_pid) and rpc_ready(devnet.rpc_url),
        "ipfs_running": process_alive(devnet.ipfs_pid) if devnet.ipfs_pid else _answers(devnet.ipfs_api),
    }


def _answers(api: str) -> bool:
    """True if the IPFS RPC API at `api` (a node devnet did not start) takes an add."""
    from market.errors import StorageError
    from market.storage import IpfsStorage

    try:
        IpfsStorage(api, timeout=5).add(b"")
    except StorageError:
        return False
    return True


def is_up(path: Path | None = None) -> bool:
    """True if a devnet file exists and its anvil answers."""
    from market.toolchain.anvil import rpc_ready
    from market.toolchain.process import process_alive

    try:
        devnet = Devnet.load(path)
    except ConfigError:
        return False
    return process_alive(devnet.anvil_pid) and rpc_ready(devnet.rpc_url)


def up(
    rpc_port: int = DEFAULT_RPC_PORT,
    ipfs_api_port: int = DEFAULT_IPFS_API_PORT,
    path: Path | None = None,
    ipfs_api: str | None = None,
) -> Devnet:
    """Start anvil and the IPFS node (or use the node at `ipfs_api`, e.g. your own Kubo), deploy the
    marketplace and write the devnet file; does nothing if the devnet is already up."""
    from market.chain.client import Chain, dev_accounts
    from market.chain.marketplace import Marketplace
    from market.storage import IpfsStorage
    from market.toolchain.anvil import start_anvil
    from market.toolchain.ipfs_node import start_node, stop_node
    from market.toolchain.process import stop_process

    path = path or DEVNET_FILE
    if is_up(path):
        return Devnet.load(path)
    if path.exists():
        down(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    anvil = start_anvil(port=rpc_port, log=path.parent / "anvil.log")
    node = None
    try:
        if ipfs_api:
            IpfsStorage(ipfs_api, timeout=10).add(b"")  # reachable, and answers Kubo-equal CIDs
        else:
            node = start_node(path.parent, api_port=ipfs_api_port)
        chain = Chain.connect(anvil.url)
        market = Marketplace.deploy(chain, chain.accounts[0])
    except BaseException:
        stop_process(anvil.pid)
        if node is not None:
            stop_node(node)
        raise
    devnet = Devnet(
        rpc_url=anvil.url,
        chain_id=chain.chain_id,
        anvil_pid=anvil.pid,
        ipfs_api=node.api_addr if node else str(ipfs_api),
        ipfs_pid=node.pid if node else 0,
        ipfs_state=str(path.parent) if node else "",
        contracts={"FedMarket": market.address, "PoseidonCommit": market.poseidon},
        accounts=[{"address": a.address, "private_key": a.key.hex()} for a in dev_accounts()],
    )
    devnet.save(path)
    return devnet


def down(path: Path | None = None) -> list[str]:
    """Stop the processes named in the devnet file and remove it; returns what was stopped."""
    from market.toolchain.ipfs_node import stop_node
    from market.toolchain.process import process_alive, stop_process

    path = path or DEVNET_FILE

    devnet = Devnet.load(path)
    stopped = []
    if process_alive(devnet.anvil_pid):
        stop_process(devnet.anvil_pid)
        stopped.append(f"anvil (pid {devnet.anvil_pid})")
    if devnet.ipfs_pid and process_alive(devnet.ipfs_pid):
        stop_node(Path(devnet.ipfs_state))
        stopped.append(f"ipfs (pid {devnet.ipfs_pid})")
    path.unlink()
    return stopped
