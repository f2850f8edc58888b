"""PROTOCOL.md §6 in Python: byte layout and the rules it refuses (the contract cross-check is in the lifecycle tests)."""

from __future__ import annotations

import hashlib

import pytest

from market.errors import ProofError
from market.public_input import FIELD_MODULUS, public_input, public_input_data

MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_layout_is_exactly_section_6() -> None:
    data = public_input_data(31337, MARKET, 3, 2, 99, 2, 4, [7, 0], [1, 0], [0, 0])
    assert len(data) == 74 + 40 * 4
    assert data[:8] == (31337).to_bytes(8, "big")
    assert data[8:28] == bytes.fromhex(MARKET[2:])
    assert data[28:36] == (3).to_bytes(8, "big") and data[36:40] == (2).to_bytes(4, "big")
    assert data[40:72] == (99).to_bytes(32, "big") and data[72:74] == (2).to_bytes(2, "big")
    assert data[74:106] == (7 | 1 << 254).to_bytes(32, "big")
    assert data[106:114] == bytes(8)
    assert data[114:] == bytes(40 * 3)
    scored = public_input_data(1, MARKET, 1, 1, 1, 1, 1, [5], [0], [-2])
    assert scored[-8:] == bytes.fromhex("fffffffffffffffe")
    value = public_input(31337, MARKET, 3, 2, 99, 2, 4, [7, 0], [1, 0], [0, 0])
    assert value == int.from_bytes(hashlib.sha256(data).digest(), "big") >> 3 and value < FIELD_MODULUS


@pytest.mark.parametrize(
    ("n", "slots", "commitments", "flags", "scores", "message"),
    [
        (3, 2, [1, 1, 1], [0, 0, 0], [0, 0, 0], "do not fit"),
        (2, 4, [1], [0, 0], [0, 0], "commitments"),
        (1, 4, [FIELD_MODULUS], [0], [0], "field element"),
        (1, 4, [1], [3], [0], "flag 3"),
        (1, 4, [1], [0], [2**63], "int64"),
        (1, 4, [0], [1], [0], "without a submission"),
        (1, 4, [1], [2], [5], "flagged slot"),
    ],
)
def test_refuses_what_the_contract_refuses(
    n: int, slots: int, commitments: list[int], flags: list[int], scores: list[int], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        public_input(1, MARKET, 1, 1, 1, n, slots, commitments, flags, scores)
