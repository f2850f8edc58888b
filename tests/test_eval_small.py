"""The evaluation pipeline end to end on a tiny configuration (the full run is `fedmarket eval`)."""

from __future__ import annotations

import json

from aggregator.eval.evaluate import EvalConfig, RunLog, default_rules, reward_share, run, run_seeds
from market.protocol.manifest import HyperParams


def test_reward_share() -> None:
    log = RunLog(0.9, [0.9], [[False] * 3], [[10, -5, 30], [0, 0, 0]], attackers=[0])
    assert reward_share(log) == (10 / 40 + 0.0) / 2


def test_tiny_eval_writes_figures_and_plots(tmp_path) -> None:
    rules = {k: v for k, v in default_rules().items() if k in ("multi_krum", "none")}
    cfg = EvalConfig(
        rounds=2, counts=(2, 3), attacks=("scaling", "free_rider_zero"), hp=HyperParams(2, 16, 1.0),
        shapley_n=4, rules=rules,
    )
    out = run(tmp_path, cfg)
    assert {"spearman_rho", "max_accuracy_drop_points_3of10", "detection_recall", "detection_precision"} <= set(out)
    assert json.loads((tmp_path / "eval.json").read_text())["clean_accuracy"] == out["clean_accuracy"]
    assert all((tmp_path / f).stat().st_size > 0 for f in ("accuracy.png", "curves.png", "shapley.png"))
    krum = out["rules"]["multi_krum"]
    assert krum["detection"]["scaling"]["recall"] == 1.0  # x10 updates are always flagged
    assert out["rules"]["none"]["detection_all"]["recall"] == 0.0  # FedAvg flags nobody
    assert krum["free_rider_reward_share"]["free_rider_zero"] == 0.0  # zero updates earn nothing
    assert out["shapley"]["graded_quality"]["exact_shapley_evaluations"] == 2 * 16


def test_run_seeds_reports_the_worst_seed(tmp_path) -> None:
    rules = {k: v for k, v in default_rules().items() if k == "multi_krum"}
    cfg = EvalConfig(rounds=1, counts=(3,), attacks=("free_rider_copy",), hp=HyperParams(1, 16, 1.0), shapley_n=3, rules=rules)
    out = run_seeds(tmp_path, (0, 1), cfg)
    assert set(out["per_seed"]) == {"0", "1"} and (tmp_path / "seed1" / "eval.json").exists()
    for key in ("detection_recall", "spearman_rho"):
        assert out[key] == min(s[key] for s in out["per_seed"].values())
    assert out["max_accuracy_drop_points_3of10"] == max(s["max_accuracy_drop_points_3of10"] for s in out["per_seed"].values())
    assert out["detection_recall"] == 1.0  # copiers submit after their victims and are flagged
