"""circomlib's Poseidon16 on chain: its t = 17 constants as SSTORE2 data contracts, and PoseidonCommit over them.

The optimized constants (3,026 words) are too large for one contract (EIP-170), so they live as the code of
four data contracts, each `0x00 || chunk` (a leading STOP so the data can never run); PoseidonCommit copies
them into memory once per call with EXTCODECOPY and checks their code hashes when it is deployed.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxParams

from market.chain.client import Chain
from market.protocol.commitment import pack
from market.protocol.poseidon import params
from market.protocol.quant import QuantSpec
from market.toolchain.solc import ContractArtifact, compile_contracts

T = 17  # Poseidon16's width: the chain value's capacity slot plus 16 inputs
CHUNK_BYTES = 24_575  # EIP-170's 24,576-byte code limit, less the leading STOP byte
STOP = b"\x00"
GAS_VIEW = (650, 16)  # the digits example's proof view: 650 values of 16 bits (44 elements, 3 blocks)


@cache
def constants_blob() -> bytes:
    """The t = 17 constants as 32-byte big-endian words, in the order PoseidonCommit reads them.

    C (204 round constants, circomlibjs order), then M by columns (289: word 17*i + j is M[j][i], the weight of
    state[j] in the new state[i]), then the pre-sparse P by columns likewise (289), then S as circomlibjs lays it
    out (68 partial rounds of 33: the weights of state[0..16] in the new state[0], then how state[0] feeds
    state[1..16]).
    """
    prm = params(T)
    sparse = (w for first, row, col in zip(prm.s_first, prm.s_rows, prm.s_cols, strict=True) for w in (first, *row, *col))
    words = [*prm.c, *(w for col in prm.m_cols for w in col), *(w for col in prm.p_cols for w in col), *sparse]
    return b"".join(int(w).to_bytes(32, "big") for w in words)


def chunks() -> list[bytes]:
    """`constants_blob()` cut into consecutive pieces of at most CHUNK_BYTES, one per data contract."""
    blob = constants_blob()
    return [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)]


def data_init_code(chunk: bytes) -> bytes:
    """Creation code that deploys `0x00 || chunk` as the new contract's code.

    PUSH2 size, DUP1, PUSH1 10, RETURNDATASIZE (0), CODECOPY, RETURNDATASIZE (0), RETURN: it returns its own
    bytes from offset 10 (after these ten), where the STOP byte and the chunk follow.
    """
    if len(chunk) > CHUNK_BYTES:
        raise ValueError(f"a data chunk holds at most {CHUNK_BYTES} bytes, got {len(chunk)}")
    return bytes.fromhex(f"61{len(chunk) + 1:04x}80600a3d393df3") + STOP + chunk


def data_code_hashes() -> list[str]:
    """The keccak-256 (0x hex) of each data contract's code, as PoseidonCommit's constructor checks them."""
    return [Web3.keccak(STOP + c).to_0x_hex() for c in chunks()]


@cache
def artifact() -> ContractArtifact:
    """The compiled PoseidonCommit."""
    return compile_contracts()["PoseidonCommit"]


def deploy_poseidon(chain: Chain, sender: LocalAccount) -> str:
    """Deploy the data contracts and a PoseidonCommit reading them; returns PoseidonCommit's address."""
    data = [chain.deploy_code(data_init_code(piece), sender) for piece in chunks()]
    return str(chain.deploy(artifact(), data, sender=sender).address)


def measure_gas(chain: Chain, address: str) -> dict[str, int]:
    """eth_estimateGas of a transaction calling `poseidon16` and one calling `commitPacked` on the digits view.

    On anvil the estimate is the gas used; eth-tester's (py-evm's) adds a few percent.
    """
    contract = chain.contract(address, artifact())
    sender: TxParams = {"from": chain.accounts[0].address}
    count, bits = GAS_VIEW
    spec = QuantSpec(bits=bits)
    q = np.random.default_rng(0).integers(-spec.qmax, spec.qmax, size=count, endpoint=True)
    return {
        "poseidon16": int(contract.functions.poseidon16(list(range(1, 17))).estimate_gas(sender)),
        "commit_650x16": int(contract.functions.commitPacked(count, bits, pack(q, spec)).estimate_gas(sender)),
    }
