"""Aggregation benchmark: our pipeline against NumPy written two ways, Flower's Krum and the machine's floor.

For n updates of length d: the outlier rule of a first round (PROTOCOL §3: the public-span screen over v and the
split step h, the direction test, then Multi-Krum; the copy and floor screens off) + proven scores + average.
Baselines, timed in the same run on the same int64 updates:
- `numpy_blas`: what a competent NumPy user writes: one float64 `U @ U.T` (BLAS), distances from the Gram
  matrix, `np.sort` along the rows, `U @ [v, h]` (one BLAS call), the average as `w @ U`, int64 to float64
  conversion included;
- `numpy_loop`: the distances in a Python double loop of `np.linalg.norm`, as Flower's `_compute_distances`;
- Flower's `aggregate_krum` (multi-Krum, same k and m, plain selection) on the updates dequantized to float32.
The floor: reading U once at the bandwidth of a NumPy copy of U, or the Gram matrix's `n (n + 1) / 2 d`
multiply-adds at the float64 GEMM rate of a square product, whichever is longer. Times are the best of
`REPEATS` alternating runs. Decisions must agree: same accepted set and scores and a bit-equal model for
both NumPy baselines, the same averaged model (to 1e-6) for Flower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from aggregator.rules.clip import contribution_scores
from aggregator.rules.krum import effective_m, krum_k
from aggregator.rules.round import aggregate_round
from aggregator.rules.screen import PUBLIC_PCT
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec, dequantize

SIZES = ((10, 10_000), (50, 10_000), (100, 10_000), (10, 1_000_000), (50, 1_000_000), (100, 1_000_000))
#: Timed runs per pipeline (alternating); each figure is the best of them.
REPEATS = 5
#: Largest n^2 d for which the double-loop baseline is timed (n = 50, d = 10^6 takes ~10 s per run).
LOOP_MAX = 50 * 50 * 1_000_000


def make_inputs(n: int, d: int, f: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantized updates (honest: shared direction + noise; the first f: sign-flipped x4), v, h (the shared
    direction with noise of its own), g."""
    gen = torch.Generator().manual_seed(seed)
    common = torch.randn(d, generator=gen) * 300
    U = torch.empty((n, d), dtype=torch.int64)
    for i in range(n):
        row = common + torch.randn(d, generator=gen) * 400
        U[i] = (row * (-4 if i < f else 1)).round().clamp(-32767, 32767).to(torch.int64)
    v = (common * 100).round().clamp(-32767, 32767).to(torch.int64)
    h = ((common + torch.randn(d, generator=gen) * 300) * 50).round().clamp(-32767, 32767).to(torch.int64)
    return U, v, h, torch.zeros(d, dtype=torch.float32)


def _rule(dist: np.ndarray, a: np.ndarray, b: np.ndarray, sq: np.ndarray, vh: np.ndarray, cfg: RuleConfig) -> list[bool]:
    """PROTOCOL §3 with the copy and floor screens off, in NumPy: the public-span screen of round 1 (the share of
    each squared norm off span{v, h} against 40 % of the lower median share; `a`, `b` the inner products with v
    and h, `vh` their Gram matrix), the direction test, then Multi-Krum counted on the round."""
    n = len(a)
    (vv, vh_), (_, hh) = vh
    det = vv * hh - vh_ * vh_
    res = np.where(sq > 0, 1 - (hh * a * a - 2 * vh_ * a * b + vv * b * b) / np.where(sq > 0, det * sq, 1), 1.0)
    med = res[np.lexsort((np.arange(n), res))[(n - 1) // 2]] if n else 0.0
    members = np.flatnonzero((a > 0) & ~(100 * res < PUBLIC_PCT * med))
    n0 = len(members)
    k = min(krum_k(n, cfg.f), max(0, n0 - 1))
    sub = dist[np.ix_(members, members)]
    np.fill_diagonal(sub, np.inf)
    krum = np.sort(sub, axis=1)[:, :k].sum(axis=1) if n0 else np.zeros(0)
    accepted = [False] * n
    if n0 == 0:
        return accepted
    m_eff = max(1, n0 - (n - effective_m(n, cfg.f, cfg.m)))
    order = np.lexsort((np.arange(n0), krum))
    s_ref, chosen = krum[order[m_eff - 1]], set(order[:m_eff].tolist())
    for pos in range(n0):
        accepted[int(members[pos])] = pos in chosen or not (cfg.tau_pct == 0 or 100 * krum[pos] > cfg.tau_pct * s_ref)
    return accepted


def _finish(a: np.ndarray, accepted: list[bool], g: np.ndarray, spec: QuantSpec,
            total: np.ndarray) -> tuple[list[bool], list[int], np.ndarray]:
    """Scores and the new model from the accepted rows' sum `total` (float64, exact)."""
    scores = contribution_scores([round(float(x)) for x in a], accepted)
    new_g = (g.astype(np.float64) + total / (sum(accepted) * 2.0**spec.scale_log2)).astype(np.float32)
    return accepted, scores, new_g


def numpy_blas(U: np.ndarray, v: np.ndarray, h: np.ndarray, g: np.ndarray, cfg: RuleConfig,
               spec: QuantSpec) -> tuple[list[bool], list[int], np.ndarray]:
    """The rule as a competent NumPy user writes it: one float64 BLAS Gram matrix (exact for these integers)."""
    Uf = U.astype(np.float64)
    gram = Uf @ Uf.T
    sq = np.diag(gram)
    dist = sq[:, None] + sq[None, :] - 2 * gram
    W = np.stack([v, h]).astype(np.float64)
    a, b = (Uf @ W.T).T
    accepted = _rule(dist, a, b, sq, W @ W.T, cfg)
    return _finish(a, accepted, g, spec, np.asarray(accepted, dtype=np.float64) @ Uf)


def numpy_loop(U: np.ndarray, v: np.ndarray, h: np.ndarray, g: np.ndarray, cfg: RuleConfig,
               spec: QuantSpec) -> tuple[list[bool], list[int], np.ndarray]:
    """The same rule with Flower's distance double loop (`np.linalg.norm` per pair) on a float64 copy."""
    Uf = U.astype(np.float64)
    n = len(Uf)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            dist[i, j] = np.linalg.norm(Uf[i] - Uf[j]) ** 2
    W = np.stack([v, h]).astype(np.float64)
    a, b = Uf @ W[0], Uf @ W[1]
    accepted = _rule(dist, a, b, np.array([np.linalg.norm(row) ** 2 for row in Uf]), W @ W.T, cfg)
    return _finish(a, accepted, g, spec, Uf[accepted].sum(axis=0))


def load_flower() -> Callable[..., Any]:
    """Flower's `aggregate_krum` (flwr installed beside the venv on first use, market.ml.flower.import_flwr)."""
    from market.ml.flower import import_flwr

    return import_flwr("flwr.server.strategy.aggregate").aggregate_krum


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of one call."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_of(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Run each function `repeats` times, alternating between them; (last results, best seconds) by name."""
    results: dict[str, Any] = {}
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            results[name], t = timed(fn)
            best[name] = min(best[name], t)
    return results, best


def floor_s(U: np.ndarray, repeats: int) -> dict[str, float]:
    """The machine's floor for the pass over U: read U once (half a NumPy copy's traffic) or the Gram
    matrix's multiply-adds at the float64 GEMM rate of a square 2048 product, whichever is longer."""
    sq = np.random.default_rng(0).random((2048, 2048))
    _, t = best_of({"copy": U.copy, "gemm": lambda: sq @ sq}, repeats)
    n, d = U.shape
    bandwidth = 2 * U.nbytes / t["copy"]
    gflops = 2 * 2048**3 / t["gemm"] / 1e9
    read_s, flop_s = U.nbytes / bandwidth, n * (n + 1) * d / (gflops * 1e9)
    return {"copy_gbs": bandwidth / 1e9, "dgemm_gflops": gflops, "read_s": read_s, "flop_s": flop_s,
            "floor_s": max(read_s, flop_s)}


def bench_one(n: int, d: int, spec: QuantSpec, krum_fn: Callable[..., Any], repeats: int = REPEATS,
              loop: bool = True) -> dict[str, Any]:
    """Time ours, both NumPy baselines and Flower on one input; check that decisions agree; the floor."""
    f = max(1, n // 10)
    cfg = RuleConfig(f=f, m=0, tau_pct=0, dup_pct=0, floor_pct=0)
    U, v, h, g = make_inputs(n, d, f, seed=n * 7 + d)
    Un, vn, hn, gn = U.numpy(), v.numpy(), h.numpy(), g.numpy()
    fns: dict[str, Callable[[], Any]] = {
        "ours": lambda: aggregate_round(U, U, v, g, spec, cfg, split=h),
        "numpy_blas": lambda: numpy_blas(Un, vn, hn, gn, cfg, spec),
    }
    if loop:
        fns["numpy_loop"] = lambda: numpy_loop(Un, vn, hn, gn, cfg, spec)
    out, best = best_of(fns, repeats)
    ours = out["ours"]
    same = all(
        r[0] == ours.accepted and r[1] == ours.scores and np.array_equal(r[2], ours.new_global.numpy())
        for name, r in out.items() if name != "ours"
    )
    deq = dequantize(U, spec).numpy()
    m_eff = sum(ours.accepted)
    flower, best["flower"] = timed(lambda: krum_fn([([deq[i]], 1) for i in range(n)], f, m_eff)[0])
    same = same and bool(np.allclose(flower, deq[ours.accepted].mean(axis=0), atol=1e-6))
    return {"times": best, "same": same, "flagged": n - m_eff, **floor_s(Un, repeats)}


def run(sizes: tuple[tuple[int, int], ...] = SIZES, repeats: int = REPEATS) -> dict[str, Any]:
    """Benchmark every (n, d); keys like speedup_blas_n50_d1e6, bound_ratio_n50_d1e6, same_decisions."""
    krum_fn = load_flower()
    spec = QuantSpec()
    bench_one(4, 1_000, spec, krum_fn, 1)  # warm-up: lazy initialisation (torch, BLAS, thread pools) is not timed
    out: dict[str, Any] = {"device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads(),
                           "repeats": repeats}
    same = True
    for n, d in sizes:
        r = bench_one(n, d, spec, krum_fn, repeats, loop=n * n * d <= LOOP_MAX)
        tag = f"n{n}_d1e{len(str(d)) - 1}"
        t = r["times"]
        for name, secs in t.items():
            out[f"{name}_s_{tag}"] = secs
        out[f"speedup_blas_{tag}"] = t["numpy_blas"] / t["ours"]
        if "numpy_loop" in t:
            out[f"speedup_loop_{tag}"] = t["numpy_loop"] / t["ours"]
        out[f"speedup_flower_{tag}"] = t["flower"] / t["ours"]
        out[f"floor_s_{tag}"] = r["floor_s"]
        out[f"bound_ratio_{tag}"] = t["ours"] / r["floor_s"]
        if (n, d) == (50, 1_000_000):
            out.update({k: r[k] for k in ("copy_gbs", "dgemm_gflops", "read_s", "flop_s")})
        same = same and r["same"]
    out["same_decisions"] = same
    return out
