"""PoseidonCommit against the Python reference: Poseidon16, the PROTOCOL §2 commitment, every revert, the data contracts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract import Contract

from aggregator.rules.replay import replay_terms
from market.chain.client import Chain
from market.chain.poseidon_contract import (
    CHUNK_BYTES,
    STOP,
    artifact,
    chunks,
    constants_blob,
    data_code_hashes,
    data_init_code,
    deploy_poseidon,
    measure_gas,
)
from market.errors import ContractRevert
from market.protocol.commitment import commit, commit_elements, pack
from market.protocol.constants import FIELD_MODULUS
from market.protocol.poseidon import params, poseidon
from market.protocol.quant import QuantSpec

P = FIELD_MODULUS
SIZES = [1, 15, 16, 225, 650, 3_500]


@dataclass(frozen=True)
class Deployed:
    """A PoseidonCommit on a fresh in-process chain."""

    chain: Chain
    contract: Contract

    def poseidon16(self, inputs: Sequence[int]) -> int:
        """The contract's Poseidon16 of `inputs`."""
        return int(self.chain.call(self.contract.functions.poseidon16(list(inputs))))

    def commit(self, count: int, bits: int, elements: Sequence[int]) -> int:
        """The contract's commitment to a packed view."""
        return int(self.chain.call(self.contract.functions.commitPacked(count, bits, list(elements))))

    def reverts(self, count: int, bits: int, elements: Sequence[int]) -> ContractRevert:
        """The error `commitPacked` reverts with."""
        with pytest.raises(ContractRevert) as info:
            self.commit(count, bits, elements)
        return info.value


@pytest.fixture(scope="module")
def deployed() -> Deployed:
    chain = Chain.in_process()
    address = deploy_poseidon(chain, chain.accounts[0])
    return Deployed(chain, chain.contract(address, artifact()))


def random_q(count: int, spec: QuantSpec, seed: int) -> np.ndarray:
    """`count` quantized values spread over the whole range [-qmax, qmax]."""
    return np.random.default_rng(seed).integers(-spec.qmax, spec.qmax, size=count, endpoint=True)


def test_blob_is_the_constants_in_the_documented_order() -> None:
    prm = params(17)
    words = [int.from_bytes(constants_blob()[i : i + 32], "big") for i in range(0, len(constants_blob()), 32)]
    assert len(words) == 204 + 289 + 289 + 68 * 33
    assert words[:204] == list(prm.c)
    assert words[204 + 17 * 3 + 5] == prm.m_cols[3][5]  # M by columns
    assert words[493 + 17 * 16 + 2] == prm.p_cols[16][2]  # P by columns
    s = words[782:]
    assert [s[33 * 7], *s[33 * 7 + 1 : 33 * 7 + 17], *s[33 * 7 + 17 : 33 * 8]] == [
        prm.s_first[7], *prm.s_rows[7], *prm.s_cols[7]]
    assert b"".join(chunks()) == constants_blob()
    assert [len(c) for c in chunks()] == [CHUNK_BYTES] * 3 + [len(constants_blob()) - 3 * CHUNK_BYTES]


def test_data_contracts_hold_the_chunks_behind_a_stop(chain: Chain) -> None:
    sender = chain.accounts[0]
    addresses = [chain.deploy_code(data_init_code(c), sender) for c in chunks()]
    for address, chunk, expected in zip(addresses, chunks(), data_code_hashes(), strict=True):
        code = bytes(chain.w3.eth.get_code(Web3.to_checksum_address(address)))
        assert code == STOP + chunk
        assert Web3.keccak(code).to_0x_hex() == expected
    # The constructor checks every data contract's code hash: any other order, or any other code, is refused.
    with pytest.raises(ContractRevert) as info:
        chain.deploy(artifact(), [addresses[1], addresses[0], *addresses[2:]], sender=sender)
    assert info.value.name == "DataContract"
    assert info.value.args_by_name == {"index": 0, "data": Web3.to_checksum_address(addresses[1])}
    contract = chain.contract(str(chain.deploy(artifact(), addresses, sender=sender).address), artifact())
    assert chain.call(contract.functions.poseidon16(list(range(16)))) == poseidon(list(range(16)))


@pytest.mark.anvil
def test_measure_gas_on_anvil(anvil_chain: Chain) -> None:
    gas = measure_gas(anvil_chain, deploy_poseidon(anvil_chain, anvil_chain.accounts[0]))
    assert gas.keys() == {"poseidon16", "commit_650x16"}
    assert 150_000 < gas["poseidon16"] < 300_000
    assert 2 * gas["poseidon16"] < gas["commit_650x16"] < 3 * gas["poseidon16"]


@pytest.mark.parametrize("inputs", [[0] * 16, [P - 1] * 16, list(range(1, 17)), [2**256 - 1, P, *range(14)]])
def test_poseidon16_matches_python_on_edges(deployed: Deployed, inputs: list[int]) -> None:
    assert deployed.poseidon16(inputs) == poseidon([v % P for v in inputs])


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(0, P - 1), min_size=16, max_size=16))
def test_poseidon16_matches_python(deployed: Deployed, inputs: list[int]) -> None:
    assert deployed.poseidon16(inputs) == poseidon(inputs)


@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("count", SIZES)
def test_commit_packed_matches_commit(deployed: Deployed, count: int, bits: int) -> None:
    spec = QuantSpec(bits=bits)
    q = random_q(count, spec, seed=count * bits)
    assert deployed.commit(count, bits, pack(q, spec)) == commit(q, spec)


@settings(max_examples=10, deadline=None)
@given(bits=st.integers(2, 32), data=st.data())
def test_commit_packed_matches_commit_at_every_width(deployed: Deployed, bits: int, data: st.DataObject) -> None:
    spec = QuantSpec(bits=bits)
    q = data.draw(st.lists(st.integers(-spec.qmax, spec.qmax), min_size=1, max_size=200))
    assert deployed.commit(len(q), bits, pack(q, spec)) == commit(q, spec)


def test_empty_view_hashes_one_zero_block(deployed: Deployed) -> None:
    assert deployed.commit(0, 16, []) == commit_elements([], 0)


def test_wrong_element_count(deployed: Deployed) -> None:
    spec = QuantSpec(bits=16)
    elements = pack(random_q(650, spec, seed=1), spec)
    assert len(elements) == 44
    for wrong in (elements[:-1], [*elements, elements[0]], []):
        err = deployed.reverts(650, 16, wrong)
        assert (err.name, err.args_by_name) == ("ElementCount", {"expected": 44, "got": len(wrong)})


def test_invalid_width(deployed: Deployed) -> None:
    for bits in (0, 1, 33, 2**255):
        err = deployed.reverts(1, bits, [1])
        assert (err.name, err.args_by_name) == ("InvalidWidth", {"bits": bits})


@pytest.mark.parametrize("bits", [2, 8, 16, 32])
def test_lane_out_of_range(deployed: Deployed, bits: int) -> None:
    spec, per = QuantSpec(bits=bits), 252 // bits
    count = 3 * per - 2  # two full elements, then one with two padding lanes
    elements = pack(random_q(count, spec, seed=bits), spec)
    lane_mask = (1 << bits) - 1

    def expect(element: int, lane: int, bad: list[int]) -> None:
        err = deployed.reverts(count, bits, bad)
        assert (err.name, err.args_by_name) == ("LaneOutOfRange", {"element": element, "lane": lane})

    # A real lane of 0 (q = -2^(bits-1), one below -qmax): the first such lane is named.
    for element, lane in ((0, 0), (1, per - 1), (2, per - 3), (1, per // 2)):
        bad = list(elements)
        bad[element] &= ~(lane_mask << (bits * lane))
        expect(element, lane, bad)
    # A nonzero padding lane in the last element.
    bad = list(elements)
    bad[2] |= 1 << (bits * (per - 1))
    expect(2, per - 1, bad)
    bad[2] |= 1 << (bits * (per - 2))
    expect(2, per - 2, bad)
    # Bits above every lane: lane = PER (the element is >= 2^(PER * bits)).
    for element in (0, 2):
        bad = list(elements)
        bad[element] |= 1 << (bits * per)
        expect(element, per, bad)
    bad = list(elements)
    bad[1] |= 1 << 255
    expect(1, per, bad)


@settings(max_examples=10, deadline=None)
@given(bits=st.integers(2, 32), data=st.data())
def test_compare_packed_matches_the_replay_rule(deployed: Deployed, bits: int, data: st.DataObject) -> None:
    """comparePacked gives both commitments, |u - w|^2, |u|^2 and |w|^2 exactly as aggregator.rules.replay; a
    malformed view reverts as commitPacked does, whichever of the two it is."""
    spec = QuantSpec(bits=bits)
    n = data.draw(st.integers(1, 120))
    u, w = (data.draw(st.lists(st.integers(-spec.qmax, spec.qmax), min_size=n, max_size=n)) for _ in range(2))
    got = deployed.chain.call(deployed.contract.functions.comparePacked(n, bits, pack(u, spec), pack(w, spec)))
    terms = replay_terms(torch.tensor(u, dtype=torch.int64), torch.tensor(w, dtype=torch.int64))
    assert [int(x) for x in got] == [commit(u, spec), commit(w, spec), *terms]
    with pytest.raises(ContractRevert, match="ElementCount"):
        deployed.chain.call(deployed.contract.functions.comparePacked(n, bits, pack(u, spec), []))
