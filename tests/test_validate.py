"""Blob validation: one test per rejection reason, the accepted path, and a round with good and bad blobs mixed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from market.errors import InvalidBlob, TransientError
from market.parties.validate import REASONS, Submission, validate_round, validate_submission
from market.protocol.blob import decode, encode, size_cap
from market.protocol.quant import QuantSpec
from market.storage import IpfsStorage, LocalStorage, cid_of, cid_to_bytes
from market.storage.base import NodeUnreachable
from market.toolchain.ipfs_node import NodeHandle
from market.toolchain.process import free_port
from tests.test_blob import HEADER, LAYOUT, int_tensors, raw_blob, update

TRAINER = HEADER.trainer


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    """An empty local store."""
    return LocalStorage(tmp_path / "store")


def submit(store: LocalStorage, blob: bytes, trainer: str = TRAINER, commitment: int | None = None) -> Submission:
    """Store `blob` and make the on-chain record of it (commitment computed from the blob when it decodes)."""
    cid = store.add(blob)
    if commitment is None:
        try:
            commitment = decode(blob, dataclasses.replace(HEADER, trainer=trainer), LAYOUT).commitment()
        except InvalidBlob:
            commitment = 1
    return Submission(trainer, cid_to_bytes(cid), commitment)


def reason(store: LocalStorage, sub: Submission, **kw: object) -> str | None:
    """The verdict's reason code for `sub` against HEADER."""
    return validate_submission(sub, HEADER, LAYOUT, store, **kw).reason  # type: ignore[arg-type]


def test_accepted(store: LocalStorage) -> None:
    blob = encode(update(), HEADER, LAYOUT)
    v = validate_submission(submit(store, blob), HEADER, LAYOUT, store)
    assert v.accepted and v.reason is None and v.update is not None
    assert v.update.commitment() == decode(blob, HEADER, LAYOUT).commitment()
    assert v.cid == str(cid_of(blob))


def test_cid_mismatch(store: LocalStorage) -> None:
    sub = submit(store, encode(update(), HEADER, LAYOUT))
    assert reason(store, dataclasses.replace(sub, cid=b"\x01\x55garbage")) == "cid_mismatch"
    v0 = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"  # a valid CID, but not the canonical form
    assert reason(store, dataclasses.replace(sub, cid=v0)) == "cid_mismatch"
    path = next(store.root.rglob(str(cid_of(encode(update(), HEADER, LAYOUT)))))
    path.write_bytes(encode(update(seed=1), HEADER, LAYOUT))  # the store now serves other bytes under that CID
    assert reason(store, sub) == "cid_mismatch"


def test_unavailable(store: LocalStorage) -> None:
    sub = Submission(TRAINER, str(cid_of(b"never uploaded")), 1)
    assert reason(store, sub) == "unavailable"


def test_own_node_down_is_not_the_trainers_fault(store: LocalStorage) -> None:
    """The aggregator's own IPFS node refusing connections is transient: raised for the daemon to retry, no verdict."""
    sub = submit(store, encode(update(), HEADER, LAYOUT))
    down = IpfsStorage(f"/ip4/127.0.0.1/tcp/{free_port()}/http", timeout=2)
    with pytest.raises(NodeUnreachable):
        validate_submission(sub, HEADER, LAYOUT, down)
    assert isinstance(NodeUnreachable("x"), TransientError)


def test_undecodable(store: LocalStorage) -> None:
    assert reason(store, submit(store, b"\x00" * 64)) == "undecodable"


@pytest.mark.parametrize(
    ("change", "code"),
    [({"chain_id": 1}, "wrong_chain"), ({"marketplace": "0x" + "99" * 20}, "wrong_contract"),
     ({"project_id": 4}, "wrong_project"), ({"round": 1}, "wrong_round"),
     ({"model_spec_hash": "77" * 32}, "wrong_spec"), ({"quant": QuantSpec(16, 10)}, "wrong_spec"),
     ({"view_offset": 0}, "wrong_spec")],
)
def test_wrong_header_field(store: LocalStorage, change: dict[str, object], code: str) -> None:
    blob = encode(update(), dataclasses.replace(HEADER, **change), LAYOUT)
    assert reason(store, submit(store, blob, commitment=1)) == code


def test_wrong_trainer(store: LocalStorage) -> None:
    blob = encode(update(), HEADER, LAYOUT)  # names TRAINER, submitted by someone else (a copied blob)
    assert reason(store, submit(store, blob, trainer="0x" + "34" * 20, commitment=1)) == "wrong_trainer"


def test_wrong_shape(store: LocalStorage) -> None:
    tensors = {s.name: ("I32", s.shape, bytes(4 * int(np.prod(s.shape)))) for s in LAYOUT}
    tensors["head.bias"] = ("I32", (3,), bytes(12))
    assert reason(store, submit(store, raw_blob(tensors, HEADER.to_metadata()))) == "wrong_shape"
    del tensors["head.bias"]
    assert reason(store, submit(store, raw_blob(tensors, HEADER.to_metadata()))) == "wrong_shape"


def test_wrong_dtype(store: LocalStorage) -> None:
    assert reason(store, submit(store, int_tensors("F32", 0))) == "wrong_dtype"
    assert reason(store, submit(store, int_tensors("I16", 0))) == "wrong_dtype"


def test_not_finite(store: LocalStorage) -> None:
    tensors = {s.name: ("F32", s.shape, np.zeros(s.shape, "<f4").tobytes()) for s in LAYOUT}
    tensors["fc1.bias"] = ("F32", (4,), np.array([0, np.nan, 0, 0], "<f4").tobytes())
    assert reason(store, submit(store, raw_blob(tensors, HEADER.to_metadata()))) == "not_finite"
    tensors["fc1.bias"] = ("F64", (4,), np.array([0, np.inf, 0, 0], "<f8").tobytes())
    assert reason(store, submit(store, raw_blob(tensors, HEADER.to_metadata()))) == "not_finite"


def test_out_of_range(store: LocalStorage) -> None:
    assert reason(store, submit(store, int_tensors("I32", HEADER.quant.qmax + 1))) == "out_of_range"
    assert reason(store, submit(store, int_tensors("I64", -(2**40)))) == "out_of_range"


def test_too_large(store: LocalStorage) -> None:
    blob = encode(update(), HEADER, LAYOUT)
    assert reason(store, submit(store, blob), max_size=len(blob) - 1) == "too_large"
    assert reason(store, submit(store, b"\x00" * (size_cap(LAYOUT) + 1))) == "too_large"


def test_commitment_mismatch(store: LocalStorage) -> None:
    sub = submit(store, encode(update(), HEADER, LAYOUT))
    assert reason(store, dataclasses.replace(sub, commitment=sub.commitment + 1)) == "commitment_mismatch"
    other = decode(encode(update(seed=9), HEADER, LAYOUT), HEADER, LAYOUT).commitment()
    assert reason(store, dataclasses.replace(sub, commitment=other)) == "commitment_mismatch"


def test_every_reason_has_a_test() -> None:
    tested = {"cid_mismatch", "unavailable", "undecodable", "wrong_chain", "wrong_contract", "wrong_project",
              "wrong_round", "wrong_trainer", "wrong_spec", "wrong_shape", "wrong_dtype", "not_finite",
              "out_of_range", "too_large", "commitment_mismatch"}
    assert tested == set(REASONS)


@pytest.mark.ipfs
def test_round_over_ipfs_keeps_good_blobs(ipfs_api: NodeHandle) -> None:
    ipfs = IpfsStorage(ipfs_api.api_addr, timeout=2)
    good = encode(update(seed=3), HEADER, LAYOUT)
    other = "0x" + "56" * 20
    header2 = dataclasses.replace(HEADER, trainer=other)
    good2 = encode(update(seed=4), header2, LAYOUT)
    subs = [
        Submission(TRAINER, cid_to_bytes(ipfs.add(good)), decode(good, HEADER, LAYOUT).commitment()),
        Submission("0x" + "78" * 20, str(cid_of(b"not on the node")), 5),
        Submission("0x" + "9a" * 20, ipfs.add(b"garbage"), 5),
        Submission(other, ipfs.add(good2), decode(good2, header2, LAYOUT).commitment()),
    ]
    verdicts = validate_round(subs, HEADER, LAYOUT, ipfs)
    assert [v.reason for v in verdicts] == [None, "unavailable", "undecodable", None]
    assert verdicts[0].update is not None and verdicts[3].update is not None
