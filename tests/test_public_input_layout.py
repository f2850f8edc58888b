"""PROTOCOL §6 has one description (public_input.HEADER and SLOT); the contract, the circuit and the witness must agree with it.

The contract's assembly offsets and the circuit's bit order are read out of their sources, so an
edit to either that moves a field fails here; the witness is re-hashed from its own signals; and
the deployed contract's `roundPublicInput` is compared with Python on random rounds.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence

from market.chain.client import Chain
from market.paths import ROOT
from market.protocol.constants import FIELD_MODULUS
from market.protocol.public_input import (
    HEADER,
    HEADER_BYTES,
    PUBLIC_INPUT_BITS,
    SLOT,
    SLOT_BYTES,
    Field,
    pack,
    public_input,
)
from tests.fixtures_zk import CTX, MODEL_IN, MODEL_PREV, PARAMS, direction, round_slots, updates, with_split
from tests.marketplace_harness import CID, commitment, deploy, model_out, statement
from zk.witness import build_witness

CONTRACT = (ROOT / "contracts" / "FedMarket.sol").read_text()
#: The main template of the round circuit (its inputs, definitions and hash block).
CIRCUIT = (ROOT / "zk" / "circuits" / "round.circom").read_text().split("template RoundProof(")[1]
#: The signal name of each local name the contract writes into the data.
CONTRACT_NAMES = {
    "chainid()": "chainId", "address()": "marketplace", "pid": "projectId", "round": "round", "vCommit": "vCommit",
    "modelPrev": "modelPrev", "modelIn": "modelIn", "modelOut": "modelOut", "n": "nTrainers", "c": "commitment",
    "flag": "flag", "score": "score", "seq": "seq",
}

Word = tuple[str, int, int, tuple[str, int] | None]  # (signal, byte offset, byte width, packed (signal, shift))


def described(fields: Sequence[Field]) -> list[Word]:
    """The description's words with their offsets."""
    out, at = [], 0
    for f in fields:
        out.append((f.name, at, f.width, f.packed))
        at += f.width
    return out


def _contract_word(value: str) -> tuple[str, int, tuple[str, int] | None]:
    """(source, byte width, packed) of one mstore's value: `x`, `shl(k, x)`, `shl(k, and(x, mask))`, `or(x, shl(k, y))`."""
    if m := re.fullmatch(r"or\(([\w()]+), shl\((\d+), ([\w()]+)\)\)", value):
        return CONTRACT_NAMES[m[1]], 32, (CONTRACT_NAMES[m[3]], int(m[2]))
    if m := re.fullmatch(r"shl\((\d+), (.+)\)", value):
        width = (256 - int(m[1])) // 8
        inner = m[2]
        if mask := re.fullmatch(r"and\(([\w()]+), 0x(f+)\)", inner):
            assert 4 * len(mask[2]) == 8 * width, f"{value}: the mask does not keep exactly the stored bytes"
            inner = mask[1]
        return CONTRACT_NAMES[inner], width, None
    return CONTRACT_NAMES[value], 32, None


def contract_layout() -> tuple[int, int, list[Word], list[Word], int]:
    """(header bytes, slot bytes, header words, slot words, bits kept) from FedMarket._publicInput's assembly."""
    body = CONTRACT[CONTRACT.index("function _publicInput(") :]
    body = body[: body.index("return (uint256(sha256(data))") + 60]
    m = re.search(r"uint256 len = (\d+) \+ (\d+) \* uint256\(pr\.verifierSlots\);", body)
    assert m, "FedMarket._publicInput: the data length formula moved"
    header_bytes, slot_bytes = int(m[1]), int(m[2])
    header: list[Word] = []
    for m in re.finditer(r"mstore\((q|add\(q, (\d+)\)), (.+)\)\n", body):
        name, width, packed = _contract_word(m[3])
        header.append((name, int(m[2] or 0), width, packed))
    base = re.search(r"let at := add\(add\(data, (\d+)\), mul\(i, (\d+)\)\)", body)
    assert base and int(base[1]) == 32 + header_bytes and int(base[2]) == slot_bytes
    slot: list[Word] = []
    for m in re.finditer(r"mstore\((at|add\(at, (\d+)\)), (.+)\)\n", body):
        name, width, packed = _contract_word(m[3])
        slot.append((name, int(m[2] or 0), width, packed))
    for m in re.finditer(r"mstore8\(add\(add\(data, (\d+)\), mul\(i, (\d+)\)\), (\w+)\)", body):
        assert int(m[2]) == slot_bytes
        slot.append((CONTRACT_NAMES[m[3]], int(m[1]) - 32 - header_bytes, 1, None))
    shift = re.search(r"return \(uint256\(sha256\(data\)\) >> (\d+), accepted, rejected\);", body)
    assert shift
    return header_bytes, slot_bytes, header, sorted(slot, key=lambda w: w[1]), 256 - int(shift[1])


def test_contract_offsets_are_the_description() -> None:
    header_bytes, slot_bytes, header, slot, kept = contract_layout()
    assert (header_bytes, slot_bytes, kept) == (HEADER_BYTES, SLOT_BYTES, PUBLIC_INPUT_BITS)
    assert header == described(HEADER)
    assert slot == described(SLOT)


Run = tuple[str, int]  # (source signal, or "0" for constant zero bits; number of bits)


def _merge(runs: list[Run]) -> list[Run]:
    """Adjacent runs of the same source joined."""
    out: list[Run] = []
    for src, n in runs:
        if out and out[-1][0] == src:
            out[-1] = (src, out[-1][1] + n)
        else:
            out.append((src, n))
    return out


def expected_bits(fields: Sequence[Field]) -> list[Run]:
    """The description's bits, most significant first: packed or zero bits above a value narrower than its word."""
    runs: list[Run] = []
    for f in fields:
        low = f.bits or 8 * f.width
        if low < 8 * f.width:
            if f.packed is not None:
                assert f.packed[1] == low, f"{f.name}: the packed value must start right above the value"
            runs.append((f.packed[0] if f.packed else "0", 8 * f.width - low))
        runs.append((f.name, low))
    return _merge(runs)


def _sources(expr: str, inputs: set[str], defs: dict[str, str], seen: frozenset[str] = frozenset()) -> set[str]:
    """The circuit's input signals an expression is computed from (following `x <== ...` definitions)."""
    out: set[str] = set()
    for name in re.findall(r"(?<![.\w])[A-Za-z_]\w*", expr):  # not a component's member (.out)
        if name in inputs:
            out.add(name)
        elif name in defs and name not in seen:
            out |= _sources(defs[name], inputs, defs, seen | {name})
    return out


def circuit_layout() -> tuple[list[int], int, list[Run], list[Run], int]:
    """(header widths, slot bytes, header bits, slot bits, bits kept) from round.circom's hash block."""
    inputs = set(re.findall(r"signal input (\w+)", CIRCUIT))
    defs: dict[str, str] = {}
    for name, expr in re.findall(r"^\s*(\w+)(?:\[i\])?(?:\.in)? <== (.+?);", CIRCUIT, re.M):
        defs.setdefault(name, expr)
    nb = re.search(r"var NB = 8 \* \(([\d\s+]+)\+ (\d+) \* N\);", CIRCUIT)
    assert nb, "round.circom: the hashed length formula moved"
    widths = [int(w) for w in nb[1].split("+") if w.strip()]
    block = CIRCUIT[CIRCUIT.index("component sha = Sha256(NB);") : CIRCUIT.index("var acc253")]
    head, slots = block.split("for (var i = 0; i < N; i++) {")
    step = re.compile(r"for \(var b = (\d+); b >= 0; b--\) \{ sha\.in\[pos\] <== (.+?); pos\+\+; \}|sha\.in\[pos\] <== (.+?); pos\+\+;")

    def bits(text: str) -> list[Run]:
        runs: list[Run] = []
        for m in step.finditer(text):
            expr, n = (m[2], int(m[1]) + 1) if m[2] else (m[3], 1)
            src = _sources(expr, inputs, defs)
            assert len(src) <= 1, f"round.circom: hashed bits from {src}"
            runs.append((src.pop() if src else expr.strip(), n))
        return _merge(runs)

    kept = re.search(r"for \(var b = 0; b < (\d+); b\+\+\) \{ acc253 \+= sha\.out\[b\]", CIRCUIT)
    assert kept
    return widths, int(nb[2]), bits(head), bits(slots), int(kept[1])


def test_circuit_bit_order_is_the_description() -> None:
    widths, slot_bytes, header, slot, kept = circuit_layout()
    assert widths == [f.width for f in HEADER] and slot_bytes == SLOT_BYTES and kept == PUBLIC_INPUT_BITS
    assert header == expected_bits(HEADER)
    assert slot == expected_bits(SLOT)


def test_witness_signals_hash_to_its_public_input() -> None:
    """Re-pack the witness's own public signals by the description: the bytes hash to its public input."""
    v = direction(0)
    w = build_witness(PARAMS, CTX, *with_split(v), round_slots([*updates(0)[:3], None]), MODEL_IN, MODEL_PREV)
    signals = w.inputs
    slot_names = [f.name for f in SLOT] + [f.packed[0] for f in SLOT if f.packed]
    assert {f.name for f in HEADER} | set(slot_names) <= set(signals)
    data = pack(HEADER, {f.name: signals[f.name] for f in HEADER})
    for i in range(PARAMS.n):
        values = {name: signals[name][i] for name in slot_names}
        for f in SLOT:  # a signed value is a field element in the circuit: -x is r - x
            if f.signed and values[f.name] > FIELD_MODULUS // 2:
                values[f.name] -= FIELD_MODULUS
        data += pack(SLOT, values)
    assert int.from_bytes(hashlib.sha256(data).digest(), "big") >> (256 - PUBLIC_INPUT_BITS) == w.public_input
    assert 2 in w.flags  # the invalid slot's flag sits above its commitment


def test_contract_view_equals_python_on_random_rounds(chain: Chain) -> None:
    rng = random.Random(10)
    dep = deploy(chain, slots=8)
    market = dep.market
    for _ in range(2):
        n = rng.randint(1, 6)
        pid = dep.create(rounds=1, min_trainers=1, max_trainers=n)
        dep.start(pid, n)
        v_commit = rng.randrange(1, FIELD_MODULUS)
        market.open_round(pid, v_commit, dep.aggregator)
        order = rng.sample(range(n), rng.randint(0, n))
        market.submit_updates(pid, 1, [(dep.trainers[slot], CID, commitment(slot, 1, rng.randrange(2**200)))
                                       for slot in order], close_commits=True)
        commitments = market.round_state(pid, 1).commitments
        seqs = market.submission_order(pid, 1)
        for _ in range(3):
            flags = [0 if c == 0 else rng.choice([0, 1, 2, 3]) for c in commitments]
            scores = [rng.randint(-(2**63), 2**63 - 1) if c and f == 0 else 0 for c, f in zip(commitments, flags)]
            expected = public_input(statement(chain, market, pid, 1, n, v_commit), 8, commitments, flags, scores, seqs)
            assert market.public_input(pid, 1, model_out(1), flags, scores) == expected
