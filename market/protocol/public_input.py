"""The public input of a round proof, bit for bit as docs/PROTOCOL.md §6 (pure: no chain, no I/O).

The marketplace contract rebuilds the same value from what it stored (`FedMarket.roundPublicInput`);
the prover and anyone re-checking a round compute it here. The header names the round and the
commitments to M(r-2), M(r-1) and M(r) (`FedMarket.previousModelCommitment`, `modelCommitment`, the
post's). Each slot carries its commitment and flag (0-3, §5), its int64 score and its uint8 submission
rank `seq` (`FedMarket.submissionOrder`, or the `seq` of the round's UpdateSubmitted events).

`HEADER` and `SLOT` are the one description of the layout: the bytes are built from them here,
the witness names its public signals after them, and tests/test_public_input_layout.py checks the
contract's assembly offsets and the circuit's bit order against them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from market.errors import ProofError
from market.protocol.constants import FIELD_MODULUS

#: Round flags (PROTOCOL.md §5): accepted or absent; slashed (a proven low update: the stake is cut and the
#: trainer ejected); invalid blob (the aggregator's disputable claim); excluded (proven out of the average as
#: a copy, by the public-span screen, by the direction test or by Multi-Krum: unpaid for the round, never slashed or ejected).
FLAG_ACCEPTED, FLAG_OUTLIER, FLAG_INVALID, FLAG_EXCLUDED = 0, 1, 2, 3
#: Every flag a slot may carry; it fits the two bits above the commitment (§6).
FLAGS = (FLAG_ACCEPTED, FLAG_OUTLIER, FLAG_INVALID, FLAG_EXCLUDED)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Field:
    """One big-endian integer of §6's data, named by the circuit's input signal that carries it.

    `width` is in bytes; `bits` is how many low bits the value may use (254 for a field element,
    as the circuit decomposes it; default all); `signed` writes two's complement; `packed` is
    (another signal, shift) OR-ed into the same word above the value (the flag above a commitment).
    """

    name: str
    width: int
    bits: int = 0
    signed: bool = False
    packed: tuple[str, int] | None = None


#: The fields before the slots: where, which project, which round, which validation direction, the models'
#: view commitments M(r-2), M(r-1) and M(r) (PROTOCOL §3: the previous proven step, then the round's own),
#: how many trainers.
HEADER: tuple[Field, ...] = (
    Field("chainId", 8),
    Field("marketplace", 20),
    Field("projectId", 8),
    Field("round", 4),
    Field("vCommit", 32, bits=254),
    Field("modelPrev", 32, bits=254),
    Field("modelIn", 32, bits=254),
    Field("modelOut", 32, bits=254),
    Field("nTrainers", 2),
)
#: One trainer slot, N times (N = the verifier's slots): commitment | flag << 254, score, submission rank.
SLOT: tuple[Field, ...] = (
    Field("commitment", 32, bits=254, packed=("flag", 254)),
    Field("score", 8, signed=True),
    Field("seq", 1),
)
#: Bytes before the first slot, and per slot.
HEADER_BYTES = sum(f.width for f in HEADER)
SLOT_BYTES = sum(f.width for f in SLOT)
#: The public input is the top 253 bits of sha256(data), so that it is below the field modulus.
PUBLIC_INPUT_BITS = 253


def pack(fields: Sequence[Field], values: Mapping[str, int]) -> bytes:
    """The fields' values (by signal name) written as §6 lays them out."""
    out = []
    for f in fields:
        word = values[f.name]
        if f.packed is not None:
            word |= values[f.packed[0]] << f.packed[1]
        out.append(word.to_bytes(f.width, "big", signed=f.signed))
    return b"".join(out)


@dataclass(frozen=True)
class Statement:
    """Which round a proof is about and the commitments it starts from and ends at (§6's header).

    `model_prev` is M(r-2)'s commitment (the contract's previousModelCommitment: g(0)'s until round 2
    settles), `model_in` M(r-1)'s (modelCommitment), `model_out` the post's M(r).
    """

    chain_id: int
    marketplace: str | bytes
    pid: int
    round: int
    v_commit: int
    model_prev: int
    model_in: int
    model_out: int
    n_trainers: int


def header_values(st: Statement) -> dict[str, int]:
    """The header's values by signal name (the circuit's and the witness's keys)."""
    values = (st.chain_id, int.from_bytes(_address_bytes(st.marketplace), "big"), st.pid, st.round, st.v_commit,
              st.model_prev, st.model_in, st.model_out, st.n_trainers)
    return {f.name: v for f, v in zip(HEADER, values, strict=True)}


def _address_bytes(address: str | bytes) -> bytes:
    """20 raw bytes of an address given as hex text (checksummed or not) or bytes."""
    raw = address if isinstance(address, bytes) else bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ProofError(f"an address has 20 bytes, got {len(raw)}")
    return raw


def check_round(
    n_trainers: int,
    n_slots: int,
    commitments: Sequence[int],
    flags: Sequence[int],
    scores: Sequence[int],
    seqs: Sequence[int],
) -> None:
    """Raise ProofError if the round's data breaks a rule the contract enforces or guarantees (§5, §6).

    Submission ranks are what the contract records: 0..255, 0 for a slot without a submission and
    distinct among the slots with one.
    """
    if not 0 <= n_trainers <= n_slots:
        raise ProofError(f"{n_trainers} trainers do not fit the circuit's {n_slots} slots")
    for label, values in (("commitments", commitments), ("flags", flags), ("scores", scores), ("seqs", seqs)):
        if len(values) != n_trainers:
            raise ProofError(f"{label}: expected {n_trainers} entries (one per joined trainer), got {len(values)}")
    ranked: dict[int, int] = {}
    for slot, (commitment, flag, score, seq) in enumerate(zip(commitments, flags, scores, seqs)):
        if not 0 <= commitment < FIELD_MODULUS:
            raise ProofError(f"slot {slot}: commitment is not a field element")
        if flag not in FLAGS:
            raise ProofError(f"slot {slot}: flag {flag} is not 0, 1, 2 or 3")
        if not _INT64_MIN <= score <= _INT64_MAX:
            raise ProofError(f"slot {slot}: score {score} does not fit int64")
        if commitment == 0 and (flag or score):
            raise ProofError(f"slot {slot}: a slot without a submission needs flag 0 and score 0")
        if flag and score:
            raise ProofError(f"slot {slot}: a flagged slot needs score 0")
        if not 0 <= seq <= 255:
            raise ProofError(f"slot {slot}: submission rank {seq} does not fit uint8")
        if commitment == 0 and seq:
            raise ProofError(f"slot {slot}: a slot without a submission needs submission rank 0, got {seq}")
        if commitment:
            if seq in ranked:
                raise ProofError(f"slot {slot}: submission rank {seq} is also slot {ranked[seq]}'s")
            ranked[seq] = slot


def public_input_data(
    st: Statement,
    n_slots: int,
    commitments: Sequence[int],
    flags: Sequence[int],
    scores: Sequence[int],
    seqs: Sequence[int],
) -> bytes:
    """The packed bytes of §6 whose sha256 is the public input."""
    check_round(st.n_trainers, n_slots, commitments, flags, scores, seqs)
    for label, c in (("v", st.v_commit), ("model prev", st.model_prev), ("model in", st.model_in),
                     ("model out", st.model_out)):
        if not 0 <= c < FIELD_MODULUS:
            raise ProofError(f"the {label} commitment is not a field element")
    parts = [pack(HEADER, header_values(st))]
    for commitment, flag, score, seq in zip(commitments, flags, scores, seqs):
        parts.append(pack(SLOT, {"commitment": commitment, "flag": flag, "score": score, "seq": seq}))
    parts.append(bytes(SLOT_BYTES * (n_slots - st.n_trainers)))
    return b"".join(parts)


def public_input(
    st: Statement,
    n_slots: int,
    commitments: Sequence[int],
    flags: Sequence[int],
    scores: Sequence[int],
    seqs: Sequence[int],
) -> int:
    """The single public input of a round proof: uint256(sha256(data)) >> 3 (PROTOCOL.md §6)."""
    data = public_input_data(st, n_slots, commitments, flags, scores, seqs)
    return int.from_bytes(hashlib.sha256(data).digest(), "big") >> (256 - PUBLIC_INPUT_BITS)
