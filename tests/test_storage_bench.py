"""`fedmarket bench storage` produces every figure it promises (run small here; the CLI runs the full sizes)."""

from __future__ import annotations

import pytest

from market.storage import bench


@pytest.mark.ipfs
@pytest.mark.slow
def test_bench_reports_all_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "SIZES", {"1mb": 100_000, "50mb": 300_000})
    monkeypatch.setattr(bench, "REPEATS", 1)
    monkeypatch.setattr(bench, "COMMIT_PARAMS", 2_000)
    result = bench.run()
    keys = {f"{s}_{op}_mbps_{size}" for s in ("local", "ipfs") for op in ("add", "get") for size in ("1mb", "50mb")}
    assert keys | {"commit_params_per_s"} == set(result)
    assert all(v > 0 for v in result.values())
