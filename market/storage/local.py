"""LocalStorage: the embedded default store, one file per CID on disk, verified on every read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from market.errors import StorageError
from market.storage.base import ContentMismatch, ContentTooLarge, Storage
from market.storage.cid import canonical, cid_of


class LocalStorage(Storage):
    """Files named by their Kubo-equal CID under `root`; nothing is ever collected, so pinning only checks presence."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, cid: str) -> Path:
        """Where the content of canonical CID `cid` lives (sharded by two characters, as flatfs does)."""
        return self.root / cid[-3:-1] / cid

    def add(self, data: bytes) -> str:
        """Write `data` atomically (temp file + rename) unless already present; returns its CID."""
        cid = str(cid_of(data))
        path = self._path(cid)
        if path.is_file() and path.stat().st_size == len(data):
            return cid
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return cid

    def get(self, cid: str, max_size: int | None = None) -> bytes:
        """Read and verify the content of `cid`."""
        c = str(canonical(cid))
        path = self._path(c)
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if max_size is not None and size > max_size:
                    raise ContentTooLarge(f"{c} holds {size} bytes, more than the {max_size} allowed")
                data = f.read()
        except FileNotFoundError:
            raise StorageError(f"{c} is not in the local store {self.root}") from None
        except OSError as e:
            raise StorageError(f"cannot read {c}: {e}") from None
        got = str(cid_of(data))
        if got != c:
            raise ContentMismatch(f"local content of {c} is corrupted (hashes to {got})")
        return data

    def has(self, cid: str) -> bool:
        """Whether a file for `cid` exists (content is verified on `get`)."""
        return self._path(str(canonical(cid))).is_file()

    def pin(self, cid: str) -> None:
        """Check `cid` is present: local content is kept until deleted by hand."""
        if not self.has(cid):
            raise StorageError(f"cannot pin {cid}: not in the local store {self.root}")
