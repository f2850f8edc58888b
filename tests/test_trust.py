"""Reports name what is proven and who could cheat on what is not (issue 11 item 6)."""

from __future__ import annotations

from market.dev.report import project_markdown
from market.parties.trust import ROUND_CLAIMS, Basis, round_basis, trust_table


def test_each_decision_says_whether_it_is_proven() -> None:
    flags = {"0xA": 0, "0xB": 1, "0xC": 2, "0xD": 0, "0xE": 3}
    shown = round_basis(flags, submitted={"0xA", "0xB", "0xC", "0xE"})
    assert shown == {"0xA": "accepted (proven)", "0xB": "slashed: low update (proven)",
                     "0xC": "rejected blob (aggregator's claim: disputable, final only if not cured)", "0xD": "absent",
                     "0xE": "excluded (proven, not slashed)"}


def test_every_unproven_claim_names_the_party_that_could_cheat() -> None:
    assert {c.basis for c in ROUND_CLAIMS} == set(Basis)
    for claim in ROUND_CLAIMS:
        assert (claim.party == "nobody") == (claim.basis == Basis.PROVEN), claim
    flag2 = next(c for c in ROUND_CLAIMS if "flag 2" in c.claim)
    assert flag2.basis == Basis.DISPUTABLE and flag2.party == "aggregator"


def test_the_project_report_carries_the_trust_table() -> None:
    status = {"project": 1, "state": "FINISHED", "history": [], "trainers": [], "trust": trust_table()}
    text = project_markdown(status)
    assert "## What rests on whom" in text
    assert "| invalid or unavailable blob (flag 2) | disputable | aggregator |" in text
    assert text.count("| proven | nobody |") == sum(c.basis == Basis.PROVEN for c in ROUND_CLAIMS)
