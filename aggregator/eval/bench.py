"""Aggregation benchmark: our torch pipeline vs a plain NumPy one and Flower's Krum, same inputs.

For n updates of length d: outlier rule (Multi-Krum) + proven scores + average. The NumPy
baseline (float64, exact for these integers) computes distances in a Python double loop with
`np.linalg.norm` as Flower's `_compute_distances` does; Flower's `aggregate_krum` (multi-Krum, same
k and m, plain Krum selection: tau = 0) runs on the same updates dequantized to float32. Decisions
must agree: same accepted set and scores and bit-equal model for NumPy, the same averaged model
(to 1e-6) for Flower.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from aggregator.rules.clip import contribution_scores
from aggregator.rules.round import aggregate_round
from market.paths import STATE
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec, dequantize

SIZES = ((10, 10_000), (50, 10_000), (100, 10_000), (10, 1_000_000), (50, 1_000_000), (100, 1_000_000))
FLWR = "flwr==1.42.0"


def make_inputs(n: int, d: int, f: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantized updates (honest: shared direction + noise; the first f: sign-flipped x4), v, g."""
    gen = torch.Generator().manual_seed(seed)
    common = torch.randn(d, generator=gen) * 300
    U = torch.empty((n, d), dtype=torch.int64)
    for i in range(n):
        row = common + torch.randn(d, generator=gen) * 400
        U[i] = (row * (-4 if i < f else 1)).round().clamp(-32767, 32767).to(torch.int64)
    v = (common * 100).round().clamp(-32767, 32767).to(torch.int64)
    return U, v, torch.zeros(d, dtype=torch.float32)


def numpy_pipeline(
    U: np.ndarray, v: np.ndarray, g: np.ndarray, cfg: RuleConfig, spec: QuantSpec
) -> tuple[list[bool], list[int], np.ndarray]:
    """The same rule in plain NumPy: Flower-style distance double loop, then Krum, scores, average."""
    n = len(U)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            dist[i, j] = np.linalg.norm(U[i] - U[j]) ** 2
    k = max(0, min(n - 1, n - cfg.f - 2))
    krum = [float(np.sort(np.delete(dist[i], i))[:k].sum()) for i in range(n)]
    m_eff = min(n, cfg.m if cfg.m > 0 else max(1, n - cfg.f))
    order = sorted(range(n), key=lambda i: (krum[i], i))
    s_ref = krum[order[m_eff - 1]]
    chosen = set(order[:m_eff])
    accepted = [i in chosen or not (cfg.tau_pct == 0 or 100 * krum[i] > cfg.tau_pct * s_ref) for i in range(n)]
    a = [round(float(np.dot(U[i], v))) for i in range(n)]
    scores = contribution_scores(a, accepted)
    new_g = (g.astype(np.float64) + U[accepted].sum(axis=0) / (sum(accepted) * 2.0**spec.scale_log2)).astype(np.float32)
    return accepted, scores, new_g


def load_flower() -> Callable[..., Any]:
    """Flower's `aggregate_krum`; installs flwr into .fedmarket/flwr (not the venv) when missing."""
    try:
        return importlib.import_module("flwr.server.strategy.aggregate").aggregate_krum
    except ImportError:
        target = STATE / "flwr"
        if not (target / "flwr").exists():
            print(f"installing {FLWR} into {target} for the Flower baseline", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), FLWR], check=True)
        sys.path.append(str(target))
        return importlib.import_module("flwr.server.strategy.aggregate").aggregate_krum


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of one call."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_one(n: int, d: int, spec: QuantSpec, krum_fn: Callable[..., Any]) -> dict[str, Any]:
    """Time ours, NumPy and Flower on one input; check that decisions agree."""
    f = max(1, n // 10)
    cfg = RuleConfig(f=f, m=0, tau_pct=0, dup_pct=0, floor_pct=0)
    U, v, g = make_inputs(n, d, f, seed=n * 7 + d)
    ours, t_ours = timed(lambda: aggregate_round(U, U, v, g, spec, cfg))
    Un, vn = U.numpy().astype(np.float64), v.numpy().astype(np.float64)
    (acc_np, scores_np, g_np), t_np = timed(lambda: numpy_pipeline(Un, vn, g.numpy(), cfg, spec))
    deq = dequantize(U, spec).numpy()
    m_eff = sum(ours.accepted)
    flower, t_fl = timed(lambda: krum_fn([([deq[i]], 1) for i in range(n)], f, m_eff)[0])
    same = (
        acc_np == ours.accepted
        and scores_np == ours.scores
        and np.array_equal(g_np, ours.new_global.numpy())
        and np.allclose(flower, deq[ours.accepted].mean(axis=0), atol=1e-6)
    )
    return {"ours_s": t_ours, "numpy_s": t_np, "flower_s": t_fl, "same": bool(same), "flagged": n - m_eff}


def run(sizes: tuple[tuple[int, int], ...] = SIZES) -> dict[str, Any]:
    """Benchmark every (n, d); keys like speedup_n50_d1e6, speedup_flower_n50_d1e6, same_decisions."""
    krum_fn = load_flower()
    spec = QuantSpec()
    bench_one(4, 1_000, spec, krum_fn)  # warm-up: torch's lazy initialisation is not timed
    out: dict[str, Any] = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads()}
    same = True
    for n, d in sizes:
        r = bench_one(n, d, spec, krum_fn)
        tag = f"n{n}_d1e{len(str(d)) - 1}"
        out[f"ours_s_{tag}"], out[f"numpy_s_{tag}"], out[f"flower_s_{tag}"] = r["ours_s"], r["numpy_s"], r["flower_s"]
        out[f"speedup_{tag}"] = r["numpy_s"] / r["ours_s"]
        out[f"speedup_flower_{tag}"] = r["flower_s"] / r["ours_s"]
        same = same and r["same"]
    out["same_decisions"] = same
    return out
