"""Content-addressed storage for update blobs and models: IPFS (Kubo RPC) or the embedded local store."""

from market.storage.base import ContentMismatch, ContentTooLarge, NodeUnreachable, Storage
from market.storage.cid import canonical, cid_from_bytes, cid_of, cid_to_bytes
from market.storage.ipfs import IpfsStorage
from market.storage.local import LocalStorage

__all__ = [
    "ContentMismatch", "ContentTooLarge", "IpfsStorage", "LocalStorage", "NodeUnreachable", "Storage",
    "canonical", "cid_from_bytes", "cid_of", "cid_to_bytes",
]
