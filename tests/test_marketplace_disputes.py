"""Disputes and cures (PROTOCOL.md §5, §7): a flag 2 is the aggregator's claim, and its trainer answers it on chain.

The attacker's tests come first: a false flag 2 (the owner and the aggregator together, or an
aggregator with an account of its own among the trainers) is cured by its victims, and the
aggregator must then re-post the round with their updates included or lose its bond to the round's
submitters; a trainer that withholds its blob and cures gets exactly its share. Then each path of a
dispute and each refusal, by name. Every test ends with every party withdrawing: what came in went
out, to the wei. Rounds are posted through the test-only HashCheckVerifier; cures are checked by the
real PoseidonCommit against real views of the digits example's size (650 values at 16 bits, 44
packed elements, 3 Poseidon16 blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from market.chain.client import Chain
from market.chain.marketplace import State, Status
from market.protocol.constants import ETHER
from tests.marketplace_harness import (
    BOND,
    BUDGET,
    ROUND_BUDGET,
    ROUNDS,
    SLASH_BPS,
    STAKE,
    TRAINERS,
    V_COMMIT,
    Deployment,
    View,
    assert_solvent,
    deploy,
    held,
    model_out,
    reverts,
    split,
    tampered,
    withdraw_all,
)

VIEW_LEN = 650
QUANT_BITS = 16
WINDOW = 600  # the harness's open, submit and post windows; the dispute window is one post window
HONEST = ([0, 0, 0, 0], [4, 3, 2, 1])


@pytest.fixture
def dep(anvil_chain: Chain) -> Deployment:
    """A marketplace (with its PoseidonCommit) and a 4-slot test verifier on the session's anvil."""
    return deploy(anvil_chain, slots=TRAINERS)


def digits_project(dep: Deployment, **overrides: Any) -> int:
    """The digits example's project (its amounts and its proof view), started with its 4 trainers."""
    settings: dict[str, Any] = dict(
        budget=BUDGET, rounds=ROUNDS, min_trainers=TRAINERS, max_trainers=TRAINERS, stake=STAKE, aggregator_bond=BOND,
        slash_bps=SLASH_BPS, krum_f=1, tau_pct=175, view_len=VIEW_LEN, quant_bits=QUANT_BITS,
    )
    settings.update(overrides)
    pid = dep.create(**settings)
    dep.start(pid, TRAINERS)
    return pid


def open_with_views(dep: Deployment, pid: int, slots: Sequence[int] = range(TRAINERS)) -> tuple[int, dict[int, View]]:
    """Open the next round; the trainers in `slots` submit real views. The window is closed on return
    (or every active slot submitted), so the round may be posted."""
    m = dep.market
    m.open_round(pid, V_COMMIT, dep.aggregator)
    round_ = m.project(pid).round
    views = dep.submit_views(pid, round_, slots)
    if m.round_state(pid, round_).pending:
        dep.chain.time_travel(m.project(pid).deadline - dep.chain.now() + 1)
    return round_, views


def post_disputable(dep: Deployment, pid: int, round_: int, flags: Sequence[int], scores: Sequence[int]) -> int:
    """Post a round that rejects a slot: it is disputable and nothing of it settles. Returns the dispute end."""
    m = dep.market
    before, credited = m.project(pid), rewards(dep, pid)
    receipt = dep.post(pid, round_, flags, scores)
    (event,) = m.receipt_events(receipt, "RoundDisputable")
    rejected = sum(1 << slot for slot, flag in enumerate(flags) if flag == 2)
    stamp = int(dep.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert (event.args["round"], event.args["rejected"], event.args["disputeEnd"]) == (round_, rejected, stamp + WINDOW)
    for name in ("UpdateRejected", "TrainerSlashed", "ProjectFinished"):
        assert m.receipt_events(receipt, name) == []
    project = m.project(pid)
    assert project.disputing and project.round_open and project.post_deadline == stamp + WINDOW
    assert (project.budget_left, project.owner_refund, project.n_active) == (
        before.budget_left, before.owner_refund, before.n_active,
    )
    assert rewards(dep, pid) == credited
    dispute = m.dispute(pid, round_)
    assert (dispute.rejected, dispute.cured) == (rejected, 0)
    return stamp + WINDOW


def cure(dep: Deployment, pid: int, round_: int, slot: int, view: View) -> None:
    """The trainer in `slot` cures with `view`: its rejection moves to the cured bitmap."""
    before = dep.market.dispute(pid, round_)
    receipt = dep.cure(pid, round_, slot, view)
    (event,) = dep.market.receipt_events(receipt, "UpdateCured")
    assert (event.args["slot"], event.args["trainer"]) == (slot, dep.trainers[slot].address)
    after = dep.market.dispute(pid, round_)
    assert (after.rejected, after.cured) == (before.rejected & ~(1 << slot), before.cured | 1 << slot)


def past(dep: Deployment, deadline: int) -> None:
    """Let chain time pass `deadline`."""
    dep.chain.time_travel(max(deadline - dep.chain.now() + 1, 1))


def rewards(dep: Deployment, pid: int) -> list[int]:
    """Each trainer's credited rewards."""
    return [dep.market.participant(pid, t.address).rewards for t in dep.trainers[:TRAINERS]]


def finish_honestly(dep: Deployment, pid: int) -> None:
    """Play the remaining rounds with every trainer accepted at HONEST's scores."""
    while dep.market.project(pid).state == State.TRAINING:
        dep.round(pid, HONEST[1], HONEST[0])


def honest_run(dep: Deployment) -> dict[str, int]:
    """What every party ends with when the aggregator is honest in every round (the reference)."""
    snapshot = dep.chain.snapshot()
    try:
        pid = digits_project(dep)
        finish_honestly(dep, pid)
        return withdraw_all(dep, pid, TRAINERS)
    finally:
        dep.chain.revert(snapshot)


# -- the attacks ----------------------------------------------------------------------------------


def test_collusion_flagging_everyone_is_cured_and_the_repost_pays_every_trainer(dep: Deployment) -> None:
    """The owner and the aggregator flag every trainer 2 in round 1 (the issue's first attack). Every
    trainer cures; the aggregator cannot finalize, re-post early or reject a cured trainer again, and its
    honest re-post pays round 1 as if nobody had been rejected: every party ends as in the honest run."""
    reference = honest_run(dep)
    m = dep.market
    pid = digits_project(dep)
    round_, views = open_with_views(dep, pid)
    end = post_disputable(dep, pid, round_, [2, 2, 2, 2], [0, 0, 0, 0])
    for slot in range(TRAINERS):
        cure(dep, pid, round_, slot, views[slot])
    reverts("DisputeOpen", lambda: dep.post(pid, round_, *HONEST))
    past(dep, end)
    reverts("CureOutstanding", lambda: m.finalize_round(pid, round_, model_out(round_), [2, 2, 2, 2], [0, 0, 0, 0], dep.owner), pid, round_)
    reverts("NewRejection", lambda: dep.post(pid, round_, [0, 2, 0, 0], [4, 0, 2, 1]), pid, round_, 1)
    receipt = dep.post(pid, round_, *HONEST)
    assert m.receipt_events(receipt, "UpdateRejected") == []
    assert not m.project(pid).disputing
    shares, dust = split(ROUND_BUDGET, *HONEST)
    assert rewards(dep, pid) == shares and dust == 0
    finish_honestly(dep, pid)
    paid = withdraw_all(dep, pid, TRAINERS)
    assert paid == reference
    assert paid["owner"] == 0 and paid["aggregator"] == BOND
    assert held(dep) == 0


@pytest.mark.parametrize("reposts", [True, False], ids=["reposts", "misses-the-repost"])
def test_aggregator_account_among_the_trainers_gains_nothing_from_false_flags(dep: Deployment, reposts: bool) -> None:
    """The aggregator flags the three honest trainers 2 and accepts its own account in slot 3 (the
    issue's second attack). They cure. Re-posting with them included pays round 1 by score, as the honest
    run does; not re-posting forfeits the bond to the four submitters, its own account's share included."""
    reference = honest_run(dep)
    m = dep.market
    pid = digits_project(dep)
    round_, views = open_with_views(dep, pid)
    end = post_disputable(dep, pid, round_, [2, 2, 2, 0], [0, 0, 0, 1])
    for slot in range(3):
        cure(dep, pid, round_, slot, views[slot])
    if reposts:
        past(dep, end)
        dep.post(pid, round_, *HONEST)
        finish_honestly(dep, pid)
        paid = withdraw_all(dep, pid, TRAINERS)
        assert paid == reference
    else:
        reverts("DeadlineNotPassed", lambda: m.timeout(pid, dep.owner))
        past(dep, end + WINDOW)
        receipt = m.timeout(pid, dep.trainers[0])
        share = BOND // TRAINERS
        comp = m.receipt_events(receipt, "BondCompensation")
        assert [(e.args["trainer"], e.args["amount"]) for e in comp] == [(t.address, share) for t in dep.trainers[:4]]
        paid = withdraw_all(dep, pid, TRAINERS)
        # The aggregator's side lost the bond but its own account's quarter; each honest trainer got a
        # quarter for the round it was denied, and the owner got back the budget of rounds never run.
        assert paid == {"owner": BUDGET, "aggregator": 0, **{f"t{i}": STAKE + share for i in range(TRAINERS)}}
    assert held(dep) == 0


def test_withholding_then_curing_pays_exactly_the_share_no_more(dep: Deployment) -> None:
    """Trainer 0 withholds its blob, so the aggregator rightly rejects it (flag 2), then cures. The re-post
    includes it with the score it would have had: every party, trainer 0 included, ends exactly as if it
    had submitted its blob; withholding bought it nothing."""
    reference = honest_run(dep)
    pid = digits_project(dep)
    round_, views = open_with_views(dep, pid)
    end = post_disputable(dep, pid, round_, [2, 0, 0, 0], [0, 3, 2, 1])
    cure(dep, pid, round_, 0, views[0])
    past(dep, end)
    dep.post(pid, round_, *HONEST)
    assert rewards(dep, pid)[0] == split(ROUND_BUDGET, *HONEST)[0][0] == ROUND_BUDGET * 4 // 10
    finish_honestly(dep, pid)
    assert withdraw_all(dep, pid, TRAINERS) == reference
    assert held(dep) == 0


# -- each path ------------------------------------------------------------------------------------


def test_missed_repost_pays_the_bond_to_the_rounds_submitters(dep: Deployment) -> None:
    """Round 2: slots 0-2 submit, slot 1 is rejected and cures, the aggregator never re-posts (a late
    re-post is refused). The bond goes to the three submitters, the cured one included; the owner gets
    only the budget of the rounds that never ran (2 to 5) and the bond's dust."""
    m = dep.market
    pid = digits_project(dep)
    dep.round(pid, HONEST[1], HONEST[0])
    round_, views = open_with_views(dep, pid, [0, 1, 2])
    end = post_disputable(dep, pid, round_, [0, 2, 0, 0], [5, 0, 3, 0])
    cure(dep, pid, round_, 1, views[1])
    past(dep, end)
    err = reverts("DeadlineNotPassed", lambda: m.timeout(pid, dep.owner))
    assert err.error_args[:2] == (pid, end + WINDOW)
    past(dep, end + WINDOW)
    err = reverts("DeadlinePassed", lambda: dep.post(pid, round_, [0, 0, 0, 0], [5, 4, 3, 0]))
    assert err.error_args[:2] == (pid, end + WINDOW)
    receipt = m.timeout(pid, dep.trainers[3])
    share = BOND // 3
    comp = m.receipt_events(receipt, "BondCompensation")
    assert [(e.args["trainer"], e.args["amount"]) for e in comp] == [(t.address, share) for t in dep.trainers[:3]]
    assert m.project(pid).state == State.CANCELLED
    paid = withdraw_all(dep, pid, TRAINERS)
    round1, _ = split(ROUND_BUDGET, *HONEST)
    assert paid == {
        "owner": BUDGET - ROUND_BUDGET + BOND - 3 * share,
        "aggregator": 0,
        **{f"t{i}": STAKE + round1[i] + (share if i < 3 else 0) for i in range(TRAINERS)},
    }
    assert held(dep) == 0


def test_uncured_post_is_finalized_exactly_as_posted(dep: Deployment) -> None:
    """Nobody cures: the aggregator can neither re-post nor be timed out; anyone finalizes with the post's
    own flags and scores (other ones are refused), and the round settles by §7: slot 0 unpaid and
    active, slot 2 a proven outlier, slashed and ejected."""
    m = dep.market
    pid = digits_project(dep)
    round_, _ = open_with_views(dep, pid)
    flags, scores = [2, 0, 1, 0], [0, 5, 0, 3]
    end = post_disputable(dep, pid, round_, flags, scores)
    bystander = dep.chain.accounts[-1]
    reverts("DisputeOpen", lambda: m.finalize_round(pid, round_, model_out(round_), flags, scores, bystander))
    reverts("DeadlineNotPassed", lambda: m.timeout(pid, bystander))
    past(dep, end)
    reverts("NothingCured", lambda: dep.post(pid, round_, [0, 0, 1, 0], [4, 5, 0, 3]), pid, round_)
    past(dep, end + WINDOW)
    reverts("NothingCured", lambda: m.timeout(pid, bystander), pid, round_)
    reverts("ClaimMismatch", lambda: m.finalize_round(pid, round_, model_out(round_), [0, 0, 1, 0], scores, bystander), pid, round_)
    reverts("ClaimMismatch", lambda: m.finalize_round(pid, round_, model_out(round_), flags, [0, 5, 0, 4], bystander), pid, round_)
    (posted,) = m.events("RoundPosted", pid)
    receipt = m.finalize_round(pid, round_, model_out(round_), posted.args["flags"], posted.args["scores"], bystander)
    assert [e.args["round"] for e in m.receipt_events(receipt, "RoundFinalized")] == [round_]
    assert [e.args["slot"] for e in m.receipt_events(receipt, "UpdateRejected")] == [0]
    assert [e.args["slot"] for e in m.receipt_events(receipt, "TrainerSlashed")] == [2]
    shares, dust = split(ROUND_BUDGET, flags, scores)
    slashed = STAKE * SLASH_BPS // 10_000
    assert rewards(dep, pid) == shares
    project = m.project(pid)
    assert not project.disputing and not project.round_open and project.owner_refund == dust + slashed
    assert m.participant(pid, dep.trainers[0].address).status == Status.ACTIVE
    assert m.participant(pid, dep.trainers[2].address).status == Status.EJECTED
    reverts("RoundNotOpen", lambda: m.finalize_round(pid, round_, model_out(round_), flags, scores, bystander), pid, round_)
    # The aggregator stalls from here: the bond goes to the three active trainers.
    past(dep, project.deadline)
    m.timeout(pid, bystander)
    share = BOND // 3
    paid = withdraw_all(dep, pid, TRAINERS)
    assert paid == {
        "owner": BUDGET - ROUND_BUDGET + dust + slashed + BOND - 3 * share,
        "aggregator": 0,
        "t0": STAKE + share, "t1": STAKE + shares[1] + share, "t2": STAKE - slashed, "t3": STAKE + shares[3] + share,
    }
    assert held(dep) == 0


def test_repost_may_exclude_a_cured_update_and_settles_the_models_once(dep: Deployment) -> None:
    """Round 2's post rejects slot 0 (flag 2) and excludes slot 2 (flag 3, proven): it is disputable only for
    the 2, and nothing of it settles, the model commitments included. Slot 0 cures; the re-post may exclude
    its now valid update (flag 3 is the rule's proven outcome, not a rejection: no NewRejection). Settling
    shifts modelPrev and model once; the two excluded trainers are unpaid for the round, keep their whole
    stakes and slots, and are paid in the rounds after."""
    m = dep.market
    pid = digits_project(dep)
    dep.round(pid, HONEST[1], HONEST[0])
    assert (m.previous_model_commitment(pid), m.model_commitment(pid)) == (model_out(0), model_out(1))
    round_, views = open_with_views(dep, pid)
    end = post_disputable(dep, pid, round_, [2, 0, 3, 0], [0, 3, 0, 1])
    assert (m.previous_model_commitment(pid), m.model_commitment(pid)) == (model_out(0), model_out(1))
    cure(dep, pid, round_, 0, views[0])
    past(dep, end)
    before = rewards(dep, pid)
    flags, scores = [3, 0, 3, 0], [0, 3, 0, 1]
    receipt = dep.post(pid, round_, flags, scores)
    assert [e.args["slot"] for e in m.receipt_events(receipt, "UpdateExcluded")] == [0, 2]
    assert m.receipt_events(receipt, "UpdateRejected") == m.receipt_events(receipt, "TrainerSlashed") == []
    assert (m.previous_model_commitment(pid), m.model_commitment(pid)) == (model_out(1), model_out(2))
    gained = [after - b for after, b in zip(rewards(dep, pid), before, strict=True)]
    assert gained == split(ROUND_BUDGET, flags, scores)[0] and gained[0] == gained[2] == 0
    project = m.project(pid)
    assert (project.n_active, project.ejected_mask, project.disputing) == (TRAINERS, 0, False)
    finish_honestly(dep, pid)
    paid = withdraw_all(dep, pid, TRAINERS)
    share = split(ROUND_BUDGET, *HONEST)[0]
    assert BUDGET == ROUNDS * ROUND_BUDGET  # the last round's budget is one round's
    for slot in (0, 2):  # paid in rounds 1, 3, 4 and 5
        assert paid[f"t{slot}"] == STAKE + 4 * share[slot]
    assert held(dep) == 0


def test_cure_refusals_are_named(dep: Deployment) -> None:
    """A cure before any dispute, by a slot that was not rejected, by an outsider, with a wrong view,
    another trainer's view or a malformed one (refused by PoseidonCommit, decoded by name), twice, or
    after the window: each refused with its error; the money does not move."""
    m = dep.market
    pid = digits_project(dep)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    round_ = m.project(pid).round
    views = dep.submit_views(pid, round_, range(TRAINERS))
    reverts("NoDispute", lambda: cure(dep, pid, round_, 0, views[0]), pid, round_)
    end = post_disputable(dep, pid, round_, [2, 0, 2, 0], [0, 1, 0, 1])
    reverts("WrongRound", lambda: dep.market.cure(pid, round_ + 1, views[0].elements, dep.trainers[0]), round_, round_ + 1)
    reverts("NotRejected", lambda: cure(dep, pid, round_, 1, views[1]), pid, round_, 1)
    outsider = dep.trainers[TRAINERS]
    reverts("NotTrainer", lambda: m.cure(pid, round_, views[0].elements, outsider), pid, outsider.address)
    reverts("CureMismatch", lambda: cure(dep, pid, round_, 0, tampered(views[0])), pid, round_, 0)
    reverts("CureMismatch", lambda: cure(dep, pid, round_, 0, views[1]), pid, round_, 0)
    elements = list(views[0].elements)
    count = len(elements)
    assert count == 44
    reverts("ElementCount", lambda: m.cure(pid, round_, elements[:-1], dep.trainers[0]), count, count - 1)
    reverts("ElementCount", lambda: m.cure(pid, round_, [*elements, 1], dep.trainers[0]), count, count + 1)
    lanes = VIEW_LEN - (count - 1) * (252 // QUANT_BITS)  # values in the last element; the rest is zero padding
    padded = [*elements[:-1], elements[-1] | 1 << (QUANT_BITS * lanes)]
    reverts("LaneOutOfRange", lambda: m.cure(pid, round_, padded, dep.trainers[0]), count - 1, lanes)
    offset_zero = [elements[0] & ~((1 << QUANT_BITS) - 1), *elements[1:]]  # value -2^15: outside the range
    reverts("LaneOutOfRange", lambda: m.cure(pid, round_, offset_zero, dep.trainers[0]), 0, 0)
    assert (m.dispute(pid, round_).rejected, m.dispute(pid, round_).cured) == (0b0101, 0)
    cure(dep, pid, round_, 0, views[0])
    reverts("NotRejected", lambda: cure(dep, pid, round_, 0, views[0]), pid, round_, 0)
    past(dep, end)
    err = reverts("DeadlinePassed", lambda: cure(dep, pid, round_, 2, views[2]))
    assert err.error_args[:2] == (pid, end)
    assert_solvent(dep)
    # The re-post may keep slot 2's uncured rejection; the round settles with slot 0 paid.
    dep.post(pid, round_, [0, 0, 2, 0], [1, 1, 0, 1])
    assert rewards(dep, pid) == split(ROUND_BUDGET, [0, 0, 2, 0], [1, 1, 0, 1])[0]
    finish_honestly(dep, pid)
    withdraw_all(dep, pid, TRAINERS)
    assert held(dep) == 0


def test_bond_must_cover_one_rounds_budget_at_start(dep: Deployment) -> None:
    """start refuses a bond below budget / rounds (the budget is final then, funding included); exactly
    budget / rounds is accepted. A refused project is cancelled with full refunds."""
    m = dep.market
    short = dep.create(budget=BUDGET, rounds=ROUNDS, min_trainers=2, aggregator_bond=ROUND_BUDGET - 1)
    dep.open(short, 2)
    reverts("BondBelowRoundBudget", lambda: m.start(short, dep.owner), ROUND_BUDGET - 1, ROUND_BUDGET)
    past(dep, m.project(short).params.join_deadline)
    reverts("BondBelowRoundBudget", lambda: m.start(short, dep.trainers[0]), ROUND_BUDGET - 1, ROUND_BUDGET)
    funded = dep.create(budget=BUDGET, rounds=ROUNDS, min_trainers=2, aggregator_bond=BOND)
    m.fund(funded, 3 * ETHER, dep.owner)
    dep.open(funded, 2)
    reverts("BondBelowRoundBudget", lambda: m.start(funded, dep.owner), BOND, (BUDGET + 3 * ETHER) // ROUNDS)
    exact = dep.create(budget=BUDGET + 4, rounds=ROUNDS, min_trainers=2, aggregator_bond=(BUDGET + 4) // ROUNDS)
    dep.start(exact, 2)
    assert m.project(exact).state == State.TRAINING
    for pid, budget in ((short, BUDGET), (funded, BUDGET + 3 * ETHER)):
        m.cancel(pid, dep.owner)
        bond = m.project(pid).params.aggregator_bond
        assert withdraw_all(dep, pid, 2) == {"owner": budget, "aggregator": bond, "t0": ETHER // 1000, "t1": ETHER // 1000}
    assert_solvent(dep)

