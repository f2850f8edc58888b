"""Proving cost model (issue 14): constraints of RoundProof(n, d) from compile-only counts, and the time and
memory of each proving step from the constraint count, fitted to measured cases (pure: no compile, no I/O).

Constraints: C(n, d) = a n^2 d + b n d + c d + p P(n, d) + e(n), with P(n, d) the Poseidon(16) blocks of the
circuit's §2 commitments (one every 225 values of v and h together and of each update, every 150 of the three model
views: in all ~(n + 2) d / 225 + d / 50, a step function that compiles at small d cannot see) and the fixed part
e(n) = e2 n^2 + e1 n + e0 + h B(n), B(n) the 64-byte SHA-256 blocks of PROTOCOL §6's data (HEADER_BYTES + n
SLOT_BYTES bytes). Fitted by least squares on relative errors, so that small compiles and real cases count alike.
Each step's seconds or MiB: y = alpha C + beta, least squares over the measured cases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from market.errors import ConfigError, TooManySlots
from market.protocol.public_input import HEADER_BYTES, SLOT_BYTES

#: Coefficients of C(n, d), in the order of `constraint_features`.
CONSTRAINT_TERMS = ("n2d", "nd", "d", "poseidon_blocks", "n2", "n", "1", "sha_blocks")
#: The quantization width of the cases (CircuitParams.bits): values per Poseidon input element depend on it.
BITS = 16
#: The figures of a case that the model predicts from its constraint count (seconds, then MiB).
STEPS = ("compile_s", "setup_s", "key_load_s", "witness_s", "prove_s", "compile_peak_mib", "setup_peak_mib",
         "prove_peak_mib")
#: The committed model that `fedmarket bench prove --predict` reads; `fedmarket bench prove` rewrites it.
MODEL_PATH = Path(__file__).resolve().parent / "costmodel.json"
#: The most constraints npm circom2 (WASI, a 4 GiB address space) is trusted to compile: it compiled 1,271,905
#: (n = 4, d = 5130) and trapped at 1,747,512 (n = 32, d = 650) and 3,573,071; zk.build compiles larger natively.
WASM_MAX_CONSTRAINTS = 1_500_000


def sha_blocks(n: int) -> int:
    """64-byte SHA-256 blocks of the §6 data for n slots (the message, one 1 bit and the 64-bit length)."""
    return (8 * (HEADER_BYTES + n * SLOT_BYTES) + 65 + 511) // 512


def commit_blocks(d: int, bits: int) -> int:
    """Poseidon(16) blocks of round.circom's Commit(d, bits): 252 // bits values an element, 15 elements a block."""
    elems = -(-d // (252 // bits))
    return max(1, -(-elems // 15))


def poseidon_blocks(n: int, d: int, bits: int = BITS) -> int:
    """Poseidon blocks of the round circuit's commitments: v and h in one (2d values) and the n updates at `bits`,
    the three model views (g(r-2), g(r-1), g(r)) at min(bits + 8, 24) bits."""
    return commit_blocks(2 * d, bits) + n * commit_blocks(d, bits) + 3 * commit_blocks(d, min(bits + 8, 24))


def constraint_features(n: int, d: int) -> list[float]:
    """The terms of C(n, d) in the order of CONSTRAINT_TERMS."""
    return [n * n * d, n * d, d, poseidon_blocks(n, d), n * n, n, 1, sha_blocks(n)]


def lstsq(rows: Sequence[Sequence[float]], ys: Sequence[float]) -> list[float]:
    """Least-squares solution of rows @ x = ys; ConfigError when the samples do not determine x."""
    a, y = np.asarray(rows, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if a.ndim != 2 or len(a) != len(y):
        raise ConfigError("a fit needs one value per sample")
    # Scale the columns to unit norm so that n^2 d (~1e6) and 1 are solved at the same precision.
    scale = np.linalg.norm(a, axis=0)
    if np.any(scale == 0):
        raise ConfigError("a fit term is zero in every sample")
    x, _, rank, _ = np.linalg.lstsq(a / scale, y, rcond=None)
    if rank < a.shape[1]:
        raise ConfigError(f"{len(y)} samples determine {rank} of {a.shape[1]} terms: add samples of other n or d")
    return [float(v) for v in x / scale]


def fit_constraints(samples: Sequence[tuple[int, int, float]]) -> dict[str, float]:
    """Coefficients of C(n, d) from (n, d, constraints) samples, minimising relative errors (at least 4 distinct
    n, 2 distinct d and 2 different Poseidon block counts at one n)."""
    coef = lstsq([[f / c for f in constraint_features(n, d)] for n, d, c in samples], [1.0] * len(samples))
    return dict(zip(CONSTRAINT_TERMS, coef, strict=True))


def breakdown(coef: Mapping[str, float], n: int, d: int) -> dict[str, int]:
    """C(n, d) split into its n^2 d, n d, d, Poseidon-commitment (~n d / 225) and fixed (d-independent: e(n))
    parts, and their total."""
    terms = dict(zip(CONSTRAINT_TERMS, constraint_features(n, d), strict=True))
    part = {t: coef[t] * terms[t] for t in CONSTRAINT_TERMS}
    out = {"n2d": round(part["n2d"]), "nd": round(part["nd"]), "d": round(part["d"]),
           "poseidon": round(part["poseidon_blocks"]),
           "fixed": round(part["n2"] + part["n"] + part["1"] + part["sha_blocks"])}
    out["total"] = sum(out.values())
    return out


def predict_constraints(coef: Mapping[str, float], n: int, d: int) -> int:
    """C(n, d) from the fitted coefficients."""
    return breakdown(coef, n, d)["total"]


def fit_linear(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(alpha, beta) of y = alpha x + beta by least squares; through the origin with one point, or when the
    free fit's intercept is negative (a step never takes negative time or memory)."""
    if not xs or len(xs) != len(ys):
        raise ConfigError("a linear fit needs one or more (x, y) pairs")
    if len(set(xs)) >= 2:
        alpha, beta = lstsq([[x, 1.0] for x in xs], ys)
        if beta >= 0 and alpha >= 0:
            return alpha, beta
    return sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs), 0.0


def fit_steps(cases: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """(alpha, beta) per step of STEPS from measured cases ({"constraints": C, step: value, ...})."""
    out: dict[str, tuple[float, float]] = {}
    for step in STEPS:
        pts = [(float(c["constraints"]), float(c[step])) for c in cases if step in c]
        if pts:
            out[step] = fit_linear([x for x, _ in pts], [y for _, y in pts])
    return out


def predict(model: Mapping[str, object], n: int, d: int) -> dict[str, object]:
    """Constraints (with their breakdown) and every step's figure for RoundProof(n, d), before building it; a case that
    cannot be built (n below 2 or above TooManySlots.MAX_SLOTS, d below 1) is a ConfigError, not a figure."""
    if not (2 <= n <= TooManySlots.MAX_SLOTS and d >= 1):
        raise ConfigError(f"no round circuit has n = {n} slots and d = {d} values: n is 2..{TooManySlots.MAX_SLOTS}, d >= 1")
    coef: Mapping[str, float] = model["constraints"]  # type: ignore[assignment]
    steps: Mapping[str, Sequence[float]] = model["steps"]  # type: ignore[assignment]
    parts = breakdown(coef, n, d)
    figures = {step: round(alpha * parts["total"] + beta, 1) for step, (alpha, beta) in steps.items()}
    return {"n": n, "d": d, "constraints": parts["total"],
            "breakdown": {k: v for k, v in parts.items() if k != "total"}, **figures,
            "total_s": round(sum(v for s, v in figures.items() if s.endswith("_s")), 1),
            "peak_mib": max((v for s, v in figures.items() if s.endswith("_mib")), default=0.0)}


def skip_reason(pred: Mapping[str, object], seconds_left: float, ram_mib: float) -> str | None:
    """Why a predicted case cannot run here (memory above `ram_mib`, time above `seconds_left`), or None."""
    if float(pred["peak_mib"]) > ram_mib:  # type: ignore[arg-type]
        return f"predicted peak {pred['peak_mib']:.0f} MiB exceeds the {ram_mib:.0f} MiB allowed on this machine"
    if float(pred["total_s"]) > seconds_left:  # type: ignore[arg-type]
        return f"predicted {pred['total_s']:.0f} s exceeds the {max(seconds_left, 0):.0f} s left of the budget"
    return None


def load_model(path: Path = MODEL_PATH) -> dict[str, object]:
    """The committed model (constraint coefficients and per-step fits); ConfigError when it is missing."""
    data: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    if not {"constraints", "steps"} <= data.keys():
        raise ConfigError(f"no fitted cost model at {path}: run `fedmarket bench prove` once")
    return data
