"""FedMarket lifecycle paths on both backends: rewards to the wei, slashing, cancels, timeouts, ERC-20.

The attacks on these rules (false flags, a chosen v, missed deadlines) are in test_adversary_contract.py.
"""

from __future__ import annotations

import random
from dataclasses import replace
from functools import partial

import pytest
from eth_account import Account
from eth_utils import keccak

from market.chain.client import Chain
from market.chain.marketplace import CancelReason, Marketplace, State, Status
from market.errors import ContractRevert
from market.protocol.public_input import public_input
from tests.marketplace_harness import (
    CID,
    MODEL_CID,
    MODEL_COMMIT,
    V_COMMIT,
    Deployment,
    assert_solvent,
    commitment,
    deploy,
    held,
    model_out,
    reverts,
    statement,
    with_test_contracts,
)


def rewards_for(budget: int, scores: list[int], flags: list[int]) -> tuple[list[int], int]:
    """PROTOCOL.md §7 for one round in which every slot submitted and some positive score is accepted:
    each slot's reward and the owner's dust."""
    positive = sum(max(s, 0) for s, f in zip(scores, flags) if f == 0)
    assert positive > 0
    shares = [budget * max(s, 0) // positive if f == 0 else 0 for s, f in zip(scores, flags)]
    return shares, budget - sum(shares)


def test_full_lifecycle_pays_every_party_to_the_wei(chain: Chain) -> None:
    dep = deploy(chain, slots=8)
    market = dep.market
    budget = 10**18 + 7
    pid = dep.create(budget=budget, rounds=2, min_trainers=3, max_trainers=4, slash_bps=2_500)
    assert market.project(pid).state == State.CREATED
    dep.open(pid, 4)
    assert market.project(pid).state == State.OPEN
    market.start(pid, dep.owner)
    assert market.project(pid).state == State.TRAINING
    stake = market.project(pid).params.stake

    scores1, flags1 = [5, 3, 0, -2], [0, 0, 1, 0]
    dep.round(pid, scores1, flags1)
    round1 = budget // 2
    shares1, dust1 = rewards_for(round1, scores1, flags1)
    slashed = stake * 2_500 // 10_000
    project = market.project(pid)
    assert project.round == 1 and not project.round_open and project.n_active == 3
    assert project.ejected_mask == 0b0100
    assert project.owner_refund == dust1 + slashed
    ejected = market.participant(pid, dep.trainers[2].address)
    assert ejected.status == Status.EJECTED and ejected.stake == stake - slashed

    # Round 2: the ejected trainer cannot submit; slot 3 stays absent; the last round takes the remainder.
    scores2, flags2 = [7, 0, 0, 0], [0, 0, 0, 0]
    dep.round(pid, scores2, flags2, submitted=[0, 1])
    round2 = budget - round1
    shares2, dust2 = rewards_for(round2, scores2, flags2)
    project = market.project(pid)
    assert project.state == State.FINISHED and project.budget_left == 0
    assert project.owner_refund == dust1 + slashed + dust2
    for slot in range(4):
        assert market.participant(pid, dep.trainers[slot].address).rewards == shares1[slot] + shares2[slot]
    assert_solvent(dep)

    before = held(dep)
    paid = 0
    for slot in (0, 1):
        receipt = market.claim(pid, dep.trainers[slot])
        (event,) = market.receipt_events(receipt, "Claimed")
        assert event.args["amount"] == shares1[slot] + shares2[slot]
        paid += event.args["amount"]
    for slot in range(4):
        market.withdraw_stake(pid, dep.trainers[slot])
        paid += stake - (slashed if slot == 2 else 0)
    market.withdraw_refund(pid, dep.owner)
    market.withdraw_bond(pid, dep.aggregator)
    paid += dust1 + slashed + dust2 + market.project(pid).params.aggregator_bond
    assert before - held(dep) == paid
    assert held(dep) == 0
    assert_solvent(dep)


def test_public_input_matches_python_and_binds_the_round(chain: Chain) -> None:
    dep = deploy(chain, slots=8)
    market = dep.market
    pid = dep.create(rounds=2, min_trainers=1, max_trainers=5)
    dep.start(pid, 5)
    market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 1, [3, 0, 4, 1])
    rng = random.Random(7)
    commitments = market.round_state(pid, 1).commitments
    assert commitments == tuple(commitment(s, 1) if s != 2 else 0 for s in range(5))
    seqs = market.submission_order(pid, 1)
    assert seqs == [1, 3, 0, 0, 2]
    for _ in range(5):
        flags = [0 if c == 0 else rng.choice([0, 0, 1, 2, 3]) for c in commitments]
        scores = [rng.randint(-(2**63), 2**63 - 1) if c and f == 0 else 0 for c, f in zip(commitments, flags)]
        expected = public_input(statement(chain, market, pid, 1, 5), 8, commitments, flags, scores, seqs)
        assert market.public_input(pid, 1, model_out(1), flags, scores) == expected
        assert expected < 2**253
        # The ranks are hashed: the same round in slot order is another input.
        in_slot_order = [0, 1, 0, 2, 3]
        assert expected != public_input(statement(chain, market, pid, 1, 5), 8, commitments, flags, scores, in_slot_order)
    # A proof for round 1 is refused for round 2, and vice versa (the input binds the round).
    flags, scores = [0] * 5, [1, 1, 0, 1, 1]
    proof1 = dep.proof(pid, 1, flags, scores)
    chain.time_travel(601)
    market.post_round(pid, 1, MODEL_CID, CID, model_out(1), flags, scores, proof1, dep.aggregator)
    market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 2, [0, 1, 3, 4], salt=0)
    chain.time_travel(601)
    with pytest.raises(ContractRevert) as info:
        market.post_round(pid, 2, MODEL_CID, CID, model_out(2), flags, scores, proof1, dep.aggregator)
    assert info.value.name == "InvalidProof"


def test_model_commitments_chain_across_rounds(chain: Chain) -> None:
    """modelPrev and model (PROTOCOL.md §6) start at g(0)'s; every settlement (a post that settles at once, a
    finalize, the last round's post) shifts them by one round, a disputable post or a refused one moves
    nothing, and each round's public input hashes the pair the contract holds then."""
    dep = deploy(chain, slots=4)
    market = dep.market
    pid = dep.create(rounds=3, min_trainers=2, max_trainers=2)

    def models() -> tuple[int, int]:
        return market.previous_model_commitment(pid), market.model_commitment(pid)

    assert models() == (MODEL_COMMIT, MODEL_COMMIT)  # round 1's previous step is zero
    dep.start(pid, 2)
    dep.round(pid, [1, 1])  # settles at once
    assert models() == (MODEL_COMMIT, model_out(1))

    market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 2, [0, 1])
    flags, scores = [2, 0], [0, 1]
    dep.post(pid, 2, flags, scores)
    assert market.project(pid).disputing and models() == (MODEL_COMMIT, model_out(1))  # nothing settled
    dep.finalize(pid, 2, flags, scores)
    assert models() == (model_out(1), model_out(2))

    market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 3, [0, 1])
    commitments, seqs = market.round_state(pid, 3).commitments, market.submission_order(pid, 3)
    flags, scores = [0, 3], [2, 0]
    header = statement(chain, market, pid, 3, 2)
    assert (header.model_prev, header.model_in) == (model_out(1), model_out(2))
    expected = public_input(header, 4, commitments, flags, scores, seqs)
    assert market.public_input(pid, 3, model_out(3), flags, scores) == expected
    # A proof whose header starts the previous step anywhere else is refused, and moves nothing.
    for prev in (MODEL_COMMIT, model_out(2)):
        stale = public_input(replace(header, model_prev=prev), 4, commitments, flags, scores, seqs)
        proof = [stale] + [0] * 7
        reverts("InvalidProof", partial(market.post_round, pid, 3, MODEL_CID, CID, model_out(3), flags, scores, proof,
                                        dep.aggregator), pid, 3)
    assert models() == (model_out(1), model_out(2))
    market.post_round(pid, 3, MODEL_CID, CID, model_out(3), flags, scores, [expected] + [0] * 7, dep.aggregator)
    assert market.project(pid).state == State.FINISHED and models() == (model_out(2), model_out(3))


def _check_order(dep: Deployment, pid: int, round_: int, order: list[int], n: int) -> list[int]:
    """Slots in `order` submit in that order; the contract's ranks, events and public input agree with Python."""
    market, chain = dep.market, dep.chain
    first = chain.w3.eth.block_number + 1
    dep.submit(pid, round_, order)
    expected = [order.index(slot) if slot in order else 0 for slot in range(n)]
    seqs = market.submission_order(pid, round_)
    assert seqs == expected
    events = [e for e in market.events("UpdateSubmitted", pid, first) if e.args["round"] == round_]
    assert [(e.args["slot"], e.args["seq"]) for e in events] == [(slot, i) for i, slot in enumerate(order)]
    for slot in order:
        assert market.participant(pid, dep.trainers[slot].address).seq == expected[slot]
    commitments = market.round_state(pid, round_).commitments
    flags = [0] * n
    scores = [slot + 1 if c else 0 for slot, c in enumerate(commitments)]
    project = market.project(pid)
    assert market.public_input(pid, round_, model_out(round_), flags, scores) == public_input(
        statement(chain, market, pid, round_, n), project.verifier_slots, commitments, flags, scores, seqs
    )
    return seqs


def test_submission_ranks_out_of_slot_order_and_across_ejections(chain: Chain) -> None:
    dep = deploy(chain, slots=8)
    market = dep.market
    pid = dep.create(rounds=3, min_trainers=1, max_trainers=6)
    dep.start(pid, 6)

    # Round 1: slots 2 and 3 stay absent (rank 0); 1 and 5 are proven outliers and ejected.
    market.open_round(pid, V_COMMIT, dep.aggregator)
    assert market.submission_order(pid, 1) == [0] * 6
    assert _check_order(dep, pid, 1, [4, 1, 5, 0], 6) == [3, 1, 0, 0, 0, 2]
    chain.time_travel(601)
    dep.post(pid, 1, [0, 1, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0])
    assert market.project(pid).ejected_mask == 0b100010
    # Still the latest round; settled, it keeps only its accepted slots' commitments (PROTOCOL §5), so the slashed
    # slots 1 and 5 show no rank any more.
    assert market.submission_order(pid, 1) == [3, 0, 0, 0, 0, 0]

    # Round 2: the four remaining trainers rank 0..3 whatever their slots (slot 2 is a proven outlier).
    market.open_round(pid, V_COMMIT, dep.aggregator)
    assert market.submission_order(pid, 2) == [0] * 6  # nobody submitted yet: old ranks are not shown
    assert _check_order(dep, pid, 2, [3, 0, 4, 2], 6) == [1, 0, 3, 0, 2, 0]
    assert market.round_state(pid, 2).pending == 0
    dep.post(pid, 2, [0, 0, 1, 0, 0, 0], [1, 0, 0, 4, 1, 0])  # everyone submitted: no wait

    # Round 3: three active trainers, two submit.
    market.open_round(pid, V_COMMIT, dep.aggregator)
    assert _check_order(dep, pid, 3, [4, 0], 6) == [1, 0, 0, 0, 0, 0]
    chain.time_travel(601)
    dep.post(pid, 3, [0] * 6, [1, 0, 0, 0, 5, 0])
    assert market.project(pid).state == State.FINISHED
    assert_solvent(dep)


@pytest.mark.slow
@pytest.mark.anvil
def test_ranks_reach_125_with_126_trainers(anvil_chain: Chain) -> None:
    """A full project at the slot cap (126, where scores stay unique): every pending bit set at open, the last
    submitter ranks 125; a verifier with one slot more is refused."""
    slots = 126
    extra = [Account.from_key(keccak(b"fedmarket-rank-%d" % i)) for i in range(slots)]
    base = anvil_chain.accounts
    chain = Chain(anvil_chain.w3, base[:2] + extra, anvil_chain.backend)
    for acct in extra:
        chain.w3.provider.make_request("anvil_setBalance", [acct.address, hex(10**18)])
    arts = with_test_contracts()
    market = Marketplace.deploy(chain, base[0], arts["FedMarket"])
    too_many = Deployment(chain, market, chain.deploy(arts["HashCheckVerifier"], slots + 1, sender=base[0]), slots + 1)
    reverts("TooManySlots", lambda: too_many.create(budget=slots, max_trainers=slots), slots + 1, slots)
    dep = Deployment(chain, market, chain.deploy(arts["HashCheckVerifier"], slots, sender=base[0]), slots)
    pid = dep.create(budget=slots, rounds=1, min_trainers=1, max_trainers=slots, stake=1, aggregator_bond=slots)
    dep.start(pid, slots)
    market.open_round(pid, V_COMMIT, dep.aggregator)
    assert market.round_state(pid, 1).pending == 2**slots - 1
    order = list(range(slots - 1, -1, -1))
    assert _check_order(dep, pid, 1, order, slots) == [slots - 1 - slot for slot in range(slots)]
    dep.post(pid, 1, [0] * slots, [slot + 1 for slot in range(slots)])
    assert_solvent(dep)


def test_owner_cancel_and_quorum_cancel_refund_everyone(chain: Chain) -> None:
    dep = deploy(chain)
    market = dep.market
    pid = dep.create(budget=5 * 10**17, min_trainers=3)
    dep.open(pid, 2)
    receipt = market.cancel(pid, dep.owner)
    (event,) = market.receipt_events(receipt, "ProjectCancelled")
    assert event.args["reason"] == CancelReason.OWNER_CANCELLED
    project = market.project(pid)
    assert project.state == State.CANCELLED and project.owner_refund == 5 * 10**17
    assert project.bond_held == project.params.aggregator_bond
    market.withdraw_refund(pid, dep.owner)
    market.withdraw_bond(pid, dep.aggregator)
    for trainer in dep.trainers[:2]:
        market.withdraw_stake(pid, trainer)

    # After the join deadline with too few trainers, anyone may cancel.
    pid2 = dep.create(budget=10**17, min_trainers=3)
    dep.open(pid2, 1)
    chain.time_travel(1_001)
    receipt = market.cancel(pid2, dep.trainers[5])
    (event,) = market.receipt_events(receipt, "ProjectCancelled")
    assert event.args["reason"] == CancelReason.NOT_ENOUGH_TRAINERS
    market.withdraw_stake(pid2, dep.trainers[0])
    market.withdraw_refund(pid2, dep.owner)
    market.withdraw_bond(pid2, dep.aggregator)
    assert held(dep) == 0
    assert_solvent(dep)


def test_aggregator_timeouts_pay_the_bond_to_the_trainers(chain: Chain) -> None:
    dep = deploy(chain)
    market = dep.market
    budget = 9 * 10**17
    bond = dep.params().aggregator_bond
    # Missed postRound: the bond goes to round 2's submitters, round 2's budget is unspent, round 1's
    # rewards stay claimable.
    pid = dep.create(budget=budget, rounds=3, min_trainers=2)
    dep.start(pid, 2)
    dep.round(pid, [1, 3])
    market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 2, [0, 1])
    project = market.project(pid)
    chain.time_travel(project.post_deadline - chain.now() + 1)
    receipt = market.timeout(pid, dep.trainers[7])
    (event,) = market.receipt_events(receipt, "ProjectCancelled")
    assert event.args["reason"] == CancelReason.AGGREGATOR_TIMEOUT
    project = market.project(pid)
    assert project.state == State.CANCELLED and project.bond_held == 0
    assert project.owner_refund == budget - budget // 3
    assert [e.args["amount"] for e in market.receipt_events(receipt, "BondCompensation")] == [bond // 2] * 2
    assert market.participant(pid, dep.trainers[1].address).rewards == (budget // 3) * 3 // 4 + bond // 2
    market.claim(pid, dep.trainers[1])
    market.withdraw_stake(pid, dep.trainers[0])

    # Missed openRound right after start: the active trainer takes the bond.
    pid2 = dep.create(budget=budget, rounds=3, min_trainers=1)
    dep.start(pid2, 1)
    chain.time_travel(601)
    market.timeout(pid2, dep.owner)
    assert market.project(pid2).owner_refund == budget
    assert market.participant(pid2, dep.trainers[0].address).rewards == bond
    assert_solvent(dep)


def test_anyone_starts_after_the_join_deadline_and_early_post_when_all_submitted(chain: Chain) -> None:
    dep = deploy(chain)
    market = dep.market
    pid = dep.create(rounds=1, min_trainers=2)
    dep.open(pid, 2)
    chain.time_travel(1_001)
    market.start(pid, dep.trainers[4])
    market.open_round(pid, V_COMMIT, dep.aggregator)
    dep.submit(pid, 1, [0, 1])
    assert market.round_state(pid, 1).pending == 0
    receipt = dep.post(pid, 1, [0, 0], [0, 0])  # inside the window: everyone submitted
    assert market.receipt_events(receipt, "ProjectFinished")
    # No positive score: the accepted trainers share the round budget equally.
    assert market.project(pid).owner_refund == 0
    assert [market.participant(pid, t.address).rewards for t in dep.trainers[:2]] == [10**18 // 2] * 2
    assert_solvent(dep)


def test_erc20_project_and_fee_token_refused(chain: Chain) -> None:
    dep = deploy(chain)
    market = dep.market
    token = dep.deploy_token()
    budget = 3 * 10**18 + 1
    # The bond must cover the one round's budget, the funding added below included.
    pid = dep.create(budget=budget, token=token.address, rounds=1, min_trainers=2, aggregator_bond=5 * 10**18)
    market.fund(pid, 10**18, dep.owner)
    dep.start(pid, 2)
    dep.round(pid, [2, 1])
    total = budget + 10**18
    assert market.participant(pid, dep.trainers[0].address).rewards == total * 2 // 3
    assert_solvent(dep, token.address)
    before = chain.call(token.functions.balanceOf(dep.trainers[0].address))
    market.claim(pid, dep.trainers[0])
    market.withdraw_stake(pid, dep.trainers[0])
    after = chain.call(token.functions.balanceOf(dep.trainers[0].address))
    assert after - before == total * 2 // 3 + market.project(pid).params.stake
    assert chain.balance(market.address) == 0
    assert_solvent(dep, token.address)

    fee = dep.deploy_token("FeeToken")
    with pytest.raises(ContractRevert) as info:
        dep.create(budget=10**18, token=fee.address)
    assert info.value.name == "WrongAmount" and info.value.error_args == (10**18, 10**18 - 10**16)


def test_events_are_decoded_with_binary_cids(chain: Chain) -> None:
    dep = deploy(chain)
    market = dep.market
    first = chain.w3.eth.block_number
    pid = dep.create(rounds=1, min_trainers=1)
    dep.start(pid, 1)
    dep.round(pid, [4])
    (created,) = market.events("ProjectCreated", pid, first)
    assert created.args["taskCid"] == CID and created.args["modelCid"] == MODEL_CID
    assert created.args["params"] == market.project(pid).params
    assert created.args["params"].aggregator == dep.aggregator.address
    (submitted,) = market.events("UpdateSubmitted", pid, first)
    assert submitted.args["cid"] == CID and submitted.args["commitment"] == commitment(0, 1)
    assert submitted.args["trainer"] == dep.trainers[0].address and submitted.args["seq"] == 0
    (posted,) = market.events("RoundPosted", pid, first)
    assert posted.args["scores"] == [4] and posted.args["modelCid"] == MODEL_CID
    names = ["AggregatorBonded", "TrainerJoined", "TrainingStarted", "RoundOpened", "ProjectFinished"]
    assert all(len(market.events(name, pid, first)) == 1 for name in names)
    assert market.events("RoundPosted", pid + 1, first) == []
