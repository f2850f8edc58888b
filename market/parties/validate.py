"""Blob validation for the aggregator: every on-chain submission is accepted or rejected with a reason code."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from market.errors import BlobReason, InvalidBlob, QuantizationError, StorageError
from market.protocol.blob import DecodedUpdate, Param, UpdateHeader, decode, numel, size_cap
from market.protocol.commitment import unpack
from market.storage.base import ContentMismatch, ContentTooLarge, NodeUnreachable, Storage
from market.storage.cid import canonical

#: Every reason a submission can be rejected for.
REASONS = tuple(BlobReason)


@dataclass(frozen=True)
class Submission:
    """What the chain recorded for one trainer: its address, the blob's CID (text or binary) and the commitment."""

    trainer: str
    cid: str | bytes
    commitment: int


@dataclass(frozen=True)
class Verdict:
    """The outcome for one submission: the decoded update if accepted, else its BlobReason and what was wrong."""

    trainer: str
    cid: str
    reason: BlobReason | None
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
        return Verdict(sub.trainer, shown, BlobReason.CID_MISMATCH, f"not a fedmarket CID: {e}")
    cap = size_cap(layout) if max_size is None else max_size
    try:
        blob = storage.get(cid, max_size=cap)
    except ContentTooLarge as e:
        return Verdict(sub.trainer, cid, BlobReason.TOO_LARGE, str(e))
    except ContentMismatch as e:
        return Verdict(sub.trainer, cid, BlobReason.CID_MISMATCH, str(e))
    except NodeUnreachable:
        raise  # the aggregator's own node is down: never the trainer's fault; the daemon retries
    except StorageError as e:
        return Verdict(sub.trainer, cid, BlobReason.UNAVAILABLE, str(e))
    try:
        update = decode(blob, dataclasses.replace(expected, trainer=sub.trainer), layout, max_size=cap)
    except InvalidBlob as e:
        return Verdict(sub.trainer, cid, e.reason, e.detail)
    got = update.commitment()
    if got != sub.commitment:
        return Verdict(sub.trainer, cid, BlobReason.COMMITMENT_MISMATCH, f"blob commits to {got}, chain holds {sub.commitment}")
    return Verdict(sub.trainer, cid, None, "", update)


def validate_round(
    subs: Sequence[Submission], expected: UpdateHeader, layout: Sequence[Param], storage: Storage,
    max_size: int | None = None,
) -> list[Verdict]:
    """One verdict per submission, in order; a bad blob never stops the others."""
    return [validate_submission(s, expected, layout, storage, max_size) for s in subs]


def cured_verdict(sub: Submission, elements: Sequence[int], expected: UpdateHeader, layout: Sequence[Param]) -> Verdict:
    """The verdict on a submission its trainer cured on chain (PROTOCOL.md §5): the update is the proof view it
    published, zero outside the view (only the view is proven, so only it counts). The contract already matched
    the view to the commitment; it is checked again here, so a wrong read of the calldata is never accepted."""
    try:
        cid = str(canonical(sub.cid))
    except StorageError:
        cid = "0x" + sub.cid.hex() if isinstance(sub.cid, bytes) else str(sub.cid)
    header = dataclasses.replace(expected, trainer=sub.trainer)
    try:
        view = unpack(elements, header.view_length, header.quant)
    except QuantizationError as e:
        return Verdict(sub.trainer, cid, BlobReason.COMMITMENT_MISMATCH, f"cured view does not decode: {e}")
    flat = torch.zeros(numel(layout), dtype=torch.int64)
    flat[header.view_offset : header.view_offset + header.view_length] = view
    update = DecodedUpdate(header, tuple(p.name for p in layout), tuple(tuple(p.shape) for p in layout), flat)
    got = update.commitment()
    if got != sub.commitment:
        return Verdict(sub.trainer, cid, BlobReason.COMMITMENT_MISMATCH, f"cured view commits to {got}, chain holds {sub.commitment}")
    return Verdict(sub.trainer, cid, None, "cured on chain", update)
