"""`fedmarket bench storage`: add/get throughput of LocalStorage and a js-ipfs node, and commitment hashing speed."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch

from market.protocol.commitment import commit
from market.protocol.quant import QuantSpec
from market.storage.base import Storage
from market.storage.ipfs import IpfsStorage
from market.storage.local import LocalStorage
from market.toolchain.ipfs_node import start_node, stop_node
from market.toolchain.process import free_port

SIZES = {"1mb": 1_000_000, "50mb": 50_000_000}
REPEATS = 3
COMMIT_PARAMS = 90_000


def _throughput(prefix: str, store: Storage) -> dict[str, float]:
    """MB/s (10**6 bytes), best of REPEATS, of add (fresh random bytes each time) and get (verified) per size."""
    out: dict[str, float] = {}
    for label, size in SIZES.items():
        add_s, get_s, cid = [], [], ""
        for _ in range(REPEATS):
            data = os.urandom(size)
            t0 = time.perf_counter()
            cid = store.add(data)
            add_s.append(time.perf_counter() - t0)
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            store.get(cid)
            get_s.append(time.perf_counter() - t0)
        out[f"{prefix}_add_mbps_{label}"] = size / 1e6 / min(add_s)
        out[f"{prefix}_get_mbps_{label}"] = size / 1e6 / min(get_s)
    return out


def _commit_rate() -> float:
    """PROTOCOL §2 commitment speed, parameters per second at the default 16-bit quantization."""
    spec = QuantSpec()
    q = torch.randint(-spec.qmax, spec.qmax + 1, (COMMIT_PARAMS,), generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    commit(q, spec)
    return COMMIT_PARAMS / (time.perf_counter() - t0)


def run() -> dict[str, Any]:
    """All storage figures, measured in this run; the js-ipfs node is started for the bench and stopped after."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fedmarket-bench-") as tmp:
        result.update(_throughput("local", LocalStorage(os.path.join(tmp, "local"))))
        node = start_node(os.path.join(tmp, "node"), api_port=free_port())
        try:
            result.update(_throughput("ipfs", IpfsStorage(node.api_addr, timeout=120)))
        finally:
            stop_node(node)
    result["commit_params_per_s"] = _commit_rate()
    return result
