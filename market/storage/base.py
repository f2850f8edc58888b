"""The storage interface both back ends implement, and the errors callers tell apart."""

from __future__ import annotations

from abc import ABC, abstractmethod

from market.errors import StorageError, StorageUnavailable


class ContentMismatch(StorageError):
    """Bytes read back do not hash to the CID they were asked for (corruption or a lying node)."""


class NodeUnreachable(StorageUnavailable):
    """The storage node did not accept a connection (transient: the daemons retry it)."""


class ContentTooLarge(StorageError):
    """The content is larger than the caller's `max_size`; it was not read in full."""


class Storage(ABC):
    """Content-addressed blob store; every CID it hands out is canonical CIDv1 base32 (Kubo-equal)."""

    @abstractmethod
    def add(self, data: bytes) -> str:
        """Store `data` (pinned) and return its CID."""

    @abstractmethod
    def get(self, cid: str, max_size: int | None = None) -> bytes:
        """The bytes of `cid`, checked against it; ContentTooLarge beyond `max_size`, StorageError if unavailable."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """Whether `cid` can be read from this store now."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep `cid` from garbage collection; StorageError if it is not available."""
