"""IpfsStorage: blobs on any IPFS node through the Kubo RPC API (ipfshttpclient), with timeouts on every call."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ipfshttpclient
import ipfshttpclient.exceptions as ipfs_errors

from market.errors import ConfigError, StorageError, StorageUnavailable
from market.storage.base import ContentMismatch, ContentTooLarge, NodeUnreachable, Storage
from market.storage.cid import CHUNK_SIZE, canonical, cid_of, parse

#: How js-ipfs and Kubo say that a request ran out of its `timeout` option (their errors carry no type).
_NODE_TIMEOUTS = ("request timed out", "context deadline exceeded")


def _as_multiaddr(url: str) -> str | None:
    """The multiaddr of an http(s)://host:port URL (what a user often types for the API), else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        return None
    proto = "ip6" if ":" in parts.hostname else "ip4" if parts.hostname.replace(".", "").isdigit() else "dns"
    return f"/{proto}/{parts.hostname}/tcp/{parts.port}/{parts.scheme}"


class IpfsStorage(Storage):
    """A Kubo-compatible node at `api_addr` (multiaddr); `timeout` seconds bound every call, client and server side."""

    def __init__(self, api_addr: str = "/ip4/127.0.0.1/tcp/5001/http", timeout: float = 30.0) -> None:
        self.api_addr = api_addr
        self.timeout = timeout
        # connect() refuses current daemons by version; the constructor does not check.
        try:
            self._client = ipfshttpclient.Client(api_addr)
        except ipfs_errors.AddressError:
            raise ConfigError(f"IPFS API address {api_addr!r} is not a multiaddr; write it as "
                              f"{_as_multiaddr(api_addr) or '/ip4/127.0.0.1/tcp/5001/http'}") from None

    def _call(self, what: str, fn: Callable[..., Any], *args: object, opts: dict[str, object] | None = None,
              **kwargs: object) -> Any:
        """One RPC bounded by the node (`timeout` option) and by the client, with client errors as StorageError."""
        opts = {**(opts or {}), "timeout": f"{self.timeout:g}s"}
        try:
            with warnings.catch_warnings():
                # ipfshttpclient 0.7.0 passes urllib3 a `strict` argument that current urllib3 warns about.
                warnings.filterwarnings("ignore", message="The 'strict' parameter", category=FutureWarning)
                return fn(*args, opts=opts, timeout=self.timeout + 5, **kwargs)
        except ipfs_errors.ConnectionError as e:
            raise NodeUnreachable(f"IPFS node at {self.api_addr} is unreachable: {e}") from None
        except ipfs_errors.TimeoutError:
            raise StorageUnavailable(f"{what}: no answer from {self.api_addr} within {self.timeout:g} s") from None
        except ipfs_errors.Error as e:
            if any(text in str(e) for text in _NODE_TIMEOUTS):  # the node gave up at our `timeout` option
                raise StorageUnavailable(f"{what}: no answer from {self.api_addr} within {self.timeout:g} s ({e})") from None
            raise StorageError(f"{what} failed on {self.api_addr}: {e}") from None

    def add(self, data: bytes) -> str:
        """Add and pin `data` as CIDv1 with raw leaves; the node's CID must equal the one computed here."""
        res = self._call("add", self._client.add, io.BytesIO(data), cid_version=1, raw_leaves=True, pin=True,
                         chunker=f"size-{CHUNK_SIZE}")
        got, want = parse(str(res["Hash"])), cid_of(data)
        if got != want:
            raise StorageError(f"node at {self.api_addr} stored the blob as {got}, not the canonical {want}")
        return str(want)

    def get(self, cid: str, max_size: int | None = None) -> bytes:
        """Fetch `cid` (reading at most `max_size` + 1 bytes) and verify it against the CID."""
        c = canonical(cid)
        data: bytes = self._call(f"get {c}", self._client.cat, str(c),
                                 opts=None if max_size is None else {"length": max_size + 1})
        if max_size is not None and len(data) > max_size:
            raise ContentTooLarge(f"{c} holds more than the {max_size} bytes allowed")
        got = cid_of(data)
        if got != c:
            raise ContentMismatch(f"node at {self.api_addr} returned content for {c} that hashes to {got}")
        return data

    def has(self, cid: str) -> bool:
        """Whether the node produces the root block of `cid` within the timeout (a missing one costs the timeout)."""
        c = str(canonical(cid))
        try:
            self._call(f"stat {c}", self._client.block.stat, c)
        except NodeUnreachable:
            raise
        except StorageError:
            return False
        return True

    def pin(self, cid: str) -> None:
        """Pin `cid` recursively on the node."""
        c = str(canonical(cid))
        self._call(f"pin {c}", self._client.pin.add, c)
