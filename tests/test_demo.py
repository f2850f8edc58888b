"""The README's main job, small: the whole marketplace on the embedded chain, with real training and proofs.

One `fedmarket demo --json` run serves both tests: the command's own figures and report, then an independent
`fedmarket audit` of every round it posted (the command runs in this process, on a chain and store the tests keep).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import market.dev.demo as demo_module
from market.chain.client import Chain
from market.chain.marketplace import Marketplace
from market.cli import app
from market.dev.demo import DemoConfig, DemoRun
from market.parties.audit import audit_project
from market.parties.context import load_context
from market.storage import LocalStorage, Storage

pytestmark = pytest.mark.slow


@dataclass
class DemoCommand:
    """What one `fedmarket demo` run left: its exit code, what it printed (stdout and stderr, then stdout alone), its
    report folder, the run, the chain and the content store it ran on."""

    exit_code: int
    output: str
    stdout: str
    out: Path
    run: DemoRun
    chain: Chain
    storage: Storage

    @property
    def figures(self) -> dict[str, Any]:
        """The JSON object the command printed last."""
        return dict(json.loads(self.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def demo_command(tmp_path_factory: pytest.TempPathFactory) -> DemoCommand:
    """`fedmarket demo --trainers 4 --attackers 1 --rounds 2 --attack free_rider_zero --json`, on an in-process
    chain and a local store that outlive the command (run_demo makes its own otherwise)."""
    the_chain, the_store = Chain.in_process(), LocalStorage(tmp_path_factory.mktemp("demo-store"))
    out = tmp_path_factory.mktemp("demo-report")
    runs: list[DemoRun] = []
    real_run_demo = demo_module.run_demo

    def run_here(cfg: DemoConfig, chain: Chain | None = None, storage: Storage | None = None, **kw: Any) -> DemoRun:
        assert chain is None and storage is None  # the command's default: the embedded chain and store
        runs.append(real_run_demo(cfg, chain=the_chain, storage=the_store, **kw))
        return runs[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo_module, "run_demo", run_here)
        result = CliRunner().invoke(app, ["demo", "--trainers", "4", "--attackers", "1", "--rounds", "2",
                                          "--attack", "free_rider_zero", "--out", str(out), "--json"])
    assert runs, result.output
    return DemoCommand(result.exit_code, result.output, result.stdout, out, runs[0], the_chain, the_store)


def test_demo_json_reports_a_conserving_fully_proven_run(demo_command: DemoCommand) -> None:
    assert demo_command.exit_code == 0, demo_command.output[-3000:]
    figures, out = demo_command.figures, demo_command.out
    assert figures["rounds"] == 2 and figures["trainers"] == 4
    assert figures["funds_conserved"] is True
    assert figures["proofs_verified"] == 3  # round 2 twice: a withheld blob rejected, cured, re-posted
    assert figures["disputed_rounds"] == [2] and figures["cured"] == 1
    assert figures["audit_rounds_matched"] == 2  # anyone re-derives both rounds from the chain and storage
    assert figures["attackers_flagged"] == 1 and figures["honest_slashed"] == 0
    assert figures["final_accuracy"] > figures["initial_accuracy"] + 0.3
    assert figures["wall_seconds"] > 0
    assert json.loads((out / "demo.json").read_text())["funds_conserved"] is True
    report = (out / "report.md").read_text()
    assert "model_learned: PASS" in report and "funds_conserved: PASS" in report
    assert "slashed (norm below the floor)" in report  # read back from storage, flagged by the proof
    assert "## What rests on whom" in report and "| disputable | aggregator |" in report
    assert "Round 2 was first posted with" in report
    for plot in ("accuracy.png", "payouts.png", "flags.png"):
        assert (out / plot).stat().st_size > 1000


def test_every_round_of_the_demo_matches_its_audit_a_disputed_one_included(demo_command: DemoCommand) -> None:
    run = demo_command.run
    assert run.figures["audit_rounds_matched"] == 2 and run.checks["audit_matches_every_round"]
    ctx = load_context(Marketplace(demo_command.chain, run.figures["marketplace"]), demo_command.storage,
                       run.figures["project"])
    t0 = time.perf_counter()
    audit = audit_project(ctx)
    print(f"audit of the demo: {time.perf_counter() - t0:.1f} s")
    assert audit.matched == 2 and audit.findings == []
    first, second = audit.rounds
    assert all(status == "match" for r in audit.rounds for status in r.checks.values())
    assert [s.posted_flag for s in first.slots] == [0, 0, 0, 1]  # the zero update, a proven outlier
    assert (second.posts, second.cured, second.settled) == (2, [0], True)  # withheld, rejected, cured, re-posted
    assert second.slots[0].source == "cure" and second.slots[0].posted_score == second.slots[0].score != 0


def test_demo_rejects_impossible_counts() -> None:
    out = subprocess.run([sys.executable, "-m", "market.cli", "demo", "--trainers", "3", "--attackers", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "attackers" in out.stderr
