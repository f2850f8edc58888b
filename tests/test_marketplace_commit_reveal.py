"""Commit-then-reveal (PROTOCOL.md §3): a round's reveals open only once its commits are closed.

The attackers' tests come first. A free rider that waits for the round's reveals and submits their mean (paid
1.9 to 6.1 times an honest share in the eval's simulation before rounds were sealed, `scripts/peer_rider.py`)
finds no reveal before it must commit: every reveal waits until every active slot has committed or declined, or
the commit window has closed. So does a copier that waits for its victim's reveal; replaying or front-running the
victim's seal gives it nothing it can reveal; and the copy rule flags the later commit of two shared updates.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from aggregator.rules.screen import copies
from market.chain.client import Chain
from market.chain.marketplace import Marketplace, seal
from market.errors import ChainError, ContractRevert
from tests.marketplace_harness import CID, V_COMMIT, Deployment, commitment, deploy, model_out, reverts

VICTIM_SALT = bytes([7]) * 32
COPIER_SALT = bytes([9]) * 32


def open_round(chain: Chain, n: int = 3) -> tuple[Deployment, int]:
    """A project with `n` trainers and round 1 open."""
    dep = deploy(chain)
    pid = dep.create(min_trainers=1)
    dep.start(pid, n)
    dep.market.open_round(pid, V_COMMIT, dep.aggregator)
    return dep, pid


def sealed(m: Marketplace, pid: int, t: LocalAccount, value: int, salt: bytes = VICTIM_SALT) -> bytes:
    """`t`'s seal of (CID, `value`) in round 1."""
    return m.seal(pid, 1, t.address, CID, value, salt)


def test_no_update_of_the_round_is_readable_before_every_commit(chain: Chain) -> None:
    """The peer free rider in slot 2 waits for the others' reveals to submit their mean: none comes before it commits."""
    dep, pid = open_round(chain)
    m = dep.market
    a, b, rider = dep.trainers[:3]
    end = m.project(pid).deadline
    m.commit_update(pid, 1, sealed(m, pid, a, commitment(0)), a)
    assert reverts("CommitsOpen", lambda: m.reveal_update(pid, 1, CID, commitment(0), VICTIM_SALT, a)).error_args[:2] == (pid, end)
    m.commit_update(pid, 1, sealed(m, pid, b, commitment(1)), b)
    assert reverts("CommitsOpen", lambda: m.reveal_update(pid, 1, CID, commitment(1), VICTIM_SALT, b)).error_args[:2] == (pid, end)
    assert m.events("UpdateSubmitted", pid) == [] and not m.reveals_open(pid, 1)
    assert m.round_state(pid, 1).commitments == (0, 0, 0)  # seals only: nothing to average
    # The rider must commit blind; its commit closes the commits and the reveals open for all.
    m.commit_update(pid, 1, sealed(m, pid, rider, commitment(2)), rider)
    assert m.reveals_open(pid, 1) and chain.now() <= end
    for i, t in enumerate((a, b, rider)):
        m.reveal_update(pid, 1, CID, commitment(i), VICTIM_SALT, t)
    assert m.round_state(pid, 1).commitments == (commitment(0), commitment(1), commitment(2))


def test_the_commit_window_closing_opens_the_reveals(chain: Chain) -> None:
    """A slot that never commits cannot hold the reveals back past the commit window, nor commit after it."""
    dep, pid = open_round(chain)
    m = dep.market
    a, b, late = dep.trainers[:3]
    m.commit_update(pid, 1, sealed(m, pid, a, commitment(0)), a)
    m.decline_round(pid, 1, b)
    project = m.project(pid)
    assert project.reveal_deadline == project.deadline + 600 and project.post_deadline == project.reveal_deadline + 600
    chain.time_travel(project.deadline - chain.now() + 1)
    assert m.reveals_open(pid, 1)
    late_commit = reverts("WindowClosed", lambda: m.commit_update(pid, 1, sealed(m, pid, late, commitment(2)), late))
    assert late_commit.error_args[:2] == (pid, project.deadline)
    m.reveal_update(pid, 1, CID, commitment(0), VICTIM_SALT, a)
    dep.post(pid, 1, [0, 0, 0], [1, 0, 0])  # every seal revealed: no need to wait for the reveal window's end
    assert m.participant(pid, a.address).rewards > 0


def test_a_copier_never_sees_its_victims_reveal_in_time(chain: Chain) -> None:
    dep, pid = open_round(chain)
    m = dep.market
    victim, copier, other = dep.trainers[:3]
    victim_seal = sealed(m, pid, victim, commitment(0))
    # The copier front-runs the victim's commit with the victim's own seal: it takes rank 0 ...
    m.commit_update(pid, 1, victim_seal, copier)
    m.commit_update(pid, 1, victim_seal, victim)
    m.commit_update(pid, 1, sealed(m, pid, other, commitment(2)), other)
    m.reveal_update(pid, 1, CID, commitment(0), VICTIM_SALT, victim)
    # ... but the seal binds the trainer: replaying the victim's reveal (now public) fails.
    reverts("SealMismatch", lambda: m.reveal_update(pid, 1, CID, commitment(0), VICTIM_SALT, copier), pid, 1, 1)
    assert m.submission_order(pid, 1) == [1, 0, 0]  # the victim ranks 1; the copier has no reveal, no rank
    assert m.round_state(pid, 1).commitments == (commitment(0), 0, 0)

    # A fresh round: the copier waits for the victim's reveal, which cannot come while the copier's slot is pending.
    dep2, pid2 = open_round(chain)
    m2 = dep2.market
    v, c, o = dep2.trainers[:3]
    m2.commit_update(pid2, 1, sealed(m2, pid2, v, commitment(0)), v)
    m2.commit_update(pid2, 1, sealed(m2, pid2, o, commitment(2)), o)
    end = m2.project(pid2).deadline
    assert reverts("CommitsOpen", lambda: m2.reveal_update(pid2, 1, CID, commitment(0), VICTIM_SALT, v)).error_args[:2] == (pid2, end)
    chain.time_travel(end - chain.now() + 1)
    m2.reveal_update(pid2, 1, CID, commitment(0), VICTIM_SALT, v)
    (seen,) = m2.events("UpdateSubmitted", pid2)
    copied = m2.seal(pid2, 1, c.address, bytes(seen.args["cid"]), int(seen.args["commitment"]), COPIER_SALT)
    assert reverts("WindowClosed", lambda: m2.commit_update(pid2, 1, copied, c)).error_args[:2] == (pid2, end)
    # Colluders who share one update before committing: the copy rule (§3) flags the later rank only.
    dist = [[0, 0, 50], [0, 0, 50], [50, 50, 0]]
    assert copies(dist, [100, 100, 100], [0, 1, 2], dup_pct=5) == [False, True, False]


def test_seal_binds_trainer_round_project_chain_and_contents(anvil_chain: Chain) -> None:
    dep, pid = open_round(anvil_chain)
    m = dep.market
    t, other = dep.trainers[0], dep.trainers[1]
    chain_id = anvil_chain.w3.eth.chain_id
    assert m.seal(pid, 1, t.address, CID, 5, VICTIM_SALT) == seal(
        chain_id, m.address, pid, 1, t.address, CID, 5, VICTIM_SALT
    )
    wrong = [
        seal(chain_id + 1, m.address, pid, 1, t.address, CID, 5, VICTIM_SALT),  # another chain
        seal(chain_id, dep.owner.address, pid, 1, t.address, CID, 5, VICTIM_SALT),  # another contract
        seal(chain_id, m.address, pid + 1, 1, t.address, CID, 5, VICTIM_SALT),  # another project
        seal(chain_id, m.address, pid, 2, t.address, CID, 5, VICTIM_SALT),  # another round
        seal(chain_id, m.address, pid, 1, other.address, CID, 5, VICTIM_SALT),  # another trainer
    ]
    m.decline_round(pid, 1, dep.trainers[2])  # the reveals open once t's commit is in
    snap = anvil_chain.snapshot()
    for seal_ in wrong:
        m.commit_update(pid, 1, seal_, t)
        m.commit_update(pid, 1, m.seal(pid, 1, other.address, CID, 7, VICTIM_SALT), other)
        reverts("SealMismatch", lambda: m.reveal_update(pid, 1, CID, 5, VICTIM_SALT, t), pid, 1, 0)
        anvil_chain.revert(snap)
        snap = anvil_chain.snapshot()
    m.commit_update(pid, 1, m.seal(pid, 1, t.address, CID, 5, VICTIM_SALT), t)
    m.commit_update(pid, 1, m.seal(pid, 1, other.address, CID, 7, VICTIM_SALT), other)
    reverts("SealMismatch", lambda: m.reveal_update(pid, 1, CID + b"x", 5, VICTIM_SALT, t), pid, 1, 0)
    reverts("SealMismatch", lambda: m.reveal_update(pid, 1, CID, 6, VICTIM_SALT, t), pid, 1, 0)
    reverts("SealMismatch", lambda: m.reveal_update(pid, 1, CID, 5, COPIER_SALT, t), pid, 1, 0)
    reverts("NotCommitted", lambda: m.reveal_update(pid, 1, CID, 5, VICTIM_SALT, dep.trainers[2]), pid, 1, 2)
    m.reveal_update(pid, 1, CID, 5, VICTIM_SALT, t)
    reverts("AlreadySubmitted", lambda: m.reveal_update(pid, 1, CID, 5, VICTIM_SALT, t), pid, 1, 0)
    reverts("AlreadySubmitted", lambda: m.commit_update(pid, 1, bytes(32), t), pid, 1, 0)


def test_unrevealed_slot_is_absent_and_blocks_an_early_post(anvil_chain: Chain) -> None:
    dep, pid = open_round(anvil_chain)
    m = dep.market
    m.commit_update(pid, 1, m.seal(pid, 1, dep.trainers[2].address, CID, 5, VICTIM_SALT), dep.trainers[2])
    dep.submit(pid, 1, [0, 1])
    state = m.round_state(pid, 1)
    assert state.pending == 0 and state.commitments == (commitment(0), commitment(1), 0)
    assert m.submission_order(pid, 1) == [1, 2, 0]
    # Every slot committed, but slot 2 may still reveal: no early post.
    reveal_end = m.project(pid).reveal_deadline
    with pytest.raises(ContractRevert) as info:
        dep.post(pid, 1, [0, 0, 0], [1, 1, 0])
    assert info.value.name == "WindowOpen" and info.value.error_args[:2] == (pid, reveal_end)
    anvil_chain.time_travel(reveal_end - anvil_chain.now() + 1)
    with pytest.raises(ContractRevert) as info:
        m.reveal_update(pid, 1, CID, 5, VICTIM_SALT, dep.trainers[2])
    assert info.value.name == "WindowClosed"
    reverts("AbsentSlotNotZero", lambda: m.public_input(pid, 1, model_out(1), [0, 0, 0], [1, 1, 1]), 2)
    dep.post(pid, 1, [0, 0, 0], [1, 1, 0])
    assert m.participant(pid, dep.trainers[2].address).rewards == 0
    assert m.participant(pid, dep.trainers[0].address).rewards > 0


def test_a_seal_never_revealed_takes_no_share_of_the_bond(chain: Chain) -> None:
    """An account that commits and never reveals did not submit: on a missed post the bond goes to
    the trainers that revealed, so an aggregator's own sealing accounts cannot take part of it back."""
    dep, pid = open_round(chain)
    m = dep.market
    honest, sealer = dep.trainers[0], dep.trainers[1]
    m.commit_update(pid, 1, m.seal(pid, 1, sealer.address, CID, commitment(1), COPIER_SALT), sealer)
    m.submit_updates(pid, 1, [(honest, CID, commitment(0))], salt=VICTIM_SALT, close_commits=True)
    project = m.project(pid)
    chain.time_travel(project.post_deadline - chain.now() + 1)
    receipt = m.timeout(pid, dep.owner)
    paid = {e.args["trainer"]: int(e.args["amount"]) for e in m.receipt_events(receipt, "BondCompensation")}
    assert paid == {honest.address: project.bond_held}


def test_a_declined_round_is_absent_and_lets_the_round_close_early(chain: Chain) -> None:
    """declineRound (the trainer node's answer to a v it cannot accept, PROTOCOL §4): the slot is absent (flag 0,
    score 0, unpaid) and no longer pending, so the round is posted as soon as the others have revealed; the
    decliner cannot submit after all, nor decline twice, and nobody else can decline for it."""
    dep, pid = open_round(chain)
    m = dep.market
    decliner = dep.trainers[2]
    reverts("NotTrainer", lambda: m.decline_round(pid, 1, dep.owner), pid, dep.owner.address)
    m.commit_update(pid, 1, sealed(m, pid, dep.trainers[0], commitment(0)), dep.trainers[0])
    receipt = m.decline_round(pid, 1, decliner)
    (event,) = m.receipt_events(receipt, "RoundDeclined")
    assert (event.args["round"], event.args["trainer"], event.args["slot"]) == (1, decliner.address, 2)
    assert m.declined_slots(pid, 1) == {2}
    reverts("AlreadySubmitted", lambda: m.decline_round(pid, 1, decliner), pid, 1, 2)
    reverts("AlreadySubmitted", lambda: m.commit_update(pid, 1, bytes(32), decliner), pid, 1, 2)
    m.commit_update(pid, 1, sealed(m, pid, dep.trainers[1], commitment(1)), dep.trainers[1])
    reverts("NotCommitted", lambda: m.reveal_update(pid, 1, CID, 5, VICTIM_SALT, decliner), pid, 1, 2)
    for i in (0, 1):
        m.reveal_update(pid, 1, CID, commitment(i), VICTIM_SALT, dep.trainers[i])
    assert m.round_state(pid, 1).pending == 0 and m.submission_order(pid, 1) == [0, 2, 0]
    reverts("AbsentSlotNotZero", lambda: m.public_input(pid, 1, model_out(1), [0, 0, 0], [1, 1, 1]), 2)
    assert chain.now() <= m.project(pid).deadline
    dep.post(pid, 1, [0, 0, 0], [1, 1, 0])  # before the deadline: nobody is left to wait for
    assert m.participant(pid, decliner.address).rewards == 0
    assert m.participant(pid, dep.trainers[0].address).rewards > 0
    opened = dep.market.open_round(pid, V_COMMIT, dep.aggregator).blockNumber
    assert m.round_opened_block(pid, 2) == opened and m.round_opened_block(pid, 1) < opened
    assert m.declined_slots(pid, 2) == set()  # round 1's decline is not round 2's (the indexed round filters it)
    m.decline_round(pid, 2, dep.trainers[0])
    assert m.declined_slots(pid, 2, from_block=opened) == {0} and m.declined_slots(pid, 1) == {2}
    with pytest.raises(ChainError, match="round 3 was not opened"):
        m.round_opened_block(pid, 3)
    chain.time_travel(m.project(pid).deadline - chain.now() + 1)
    reverts("WindowClosed", lambda: m.decline_round(pid, 2, decliner))


def test_a_declined_round_takes_no_share_of_the_bond(chain: Chain) -> None:
    """The aggregator's own accounts cannot decline a round, let the post deadline pass and take part of the bond
    back: only the trainers that revealed an update were harmed by the missed post."""
    dep, pid = open_round(chain)
    m = dep.market
    honest, own = dep.trainers[0], dep.trainers[1]
    m.decline_round(pid, 1, own)
    m.submit_updates(pid, 1, [(honest, CID, commitment(0))], salt=VICTIM_SALT, close_commits=True)
    project = m.project(pid)
    chain.time_travel(project.post_deadline - chain.now() + 1)
    receipt = m.timeout(pid, dep.owner)
    paid = {e.args["trainer"]: int(e.args["amount"]) for e in m.receipt_events(receipt, "BondCompensation")}
    assert paid == {honest.address: project.bond_held}
