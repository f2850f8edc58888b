"""Node safety checks that need a chain: a project whose round verifier was built for other settings."""

from __future__ import annotations

import pytest

from market.chain.client import Chain
from market.chain.marketplace import Marketplace, ProjectParams, artifacts
from market.ml.tasks import get_task
from market.parties.context import ProjectContext, verifier_mismatches
from market.parties.project_file import load_project_file
from tests.test_product import EXAMPLE


def _context(chain: Chain, circuit: list[int]) -> ProjectContext:
    """A project on a fresh marketplace whose RoundVerifier claims the `circuit` parameters."""
    owner = chain.accounts[0]
    market = Marketplace.deploy(chain, owner)
    verifier = chain.deploy(artifacts()["RoundVerifier"], owner.address, circuit, sender=owner)
    params = ProjectParams.make(aggregator=chain.accounts[1].address, verifier=verifier.address,
                                join_deadline=chain.now() + 3600, max_trainers=4, krum_f=1, tau_pct=150,
                                view_len=650)
    pid = market.create_project(params, 10**18, owner)
    pf = load_project_file(EXAMPLE)
    created = market.events("ProjectCreated", pid)[0]
    return ProjectContext(market, storage=None, pid=pid, params=market.project(pid).params,  # type: ignore[arg-type]
                          manifest=pf.manifest, task=get_task("digits-softmax"), created=created)


def test_a_fitting_verifier_has_no_mismatch() -> None:
    assert verifier_mismatches(_context(Chain.in_process(), [4, 650, 16, 1, 0, 150, 5, 10])) == []


@pytest.mark.parametrize(
    ("circuit", "what"),
    [
        ([4, 64, 16, 1, 0, 150, 5, 10], "viewLen"),
        ([4, 650, 16, 2, 0, 150, 5, 10], "krumF"),
        ([4, 650, 16, 1, 0, 0, 5, 10], "tauPct"),
        ([4, 650, 16, 1, 0, 150, 0, 10], "dupPct"),
        ([4, 650, 16, 1, 0, 150, 5, 0], "floorPct"),
    ],
)
def test_a_verifier_for_other_settings_is_named(circuit: list[int], what: str) -> None:
    problems = verifier_mismatches(_context(Chain.in_process(), circuit))
    assert len(problems) == 1 and what in problems[0]


def test_the_round_verifier_exposes_every_circuit_parameter() -> None:
    chain = Chain.in_process()
    owner = chain.accounts[0]
    circuit = [4, 650, 16, 1, 2, 150, 7, 9]
    verifier = chain.deploy(artifacts()["RoundVerifier"], owner.address, circuit, sender=owner)
    getters = ["maxTrainers", "viewLen", "quantBits", "krumF", "krumM", "tauPct", "dupPct", "floorPct"]
    assert [chain.call(verifier.functions[g]()) for g in getters] == circuit
