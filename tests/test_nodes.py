"""A round verifier built for other settings than its project's: refused at creation, naming the setting."""

from __future__ import annotations

import pytest

from market.chain.client import Chain
from market.chain.marketplace import Marketplace, ProjectParams, artifacts
from market.errors import ContractRevert

#: The digits example's circuit settings: slots, view length, bits, f, m, tau_pct, dup_pct, floor_pct.
FITTING = [4, 650, 16, 1, 0, 150, 5, 10]


def _create(chain: Chain, circuit: list[int]) -> int:
    """Create the digits example's project on a fresh marketplace with a RoundVerifier built for `circuit`."""
    owner = chain.accounts[0]
    market = Marketplace.deploy(chain, owner)
    verifier = chain.deploy(artifacts()["RoundVerifier"], owner.address, circuit, sender=owner)
    params = ProjectParams.make(aggregator=chain.accounts[1].address, verifier=verifier.address,
                                join_deadline=chain.now() + 3600, max_trainers=4, krum_f=1, tau_pct=150,
                                view_len=650, model_commit=1)
    return market.create_project(params, 10**18, owner)


def test_a_fitting_verifier_is_accepted() -> None:
    assert _create(Chain.in_process(), FITTING) == 1


@pytest.mark.parametrize(
    ("circuit", "setting", "project", "verifier"),
    [
        ([3, 650, 16, 1, 0, 150, 5, 10], "maxTrainers", 4, 3),
        ([4, 64, 16, 1, 0, 150, 5, 10], "viewLen", 650, 64),
        ([4, 650, 8, 1, 0, 150, 5, 10], "quantBits", 16, 8),
        ([4, 650, 16, 0, 0, 150, 5, 10], "krumF", 1, 0),
        ([4, 650, 16, 1, 2, 150, 5, 10], "krumM", 0, 2),
        ([4, 650, 16, 1, 0, 0, 5, 10], "tauPct", 150, 0),
        ([4, 650, 16, 1, 0, 150, 0, 10], "dupPct", 5, 0),
        ([4, 650, 16, 1, 0, 150, 5, 0], "floorPct", 10, 0),
    ],
)
def test_a_verifier_for_other_settings_is_refused(circuit: list[int], setting: str, project: int, verifier: int) -> None:
    with pytest.raises(ContractRevert) as err:
        _create(Chain.in_process(), circuit)
    assert err.value.name == "VerifierSettingsMismatch"
    assert list(err.value.args_by_name.values()) == [setting, project, verifier]


def test_the_round_verifier_exposes_every_circuit_parameter() -> None:
    chain = Chain.in_process()
    owner = chain.accounts[0]
    circuit = [4, 650, 16, 1, 2, 150, 7, 9]
    verifier = chain.deploy(artifacts()["RoundVerifier"], owner.address, circuit, sender=owner)
    getters = ["maxTrainers", "viewLen", "quantBits", "krumF", "krumM", "tauPct", "dupPct", "floorPct"]
    assert [chain.call(verifier.functions[g]()) for g in getters] == circuit
    assert chain.call(verifier.functions.settings()) == [*circuit, 0]  # rule 0: Multi-Krum with its screens
