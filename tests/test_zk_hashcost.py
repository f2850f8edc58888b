"""zk/hashcost.py: the packing, block counts and cost-table arithmetic (no compiles, no chain)."""

from __future__ import annotations

import pytest

from market.protocol.constants import FIELD_MODULUS
from zk import hashcost as h


def test_sha_blocks_follow_the_padding_rule():
    # 170 + 41 N bytes, a 1 bit and the 64-bit length, in 64-byte blocks.
    assert [h.data_bytes(n) for n in (4, 8, 32)] == [334, 498, 1482]
    assert [h.sha_blocks(n) for n in (4, 8, 16, 32)] == [6, 8, 14, 24]
    assert h.sha_blocks(0) == 3  # 170 bytes: 2.8 blocks of data, the length spills into a third


def test_packed_counts():
    assert [h.slot_words(n) for n in (1, 3, 4, 32)] == [1, 1, 2, 11]
    assert [h.packed_count(n) for n in (4, 8, 16, 32)] == [12, 17, 28, 49]
    assert [h.fold_inputs(n) for n in (4, 8, 16, 32)] == [4, 5, 8, 13]
    assert h.chain_blocks(15, 16) == 1 and h.chain_blocks(16, 16) == 2 and h.chain_blocks(0, 16) == 1
    assert h.chain_blocks(49, 2) == 49


def test_slot_words_are_injective_lanes_below_the_field():
    flags, scores, seqs = [3, 0, 1, 2], [-(2**63), 2**63 - 1, -1, 0], [255, 0, 7, 1]
    words = h.pack_slots(flags, scores, seqs)
    assert len(words) == 2 and all(w < FIELD_MODULUS for w in words)
    for i, (f, s, q) in enumerate(zip(flags, scores, seqs)):
        lane = words[i // 3] >> (74 * (i % 3)) & (2**74 - 1)
        assert (lane & 3, (lane >> 2 & (2**64 - 1)) - 2**63, lane >> 66) == (f, s, q)
    assert h.pack_slots([0], [1], [0]) != h.pack_slots([0], [0], [1])


@pytest.mark.parametrize("slot", [(4, 0, 0), (0, 2**63, 0), (0, -(2**63) - 1, 0), (0, 0, 256)])
def test_slot_out_of_range_is_refused(slot):
    with pytest.raises(ValueError):
        h.pack_slots(*([v] for v in slot))


def test_header_packing():
    a, b = h.pack_header(31337, 2**160 - 1, 7, 3, 8)
    assert a == 31337 | (2**160 - 1) << 64 and b == 7 | 3 << 64 | 8 << 96 and a < FIELD_MODULUS
    with pytest.raises(ValueError):
        h.pack_header(2**64, 0, 0, 0, 0)


def test_fit_line_recovers_a_line():
    assert h.fit_line([1, 2, 3, 4], [10, 12, 14, 16]) == pytest.approx((8.0, 2.0))


def test_bench_inputs_fold_order_is_a_partial_permutation_of_the_present_slots():
    inp = h.bench_inputs("FoldInput(8)")
    pos = inp["pos"]
    assert all(sum(row) <= 1 for row in pos)
    assert [sum(pos[s][i] for s in range(8)) for i in range(8)] == [int(c != 0) for c in inp["commitment"]]
    assert sorted(inp["seq"][:7]) == list(range(7))


def test_cost_table_arithmetic():
    n_slots = h.SLOTS
    m = {
        "constraints": {t: v for n in n_slots for t, v in (
            (f"Shared({n})", 100), (f"ShaInput({n})", 100 + 1000 * n), (f"PoseidonInput({n},16)", 700),
            (f"PlainInput({n})", 100), (f"FoldInput({n})", 100 + 300 * n))},
        "s_per_constraint": 1e-5,
        "verifier": (200_000.0, 8_000.0),
        "sha_gas": {str(n): 500 + n for n in n_slots},
        "p16": (50_000.0, 200_000.0),
        "small_gas": {"5": 100_000, "3": 48_000},
        "postRound_bookkeeping": {str(n): 100_000 + 1_000 * n for n in n_slots},
    }
    t = h.cost_table(m)["8"]
    assert t["sha"]["constraints"] == 8000 and t["sha"]["prove_s"] == 0.08
    assert t["sha"]["postRound_gas"] == 108_000 + 208_000  # bookkeeping (sha included) + a one-input verifier
    assert t["plain"]["constraints"] == 0 and t["plain"]["public_inputs"] == 17
    assert t["plain"]["postRound_gas"] == 108_000 - 508 + 200_000 + 8_000 * 17
    assert t["poseidon16"]["bind_gas"] == 50_000 + 200_000 * 2 + 208_000
    assert t["fold"]["outside_postRound_gas"] == 100_000 + 8 * 48_000
    assert t["fold"]["public_inputs"] == 5
