"""Gas of every FedMarket entry point against the committed snapshot (+10% fails) and the design targets.

Regenerate the snapshot from a run of market.dev.gasbench.run (what `fedmarket bench gas` prints)
when a change moves the figures on purpose.
"""

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
    # A cure of the digits example's view (650 values at 16 bits): 3 Poseidon16 blocks of at most 300k
    # (tests/test_poseidon_contract.py) plus FedMarket's checks.
    "cure": 1_000_000,
    # A replay challenge publishes two such views: 6 Poseidon16 blocks plus the distance over 1,300 values.
    "challengeReplay": 2_000_000,
    # Whoever unlocks an uncured disputable round pays this, typically a trainer: it must stay cheap.
    "finalizeRound_n4": 150_000,
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
