"""Blob validation for the aggregator: every on-chain submission is accepted or rejected with a reason code."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from market.errors import InvalidBlob, StorageError
from market.protocol.blob import DecodedUpdate, Param, UpdateHeader, decode, size_cap
from market.storage.base import ContentMismatch, ContentTooLarge, Storage
from market.storage.cid import canonical

REASONS = (
    "cid_mismatch", "unavailable", "undecodable", "wrong_chain", "wrong_contract", "wrong_project", "wrong_round",
    "wrong_trainer", "wrong_spec", "wrong_shape", "wrong_dtype", "not_finite", "out_of_range", "too_large",
    "commitment_mismatch",
)


@dataclass(frozen=True)
class Submission:
    """What the chain recorded for one trainer: its address, the blob's CID (text or binary) and the commitment."""

    trainer: str
    cid: str | bytes
    commitment: int


@dataclass(frozen=True)
class Verdict:
    """The outcome for one submission: the decoded update if accepted, else a reason code from REASONS and detail."""

    trainer: str
    cid: str
    reason: str | None
    detail: str = ""
    update: DecodedUpdate | None = None

    @property
    def accepted(self) -> bool:
        """Whether the blob passed every check."""
        return self.reason is None


def validate_submission(
    sub: Submission, expected: UpdateHeader, layout: Sequence[Param], storage: Storage, max_size: int | None = None
) -> Verdict:
    """Fetch, decode and check one blob; the trainer it must name is the on-chain submitter, not `expected.trainer`."""
    try:
        cid = str(canonical(sub.cid))
    except StorageError as e:
        shown = "0x" + sub.cid.hex() if isinstance(sub.cid, bytes) else str(sub.cid)
        return Verdict(sub.trainer, shown, "cid_mismatch", f"not a fedmarket CID: {e}")
    cap = size_cap(layout) if max_size is None else max_size
    try:
        blob = storage.get(cid, max_size=cap)
    except ContentTooLarge as e:
        return Verdict(sub.trainer, cid, "too_large", str(e))
    except ContentMismatch as e:
        return Verdict(sub.trainer, cid, "cid_mismatch", str(e))
    except StorageError as e:
        return Verdict(sub.trainer, cid, "unavailable", str(e))
    try:
        update = decode(blob, dataclasses.replace(expected, trainer=sub.trainer), layout, max_size=cap)
    except InvalidBlob as e:
        return Verdict(sub.trainer, cid, e.reason, str(e))
    got = update.commitment()
    if got != sub.commitment:
        return Verdict(sub.trainer, cid, "commitment_mismatch", f"blob commits to {got}, chain holds {sub.commitment}")
    return Verdict(sub.trainer, cid, None, "", update)


def validate_round(
    subs: Sequence[Submission], expected: UpdateHeader, layout: Sequence[Param], storage: Storage,
    max_size: int | None = None,
) -> list[Verdict]:
    """One verdict per submission, in order; a bad blob never stops the others."""
    return [validate_submission(s, expected, layout, storage, max_size) for s in subs]
