"""CIDs: `multiformats` parses and prints them, `aleph-cid` computes the one Kubo gives a file.

fedmarket's canonical CID is CIDv1, sha2-256, codec raw (files up to one chunk) or dag-pb (a UnixFS file
of 256 KiB raw-leaf chunks in a balanced DAG of 174 links), printed in base32: what
`ipfs add --cid-version=1 --raw-leaves --chunker=size-262144` prints on Kubo and js-ipfs.
"""

from __future__ import annotations

import aleph_cid
from multiformats import CID

from market.errors import StorageError

#: The UnixFS chunk size of the canonical layout (Kubo's default; aleph-cid's fixed one), passed to the node on add.
CHUNK_SIZE = 262_144
_CODECS = ("raw", "dag-pb")


def parse(cid: str | bytes | CID) -> CID:
    """Any CID: text (CIDv0 `Qm...`, or CIDv1 in any multibase), binary, or a CID; StorageError if malformed."""
    if isinstance(cid, CID):
        return cid
    if not isinstance(cid, str | bytes) or not cid:
        raise StorageError(f"not a CID: {cid!r}")
    try:
        return CID.decode(cid if isinstance(cid, str) else bytes(cid))
    except (ValueError, KeyError) as e:
        raise StorageError(f"not a CID: {cid!r} ({e})") from None


def canonical(cid: str | bytes | CID) -> CID:
    """A fedmarket CID (CIDv1, sha2-256, raw or dag-pb), set to print as base32; StorageError otherwise."""
    c = parse(cid)
    if c.version != 1 or c.hashfun.name != "sha2-256" or len(c.raw_digest) != 32 or c.codec.name not in _CODECS:
        raise StorageError(f"{c} is not a CIDv1 sha2-256 raw/dag-pb CID")
    return c.set(base="base32")


def cid_to_bytes(cid: str) -> bytes:
    """CID text to the binary form stored on chain (36 bytes for fedmarket CIDs)."""
    return bytes(parse(cid))


def cid_from_bytes(raw: bytes) -> str:
    """Binary CID (as stored on chain) to CIDv1 base32 text (a CIDv0 is given as the same content's CIDv1)."""
    return str(parse(raw).set(version=1, base="base32"))


def cid_of(data: bytes) -> CID:
    """The canonical CID of `data`: what Kubo's `add --cid-version=1 --raw-leaves` gives it (see the module doc)."""
    hasher = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    return CID.decode(hasher.finalize())
