"""The CID Kubo gives a file: UnixFS, 256 KiB chunks, balanced DAG of 174 links, raw leaves, CIDv1 dag-pb sha2-256."""

from __future__ import annotations

import hashlib

from market.storage.cid import DAG_PB, RAW, SHA2_256, Cid, varint

CHUNK_SIZE = 262_144
MAX_LINKS = 174

# A DAG node during the build: (binary CID, file bytes below it, cumulative serialized size below it).
_Node = tuple[bytes, int, int]


def _cid_bytes(codec: int, block: bytes | memoryview) -> bytes:
    """Binary CIDv1 of one block."""
    return bytes((1, codec, SHA2_256, 32)) + hashlib.sha256(block).digest()


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return bytes((tag,)) + varint(len(payload)) + payload


def _parent(children: list[_Node]) -> _Node:
    """The dag-pb UnixFS `File` node linking `children` (links first, then Data, as go and js encode it)."""
    filesize = sum(c[1] for c in children)
    data = b"\x08\x02\x18" + varint(filesize) + b"".join(b"\x20" + varint(c[1]) for c in children)
    links = b"".join(_field(0x12, _field(0x0A, cid) + b"\x12\x00\x18" + varint(tsize)) for cid, _, tsize in children)
    block = links + _field(0x0A, data)
    return _cid_bytes(DAG_PB, block), filesize, len(block) + sum(c[2] for c in children)


def cid_of(data: bytes | bytearray | memoryview) -> Cid:
    """The CID `ipfs add --cid-version=1 --raw-leaves --chunker=size-262144` gives `data` (balanced layout)."""
    view = memoryview(data).cast("B")
    if len(view) <= CHUNK_SIZE:
        return Cid.from_bytes(_cid_bytes(RAW, view))
    level: list[_Node] = []
    for start in range(0, len(view), CHUNK_SIZE):
        chunk = view[start : start + CHUNK_SIZE]
        level.append((_cid_bytes(RAW, chunk), len(chunk), len(chunk)))
    while len(level) > 1:
        level = [_parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
    return Cid.from_bytes(level[0][0])
