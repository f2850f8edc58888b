"""The marketplace on any EVM chain: check the chain runs the contracts' opcodes, deploy them, record it in one file.

The deployment file (JSON) names the chain, where each contract landed and the transaction and block that made
it, the deployer, and the compiler, its settings and the sha256 of every Solidity source compiled, so that anyone
can rebuild the bytecode and compare. Every command takes it with `--deployment FILE`; a chain whose id differs
from the file's is refused.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.types import TxParams

from market.chain.client import GAS_LIMIT, Chain
from market.chain.marketplace import artifacts
from market.chain.poseidon_contract import chunks, data_init_code
from market.errors import ChainError, ConfigError, TransientError, UnsupportedChain
from market.paths import CONTRACTS, NODE_MODULES, ROOT
from market.toolchain.solc import SETTINGS, ContractArtifact, compiler_version

FORMAT = 1
#: Opcodes newer than London that solc may emit for evmVersion cancun, each with creation code that runs it and
#: returns the word 42: PUSH0 (EIP-3855, Shanghai), TLOAD and TSTORE (EIP-1153), MCOPY (EIP-5656),
#: BLOBHASH (EIP-4844) and BLOBBASEFEE (EIP-7516, all Cancun).
PROBES: dict[str, tuple[int, str]] = {
    "PUSH0": (0x5F, "602a5f5260205ff3"),
    "TLOAD": (0x5C, "60005c602a0160005260206000f3"),
    "TSTORE": (0x5D, "602a60015d602a60005260206000f3"),
    "MCOPY": (0x5E, "602a6020526020602060005e60206000f3"),
    "BLOBHASH": (0x49, "600049602a0160005260206000f3"),
    "BLOBBASEFEE": (0x4A, "4a600002602a0160005260206000f3"),
}
_ANSWER = (42).to_bytes(32, "big")
_IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*?\bfrom\s+)?["']([^"']+)["']""", re.MULTILINE)


@dataclass(frozen=True)
class Deployed:
    """One contract creation: the address, its transaction hash and its block."""

    address: str
    tx: str
    block: int


@dataclass(frozen=True)
class Deployment:
    """What `fedmarket deploy` put on a chain, as its deployment file holds it."""

    chain_id: int
    rpc_url: str
    deployer: str
    block: int
    contracts: dict[str, Deployed]
    opcodes: list[str]
    compiler: dict[str, Any]
    sources: dict[str, str]
    format: int = FORMAT

    @property
    def market(self) -> str:
        """The FedMarket contract's address."""
        return self.contracts["FedMarket"].address

    def save(self, path: Path) -> None:
        """Write the file; refuses to overwrite one (it may record a live marketplace)."""
        if path.exists():
            raise ConfigError(f"refusing to overwrite the deployment file at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Read a deployment file; ConfigError naming the file and what is wrong with it."""
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, this fedmarket reads format {FORMAT}")
            contracts = {name: Deployed(**entry) for name, entry in data.pop("contracts").items()}
            if "FedMarket" not in contracts:
                raise ValueError("it names no FedMarket contract")
            deployment = cls(contracts=contracts, **data)
        except FileNotFoundError:
            raise ConfigError(f"no deployment file at {path}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path} is not a fedmarket deployment file: {exc}") from None
        return deployment

    def check_chain(self, chain: Chain) -> None:
        """Refuse a chain other than the one deployed to: the addresses would mean nothing there."""
        if chain.chain_id != self.chain_id:
            raise ConfigError(f"the deployment file is for chain id {self.chain_id}, but the node answers with chain id "
                              f"{chain.chain_id}: point --rpc at a node of chain {self.chain_id}")


def needed_opcodes(contracts: list[ContractArtifact]) -> list[str]:
    """The PROBES opcodes that the creation and runtime code of `contracts` use (PUSH data and the metadata tail skipped)."""
    used: set[int] = set()
    for code in (bytes.fromhex(hex_) for artifact in contracts for hex_ in (artifact.bytecode, artifact.deployed_bytecode)):
        end = len(code) - 2 - int.from_bytes(code[-2:], "big")  # solc appends CBOR metadata and its 2-byte length
        pc = 0
        while pc < end:
            op = code[pc]
            used.add(op)
            pc += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return [name for name, (op, _) in PROBES.items() if op in used]


def missing_opcodes(chain: Chain, names: list[str]) -> list[str]:
    """The opcodes among `names` that the chain does not run: each probe is an eth_call of creation code."""
    missing = []
    for name in names:
        call: TxParams = {"data": HexBytes(PROBES[name][1])}
        try:
            ok = bytes(chain.w3.eth.call(call)) == _ANSWER
        except TransientError:
            raise
        except Exception:  # the node's word for an undefined opcode varies: invalid opcode, NotActivated, ...
            ok = False
        if not ok:
            missing.append(name)
    return missing


def check_opcodes(chain: Chain) -> list[str]:
    """The post-London opcodes the marketplace needs, after checking the chain runs them all (UnsupportedChain if not)."""
    needed = needed_opcodes([artifacts()["FedMarket"], artifacts()["PoseidonCommit"]])
    missing = missing_opcodes(chain, needed)
    if missing:
        raise UnsupportedChain(chain.chain_id, missing)
    return needed


def source_hashes() -> dict[str, str]:
    """The sha256 of every Solidity source a compilation of contracts/ reads, by source unit name: the files in
    contracts/ and, transitively, what they import (resolved as scripts/solc-driver.js does)."""
    hashes: dict[str, str] = {}
    todo = [path.relative_to(ROOT).as_posix() for path in sorted(CONTRACTS.rglob("*.sol"))]
    while todo:
        unit = todo.pop()
        if unit in hashes:
            continue
        path = ROOT / unit if (ROOT / unit).exists() else NODE_MODULES / unit
        text = path.read_bytes()
        hashes[unit] = hashlib.sha256(text).hexdigest()
        for target in _IMPORT.findall(text.decode()):
            todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(unit), target)) if target.startswith(".") else target)
    return dict(sorted(hashes.items()))


def _create(chain: Chain, name: str, init_code: bytes, sender: LocalAccount) -> Deployed:
    """Send one contract creation with estimated gas and wait for it; ChainError naming the contract if it fails."""
    try:
        gas = int(chain.w3.eth.estimate_gas({"from": sender.address, "data": HexBytes(init_code)}))
    except TransientError:
        raise
    except Exception as exc:
        raise ChainError(f"the node refuses to create {name}: {exc}") from None
    receipt = chain.create(init_code, sender, min(GAS_LIMIT, gas * 5 // 4 + 20_000))
    tx_hash = receipt["transactionHash"].to_0x_hex()
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise ChainError(f"creating {name} failed in transaction {tx_hash}")
    return Deployed(str(receipt["contractAddress"]), tx_hash, int(receipt["blockNumber"]))


def _init_code(chain: Chain, artifact: ContractArtifact, *args: Any) -> bytes:
    """An artifact's creation code with its constructor arguments encoded."""
    constructor = chain.w3.eth.contract(abi=artifact.abi, bytecode="0x" + artifact.bytecode).constructor(*args)
    return bytes(HexBytes(constructor.data_in_transaction))


def deploy(chain: Chain, sender: LocalAccount, rpc_url: str) -> Deployment:
    """Check the chain's opcodes, then deploy the Poseidon constants, PoseidonCommit and FedMarket from `sender`."""
    opcodes = check_opcodes(chain)
    contracts = {f"PoseidonConstants{i}": _create(chain, f"PoseidonConstants{i}", data_init_code(piece), sender)
                 for i, piece in enumerate(chunks())}
    data = [c.address for c in contracts.values()]
    contracts["PoseidonCommit"] = _create(chain, "PoseidonCommit", _init_code(chain, artifacts()["PoseidonCommit"], data), sender)
    contracts["FedMarket"] = _create(
        chain, "FedMarket", _init_code(chain, artifacts()["FedMarket"], contracts["PoseidonCommit"].address), sender
    )
    settings = {key: value for key, value in SETTINGS.items() if key != "outputSelection"}
    return Deployment(
        chain_id=chain.chain_id, rpc_url=rpc_url, deployer=sender.address, block=min(c.block for c in contracts.values()),
        contracts=contracts, opcodes=opcodes, compiler={"solc": compiler_version(), **settings}, sources=source_hashes(),
    )
