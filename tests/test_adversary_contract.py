"""Attacks on the marketplace's money rules, tried as the owner, the aggregator or their trainer accounts would.

Each test plays a project with the digits example's amounts (budget 8 ether, 5 rounds, 4 trainers
staking 1 ether, slash 50%, bond 2 ether) on the in-process chain, settles it (every party
withdraws) and asserts to the wei what each party ends with (docs/PROTOCOL.md §5, §7 and the
trust model). Rounds are posted through the test-only HashCheckVerifier: the attacks here are on
what the contract does with flags, scores and deadlines, not on the proof. A post with a flag 2 is
disputable; here its trainers never cure, so it is finalized as posted once the dispute window ends
(the cures that defeat these attacks are in test_marketplace_disputes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from market.chain.client import Chain
from market.chain.marketplace import (
    MAX_JOIN_DELAY,
    MAX_ROUNDS,
    MAX_WINDOW,
    MIN_WINDOW,
    CancelReason,
    State,
    Status,
)
from market.dev.demo import DemoConfig, project_file
from market.errors import ConfigError, ContractRevert
from market.parties.project_file import ProjectFile, check_settings, load_project_file
from market.protocol.constants import FEW_ACCEPTED_DIVISOR
from tests.marketplace_harness import (
    BOND,
    BUDGET,
    CID,
    MODEL_CID,
    ROUND_BUDGET,
    ROUNDS,
    SLASH_BPS,
    STAKE,
    TRAINERS,
    V_COMMIT,
    Deployment,
    deploy,
    held,
    model_out,
    reverts,
    split,
    withdraw_all,
)


@pytest.fixture
def dep() -> Deployment:
    """A fresh in-process chain with a marketplace and a 4-slot test verifier."""
    return deploy(Chain.in_process(), slots=TRAINERS)


def digits_project(dep: Deployment, budget: int = BUDGET) -> int:
    """The digits example's project (Multi-Krum f = 1, tau 175%), started with its 4 trainers."""
    pid = dep.create(
        budget=budget, rounds=ROUNDS, min_trainers=TRAINERS, max_trainers=TRAINERS, stake=STAKE,
        aggregator_bond=BOND, slash_bps=SLASH_BPS, krum_f=1, tau_pct=175,
    )
    dep.start(pid, TRAINERS)
    return pid


def settle(dep: Deployment, pid: int) -> dict[str, int]:
    """Every party withdraws whatever it may; returns what each was paid ('owner', 'aggregator', 't0'..'t3').

    Afterwards the marketplace holds nothing: what came in went out, to the wei.
    """
    paid = withdraw_all(dep, pid, TRAINERS)
    assert held(dep) == 0
    return paid


def play(dep: Deployment, pid: int, plan: Sequence[tuple[Sequence[int], Sequence[int]]],
         budget: int = BUDGET) -> tuple[list[int], int]:
    """Post every round of `plan` ((flags, scores) with every slot submitting); returns the rewards the
    rules give each slot and the dust, computed independently of the contract, with carry-forward."""
    rewards, dust, left = [0] * TRAINERS, 0, budget
    for r, (flags, scores) in enumerate(plan, start=1):
        receipt = dep.round(pid, scores, flags)
        for event, flag in (("TrainerSlashed", 1), ("UpdateRejected", 2), ("UpdateExcluded", 3)):
            slots = [int(e.args["slot"]) for e in dep.market.receipt_events(receipt, event)]
            assert slots == [slot for slot, f in enumerate(flags) if f == flag], event
        round_budget = left if r == ROUNDS else budget // ROUNDS
        shares, round_dust = split(round_budget, flags, scores)
        if any(flag in (0, 3) for flag in flags):  # accepted slots, or else excluded ones, are paid
            left -= round_budget
        rewards = [a + b for a, b in zip(rewards, shares)]
        dust += round_dust
    if len(plan) == ROUNDS:
        dust += left  # the budget no accepted trainer earned ends as the owner's
    return rewards, dust


HONEST = ([0, 0, 0, 0], [4, 3, 2, 1])
ALL_REJECTED = ([2, 2, 2, 2], [0, 0, 0, 0])


# -- owner and aggregator together -----------------------------------------------------------------


def test_false_flags_in_one_round_neither_slash_nor_return_the_budget(dep: Deployment) -> None:
    """The issue's first attack: flag every trainer 2 in round 1. Nobody is slashed or ejected, the
    trainers keep submitting, and round 1's budget is carried into the last round: the owner gets dust."""
    pid = digits_project(dep)
    plan = [ALL_REJECTED] + [HONEST] * 4
    rewards, dust = play(dep, pid, plan)
    for slot in range(TRAINERS):
        record = dep.market.participant(pid, dep.trainers[slot].address)
        assert record.status == Status.ACTIVE and record.stake == STAKE
    assert dep.market.project(pid).state == State.FINISHED
    paid = settle(dep, pid)
    assert paid["owner"] == dust == 0
    assert [paid[f"t{i}"] for i in range(TRAINERS)] == [STAKE + r for r in rewards]
    assert rewards == [BUDGET * s // 10 for s in HONEST[1]]  # the whole budget, by score
    assert paid["aggregator"] == BOND


def test_false_flags_in_every_round_cost_no_stake(dep: Deployment) -> None:
    """Flag 2 in every round: no round had an accepted trainer, so none spent its budget and the owner
    gets it back (the rounds never ran as far as money goes). No trainer loses stake. The updates were
    public in storage all along; a trainer that does not cure leaves them to the owner for free (a cure forces
    the re-post that pays it: test_marketplace_disputes.py)."""
    pid = digits_project(dep)
    rewards, dust = play(dep, pid, [ALL_REJECTED] * ROUNDS)
    paid = settle(dep, pid)
    assert rewards == [0] * TRAINERS and dust == BUDGET
    assert paid == {"owner": BUDGET, "aggregator": BOND, **{f"t{i}": STAKE for i in range(TRAINERS)}}


# -- exclusion (flag 3) is not a slash ------------------------------------------------------------

EXCLUDE_T0 = ([3, 0, 0, 0], [0, 4, 2, 2])  # trainer 0 pushed out of the average, the others accepted
ALL_EXCLUDED = ([3, 3, 3, 3], [0, 0, 0, 0])


def test_owner_and_aggregator_gain_nothing_by_excluding_a_trainer(dep: Deployment) -> None:
    """The owner and the aggregator together exclude trainer 0 (flag 3) in rounds 1 and 2, hoping to
    take its stake or its share. No stake moves and nobody is ejected: trainer 0 keeps submitting and is
    paid in the rounds it is accepted in. The two rounds' budgets go to the accepted trainers, not back to
    the owner, who ends with nothing (the scores leave no dust). Every wei is accounted for."""
    m = dep.market
    pid = digits_project(dep)
    rewards, dust = play(dep, pid, [EXCLUDE_T0] * 2 + [HONEST] * 3)
    assert m.events("TrainerSlashed", pid) == [] and m.events("RoundDisputable", pid) == []
    excluded = [(e.args["round"], e.args["slot"], e.args["trainer"]) for e in m.events("UpdateExcluded", pid)]
    assert excluded == [(1, 0, dep.trainers[0].address), (2, 0, dep.trainers[0].address)]
    project = m.project(pid)
    assert (project.state, project.n_active, project.ejected_mask) == (State.FINISHED, TRAINERS, 0)
    record = m.participant(pid, dep.trainers[0].address)
    assert (record.status, record.stake) == (Status.ACTIVE, STAKE)
    assert rewards[0] == 3 * ROUND_BUDGET * HONEST[1][0] // 10 > 0  # its share of the three rounds it was accepted in
    paid = settle(dep, pid)
    assert paid["owner"] == dust == 0
    assert paid["aggregator"] == BOND
    assert [paid[f"t{i}"] for i in range(TRAINERS)] == [STAKE + r for r in rewards]
    assert sum(rewards) == BUDGET and sum(paid.values()) == BUDGET + BOND + TRAINERS * STAKE


def test_excluding_every_trainer_in_every_round_hands_the_owner_nothing(dep: Deployment) -> None:
    """Every update excluded in every round, which is what a negated v does (every honest update is against
    it, PROTOCOL §3's direction test): each post settles at once (flag 3 is proven, there is nothing to
    dispute), no stake moves, and since no round had an accepted trainer (few accepted, §7) each round's budget
    goes to its excluded trainers, equally. Before ec74def, it stayed in budgetLeft and the owner took the whole budget back."""
    m = dep.market
    pid = digits_project(dep)
    rewards, dust = play(dep, pid, [ALL_EXCLUDED] * ROUNDS)
    assert m.events("RoundDisputable", pid) == [] and m.events("RoundFinalized", pid) == []
    assert len(m.events("UpdateExcluded", pid)) == ROUNDS * TRAINERS
    paid = settle(dep, pid)
    assert rewards == [BUDGET // TRAINERS] * TRAINERS and dust == 0
    assert paid == {"owner": 0, "aggregator": BOND, **{f"t{i}": STAKE + BUDGET // TRAINERS for i in range(TRAINERS)}}


AIMED_AT_OWN = ([3, 3, 3, 0], [0, 0, 0, 5])  # every honest update against v, only slot 3 (the aggregator's) along it


def test_an_aimed_direction_that_excludes_the_honest_majority_pays_every_slot_equally(dep: Deployment) -> None:
    """The owner and the aggregator together, the aggregator's own account in slot 3. v is committed before the
    round and is the owner's word (PROTOCOL §4): they aim it so that every honest update is against it (the
    direction test excludes them, flag 3, proven) and only their own account's update is along it. Before, that
    account, the only accepted slot, took every round whole: the whole budget. A round with excluded slots that
    accepts at most max(1, N // 4) of its N accepted and excluded slots (here 1 of 4) pays them all equally
    (§7): the own account gets a quarter, like each honest trainer, and the owner nothing."""
    pid = digits_project(dep)
    rewards, dust = play(dep, pid, [AIMED_AT_OWN] * ROUNDS)
    paid = settle(dep, pid)
    assert rewards == [BUDGET // TRAINERS] * TRAINERS and paid["owner"] == dust == 0
    assert paid == {"owner": 0, "aggregator": BOND, **{f"t{i}": STAKE + BUDGET // TRAINERS for i in range(TRAINERS)}}


def test_two_accepted_of_four_are_paid_by_score_and_the_excluded_nothing(dep: Deployment) -> None:
    """Above the few-accepted bound (2 of 4 > max(1, 4 // 4)) the accepted take the round by score and the
    excluded nothing for it; one excluded of four likewise."""
    pid = digits_project(dep)
    two, one = ([3, 0, 3, 0], [0, 7, 0, 1]), ([3, 0, 0, 0], [0, 3, 1, 0])
    rewards, dust = play(dep, pid, [two, one] + [HONEST] * (ROUNDS - 2))
    assert dust == 0
    honest = [(BUDGET - 2 * ROUND_BUDGET) * s // 10 for s in HONEST[1]]
    assert rewards == [
        honest[0],
        ROUND_BUDGET * 7 // 8 + ROUND_BUDGET * 3 // 4 + honest[1],
        ROUND_BUDGET // 4 + honest[2],
        ROUND_BUDGET // 8 + honest[3],
    ]
    paid = settle(dep, pid)
    assert paid == {"owner": 0, "aggregator": BOND, **{f"t{i}": STAKE + r for i, r in enumerate(rewards)}}


def test_flag_1_still_slashes_and_ejects(dep: Deployment) -> None:
    """The same round with trainer 0 flagged 1 instead (a proven low update): half its stake goes
    to the owner, it is ejected, may withdraw the rest at once and may not submit again."""
    m = dep.market
    pid = digits_project(dep)
    _, dust = play(dep, pid, [([1, 0, 0, 0], EXCLUDE_T0[1])])
    slashed = STAKE * SLASH_BPS // 10_000
    record = m.participant(pid, dep.trainers[0].address)
    assert (record.status, record.stake) == (Status.EJECTED, STAKE - slashed)
    assert (m.project(pid).n_active, m.project(pid).ejected_mask) == (TRAINERS - 1, 0b1)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    reverts("TrainerEjected", lambda: dep.submit(pid, 2, [0]), pid, dep.trainers[0].address)
    (withdrawn,) = m.receipt_events(m.withdraw_stake(pid, dep.trainers[0]), "StakeWithdrawn")
    assert withdrawn.args["amount"] == STAKE - slashed
    assert m.project(pid).owner_refund == dust + slashed


def test_a_post_of_proven_flags_settles_at_once_and_only_a_flag_2_makes_it_disputable(dep: Deployment) -> None:
    """Flags 1 and 3 are proven: a post with only them settles at once, and an excluded trainer's stake stays
    locked like any active trainer's. A flag 2 makes the post disputable; its 3s then settle with it."""
    m = dep.market
    pid = digits_project(dep)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 1, range(TRAINERS))
    receipt = dep.post(pid, 1, [1, 3, 0, 3], [0, 0, 5, 0])
    assert m.receipt_events(receipt, "RoundDisputable") == []
    assert [e.args["slot"] for e in m.receipt_events(receipt, "UpdateExcluded")] == [1, 3]
    assert [e.args["slot"] for e in m.receipt_events(receipt, "TrainerSlashed")] == [0]
    # two excluded against one accepted: the three share the round equally (§7)
    assert [m.participant(pid, t.address).rewards for t in dep.trainers[:TRAINERS]] == [0] + [ROUND_BUDGET // 3] * 3
    reverts("StakeLocked", lambda: m.withdraw_stake(pid, dep.trainers[1]), pid, State.TRAINING)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 2, [1, 2, 3])
    flags, scores = [0, 2, 3, 0], [0, 0, 0, 4]
    receipt = dep.post(pid, 2, flags, scores)
    (disputable,) = m.receipt_events(receipt, "RoundDisputable")
    assert disputable.args["rejected"] == 0b10
    assert m.receipt_events(receipt, "UpdateExcluded") == []  # nothing settles before the dispute window ends
    receipt = dep.finalize(pid, 2, flags, scores)
    assert [e.args["slot"] for e in m.receipt_events(receipt, "UpdateExcluded")] == [2]
    assert [e.args["slot"] for e in m.receipt_events(receipt, "UpdateRejected")] == [1]
    for slot in (1, 2, 3):
        record = m.participant(pid, dep.trainers[slot].address)
        assert (record.status, record.stake) == (Status.ACTIVE, STAKE)
    # one excluded, one accepted: halves (the rejected slot 1 gets nothing)
    assert [m.participant(pid, t.address).rewards for t in dep.trainers[1:TRAINERS]] == [
        ROUND_BUDGET // 3, ROUND_BUDGET // 3 + ROUND_BUDGET // 2, ROUND_BUDGET // 3 + ROUND_BUDGET // 2
    ]


@pytest.mark.parametrize("flag", [4, 255])
def test_flags_above_3_are_refused(dep: Deployment, flag: int) -> None:
    """A flag above 3 is no outcome: the post and the public-input view refuse it by name."""
    m = dep.market
    pid = digits_project(dep)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 1, range(TRAINERS))
    flags, scores = [0, flag, 0, 0], [1, 0, 1, 1]
    reverts("InvalidFlag", lambda: m.public_input(pid, 1, model_out(1), flags, scores), 1, flag)
    reverts("InvalidFlag", lambda: m.post_round(pid, 1, MODEL_CID, CID, model_out(1), flags, scores, [0] * 8,
                                               dep.aggregator), 1, flag)


# -- an aggregator with an account of its own among the trainers ------------------------------------

COLLUDER = 3
FALSE = ([2, 2, 2, 0], [0, 0, 0, 1])  # the honest slots rejected, the aggregator's own account accepted
SELF_TOO = ([2, 2, 2, 2], [0, 0, 0, 0])  # everyone rejected: the round's budget is carried forward


@pytest.mark.parametrize(
    ("plan", "colluder_gets"),
    [
        # Only accepted trainer of every round: it takes every round's budget.
        ([FALSE] * 5, BUDGET),
        # Two rounds alone (2 x 1.6 ether), then its score share of three honest rounds.
        ([FALSE] * 2 + [HONEST] * 3, 2 * ROUND_BUDGET + (2 * ROUND_BUDGET + (BUDGET - 4 * ROUND_BUDGET)) // 10),
        # Nobody accepted in rounds 1-4, then alone in round 5: the carried budget is round 5's, all of it.
        ([SELF_TOO] * 4 + [FALSE], BUDGET),
    ],
    ids=["alone-every-round", "alone-two-rounds", "carried-into-the-last"],
)
def test_aggregator_account_gets_only_the_rounds_it_is_alone_in(
    dep: Deployment, plan: list[tuple[list[int], list[int]]], colluder_gets: int
) -> None:
    """The issue's second attack: the aggregator flags the honest trainers 2. They keep their stakes and
    their slots. What its own account gets is exactly the budget of the rounds in which it is the only
    accepted trainer, plus its score share of the others, as long as its victims do not cure (a cure forces
    the re-post that pays them: test_marketplace_disputes.py)."""
    pid = digits_project(dep)
    rewards, dust = play(dep, pid, plan)
    paid = settle(dep, pid)
    assert rewards[COLLUDER] == colluder_gets
    assert paid[f"t{COLLUDER}"] == STAKE + colluder_gets
    for slot in range(COLLUDER):
        assert paid[f"t{slot}"] == STAKE + rewards[slot] >= STAKE
    assert paid["owner"] == dust == 0


# -- a zero or negated validation direction ---------------------------------------------------------


def test_zero_direction_splits_each_round_equally(dep: Deployment) -> None:
    """v = 0 makes every score 0; a negated v makes them negative. Either way the posted round's budget
    goes to its accepted trainers, equally; the owner gets only the floor dust (5 wei here)
    and the proven outlier's slash."""
    budget = BUDGET + 7
    pid = digits_project(dep, budget)
    zero = ([0, 0, 0, 0], [0, 0, 0, 0])
    negated = ([0, 0, 0, 0], [-4, -3, -2, -1])
    mixed = ([0, 0, 1, 0], [0, -3, 0, 0])  # a proven outlier among them: the accepted three share
    rewards, dust = play(dep, pid, [zero, negated, zero, zero, mixed], budget)
    paid = settle(dep, pid)
    per_round, last = budget // ROUNDS, budget - 4 * (budget // ROUNDS)
    assert (per_round, last) == (BUDGET // ROUNDS + 1, BUDGET // ROUNDS + 3)
    assert dust == 4 * (per_round % 4) + last % 3 == 5
    slashed = STAKE * SLASH_BPS // 10_000
    assert paid["owner"] == dust + slashed
    assert rewards == [4 * (per_round // 4) + last // 3] * 2 + [4 * (per_round // 4)] + [4 * (per_round // 4) + last // 3]
    assert [paid[f"t{i}"] for i in range(TRAINERS)] == [
        STAKE + r - (slashed if i == 2 else 0) for i, r in enumerate(rewards)
    ]


# -- missed deadlines -------------------------------------------------------------------------------


def test_missed_post_deadline_pays_the_bond_to_the_open_rounds_submitters(dep: Deployment) -> None:
    """Round 2 is open, slots 0-2 submitted, the aggregator never posts: the bond goes to those three in
    equal shares (the 2 wei of dust to the owner), and round 2's budget was never spent."""
    m = dep.market
    pid = digits_project(dep)
    rewards, _ = play(dep, pid, [HONEST])
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 2, [0, 1, 2])
    dep.chain.time_travel(m.project(pid).post_deadline - dep.chain.now() + 1)
    receipt = m.timeout(pid, dep.trainers[3])
    (cancelled,) = m.receipt_events(receipt, "ProjectCancelled")
    assert cancelled.args["reason"] == CancelReason.AGGREGATOR_TIMEOUT
    share = BOND // 3
    comp = m.receipt_events(receipt, "BondCompensation")
    assert [(e.args["trainer"], e.args["amount"]) for e in comp] == [(t.address, share) for t in dep.trainers[:3]]
    paid = settle(dep, pid)
    assert paid["aggregator"] == 0
    assert paid["owner"] == BUDGET - ROUND_BUDGET + (BOND - 3 * share)
    assert [paid[f"t{i}"] for i in range(TRAINERS)] == [
        STAKE + rewards[i] + (share if i < 3 else 0) for i in range(TRAINERS)
    ]


@pytest.mark.parametrize("after_round", [False, True], ids=["right-after-start", "after-round-1"])
def test_missed_open_deadline_pays_the_bond_to_the_active_trainers(dep: Deployment, after_round: bool) -> None:
    """No round is open: the bond is split over the trainers still active (a flag-2 trainer is one;
    the proven outlier, ejected, is not). The unspent budget returns to the owner."""
    m = dep.market
    pid = digits_project(dep)
    plan = [([0, 0, 2, 1], [5, 5, 0, 0])] if after_round else []
    rewards, dust = play(dep, pid, plan)
    dep.chain.time_travel(m.project(pid).deadline - dep.chain.now() + 1)
    receipt = m.timeout(pid, dep.owner)
    active = 3 if after_round else 4
    share = BOND // active
    assert [e.args["amount"] for e in m.receipt_events(receipt, "BondCompensation")] == [share] * active
    paid = settle(dep, pid)
    slashed = STAKE * SLASH_BPS // 10_000 if after_round else 0
    spent = ROUND_BUDGET if after_round else 0
    assert paid["owner"] == BUDGET - spent + dust + slashed + (BOND - active * share)
    assert paid["aggregator"] == 0
    assert [paid[f"t{i}"] for i in range(TRAINERS)] == [
        STAKE + rewards[i] + (share if i < active else -slashed) for i in range(TRAINERS)
    ]


def test_timeout_with_no_submitter_gives_the_bond_to_the_owner(dep: Deployment) -> None:
    """A round opened that nobody submitted to: there is nobody the missed post harmed but the owner."""
    m = dep.market
    pid = digits_project(dep)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.chain.time_travel(m.project(pid).post_deadline - dep.chain.now() + 1)
    receipt = m.timeout(pid, dep.owner)
    assert m.receipt_events(receipt, "BondCompensation") == []
    paid = settle(dep, pid)
    assert paid["owner"] == BUDGET + BOND and paid["aggregator"] == 0


# -- settings that hurt honest parties --------------------------------------------------------------

DAY = 86_400


def refused_settings() -> list[tuple[str, dict[str, Any], str, tuple[Any, ...]]]:
    """(case, overrides, error, error args) for every setting createProject refuses by issue 11."""
    bounds = [
        ("rounds", "rounds", 1, MAX_ROUNDS),
        ("open_window", "openWindow", MIN_WINDOW, MAX_WINDOW),
        ("submit_window", "submitWindow", MIN_WINDOW, MAX_WINDOW),
        ("post_window", "postWindow", MIN_WINDOW, MAX_WINDOW),
    ]
    cases: list[tuple[str, dict[str, Any], str, tuple[Any, ...]]] = [
        ("zero-stake", {"stake": 0}, "ZeroStake", ()),
        ("zero-bond", {"aggregator_bond": 0}, "ZeroBond", ()),
        ("plain-krum-slashing", {"tau_pct": 0, "slash_bps": 1}, "SlashingWithoutThreshold", (1,)),
        ("f-half", {"max_trainers": 4, "krum_f": 2}, "NoHonestMajority", (4, 2, 0)),
        ("m-beyond-n-minus-f", {"max_trainers": 4, "krum_f": 1, "krum_m": 4}, "NoHonestMajority", (4, 1, 4)),
    ]
    for field, name, low, high in bounds:
        if low > 1:
            cases.append((f"{field}-low", {field: low - 1}, "OutOfBounds", (name, low - 1, low, high)))
        cases.append((f"{field}-zero", {field: 0}, "OutOfBounds", (name, 0, low, high)))
        cases.append((f"{field}-high", {field: high + 1}, "OutOfBounds", (name, high + 1, low, high)))
    return cases


def test_every_refused_setting_has_a_named_error(dep: Deployment) -> None:
    """Each setting is refused at createProject with its own error and arguments."""
    for case, overrides, error, args in refused_settings():
        with pytest.raises(ContractRevert) as info:
            dep.create(budget=0, **overrides)
        assert (info.value.name, info.value.error_args) == (error, args), case


def test_join_deadline_bounds(dep: Deployment) -> None:
    """The join deadline must lie after the creating block and at most MAX_JOIN_DELAY after it."""
    for deadline in (lambda now: now, lambda now: now + MAX_JOIN_DELAY + 60):
        with pytest.raises(ContractRevert) as info:
            dep.create(budget=0, join_deadline=deadline(dep.chain.now()))
        name, value, low, high = info.value.error_args
        assert isinstance(value, int) and isinstance(low, int) and isinstance(high, int)
        assert (info.value.name, name, high - low) == ("OutOfBounds", "joinDeadline", MAX_JOIN_DELAY - 1)
        assert not low <= value <= high


@pytest.mark.parametrize(
    "overrides",
    [
        {"rounds": MAX_ROUNDS},
        {"rounds": 1},
        {"open_window": MIN_WINDOW, "submit_window": MAX_WINDOW, "post_window": MIN_WINDOW},
        {"max_trainers": 3, "min_trainers": 1, "krum_f": 1},  # 2f + 1 = n: an honest majority
        {"max_trainers": 4, "krum_f": 1, "krum_m": 3},  # m = n - f
        {"tau_pct": 0, "slash_bps": 0},  # plain Multi-Krum that slashes nobody
        {"tau_pct": 0, "slash_bps": 5_000, "rule": 1},  # tau is Multi-Krum's only
        {"stake": 1, "aggregator_bond": 1},
        {"join_deadline_in": 300 * DAY},
    ],
    ids=["max-rounds", "one-round", "window-bounds", "honest-majority", "m-is-n-minus-f", "plain-krum-no-slash",
         "fltrust-tau-zero", "one-wei", "join-in-300-days"],
)
def test_settings_at_the_bounds_are_accepted(dep: Deployment, overrides: dict[str, Any]) -> None:
    if "join_deadline_in" in overrides:
        overrides = {"join_deadline": dep.chain.now() + overrides.pop("join_deadline_in")}
    pid = dep.create(budget=0, **overrides)
    assert dep.market.project(pid).state == State.CREATED


def test_contract_bounds_are_the_python_constants(dep: Deployment) -> None:
    fns = dep.market.contract.functions
    read = {name: dep.chain.call(getattr(fns, name)()) for name in ("MAX_ROUNDS", "MIN_WINDOW", "MAX_WINDOW",
                                                                   "MAX_JOIN_DELAY")}
    assert read == {"MAX_ROUNDS": MAX_ROUNDS, "MIN_WINDOW": MIN_WINDOW, "MAX_WINDOW": MAX_WINDOW,
                    "MAX_JOIN_DELAY": MAX_JOIN_DELAY}
    assert (MAX_ROUNDS, MIN_WINDOW, MAX_WINDOW, MAX_JOIN_DELAY) == (1_000, 60, 30 * DAY, 365 * DAY)
    assert dep.chain.call(fns.FEW_ACCEPTED_DIVISOR()) == FEW_ACCEPTED_DIVISOR == 4


# -- the same checks in the project file, before any gas is spent ----------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"


def toml_text(sections: dict[str, dict[str, int | str]]) -> str:
    """A TOML document from tables of integers and strings."""
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in table.items())
        for name, table in sections.items()
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "field"),
    [
        ("project", "stake", 0, r"\[project\] stake"),
        ("project", "aggregator_bond", "0 ether", r"\[project\] aggregator_bond"),
        ("rule", "tau_pct", 0, r"\[rule\] tau_pct = 0 with slash_bps > 0"),
        ("rule", "f", 2, r"\[rule\] f = 2: .*honest majority"),
        ("rule", "m", 4, r"\[rule\] m = 4: at most max_trainers - f \(3\)"),
        ("project", "rounds", 0, r"\[project\] rounds = 0"),
        ("project", "rounds", MAX_ROUNDS + 1, r"\[project\] rounds"),
        ("project", "open_window", MIN_WINDOW - 1, r"\[project\] open_window"),
        ("project", "submit_window", MAX_WINDOW + 1, r"\[project\] submit_window"),
        ("project", "post_window", 0, r"\[project\] post_window"),
        ("project", "join_window", MAX_JOIN_DELAY + 1, r"\[project\] join_window"),
        ("project", "join_window", 0, r"\[project\] join_window"),
        ("rule", "slash_bps", 10_001, r"\[rule\] slash_bps"),
    ],
)
def test_project_file_refuses_what_the_contract_refuses(
    tmp_path: Path, section: str, key: str, value: int | str, field: str
) -> None:
    sections: dict[str, dict[str, int | str]] = {"project": {"max_trainers": 4}, "rule": {"f": 1, "m": 0}}
    toml = tmp_path / "project.toml"
    toml.write_text(toml_text(sections))
    load_project_file(toml)  # the base is accepted: each case changes one field
    sections[section][key] = value
    toml.write_text(toml_text(sections))
    with pytest.raises(ConfigError, match=field):
        load_project_file(toml)


@pytest.mark.parametrize(
    "pf",
    [load_project_file(EXAMPLE), project_file(DemoConfig()), project_file(DemoConfig(trainers=4, attackers=1))],
    ids=["digits.toml", "demo", "demo-4-trainers"],
)
def test_shipped_settings_pass_both_checks(pf: ProjectFile) -> None:
    """examples/digits.toml and the demo's projects are accepted by the project file and by the contract."""
    check_settings(pf)
    dep = deploy(Chain.in_process(), slots=pf.max_trainers)
    rule = pf.manifest.rule
    pid = dep.create(
        budget=0, rounds=pf.rounds, min_trainers=pf.min_trainers, max_trainers=pf.max_trainers, stake=pf.stake,
        aggregator_bond=pf.aggregator_bond, open_window=pf.open_window, submit_window=pf.submit_window,
        post_window=pf.post_window, join_deadline=dep.chain.now() + pf.join_window, krum_f=rule.f, krum_m=rule.m,
        tau_pct=rule.tau_pct, slash_bps=pf.slash_bps,
    )
    assert dep.market.project(pid).state == State.CREATED
