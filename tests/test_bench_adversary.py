"""`fedmarket bench adversary` on four adversaries: real contracts, training and proofs; honest parties lose nothing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from market.cli import app
from market.protocol.constants import ETHER

pytestmark = pytest.mark.slow

CHOSEN = ("withhold_then_cure", "mempool_copier", "missed_post", "aimed_exclusion")


def test_adversaries_leave_honest_parties_whole_and_conserve_funds() -> None:
    # Two rounds: round 2 must train from the round-1 model that settled (the re-post), not the provisional one.
    args = ["bench", "adversary", "--rounds", "2", "--json", *(a for name in CHOSEN for a in ("--only", name))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output[-3000:]
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["funds_conserved"] is True
    assert data["adversaries"] == 4 and set(data["adversary"]) == set(CHOSEN) and data["backend"] == "anvil"
    assert data["max_honest_stake_lost_wei"] == 0 and data["max_honest_reward_lost_wei"] == 0
    assert data["max_owner_gain_wei"] <= 0
    assert data["baseline"]["state"] == "FINISHED" and data["baseline"]["ok"]
    for name, r in data["adversary"].items():
        assert r["honest_stake_lost_wei"] == 0 and r["honest_reward_lost_wei"] == 0, name
        assert r["owner_gain_wei"] <= 0 and r["funds_conserved"] and r["ok"], name

    cured = data["adversary"]["withhold_then_cure"]  # rejected, cured, re-posted with it: paid exactly as if honest
    assert [p["flags"][3] for p in cured["posts"]] == [2, 0, 0] and cured["cures"] == 1
    assert cured["state"] == "FINISHED" and cured["adversary_gain_wei"] == 0

    # The copier waits for its victim's reveal, which comes only once its own slot's commit window has closed
    # (sealed rounds, PROTOCOL §3): it never commits, so it is absent (flag 0, unpaid) and keeps its stake.
    copier = data["adversary"]["mempool_copier"]
    assert [p["flags"][3] for p in copier["posts"]] == [0, 0] and copier["cures"] == 0 and copier["state"] == "FINISHED"
    assert copier["slashed_wei"] == 0 and copier["adversary_gain_wei"] == 0 and copier["adversary_rewards_wei"] == 0

    missed = data["adversary"]["missed_post"]  # the bond pays the round's four submitters
    assert missed["state"] == "CANCELLED" and missed["timed_out"] and missed["posts"] == []
    assert missed["bond_compensation_wei"] == 2 * ETHER and missed["adversary_gain_wei"] == -2 * ETHER

    aimed = data["adversary"]["aimed_exclusion"]  # -v: only the own account's flipped update is along it (§7, few accepted)
    # In round 2 the own account's flipped update lies along the last proven step (its own round-1 update), so the
    # public-span screen (PROTOCOL §3) excludes it too: nobody is accepted, and §7 pays the four excluded alike.
    assert [p["flags"] for p in aimed["posts"]] == [[3, 3, 3, 0], [3, 3, 3, 3]] and aimed["state"] == "FINISHED"
    assert aimed["adversary_rewards_wei"] == data["budget_wei"] // 4 and aimed["honest_rewards_wei"] == 3 * data["budget_wei"] // 4
