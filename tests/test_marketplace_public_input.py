"""PROTOCOL.md §6 in Python: byte layout and the rules it refuses (the contract cross-check is in the lifecycle tests)."""

from __future__ import annotations

import hashlib

import pytest

from market.errors import ProofError
from market.protocol.public_input import (
    FIELD_MODULUS,
    FLAG_EXCLUDED,
    HEADER_BYTES,
    SLOT_BYTES,
    Statement,
    public_input,
    public_input_data,
)

MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def st(chain_id: int, pid: int, round_: int, v_commit: int, n: int, model_prev: int = 10, model_in: int = 11,
       model_out: int = 12) -> Statement:
    """A statement on MARKET (the model commitments default to 10, 11 then 12)."""
    return Statement(chain_id, MARKET, pid, round_, v_commit, model_prev, model_in, model_out, n)


def test_layout_is_exactly_section_6() -> None:
    data = public_input_data(st(31337, 3, 2, 99, 4), 5, [7, 0, 9, 8], [1, 0, 0, 3], [0, 0, -2, 0], [1, 0, 0, 2])
    assert (HEADER_BYTES, SLOT_BYTES) == (170, 41) and len(data) == 170 + 41 * 5
    assert data[:8] == (31337).to_bytes(8, "big")
    assert data[8:28] == bytes.fromhex(MARKET[2:])
    assert data[28:36] == (3).to_bytes(8, "big") and data[36:40] == (2).to_bytes(4, "big")
    assert data[40:72] == (99).to_bytes(32, "big")
    assert data[72:104] == (10).to_bytes(32, "big")  # modelPrev, right after vCommit
    assert data[104:136] == (11).to_bytes(32, "big") and data[136:168] == (12).to_bytes(32, "big")
    assert data[168:170] == (4).to_bytes(2, "big")
    slot0, slot1, slot2, slot3, slot4 = (data[170 + 41 * i : 170 + 41 * (i + 1)] for i in range(5))
    assert slot0 == (7 | 1 << 254).to_bytes(32, "big") + bytes(8) + b"\x01"
    assert slot1 == bytes(41)
    assert slot2 == (9).to_bytes(32, "big") + bytes.fromhex("fffffffffffffffe") + b"\x00"
    assert slot3 == (8 | FLAG_EXCLUDED << 254).to_bytes(32, "big") + bytes(8) + b"\x02"  # flag 3: both top bits
    assert slot3[0] == 0xC0
    assert slot4 == bytes(41)
    last = public_input_data(st(1, 1, 1, 1, 1), 1, [5], [0], [3], [255])
    assert last[-9:] == (3).to_bytes(8, "big") + b"\xff"
    value = public_input(st(31337, 3, 2, 99, 4), 5, [7, 0, 9, 8], [1, 0, 0, 3], [0, 0, -2, 0], [1, 0, 0, 2])
    assert value == int.from_bytes(hashlib.sha256(data).digest(), "big") >> 3 and value < FIELD_MODULUS


def test_the_submission_order_changes_the_input() -> None:
    args = (st(1, 1, 1, 1, 2), 4, [5, 6], [0, 0], [1, 1])
    assert public_input(*args, [0, 1]) != public_input(*args, [1, 0])


def test_the_model_commitments_change_the_input() -> None:
    rows = (4, [5, 6], [0, 0], [1, 1], [0, 1])
    base = public_input(st(1, 1, 1, 1, 2), *rows)
    assert public_input(st(1, 1, 1, 1, 2, model_prev=13), *rows) != base
    assert public_input(st(1, 1, 1, 1, 2, model_in=13), *rows) != base
    assert public_input(st(1, 1, 1, 1, 2, model_out=13), *rows) != base
    # The same three values in another order are another input: each has its own place.
    assert public_input(st(1, 1, 1, 1, 2, model_prev=11, model_in=10), *rows) != base
    with pytest.raises(ProofError, match="model out commitment is not a field element"):
        public_input(st(1, 1, 1, 1, 2, model_out=FIELD_MODULUS), *rows)
    with pytest.raises(ProofError, match="model prev commitment is not a field element"):
        public_input(st(1, 1, 1, 1, 2, model_prev=FIELD_MODULUS), *rows)


def test_each_flag_is_its_own_input() -> None:
    """Flags 0-3 are accepted, each hashes differently, and an excluded slot needs score 0 like any flagged one."""
    inputs = {public_input(st(1, 1, 1, 1, 1), 4, [5], [flag], [0], [0]) for flag in (0, 1, 2, 3)}
    assert len(inputs) == 4
    with pytest.raises(ProofError, match="slot 0: a flagged slot needs score 0"):
        public_input(st(1, 1, 1, 1, 1), 4, [5], [FLAG_EXCLUDED], [1], [0])


@pytest.mark.parametrize(
    ("n", "slots", "commitments", "flags", "scores", "seqs", "message"),
    [
        (3, 2, [1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 1, 2], "do not fit"),
        (2, 4, [1], [0, 0], [0, 0], [0, 0], "commitments"),
        (2, 4, [1, 2], [0, 0], [0, 0], [0], "seqs: expected 2"),
        (1, 4, [FIELD_MODULUS], [0], [0], [0], "field element"),
        (1, 4, [1], [4], [0], [0], r"flag 4 is not 0, 1, 2 or 3"),
        (1, 4, [1], [0], [2**63], [0], "int64"),
        (1, 4, [0], [1], [0], [0], "without a submission needs flag 0"),
        (1, 4, [1], [2], [5], [0], "flagged slot"),
        (2, 4, [1, 2], [0, 0], [0, 0], [0, 256], "slot 1: submission rank 256 does not fit uint8"),
        (2, 4, [1, 2], [0, 0], [0, 0], [-1, 0], "slot 0: submission rank -1 does not fit uint8"),
        (2, 4, [1, 0], [0, 0], [0, 0], [0, 1], "slot 1: a slot without a submission needs submission rank 0"),
        (3, 4, [1, 2, 3], [0, 0, 0], [0, 0, 0], [1, 0, 1], "slot 2: submission rank 1 is also slot 0's"),
    ],
)
def test_refuses_what_the_contract_refuses(
    n: int, slots: int, commitments: list[int], flags: list[int], scores: list[int], seqs: list[int], message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        public_input(st(1, 1, 1, 1, n), slots, commitments, flags, scores, seqs)


def test_absent_slots_may_share_rank_zero() -> None:
    public_input(st(1, 1, 1, 1, 4), 4, [0, 3, 0, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0])
