"""Every FedMarket custom error is reachable and names what was wrong; access control, deadlines, replays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from market.chain.client import Chain
from market.chain.marketplace import ProjectParams, State, artifacts
from market.protocol.public_input import FIELD_MODULUS
from tests.marketplace_harness import (
    CID,
    MODEL_CID,
    V_COMMIT,
    Deployment,
    assert_solvent,
    commitment,
    deploy,
    model_out,
    reverts,
    view_of,
    with_test_contracts,
)

MAX_AMOUNT = 2**112 - 1


def training(dep: Deployment, n: int = 2, **overrides: Any) -> int:
    """A project in Training with `n` trainers and no round open yet."""
    pid = dep.create(min_trainers=1, **overrides)
    dep.start(pid, n)
    return pid


def close_commits(dep: Deployment, pid: int) -> None:
    """Move chain time past the open round's commit window: its reveals open (PROTOCOL.md §3)."""
    dep.chain.time_travel(dep.market.project(pid).deadline - dep.chain.now() + 1)


def in_round(dep: Deployment, n: int = 2, submitted: tuple[int, ...] = (0,), **overrides: Any) -> int:
    """A project with round 1 open and `submitted` slots submitted."""
    pid = training(dep, n, **overrides)
    dep.market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 1, submitted)
    return pid


def case_unknown_project(dep: Deployment) -> None:
    reverts("UnknownProject", lambda: dep.market.bond(99, dep.aggregator, value=0), 99)
    reverts("UnknownProject", lambda: dep.market.cancel(0, dep.owner), 0)
    reverts("UnknownProject", lambda: dep.market.project(7), 7)
    reverts("UnknownProject", lambda: dep.market.previous_model_commitment(7), 7)


def case_wrong_state(dep: Deployment) -> None:
    m = dep.market
    pid = dep.create()
    reverts("WrongState", lambda: m.join(pid, dep.trainers[0]), pid, State.CREATED, State.OPEN)
    reverts("WrongState", lambda: m.start(pid, dep.owner), pid, State.CREATED, State.OPEN)
    reverts("WrongState", lambda: m.open_round(pid, V_COMMIT, dep.aggregator), pid, State.CREATED, State.TRAINING)
    reverts("WrongState", lambda: m.timeout(pid, dep.owner), pid, State.CREATED, State.TRAINING)
    m.bond(pid, dep.aggregator)
    reverts("WrongState", lambda: m.bond(pid, dep.aggregator), pid, State.OPEN, State.CREATED)
    reverts(
        "WrongState", lambda: m.submit_updates(pid, 1, [(dep.trainers[0], CID, 5)]), pid, State.OPEN, State.TRAINING
    )


def case_funding_closed(dep: Deployment) -> None:
    pid = training(dep)
    reverts("FundingClosed", lambda: dep.market.fund(pid, 1, dep.owner), pid, State.TRAINING)


def case_not_cancellable(dep: Deployment) -> None:
    pid = training(dep)
    reverts("NotCancellable", lambda: dep.market.cancel(pid, dep.owner), pid, State.TRAINING)


def case_stake_locked(dep: Deployment) -> None:
    pid = dep.create()
    dep.open(pid, 1)
    reverts("StakeLocked", lambda: dep.market.withdraw_stake(pid, dep.trainers[0]), pid, State.OPEN)


def case_bond_locked(dep: Deployment) -> None:
    pid = training(dep)
    reverts("BondLocked", lambda: dep.market.withdraw_bond(pid, dep.aggregator), pid, State.TRAINING)


def case_not_owner(dep: Deployment) -> None:
    m = dep.market
    pid = dep.create()
    stranger = dep.trainers[3]
    reverts("NotOwner", lambda: m.fund(pid, 1, stranger), pid, stranger.address)
    reverts("NotOwner", lambda: m.withdraw_refund(pid, stranger), pid, stranger.address)


def case_not_aggregator(dep: Deployment) -> None:
    m = dep.market
    pid = dep.create()
    reverts("NotAggregator", lambda: m.bond(pid, dep.owner), pid, dep.owner.address)
    dep.start(pid, 2)
    reverts("NotAggregator", lambda: m.open_round(pid, V_COMMIT, dep.owner), pid, dep.owner.address)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 1, [0, 1])
    proof = dep.proof(pid, 1, [0, 0], [1, 1])
    reverts(
        "NotAggregator",
        lambda: m.post_round(pid, 1, MODEL_CID, CID, model_out(1), [0, 0], [1, 1], proof, dep.trainers[0]),
        pid,
        dep.trainers[0].address,
    )
    reverts("NotAggregator", lambda: m.withdraw_bond(pid, dep.owner), pid, dep.owner.address)


def case_not_trainer(dep: Deployment) -> None:
    pid = in_round(dep, 2, ())
    outsider = dep.trainers[6]
    reverts("NotTrainer", lambda: dep.market.submit_updates(pid, 1, [(outsider, CID, 5)]), pid, outsider.address)
    reverts("NotTrainer", lambda: dep.market.withdraw_stake(pid, outsider), pid, outsider.address)


def case_trainer_ejected(dep: Deployment) -> None:
    m = dep.market
    pid = in_round(dep, 2, (0, 1), rounds=2)
    dep.post(pid, 1, [0, 1], [3, 0])
    m.open_round(pid, V_COMMIT, dep.aggregator)
    bad = dep.trainers[1]
    reverts("TrainerEjected", lambda: m.submit_updates(pid, 2, [(bad, CID, 9)]), pid, bad.address)
    m.withdraw_stake(pid, bad)  # ejected: withdrawable at once, minus the slash
    assert m.participant(pid, bad.address).stake == 0
    assert_solvent(dep)


def case_already_joined(dep: Deployment) -> None:
    pid = dep.create()
    dep.open(pid, 1)
    reverts("AlreadyJoined", lambda: dep.market.join(pid, dep.trainers[0]), pid, dep.trainers[0].address)


def case_project_full(dep: Deployment) -> None:
    pid = dep.create(max_trainers=2)
    dep.open(pid, 2)
    reverts("ProjectFull", lambda: dep.market.join(pid, dep.trainers[2]), pid, 2)


def case_not_enough_trainers(dep: Deployment) -> None:
    pid = dep.create(min_trainers=3)
    dep.open(pid, 2)
    reverts("NotEnoughTrainers", lambda: dep.market.start(pid, dep.owner), pid, 2, 3)


def case_quorum_reached(dep: Deployment) -> None:
    pid = dep.create(min_trainers=2)
    dep.open(pid, 2)
    dep.chain.time_travel(1_001)
    reverts("QuorumReached", lambda: dep.market.cancel(pid, dep.trainers[0]), pid, 2, 2)


def commit(dep: Deployment, pid: int, slot: int, value: int = 5) -> None:
    """The trainer in `slot` seals (CID, `value`) in round 1, with a zero salt."""
    t = dep.trainers[slot]
    dep.market.commit_update(pid, 1, dep.market.seal(pid, 1, t.address, CID, value, bytes(32)), t)


def case_already_submitted(dep: Deployment) -> None:
    pid = in_round(dep, 2, ())
    commit(dep, pid, 0)
    reverts("AlreadySubmitted", lambda: dep.market.submit_updates(pid, 1, [(dep.trainers[0], CID, 77)]), pid, 1, 0)


def case_window_closed(dep: Deployment) -> None:
    pid = in_round(dep)
    end = dep.market.project(pid).deadline
    dep.chain.time_travel(601)
    err = reverts("WindowClosed", lambda: dep.market.submit_updates(pid, 1, [(dep.trainers[1], CID, 5)]))
    assert err.error_args[:2] == (pid, end)


def case_window_open(dep: Deployment) -> None:
    pid = in_round(dep, 2, ())
    err = reverts("WindowOpen", lambda: dep.post(pid, 1, [0, 0], [0, 0]))  # a slot may still commit
    assert err.error_args[:2] == (pid, dep.market.project(pid).deadline)
    commit(dep, pid, 0)
    dep.market.decline_round(pid, 1, dep.trainers[1])
    err = reverts("WindowOpen", lambda: dep.post(pid, 1, [0, 0], [0, 0]))  # slot 0 may still reveal
    assert err.error_args[:2] == (pid, dep.market.project(pid).reveal_deadline)


def case_commits_open(dep: Deployment) -> None:
    pid = in_round(dep, 2, ())
    commit(dep, pid, 0)
    err = reverts("CommitsOpen", lambda: dep.market.reveal_update(pid, 1, CID, 5, bytes(32), dep.trainers[0]))
    assert err.error_args[:2] == (pid, dep.market.project(pid).deadline)


def case_deadline_passed(dep: Deployment) -> None:
    m = dep.market
    pid = dep.create()
    dep.chain.time_travel(1_001)
    reverts("DeadlinePassed", lambda: m.bond(pid, dep.aggregator))
    pid = dep.create()
    m.bond(pid, dep.aggregator)
    dep.chain.time_travel(1_001)
    reverts("DeadlinePassed", lambda: m.join(pid, dep.trainers[0]))
    pid = training(dep)
    dep.chain.time_travel(601)
    reverts("DeadlinePassed", lambda: m.open_round(pid, V_COMMIT, dep.aggregator))
    pid = in_round(dep, 2, (0,))
    proof = dep.proof(pid, 1, [0, 0], [1, 0])
    dep.chain.time_travel(1_201)
    reverts("DeadlinePassed", lambda: m.post_round(pid, 1, MODEL_CID, CID, model_out(1), [0, 0], [1, 0], proof, dep.aggregator))


def case_deadline_not_passed(dep: Deployment) -> None:
    m = dep.market
    pid = dep.create(min_trainers=2)
    dep.open(pid, 1)
    reverts("DeadlineNotPassed", lambda: m.cancel(pid, dep.trainers[0]))
    dep.market.join(pid, dep.trainers[1])
    reverts("DeadlineNotPassed", lambda: m.start(pid, dep.trainers[0]))
    m.start(pid, dep.owner)
    reverts("DeadlineNotPassed", lambda: m.timeout(pid, dep.trainers[0]))
    m.open_round(pid, V_COMMIT, dep.aggregator)
    dep.chain.time_travel(601)  # window over, post deadline not yet
    reverts("DeadlineNotPassed", lambda: m.timeout(pid, dep.trainers[0]))


def case_wrong_round(dep: Deployment) -> None:
    m = dep.market
    pid = in_round(dep, 2, (0, 1), rounds=3)
    dep.post(pid, 1, [0, 0], [1, 1])
    m.open_round(pid, V_COMMIT, dep.aggregator)
    # A round-1 submission replayed into round 2 (or sent ahead to round 3) is refused.
    reverts("WrongRound", lambda: m.submit_updates(pid, 1, [(dep.trainers[0], CID, commitment(0, 1))]), 2, 1)
    reverts("WrongRound", lambda: m.submit_updates(pid, 3, [(dep.trainers[0], CID, commitment(0, 1))]), 2, 3)
    reverts("WrongRound", lambda: m.post_round(pid, 1, MODEL_CID, CID, model_out(1), [0, 0], [0, 0], [0] * 8, dep.aggregator), 2, 1)
    reverts("WrongRound", lambda: m.round_state(pid, 3), 2, 3)
    reverts("WrongRound", lambda: m.submission_order(pid, 3), 2, 3)
    reverts("WrongRound", lambda: m.submission_order(pid, 0), 2, 0)


def case_order_not_kept(dep: Deployment) -> None:
    m = dep.market
    pid = in_round(dep, 2, (1, 0), rounds=3)
    dep.post(pid, 1, [0, 0], [1, 1])
    assert m.submission_order(pid, 1) == [1, 0]  # the latest round stays readable once posted
    m.open_round(pid, V_COMMIT, dep.aggregator)
    # Ranks live in the participant records: once round 2 opens, round 1's are only in the events.
    reverts("OrderNotKept", lambda: m.submission_order(pid, 1), pid, 1, 2)
    reverts("OrderNotKept", lambda: m.public_input(pid, 1, model_out(1), [0, 0], [1, 1]), pid, 1, 2)
    assert m.round_state(pid, 1).commitments == (commitment(0), commitment(1))
    assert m.submission_order(pid, 2) == [0, 0]


def case_round_not_open(dep: Deployment) -> None:
    pid = training(dep)
    reverts("RoundNotOpen", lambda: dep.market.submit_updates(pid, 1, [(dep.trainers[0], CID, 5)]), pid, 0)


def case_round_already_open(dep: Deployment) -> None:
    pid = in_round(dep)
    reverts("RoundAlreadyOpen", lambda: dep.market.open_round(pid, V_COMMIT, dep.aggregator), pid, 1)


def case_wrong_amount(dep: Deployment) -> None:
    m = dep.market
    params = dep.params()
    reverts("WrongAmount", lambda: m.create_project(params, 100, dep.owner, value=99), 100, 99)
    pid = dep.create()
    reverts("WrongAmount", lambda: m.bond(pid, dep.aggregator, value=1), params.aggregator_bond, 1)
    m.bond(pid, dep.aggregator)
    reverts("WrongAmount", lambda: m.join(pid, dep.trainers[0], value=10**15 + 1), 10**15, 10**15 + 1)
    reverts("WrongAmount", lambda: m.fund(pid, 5, dep.owner, value=4), 5, 4)
    token = dep.deploy_token()
    erc = dep.params(token=token.address)
    reverts("WrongAmount", lambda: m.create_project(erc, 100, dep.owner, value=1), 0, 1)


def case_zero_amount(dep: Deployment) -> None:
    pid = dep.create()
    reverts("ZeroAmount", lambda: dep.market.fund(pid, 0, dep.owner))


def case_amount_too_large(dep: Deployment) -> None:
    m = dep.market
    reverts("AmountTooLarge", lambda: m.create_project(dep.params(), MAX_AMOUNT + 1, dep.owner, value=0))
    reverts(
        "AmountTooLarge", lambda: m.create_project(dep.params(stake=MAX_AMOUNT + 1), 0, dep.owner), MAX_AMOUNT + 1,
        MAX_AMOUNT,
    )
    # Budget and bond together fit a trainer's packed rewards (a forfeited bond is credited there too).
    bond = dep.params().aggregator_bond
    reverts("AmountTooLarge", lambda: m.create_project(dep.params(), MAX_AMOUNT - bond + 1, dep.owner, value=0),
            MAX_AMOUNT + 1, MAX_AMOUNT)
    token = dep.deploy_token()
    pid = dep.create(budget=MAX_AMOUNT - bond - 5, token=token.address)
    reverts("AmountTooLarge", lambda: m.fund(pid, 6, dep.owner), MAX_AMOUNT + 1, MAX_AMOUNT)


BAD_PARAMS: dict[str, dict[str, Any]] = {
    "token": {"token": "0x000000000000000000000000000000000000dEaD"},
    "aggregator": {"aggregator": "0x" + "00" * 20},
    "minTrainers": {"min_trainers": 5, "max_trainers": 4},
    "maxTrainers": {"max_trainers": 257},
    "krumM": {"krum_m": 5, "max_trainers": 4},
    "rule": {"rule": 2},
    "quantBits": {"quant_bits": 33},
    "slashBps": {"slash_bps": 10_001},
    "viewLen": {"view_len": 0},
    "modelCommit": {"model_commit": FIELD_MODULUS},
}


def case_invalid_parameter(dep: Deployment) -> None:
    for name, overrides in BAD_PARAMS.items():
        params = dep.params(**overrides)
        reverts("InvalidParameter", lambda p=params: dep.market.create_project(p, 0, dep.owner), name)
    no_code = dep.params(verifier=dep.owner.address)
    reverts("InvalidParameter", lambda: dep.market.create_project(no_code, 0, dep.owner), "verifier")


def case_verifier_settings(dep: Deployment) -> None:
    """A verifier built for other circuit settings than the project's is refused at creation, naming the setting
    (the attacker: an owner pairing its project with a circuit that proves another rule)."""
    dep.create()  # the test verifier now answers the default parameters' settings
    cases: dict[str, tuple[dict[str, Any], int, int]] = {
        "maxTrainers": ({"max_trainers": 9}, 9, 8),  # the verifier has only 8 slots
        "viewLen": ({"view_len": 2}, 2, 1),
        "quantBits": ({"quant_bits": 8}, 8, 16),
        "krumF": ({"krum_f": 1}, 1, 0),
        "krumM": ({"krum_m": 2}, 2, 0),
        "tauPct": ({"tau_pct": 150}, 150, 175),
        "dupPct": ({"dup_pct": 0}, 0, 5),
        "floorPct": ({"floor_pct": 20}, 20, 10),
        "rule": ({"rule": 1}, 1, 0),
    }
    for setting, (overrides, project_value, verifier_value) in cases.items():
        params = dep.params(**overrides)
        reverts("VerifierSettingsMismatch", lambda p=params: dep.market.create_project(p, 0, dep.owner),
                setting, project_value, verifier_value)


def case_too_many_slots(dep: Deployment) -> None:
    """A verifier with more slots than scores stay unique for (127 and more) is refused."""
    wide = dep.chain.deploy(with_test_contracts()["HashCheckVerifier"], 127, sender=dep.owner)
    params = dep.params(verifier=wide.address)
    reverts("TooManySlots", lambda: dep.market.create_project(params, 0, dep.owner), 127, 126)


def case_settings_refused(dep: Deployment) -> None:
    """Settings that hurt honest parties (each case and bound: tests/test_adversary_contract.py)."""
    cases: list[tuple[dict[str, Any], str, tuple[Any, ...]]] = [
        ({"rounds": 0}, "OutOfBounds", ("rounds", 0, 1, 1_000)),
        ({"post_window": 59}, "OutOfBounds", ("postWindow", 59, 60, 30 * 86_400)),
        ({"stake": 0}, "ZeroStake", ()),
        ({"aggregator_bond": 0}, "ZeroBond", ()),
        ({"tau_pct": 0}, "SlashingWithoutThreshold", (5_000,)),
        ({"krum_f": 2}, "NoHonestMajority", (4, 2, 0)),
    ]
    for overrides, name, args in cases:
        params = dep.params(**overrides)
        reverts(name, lambda p=params: dep.market.create_project(p, 0, dep.owner), *args)


def case_invalid_commitment(dep: Deployment) -> None:
    m = dep.market
    pid = training(dep)
    reverts("InvalidCommitment", lambda: m.open_round(pid, FIELD_MODULUS, dep.aggregator), FIELD_MODULUS)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    t, salt = dep.trainers[0], bytes(32)
    m.commit_update(pid, 1, m.seal(pid, 1, t.address, CID, 0, salt), t)
    close_commits(dep, pid)
    reverts("InvalidCommitment", lambda: m.reveal_update(pid, 1, CID, 0, salt, t), 0)
    reverts("InvalidCommitment", lambda: m.reveal_update(pid, 1, CID, FIELD_MODULUS, salt, t), FIELD_MODULUS)


def case_not_committed(dep: Deployment) -> None:
    m = dep.market
    pid = in_round(dep, 2, ())
    close_commits(dep, pid)
    reverts("NotCommitted", lambda: m.reveal_update(pid, 1, CID, 5, bytes(32), dep.trainers[1]), pid, 1, 1)


def case_seal_mismatch(dep: Deployment) -> None:
    m = dep.market
    pid = in_round(dep, 2, ())
    t, salt = dep.trainers[0], bytes(32)
    m.commit_update(pid, 1, m.seal(pid, 1, t.address, CID, 5, salt), t)
    close_commits(dep, pid)
    reverts("SealMismatch", lambda: m.reveal_update(pid, 1, CID, 6, salt, t), pid, 1, 0)


def case_empty_cid(dep: Deployment) -> None:
    pid = in_round(dep, 2, ())
    reverts("EmptyCid", lambda: dep.market.submit_updates(pid, 1, [(dep.trainers[0], b"", 5)], close_commits=True))


def case_post_checks(dep: Deployment) -> None:
    m = dep.market
    pid = in_round(dep, 3, (0, 1))
    dep.chain.time_travel(601)

    def post(flags: list[int], scores: list[int]) -> None:
        m.post_round(pid, 1, MODEL_CID, CID, model_out(1), flags, scores, [0] * 8, dep.aggregator)

    reverts("LengthMismatch", lambda: post([0, 0], [1, 1, 0]), 3, 2)
    reverts("LengthMismatch", lambda: post([0, 0, 0], [1, 1]), 3, 2)
    reverts("InvalidFlag", lambda: post([0, 4, 0], [1, 0, 0]), 1, 4)
    reverts("FlaggedSlotScored", lambda: post([0, 3, 0], [1, 2, 0]), 1, 2)  # an excluded slot is not paid
    reverts("AbsentSlotNotZero", lambda: post([0, 0, 1], [1, 1, 0]), 2)
    reverts("AbsentSlotNotZero", lambda: post([0, 0, 0], [1, 1, -1]), 2)
    reverts("FlaggedSlotScored", lambda: post([2, 0, 0], [4, 1, 0]), 0, 4)
    reverts("InvalidProof", lambda: post([0, 0, 0], [1, 1, 0]), pid, 1)
    reverts("AbsentSlotNotZero", lambda: m.public_input(pid, 1, model_out(1), [0, 0, 2], [0, 0, 0]), 2)


def case_bond_below_round_budget(dep: Deployment) -> None:
    pid = dep.create(budget=10**18, rounds=2, aggregator_bond=10**18 // 2 - 1)
    dep.open(pid, 2)
    reverts("BondBelowRoundBudget", lambda: dep.market.start(pid, dep.owner), 10**18 // 2 - 1, 10**18 // 2)


def case_dispute_checks(dep: Deployment) -> None:
    """A post that rejects slot 0 (flag 2) with nobody curing: what may and may not happen to it."""
    m = dep.market
    pid = in_round(dep, 2, (0, 1))
    stranger = view_of([5])  # a valid one-value view, not the stand-in commitment's
    reverts("NoDispute", lambda: dep.cure(pid, 1, 0, stranger), pid, 1)
    dep.post(pid, 1, [2, 0], [0, 1])
    end = m.project(pid).post_deadline
    reverts("NotRejected", lambda: dep.cure(pid, 1, 1, stranger), pid, 1, 1)
    reverts("CureMismatch", lambda: dep.cure(pid, 1, 0, stranger), pid, 1, 0)
    err = reverts("DisputeOpen", lambda: m.finalize_round(pid, 1, model_out(1), [2, 0], [0, 1], dep.owner))
    assert err.error_args[:2] == (pid, end)
    reverts("DisputeOpen", lambda: dep.post(pid, 1, [2, 0], [0, 1]))
    dep.chain.time_travel(end - dep.chain.now() + 1)
    reverts("ClaimMismatch", lambda: m.finalize_round(pid, 1, model_out(1), [2, 0], [0, 2], dep.owner), pid, 1)
    reverts("NothingCured", lambda: dep.post(pid, 1, [0, 0], [1, 1]), pid, 1)
    dep.chain.time_travel(601)
    reverts("NothingCured", lambda: m.timeout(pid, dep.owner), pid, 1)
    m.finalize_round(pid, 1, model_out(1), [2, 0], [0, 1], dep.owner)
    reverts("RoundNotOpen", lambda: m.finalize_round(pid, 1, model_out(1), [2, 0], [0, 1], dep.owner), pid, 1)


def case_cure_outstanding(dep: Deployment) -> None:
    """Slot 0 cured its rejection: only the aggregator's re-post, without a new rejection, settles the round."""
    m = dep.market
    pid = training(dep)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    views = dep.submit_views(pid, 1, [0, 1])
    dep.post(pid, 1, [2, 2], [0, 0])
    dep.cure(pid, 1, 0, views[0])
    dep.chain.time_travel(601)
    reverts("CureOutstanding", lambda: m.finalize_round(pid, 1, model_out(1), [2, 2], [0, 0], dep.owner), pid, 1)
    reverts("NewRejection", lambda: dep.post(pid, 1, [2, 2], [0, 0]), pid, 1, 0)
    dep.post(pid, 1, [0, 2], [1, 0])
    assert m.participant(pid, dep.trainers[0].address).rewards == 10**18 // 2


def case_not_replay_judge(dep: Deployment) -> None:
    """Only the marketplace's ReplayChallenge takes a replay out of a round (tests/test_marketplace_replays.py covers the
    challenges themselves); the owner, the aggregator and a trainer cannot clear a slot."""
    m = dep.market
    pid = dep.create()
    dep.start(pid, 2)
    m.open_round(pid, 0x1234, dep.aggregator)
    dep.submit(pid, 1, [0, 1])
    for caller in (dep.owner, dep.aggregator, dep.trainers[1]):
        reverts("NotReplayJudge", lambda c=caller: dep.chain.transact(m.contract.functions.takeOutReplay(pid, 1, 0, 1, 1),
                                                                       sender=c, gas=200_000), caller.address)
    assert all(m.round_state(pid, 1).commitments)


def case_nothing_to_withdraw(dep: Deployment) -> None:
    m = dep.market
    pid = dep.create()
    dep.open(pid, 1)
    reverts("NothingToWithdraw", lambda: m.claim(pid, dep.trainers[0]))
    reverts("NothingToWithdraw", lambda: m.withdraw_refund(pid, dep.owner))
    m.cancel(pid, dep.owner)
    m.withdraw_stake(pid, dep.trainers[0])
    reverts("NothingToWithdraw", lambda: m.withdraw_stake(pid, dep.trainers[0]))
    m.withdraw_bond(pid, dep.aggregator)
    reverts("NothingToWithdraw", lambda: m.withdraw_bond(pid, dep.aggregator))
    m.withdraw_refund(pid, dep.owner)
    reverts("NothingToWithdraw", lambda: m.withdraw_refund(pid, dep.owner))


def case_safe_erc20_failed(dep: Deployment) -> None:
    token = dep.deploy_token("FalseToken")
    reverts("SafeERC20FailedOperation", lambda: dep.create(budget=10, token=token.address), token.address)


def receiver_trainer(dep: Deployment, attack: int) -> tuple[Any, int]:
    """A finished project whose trainer in slot 0 is a ReentrantReceiver set to `attack` on payment."""
    chain, m = dep.chain, dep.market
    receiver = chain.deploy(with_test_contracts()["ReentrantReceiver"], m.address, sender=dep.owner)
    pid = dep.create(rounds=1, min_trainers=2)
    m.bond(pid, dep.aggregator)
    stake = m.project(pid).params.stake
    join = m.contract.functions.join(pid)._encode_transaction_data()
    chain.transact(receiver.functions.act(join, stake), dep.owner, value=stake, gas=400_000)
    m.join(pid, dep.trainers[0])
    m.start(pid, dep.owner)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    salt = bytes(32)
    sealed = m.seal(pid, 1, receiver.address, CID, commitment(0), salt)
    own_salt = bytes(31) + b"\x01"
    m.commit_update(pid, 1, m.seal(pid, 1, dep.trainers[0].address, CID, commitment(1), own_salt), dep.trainers[0])
    for call in (m.contract.functions.commitUpdate(pid, 1, sealed),
                 m.contract.functions.revealUpdate(pid, 1, CID, commitment(0), salt)):
        chain.transact(receiver.functions.act(call._encode_transaction_data(), 0), dep.owner, gas=400_000)
    m.reveal_update(pid, 1, CID, commitment(1), own_salt, dep.trainers[0])
    dep.post(pid, 1, [0, 0], [1, 1])
    chain.transact(receiver.functions.setAttack(attack, pid), dep.owner, gas=100_000)
    return receiver, pid


def case_transfer_failed(dep: Deployment) -> None:
    receiver, pid = receiver_trainer(dep, 5)  # RejectPayment
    claim = dep.market.contract.functions.claim(pid)._encode_transaction_data()
    rewards = dep.market.participant(pid, receiver.address).rewards
    reverts(
        "TransferFailed",
        lambda: dep.chain.transact(receiver.functions.act(claim, 0), dep.owner, gas=400_000),
        receiver.address,
        rewards,
    )


def case_reentrancy_guard(dep: Deployment) -> None:
    """The guard's error surfaces inside the re-entering receiver (see check_reentrancy_blocked)."""
    check_reentrancy_blocked(dep, 1)


ERROR_CASES: dict[str, Callable[[Deployment], None]] = {
    "UnknownProject": case_unknown_project,
    "WrongState": case_wrong_state,
    "FundingClosed": case_funding_closed,
    "NotCancellable": case_not_cancellable,
    "StakeLocked": case_stake_locked,
    "BondLocked": case_bond_locked,
    "NotOwner": case_not_owner,
    "NotAggregator": case_not_aggregator,
    "NotTrainer": case_not_trainer,
    "TrainerEjected": case_trainer_ejected,
    "AlreadyJoined": case_already_joined,
    "ProjectFull": case_project_full,
    "NotEnoughTrainers": case_not_enough_trainers,
    "QuorumReached": case_quorum_reached,
    "AlreadySubmitted": case_already_submitted,
    "WindowClosed": case_window_closed,
    "WindowOpen": case_window_open,
    "CommitsOpen": case_commits_open,
    "DeadlinePassed": case_deadline_passed,
    "DeadlineNotPassed": case_deadline_not_passed,
    "WrongRound": case_wrong_round,
    "OrderNotKept": case_order_not_kept,
    "RoundNotOpen": case_round_not_open,
    "RoundAlreadyOpen": case_round_already_open,
    "WrongAmount": case_wrong_amount,
    "ZeroAmount": case_zero_amount,
    "AmountTooLarge": case_amount_too_large,
    "InvalidParameter": case_invalid_parameter,
    "VerifierSettingsMismatch": case_verifier_settings,
    "TooManySlots": case_too_many_slots,
    "OutOfBounds": case_settings_refused,
    "ZeroStake": case_settings_refused,
    "ZeroBond": case_settings_refused,
    "SlashingWithoutThreshold": case_settings_refused,
    "NoHonestMajority": case_settings_refused,
    "InvalidCommitment": case_invalid_commitment,
    "NotCommitted": case_not_committed,
    "SealMismatch": case_seal_mismatch,
    "EmptyCid": case_empty_cid,
    "LengthMismatch": case_post_checks,
    "InvalidFlag": case_post_checks,
    "AbsentSlotNotZero": case_post_checks,
    "FlaggedSlotScored": case_post_checks,
    "InvalidProof": case_post_checks,
    "BondBelowRoundBudget": case_bond_below_round_budget,
    "NoDispute": case_dispute_checks,
    "NotRejected": case_dispute_checks,
    "CureMismatch": case_dispute_checks,
    "DisputeOpen": case_dispute_checks,
    "ClaimMismatch": case_dispute_checks,
    "NothingCured": case_dispute_checks,
    "CureOutstanding": case_cure_outstanding,
    "NewRejection": case_cure_outstanding,
    "NothingToWithdraw": case_nothing_to_withdraw,
    "NotReplayJudge": case_not_replay_judge,
    "TransferFailed": case_transfer_failed,
    "SafeERC20FailedOperation": case_safe_erc20_failed,
    "ReentrancyGuardReentrantCall": case_reentrancy_guard,
}
CASES = sorted(set(ERROR_CASES.values()), key=lambda f: f.__name__)


def test_every_custom_error_has_a_case() -> None:
    abi_errors = {e["name"] for e in artifacts()["FedMarket"].abi if e["type"] == "error"}
    assert abi_errors == set(ERROR_CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__.removeprefix("case_"))
def test_error_cases(anvil_chain: Chain, case: Callable[[Deployment], None]) -> None:
    dep = deploy(anvil_chain)
    case(dep)
    assert_solvent(dep)


def check_reentrancy_blocked(dep: Deployment, attack: int) -> None:
    """Re-entering the marketplace from a payment fails with the guard's error; the payment is made once."""
    m = dep.market
    receiver, pid = receiver_trainer(dep, attack)
    rewards = m.participant(pid, receiver.address).rewards
    before = dep.chain.balance(receiver.address)
    claim = m.contract.functions.claim(pid)._encode_transaction_data()
    dep.chain.transact(receiver.functions.act(claim, 0), dep.owner, gas=400_000)
    assert dep.chain.balance(receiver.address) - before == rewards
    assert dep.chain.call(receiver.functions.received()) == 1
    assert dep.chain.call(receiver.functions.reentered()) is False
    selector = dep.chain.call(receiver.functions.lastError())[:4]
    assert dep.chain.decode_revert(selector).name == "ReentrancyGuardReentrantCall"
    assert m.participant(pid, receiver.address).rewards == 0
    assert_solvent(dep)


@pytest.mark.parametrize("attack", [1, 2, 3, 4], ids=["claim", "withdrawStake", "withdrawRefund", "withdrawBond"])
def test_reentrant_receiver_is_blocked(chain: Chain, attack: int) -> None:
    check_reentrancy_blocked(deploy(chain), attack)


def test_proof_does_not_transfer_between_projects_or_marketplaces(anvil_chain: Chain) -> None:
    dep = deploy(anvil_chain)
    other = deploy(anvil_chain)
    pids = []
    for d in (dep, dep, other):
        pid = in_round(d, 2, (0, 1))
        pids.append(pid)
    flags, scores = [0, 0], [1, 1]
    proof = dep.proof(pids[0], 1, flags, scores)
    anvil_chain.time_travel(601)
    reverts("InvalidProof", lambda: dep.market.post_round(pids[1], 1, MODEL_CID, CID, model_out(1), flags, scores, proof, dep.aggregator))
    reverts(
        "InvalidProof", lambda: other.market.post_round(pids[2], 1, MODEL_CID, CID, model_out(1), flags, scores, proof, dep.aggregator)
    )
    dep.market.post_round(pids[0], 1, MODEL_CID, CID, model_out(1), flags, scores, proof, dep.aggregator)


def test_signed_submission_cannot_be_replayed(anvil_chain: Chain) -> None:
    dep = deploy(anvil_chain)
    pid = in_round(dep, 2, ())
    trainer = dep.trainers[0]
    fn = dep.market.contract.functions.commitUpdate(pid, 1, dep.market.seal(pid, 1, trainer.address, CID, 5, bytes(32)))
    tx = fn.build_transaction(anvil_chain._tx_params(trainer, 0, 200_000))
    raw = trainer.sign_transaction(tx).raw_transaction
    anvil_chain.w3.eth.wait_for_transaction_receipt(anvil_chain.w3.eth.send_raw_transaction(raw))
    with pytest.raises(Exception, match="nonce"):
        anvil_chain.w3.eth.send_raw_transaction(raw)
    state = dep.market.round_state(pid, 1)
    assert state.pending == 0b10 and state.commitments == (0, 0)  # sealed, not revealed: absent


def test_params_round_trip(anvil_chain: Chain) -> None:
    dep = deploy(anvil_chain)
    settings = dict(spec_hash=bytes(range(32)), view_offset=5, view_len=77, krum_f=1, krum_m=2, tau_pct=150,
                    dup_pct=3, floor_pct=0, model_commit=FIELD_MODULUS - 1)
    params = dep.params(**settings)
    pid = dep.create(0, **settings)
    assert dep.market.model_commitment(pid) == dep.market.previous_model_commitment(pid) == FIELD_MODULUS - 1
    assert dep.market.project(pid).params == params
    assert ProjectParams.from_tuple(params.as_tuple()) == params
