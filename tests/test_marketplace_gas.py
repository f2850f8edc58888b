"""Gas of every FedMarket entry point against the committed snapshot (+10% fails) and the design targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from market.dev.gasbench import run

SNAPSHOT = Path(__file__).parent / "gas_snapshot.json"
TOLERANCE = 1.10
TARGETS = {
    "commitReveal": 110_000,  # commitUpdate + revealUpdate, one trainer's submission (PROTOCOL.md §3)
    "claim": 60_000,
    "withdrawStake": 60_000,
    "join": 120_000,
    "postRound_bookkeeping_per_trainer": 25_000,
}


@pytest.fixture(scope="module")
def measured() -> dict[str, object]:
    """One benchmark run on a fresh anvil."""
    return run()


@pytest.mark.anvil
def test_gas_within_ten_percent_of_snapshot(measured: dict[str, object]) -> None:
    snapshot = json.loads(SNAPSHOT.read_text())
    figures = {k: v for k, v in snapshot.items() if isinstance(v, int)}
    assert figures.keys() <= measured.keys()
    risen = {k: (v, measured[k]) for k, v in figures.items() if measured[k] > v * TOLERANCE}  # type: ignore[operator]
    assert not risen, f"gas rose more than 10% over tests/gas_snapshot.json (snapshot, now): {risen}"


@pytest.mark.anvil
def test_gas_meets_design_targets(measured: dict[str, object]) -> None:
    over = {k: (measured[k], limit) for k, limit in TARGETS.items() if measured[k] > limit}  # type: ignore[operator]
    assert not over, f"over the gas targets (measured, target): {over}"
