"""The public input of a round proof, bit for bit as docs/PROTOCOL.md §6 (pure: no chain, no I/O).

The marketplace contract rebuilds the same value from what it stored (`FedMarket.roundPublicInput`);
the prover and anyone re-checking a round compute it here. Each slot carries its commitment and flag,
its int64 score and its uint8 submission rank `seq` (`FedMarket.submissionOrder`, or the `seq` of the
round's UpdateSubmitted events).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from market.errors import ProofError

#: The BN254 scalar field modulus: commitments are elements of this field.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Round flags (PROTOCOL.md §5).
FLAG_ACCEPTED, FLAG_OUTLIER, FLAG_INVALID = 0, 1, 2
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Bytes per trainer slot in the hashed data: uint256 commitment|flag, int64 score, uint8 seq.
SLOT_BYTES = 41


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
        if flag not in (FLAG_ACCEPTED, FLAG_OUTLIER, FLAG_INVALID):
            raise ProofError(f"slot {slot}: flag {flag} is not 0, 1 or 2")
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
    chain_id: int,
    marketplace: str | bytes,
    pid: int,
    round_: int,
    v_commit: int,
    n_trainers: int,
    n_slots: int,
    commitments: Sequence[int],
    flags: Sequence[int],
    scores: Sequence[int],
    seqs: Sequence[int],
) -> bytes:
    """The packed bytes of §6 whose sha256 is the public input."""
    check_round(n_trainers, n_slots, commitments, flags, scores, seqs)
    parts = [
        chain_id.to_bytes(8, "big"),
        _address_bytes(marketplace),
        pid.to_bytes(8, "big"),
        round_.to_bytes(4, "big"),
        v_commit.to_bytes(32, "big"),
        n_trainers.to_bytes(2, "big"),
    ]
    for commitment, flag, score, seq in zip(commitments, flags, scores, seqs):
        parts.append((commitment | flag << 254).to_bytes(32, "big"))
        parts.append(score.to_bytes(8, "big", signed=True))
        parts.append(seq.to_bytes(1, "big"))
    parts.append(bytes(SLOT_BYTES * (n_slots - n_trainers)))
    return b"".join(parts)


def public_input(
    chain_id: int,
    marketplace: str | bytes,
    pid: int,
    round_: int,
    v_commit: int,
    n_trainers: int,
    n_slots: int,
    commitments: Sequence[int],
    flags: Sequence[int],
    scores: Sequence[int],
    seqs: Sequence[int],
) -> int:
    """The single public input of a round proof: uint256(sha256(data)) >> 3 (PROTOCOL.md §6)."""
    data = public_input_data(
        chain_id, marketplace, pid, round_, v_commit, n_trainers, n_slots, commitments, flags, scores, seqs
    )
    return int.from_bytes(hashlib.sha256(data).digest(), "big") >> 3
