"""Replay challenges (PROTOCOL.md §3): an update within REPLAY_PCT of another trainer's update of an earlier round, or
along its line within LINE_PCT at any scale, is taken out of its round on chain, by anyone, before the post; the source
may be of any of the LOOKBACK rounds before.

The attacker's tests come first. A free rider that resubmits another trainer's last update (jittered, so that its
commitment is new) was paid like that trainer; challenged, its slot counts as absent: it earns nothing, keeps its
stake, and the round's budget goes to the trainers who trained. A griefer that replays a trainer's update so that the
trainer's next one looks like a copy cannot have the trainer challenged in turn: a replay taken out is no source. Then
every refusal by name. Rounds are posted through the test-only HashCheckVerifier; views and their distance are checked
by the real PoseidonCommit on views of the digits example's size (650 values at 16 bits). Every test that settles ends
with every party withdrawing: what came in went out, to the wei.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aggregator.rules.replay import LINE_PCT, LOOKBACK, REPLAY_PCT, is_replay, near, replay_terms
from market.chain.client import Chain
from market.chain.marketplace import REPLAY_HINTS, artifacts
from market.errors import ContractRevert
from tests.marketplace_harness import (
    CID,
    V_COMMIT,
    Deployment,
    View,
    assert_solvent,
    deploy,
    make_view,
    reverts,
    tampered,
    view_of,
    withdraw_all,
)
from tests.test_marketplace_disputes import TRAINERS, digits_project, open_with_views

HONEST = ([0, 0, 0, 0], [4, 3, 2, 1])


@pytest.fixture
def dep(anvil_chain: Chain) -> Deployment:
    """A marketplace (with its PoseidonCommit and ReplayChallenge) and a 4-slot test verifier."""
    return deploy(anvil_chain, slots=TRAINERS)


def jittered(view: View, rel: float, seed: int) -> View:
    """`view` plus Gaussian noise of about `rel` times its norm, clipped to the quantization range."""
    values = np.array(view.values, dtype=np.float64)
    noise = np.random.default_rng(seed).normal(size=values.size)
    noise *= rel * np.linalg.norm(values) / np.linalg.norm(noise)
    qmax = (1 << (view.bits - 1)) - 1
    return view_of([int(x) for x in np.clip(np.round(values + noise), -qmax, qmax)], view.bits)


def replay_round(dep: Deployment, pid: int, fresh: dict[int, View]) -> int:
    """Open the next round; each slot in `fresh` submits its view. Returns the round."""
    m = dep.market
    m.open_round(pid, V_COMMIT, dep.aggregator)
    round_ = m.project(pid).round
    m.submit_updates(pid, round_, [(dep.trainers[s], CID, v.commitment) for s, v in fresh.items()], close_commits=True)
    return round_


def challenge(dep: Deployment, pid: int, round_: int, slot: int, source: tuple[int, int], view: View,
              source_view: View) -> None:
    """A bystander takes `slot` out of `round_` as a replay of `source` (round, slot): UpdateReplayed, and its
    commitment reads 0."""
    receipt = dep.market.challenge_replay(pid, round_, slot, source, view.elements, source_view.elements,
                                          dep.chain.accounts[-1])
    (event,) = dep.market.receipt_events(receipt, "UpdateReplayed")
    assert (event.args["round"], event.args["slot"], event.args["sourceRound"], event.args["sourceSlot"],
            event.args["trainer"]) == (round_, slot, *source, dep.trainers[slot].address)
    assert dep.market.round_state(pid, round_).commitments[slot] == 0


def as_tensor(view: View) -> torch.Tensor:
    """The view's values as the rule takes them."""
    return torch.tensor(view.values, dtype=torch.int64)


def test_a_challenged_replay_is_unpaid_and_its_share_goes_to_those_who_trained(dep: Deployment) -> None:
    """Slot 3 trains in round 1, then resubmits slot 0's round-1 update with noise of a quarter of its norm (6 % off in
    squared distance, outside the copy screen's 5 %). Unchallenged, the contract takes its score: the attacker's gain.
    Challenged by a bystander, the slot is absent: scoring it reverts, it is paid nothing for the round and keeps its
    whole stake, and the other three share the round's budget."""
    m = dep.market
    pid = digits_project(dep)
    round1, views1 = open_with_views(dep, pid)
    dep.post(pid, round1, *HONEST)
    replay = jittered(views1[0], 0.25, seed=1)
    assert is_replay(as_tensor(replay), as_tensor(views1[0]))
    fresh = {s: view_of([-x for x in views1[s].values]) for s in range(3)}  # honest: far from every round-1 update
    round2 = replay_round(dep, pid, {**fresh, 3: replay})
    assert m.public_input(pid, round2, 77, [0, 0, 0, 0], [4, 3, 2, 1])  # the score it would take
    challenge(dep, pid, round2, 3, (round1, 0), replay, views1[0])
    reverts("AbsentSlotNotZero", lambda: dep.post(pid, round2, [0, 0, 0, 0], [4, 3, 2, 1]), 3)
    before = m.participant(pid, dep.trainers[3].address)
    dep.post(pid, round2, [0, 0, 0, 0], [4, 3, 2, 0])
    after = m.participant(pid, dep.trainers[3].address)
    assert (after.stake, after.rewards) == (before.stake, before.rewards)
    while m.project(pid).round_open or m.project(pid).round < 5:
        dep.round(pid, HONEST[1], HONEST[0])
    withdraw_all(dep, pid, TRAINERS)


def test_a_shrunk_copy_is_taken_out_before_it_can_take_out_its_victim(dep: Deployment) -> None:
    """Slot 3 resubmits slot 0's round-1 update shrunk to 0.6 (jittered): 0.44 away in squared distance over the smaller
    squared norm, outside REPLAY_PCT, so the distance alone let it through; accepted, it was a source against slot 0's
    next update, whose norm shrinks as training goes on (here to 0.6, with a little noise), and took that update out as
    its replay. Along slot 0's line within LINE_PCT, the copy is taken out in round 2 and is no source in round 3."""
    pid = digits_project(dep)
    round1, views1 = open_with_views(dep, pid)
    dep.post(pid, round1, *HONEST)
    shrunk = jittered(view_of([round(0.6 * x) for x in views1[0].values]), 0.001, seed=8)
    dist, nu, nw = replay_terms(as_tensor(shrunk), as_tensor(views1[0]))
    assert 100 * dist > REPLAY_PCT * min(nu, nw) and near(dist, nu, nw)  # only the line clause catches it
    fresh = {s: view_of([-x for x in views1[s].values]) for s in (1, 2)}
    round2 = replay_round(dep, pid, {0: jittered(views1[0], 0.2, seed=9), **fresh, 3: shrunk})
    challenge(dep, pid, round2, 3, (round1, 0), shrunk, views1[0])
    dep.post(pid, round2, [0, 0, 0, 0], [4, 3, 2, 0])
    victim = jittered(view_of([round(0.6 * x) for x in views1[0].values]), 0.3, seed=10)
    assert is_replay(as_tensor(victim), as_tensor(shrunk))  # the copy would have taken it out
    round3 = replay_round(dep, pid, {0: victim, 1: fresh[1], 2: fresh[2]})
    reverts("NoRevealedUpdate", lambda: dep.market.challenge_replay(
        pid, round3, 0, (round2, 3), victim.elements, shrunk.elements, dep.chain.accounts[-1]), pid, round2, 3)
    dep.post(pid, round3, [0, 0, 0, 0], [4, 3, 2, 0])
    while dep.market.project(pid).round_open or dep.market.project(pid).round < 5:
        dep.round(pid, HONEST[1], HONEST[0])
    withdraw_all(dep, pid, TRAINERS)


def test_a_challenged_replay_cannot_be_cited_against_its_victim(dep: Deployment) -> None:
    """The griefer (slot 3) replays slot 0's round-1 update in round 2, almost exactly, so that slot 0's round-3 update,
    near its last, would lie near the griefer's. The griefer's replay is taken out in round 2; in round 3 it is no
    source: the challenge against slot 0 reverts NoRevealedUpdate, and slot 0 is paid."""
    pid = digits_project(dep)
    round1, views1 = open_with_views(dep, pid)
    dep.post(pid, round1, *HONEST)
    grief = jittered(views1[0], 0.001, seed=2)
    fresh = {s: view_of([-x for x in views1[s].values]) for s in (1, 2)}
    round2 = replay_round(dep, pid, {0: jittered(views1[0], 0.2, seed=3), **fresh, 3: grief})
    challenge(dep, pid, round2, 3, (round1, 0), grief, views1[0])
    dep.post(pid, round2, [0, 0, 0, 0], [4, 3, 2, 0])
    victim = jittered(views1[0], 0.05, seed=4)
    round3 = replay_round(dep, pid, {0: victim, 1: fresh[1], 2: fresh[2]})
    assert is_replay(as_tensor(victim), as_tensor(grief))  # near the griefer's update, which is gone
    reverts("NoRevealedUpdate", lambda: dep.market.challenge_replay(
        pid, round3, 0, (round2, 3), victim.elements, grief.elements, dep.chain.accounts[-1]), pid, round2, 3)
    dep.post(pid, round3, [0, 0, 0, 0], [4, 3, 2, 0])
    assert_solvent(dep)


def test_an_excluded_copy_cannot_be_cited_against_its_victim(dep: Deployment) -> None:
    """Slot 3 copies slot 0's round-1 update (a colluder given it, jittered) and the proof excludes it (flag 3). Settled,
    round 1 keeps only its accepted updates' commitments, so slot 0's next update, near its last and so near the copy,
    cannot be taken out citing the copy."""
    m = dep.market
    pid = digits_project(dep)
    m.open_round(pid, V_COMMIT, dep.aggregator)
    views1 = {s: make_view((pid, 1, s), 650) for s in range(3)}
    views1[3] = jittered(views1[0], 0.1, seed=6)
    m.submit_updates(pid, 1, [(dep.trainers[s], CID, v.commitment) for s, v in views1.items()], close_commits=True)
    dep.post(pid, 1, [0, 0, 0, 3], [4, 3, 2, 0])
    assert [c != 0 for c in m.round_state(pid, 1).commitments] == [True, True, True, False]
    victim = jittered(views1[0], 0.05, seed=7)
    assert is_replay(as_tensor(victim), as_tensor(views1[3]))
    round2 = replay_round(dep, pid, {0: victim, 1: view_of([-x for x in views1[1].values]), 2: views1[1]})
    reverts("NoRevealedUpdate", lambda: m.challenge_replay(pid, round2, 0, (1, 3), victim.elements, views1[3].elements,
                                                            dep.chain.accounts[-1]), pid, 1, 3)
    challenge(dep, pid, round2, 2, (1, 1), views1[1], views1[1])  # a replay of an accepted update is taken out
    dep.post(pid, round2, [0, 0, 0, 0], [4, 3, 0, 0])
    assert_solvent(dep)


def test_a_replay_of_an_older_round_is_taken_out(dep: Deployment) -> None:
    """Slot 0 sits round 2 out; in round 3 slot 3 replays slot 0's round-1 update, which no round-2 update is near. The
    challenge cites round 1, and the replay is unpaid."""
    pid = digits_project(dep)
    round1, views1 = open_with_views(dep, pid)
    dep.post(pid, round1, *HONEST)
    fresh = {s: view_of([-x for x in views1[s].values]) for s in range(TRAINERS)}
    dep.market.open_round(pid, V_COMMIT, dep.aggregator)
    round2 = dep.market.project(pid).round
    dep.market.decline_round(pid, round2, dep.trainers[0])
    dep.market.submit_updates(pid, round2, [(dep.trainers[s], CID, fresh[s].commitment) for s in (1, 2, 3)])
    dep.post(pid, round2, [0, 0, 0, 0], [0, 3, 2, 1])
    replay = jittered(views1[0], 0.3, seed=5)
    round3 = replay_round(dep, pid, {0: fresh[0], 1: views1[1], 2: views1[2], 3: replay})
    challenge(dep, pid, round3, 3, (round1, 0), replay, views1[0])
    reverts("SourceRoundOutOfRange", lambda: dep.market.challenge_replay(
        pid, round3, 1, (round3, 0), views1[1].elements, fresh[0].elements, dep.chain.accounts[-1]), round3, round3)
    assert dep.market.replayed_slots(pid, round3) == {3}
    dep.post(pid, round3, [0, 0, 0, 0], [4, 3, 2, 0])
    assert_solvent(dep)


def test_every_refusal_names_what_was_wrong(dep: Deployment) -> None:
    """A challenge that is not a replay, names its own slot, publishes the wrong views, cites a round or slot with no
    revealed update, or comes outside the open, unposted round reverts with its error; nothing changes."""
    m = dep.market
    bystander = dep.chain.accounts[-1]
    pid = digits_project(dep)
    round1, views1 = open_with_views(dep, pid)
    reverts("NoRevealedUpdate", lambda: m.challenge_replay(pid, 1, 1, (0, 0), views1[1].elements, views1[0].elements,
                                                            bystander), pid, 0, 0)  # round 0 has no updates
    dep.post(pid, round1, *HONEST)
    reverts("ChallengeClosed", lambda: m.challenge_replay(pid, 1, 1, (0, 0), views1[1].elements, views1[0].elements,
                                                           bystander), pid, 1)
    honest = {s: view_of([-x for x in views1[s].values]) for s in range(TRAINERS)}
    round2 = replay_round(dep, pid, honest)

    def attempt(slot: int, source: int, view: View, source_view: View) -> ContractRevert:
        with pytest.raises(ContractRevert) as info:
            m.challenge_replay(pid, round2, slot, (round1, source), view.elements, source_view.elements, bystander)
        return info.value

    dist, nu, nw = replay_terms(as_tensor(honest[1]), as_tensor(views1[0]))
    err = attempt(1, 0, honest[1], views1[0])
    assert (err.name, err.error_args) == ("NotAReplay", (pid, round2, 1, dist, nu, nw)) and not near(dist, nu, nw)
    assert err.hint == REPLAY_HINTS["NotAReplay"]
    assert attempt(0, 0, honest[0], views1[0]).name == "SelfReplay"
    assert attempt(1, 0, tampered(honest[1]), views1[0]).error_args == (pid, round2, 1)
    assert attempt(1, 0, honest[1], tampered(views1[0])).error_args == (pid, round1, 0)
    assert attempt(1, 0, honest[1], views1[0]).name == "NotAReplay"
    assert attempt(1, 0, honest[1], View(honest[1].values, 16, honest[1].elements[:-1], 0)).name == "ElementCount"
    assert attempt(5, 0, honest[1], views1[0]).name == "NoRevealedUpdate"
    assert list(m.round_state(pid, round2).commitments) == [v.commitment for v in honest.values()]
    reverts("NotReplayJudge", lambda: dep.chain.transact(m.contract.functions.takeOutReplay(pid, round2, 1, 1, 0),
                                                         sender=bystander, gas=200_000), bystander.address)
    dep.post(pid, round2, *HONEST)
    reverts("ChallengeClosed", lambda: m.challenge_replay(pid, round2, 1, (round1, 0), honest[1].elements, views1[0].elements,
                                                           bystander), pid, round2)
    assert_solvent(dep)


def test_hints_name_every_replay_error() -> None:
    names = {e["name"] for e in artifacts()["ReplayChallenge"].abi if e["type"] == "error"}
    assert set(REPLAY_HINTS) == names


def test_the_rule_and_the_contract_share_their_constants(dep: Deployment) -> None:
    judge = dep.market.replays.functions
    assert (judge.REPLAY_PCT().call(), judge.LINE_PCT().call(), judge.REPLAY_LOOKBACK().call()) == (
        REPLAY_PCT, LINE_PCT, LOOKBACK)
    assert judge.MARKET().call() == dep.market.address and judge.POSEIDON().call() == dep.market.contract.functions.POSEIDON().call()


@pytest.mark.parametrize(("rel", "replay"), [(0.0, True), (0.25, True), (0.45, True), (0.55, False), (1.0, False)])
def test_the_rule_by_hand(rel: float, replay: bool) -> None:
    """100 |u - w|^2 <= 25 min(|u|^2, |w|^2): noise of half the norm is the bound (0.25 of the squared norm)."""
    w = torch.tensor([300, -400, 0, 1200], dtype=torch.int64)  # |w|^2 = 1,690,000
    u = w + torch.round(rel * torch.tensor([0.0, 0.0, 1300.0, 0.0])).to(torch.int64)  # |u - w| = rel |w|
    assert is_replay(u, w) is replay
    assert replay_terms(u, w) == (int(((u - w) ** 2).sum()), int((u * u).sum()), int((w * w).sum()))


@pytest.mark.parametrize(("scale", "turn", "replay"), [(0.6, 0.0, True), (2.5, 0.0, True), (0.6, 0.33, True),
                                                       (0.6, 0.34, False), (-1.0, 0.0, False), (0.0, 1.0, False)])
def test_the_line_clause_by_hand(scale: float, turn: float, replay: bool) -> None:
    """A copy at another scale: `<u, w> > 0` and 100 <u, w>^2 >= 90 |u|^2 |w|^2. u = scale w + turn |scale w| e, e a unit
    vector orthogonal to w, has squared cosine 1 / (1 + turn^2): 0.33 is within 90 %, 0.34 not; -w is no replay."""
    w = torch.tensor([300, -400, 0, 1200], dtype=torch.int64)  # |w| = 1300
    u = torch.round(scale * w.double() + turn * abs(scale or 1.0) * torch.tensor([0.0, 0.0, 1300.0, 0.0])).to(torch.int64)
    assert is_replay(u, w) is replay
