"""The README's main job, small: the whole marketplace on the embedded chain, with real training and proofs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_json_reports_a_conserving_fully_proven_run(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "market.cli", "demo", "--trainers", "4", "--attackers", "1", "--rounds", "2",
         "--attack", "free_rider_copy", "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=1200,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["rounds"] == 2 and figures["trainers"] == 4
    assert figures["funds_conserved"] is True
    assert figures["proofs_verified"] == 3  # round 2 twice: a withheld blob rejected, cured, re-posted
    assert figures["disputed_rounds"] == [2] and figures["cured"] == 1
    assert figures["audit_rounds_matched"] == 2  # anyone re-derives both rounds from the chain and storage
    assert figures["attackers_flagged"] == 1 and figures["honest_slashed"] == 0
    assert figures["final_accuracy"] > figures["initial_accuracy"] + 0.3
    assert "model_learned: PASS" in (tmp_path / "report.md").read_text()
    assert figures["wall_seconds"] > 0
    report = (tmp_path / "report.md").read_text()
    assert "funds_conserved: PASS" in report
    assert "copy of an update submitted before it" in report  # read back from storage, flagged by the proof
    assert "## What rests on whom" in report and "| disputable | aggregator |" in report
    assert "Round 2 was first posted with" in report
    for plot in ("accuracy.png", "payouts.png", "flags.png"):
        assert (tmp_path / plot).stat().st_size > 1000


def test_demo_rejects_impossible_counts() -> None:
    out = subprocess.run([sys.executable, "-m", "market.cli", "demo", "--trainers", "3", "--attackers", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "attackers" in out.stderr
