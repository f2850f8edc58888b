"""zk.costmodel: the constraint polynomial, the linear step fits and the predictions, on hand-computed vectors;
zk.prover's choice of the proving key to load."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from market.errors import ConfigError, ProofError
from zk.costmodel import (
    breakdown,
    commit_blocks,
    constraint_features,
    fit_constraints,
    fit_linear,
    fit_steps,
    poseidon_blocks,
    predict,
    predict_constraints,
    sha_blocks,
    skip_reason,
)
from zk.prover import proving_key_path

#: a n^2 d + b n d + c d + p P(n, d) + e2 n^2 + e1 n + e0 + h B(n)
COEF = {"n2d": 0.5, "nd": 20.0, "d": 70.0, "poseidon_blocks": 600.0, "n2": 10.0, "n": 500.0, "1": 3000.0,
        "sha_blocks": 29000.0}
#: Compiles that determine every term: the 2 x 5 grid and two d with more Poseidon blocks.
GRID = [(n, d) for n in (2, 3, 4, 6, 8) for d in (15, 45)] + [(2, 240), (4, 240)]


def test_sha_blocks_counts_padding() -> None:
    """170 + 41 n bytes, one 1 bit and a 64-bit length, in 512-bit blocks: 5 at n = 2, 8 at n = 8, 24 at n = 32."""
    assert [sha_blocks(n) for n in (2, 8, 32)] == [5, 8, 24]


def test_poseidon_blocks() -> None:
    """Commit(d, 16) packs 15 values an element, Commit(d, 24) 10, 15 elements a block: d = 650 gives 3 and 5."""
    assert [commit_blocks(d, 16) for d in (15, 225, 226, 650)] == [1, 1, 2, 3]
    assert [commit_blocks(d, 24) for d in (150, 151, 650)] == [1, 2, 5]
    assert poseidon_blocks(8, 650) == 6 + 8 * 3 + 3 * 5  # v and h in one Commit(2d), the updates, the model views


def test_features_and_prediction_by_hand() -> None:
    """C(2, 15) = 0.5*60 + 20*30 + 70*15 + 600*(3 + 3) + 10*4 + 500*2 + 3000 + 29000*5 = 154,320."""
    assert constraint_features(2, 15) == [60, 30, 15, 6, 4, 2, 1, 5]
    assert predict_constraints(COEF, 2, 15) == 154_320
    assert breakdown(COEF, 2, 15) == {"n2d": 30, "nd": 600, "d": 1050, "poseidon": 3600, "fixed": 149_040,
                                      "total": 154_320}


def test_fit_constraints_recovers_the_polynomial() -> None:
    """Exact counts on GRID give back every coefficient."""
    samples = [(n, d, _exact(n, d)) for n, d in GRID]
    coef = fit_constraints(samples)
    for term, value in COEF.items():
        assert math.isclose(coef[term], value, rel_tol=1e-6, abs_tol=1e-6), term
    assert predict_constraints(coef, 16, 5130) == predict_constraints(COEF, 16, 5130)


def test_fit_constraints_refuses_too_few_samples() -> None:
    """Two values of n cannot separate n^2, n, 1 and the hash blocks; d <= 225 alone, the Poseidon blocks from n."""
    with pytest.raises(ConfigError, match="determine"):
        fit_constraints([(n, d, _exact(n, d)) for n, d in GRID if n in (2, 4)])
    with pytest.raises(ConfigError, match="determine"):
        fit_constraints([(n, d, _exact(n, d)) for n, d in GRID if d < 240])


def _exact(n: int, d: int) -> float:
    """C(n, d) of COEF without rounding (n^2 d / 2 is a half for odd n and d)."""
    return sum(c * f for c, f in zip(COEF.values(), constraint_features(n, d), strict=True))


def test_fit_linear() -> None:
    """y = 2x + 1 exactly; one point goes through the origin; a negative intercept falls back to the origin."""
    alpha, beta = fit_linear([1, 2, 3], [3, 5, 7])
    assert math.isclose(alpha, 2.0) and math.isclose(beta, 1.0, abs_tol=1e-12)
    assert fit_linear([2], [10]) == (5.0, 0.0)
    assert fit_linear([1, 2], [1, 3]) == (7 / 5, 0.0)
    with pytest.raises(ConfigError):
        fit_linear([], [])


def test_fit_steps_and_predict() -> None:
    """Steps fitted on two cases predict a third by C; the time and memory totals and the skip reasons."""
    cases = [{"constraints": 100_000, "prove_s": 3.0, "prove_peak_mib": 400.0},
             {"constraints": 300_000, "prove_s": 7.0, "prove_peak_mib": 1000.0, "setup_s": 30.0}]
    steps = fit_steps(cases)
    assert set(steps) == {"prove_s", "prove_peak_mib", "setup_s"}
    assert math.isclose(steps["prove_s"][0], 2e-5) and math.isclose(steps["prove_s"][1], 1.0)
    assert steps["setup_s"] == (1e-4, 0.0)
    pred = predict({"constraints": COEF, "steps": steps}, 2, 15)
    assert pred["constraints"] == 154_320
    assert pred["prove_s"] == round(2e-5 * 154_320 + 1.0, 1) == 4.1
    assert pred["setup_s"] == 15.4
    assert pred["total_s"] == 19.5
    assert pred["prove_peak_mib"] == pred["peak_mib"] == round(0.003 * 154_320 + 100, 1)
    assert skip_reason(pred, seconds_left=100, ram_mib=20_000) is None
    assert "MiB" in str(skip_reason(pred, seconds_left=100, ram_mib=500))
    assert "budget" in str(skip_reason(pred, seconds_left=10, ram_mib=20_000))


def test_proving_key_path_prefers_the_verified_zkey(tmp_path: Path) -> None:
    """Issue 14 item 4: a finalized ceremony (round.zkey, then ceremony.pk) loads from its zkey; a development
    folder from its split dev.g1.pk, else dev.pk; a zkey without ceremony.pk (finalize did not end) is never loaded."""
    (tmp_path / "dev.pk").write_bytes(b"")
    assert proving_key_path(tmp_path).name == "dev.pk"
    (tmp_path / "dev.g1.pk").write_bytes(b"")  # its split (zk.g2split), once made
    assert proving_key_path(tmp_path).name == "dev.g1.pk"
    (tmp_path / "round.zkey").write_bytes(b"")
    assert proving_key_path(tmp_path).name == "dev.g1.pk"
    (tmp_path / "ceremony.pk").write_bytes(b"")
    assert proving_key_path(tmp_path).name == "round.zkey"
    with pytest.raises(ProofError, match="no proving key"):
        proving_key_path(tmp_path / "missing")


def test_a_step_past_the_budget_is_stopped() -> None:
    """The bench stops a step (and its children) that runs past the time left, so a case too slow for the
    budget is predicted instead of holding the run."""
    from zk.bench import StepTimeout, _peak

    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"
    with pytest.raises(StepTimeout, match="stopped after"):
        _peak([sys.executable, "-c", code], timeout=1.0)
    seconds, _, _, out = _peak([sys.executable, "-c", "print('done')"], timeout=60.0)
    assert out.strip() == "done" and seconds < 60
