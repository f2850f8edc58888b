"""CIDs: parse any common text form, print canonical CIDv1 base32, convert to and from the binary form kept on chain."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from market.errors import StorageError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def varint(n: int) -> bytes:
    """Unsigned LEB128, as multiformats and protobuf use."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at `pos`; returns (value, next position)."""
    value = shift = 0
    while pos < len(buf) and shift <= 63:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise StorageError("truncated or oversized varint in CID")


def _b58decode(text: str) -> bytes:
    """Bitcoin-alphabet base58 to bytes (leading '1's are zero bytes)."""
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise StorageError(f"invalid base58 character {c!r} in CID")
        n = n * 58 + _B58_INDEX[c]
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _b32decode(text: str) -> bytes:
    """RFC 4648 base32 without padding, lower or upper case."""
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError as e:
        raise StorageError(f"invalid base32 in CID: {e}") from None


@dataclass(frozen=True)
class Cid:
    """A content identifier: version, content codec and multihash (hash code + digest)."""

    version: int
    codec: int
    hash_code: int
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse CIDv0 (`Qm...`) or CIDv1 in base32 (`b...`) or base58btc (`z...`); StorageError if malformed."""
        if not isinstance(text, str) or not text:
            raise StorageError(f"not a CID: {text!r}")
        if len(text) == 46 and text.startswith("Qm"):
            return cls.from_bytes(_b58decode(text))
        prefix, body = text[0], text[1:]
        if prefix in "bB":
            return cls.from_bytes(_b32decode(body))
        if prefix == "z":
            return cls.from_bytes(_b58decode(body))
        raise StorageError(f"unsupported CID encoding: {text!r}")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Cid:
        """Binary CID (v1: version, codec, multihash; v0: bare sha2-256 multihash) to a Cid."""
        raw = bytes(raw)
        if len(raw) == 34 and raw[:2] == b"\x12\x20":
            return cls(0, DAG_PB, SHA2_256, raw[2:])
        version, pos = _read_varint(raw, 0)
        if version != 1:
            raise StorageError(f"unsupported CID version {version}")
        codec, pos = _read_varint(raw, pos)
        hash_code, pos = _read_varint(raw, pos)
        size, pos = _read_varint(raw, pos)
        digest = raw[pos:]
        if len(digest) != size or size == 0:
            raise StorageError(f"CID digest length {len(digest)} does not match its declared {size}")
        return cls(1, codec, hash_code, digest)

    def to_bytes(self) -> bytes:
        """The binary form (what the marketplace contract stores)."""
        mh = varint(self.hash_code) + varint(len(self.digest)) + self.digest
        return mh if self.version == 0 else varint(1) + varint(self.codec) + mh

    def v1(self) -> Cid:
        """The same content address as CIDv1."""
        return Cid(1, self.codec, self.hash_code, self.digest)

    def __str__(self) -> str:
        """CIDv1 as multibase base32 (lower case, no padding), as Kubo prints it."""
        return "b" + base64.b32encode(self.v1().to_bytes()).decode().lower().rstrip("=")


def canonical(cid: str | bytes | Cid) -> Cid:
    """A fedmarket CID (CIDv1, sha2-256, raw or dag-pb) from text, binary or Cid; StorageError otherwise."""
    if isinstance(cid, Cid):
        c = cid
    elif isinstance(cid, bytes | bytearray):
        c = Cid.from_bytes(cid)
    else:
        c = Cid.parse(cid)
    if c.version != 1 or c.hash_code != SHA2_256 or len(c.digest) != 32 or c.codec not in (RAW, DAG_PB):
        raise StorageError(f"{c} is not a CIDv1 sha2-256 raw/dag-pb CID")
    return c


def cid_to_bytes(cid: str) -> bytes:
    """CID text to the binary form stored on chain (36 bytes for fedmarket CIDs)."""
    return Cid.parse(cid).to_bytes()


def cid_from_bytes(raw: bytes) -> str:
    """Binary CID (as stored on chain) to canonical CIDv1 base32 text."""
    return str(Cid.from_bytes(raw))
