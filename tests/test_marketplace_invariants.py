"""Conservation of funds and fairness under random call sequences (hypothesis stateful testing on anvil).

An independent Python ledger applies PROTOCOL.md §5 and §7 to every call the contract accepted.
After each step: ETH in == ETH out + the contract's balance, to the wei. At check points and at the
end of every sequence: the contract's balance == what it owes (read from its views) == the ledger,
party by party. Every withdrawal pays exactly the caller's ledger balance, and one the ledger says
is due never reverts. Where the rules decide a call whatever the clock's drift (a start with too
small a bond, a cure, a finalize, a re-post, a timeout), the ledger predicts it and the contract
must agree, refusals by name. Trainers seal, and reveal once the round's commits are closed (PROTOCOL.md §3):
a reveal while an active slot may still commit must be refused (CommitsOpen), one after must pass until the
reveal window ends, and each reveal carries its commit's rank.

Trainers also replay another trainer's view of the round before, and a bystander challenges revealed updates at
random (PROTOCOL.md §3): a replay is taken out and absent from the round, anything else refused by name.

The aggregator is malicious: it flags at random (false flag 2s, every update rejected, exclusions by
flag 3, which must cost no stake), picks zero or negated directions (every accepted score 0 or
negative) and misses deadlines: the open, the post and the re-post after a cure. A post with a flag
2 is disputable: rejected trainers cure at random with their real packed views (every submission's
commitment is the real Poseidon commitment of a real view), and some try a wrong, another trainer's
or a malformed view, which must revert. Then anyone finalizes an uncured post with its own flags and
scores (others must revert), or the aggregator re-posts, honestly, at random, or rejecting a cured
slot again (which must revert), or misses the re-post and its bond pays the round's submitters. The
owner and the aggregator also join as trainers; projects have up to 8 slots and 5 rounds, and bonds
at, above and just below one round's budget (too small to start).

Fairness (the trust model's H): a trainer that was never slashed (flag 1) keeps its whole stake, held
or withdrawn, whatever else happened, however often it was excluded (flag 3) or rejected (flag 2).
Cures: a trainer that was rejected and cured is credited by the re-post exactly its §7 share of that
round, and by an honest re-post (the post with the cured slots accepted at their scores) exactly what
it would have had if it had never been rejected; if the aggregator misses the re-post, it gets the
same bond share as every other submitter.
`FEDMARKET_HYPOTHESIS_EXAMPLES` and `FEDMARKET_HYPOTHESIS_STEPS` raise the number and length of sequences.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from web3.types import TxReceipt

from aggregator.rules.replay import is_replay
from market.chain.client import Chain
from market.chain.marketplace import GAS_DEFAULT, State, Status
from market.errors import ContractRevert
from market.protocol.public_input import public_input
from market.toolchain.anvil import AnvilHandle
from tests.marketplace_harness import (
    CID,
    MODEL_CID,
    V_COMMIT,
    Deployment,
    View,
    deploy,
    make_view,
    model_out,
    statement,
    tampered,
)

EXAMPLES = int(os.environ.get("FEDMARKET_HYPOTHESIS_EXAMPLES", "130"))  # about the time 200 took before disputes
STEPS = int(os.environ.get("FEDMARKET_HYPOTHESIS_STEPS", "10"))
#: Chain seconds a prediction leaves for the clock to move between the check and the block (anvil
#: stamps blocks with the wall clock too). Inside this margin of a deadline, no outcome is asserted.
MARGIN = 120
BYSTANDER = 9  # an account that never joins: times out and finalizes
TRAINER_PARTIES = range(9)  # the owner (0), the aggregator (1) and 2..8 may all join as trainers
GAS_POST = 2_000_000
GAS_CURE = 3_000_000


def shares(budget: int, paid: Sequence[int], equal: bool, scores: Sequence[int]) -> tuple[dict[int, int], int]:
    """PROTOCOL.md §7: each paid slot's share of `budget` (by positive score, equally when `equal` or when
    none is positive) and the floor dust; nothing and no dust when no slot is paid."""
    if not paid:
        return {}, 0
    positive = 0 if equal else sum(max(scores[slot], 0) for slot in paid)
    split = {
        slot: budget // len(paid) if positive == 0 else budget * max(scores[slot], 0) // positive
        for slot in paid
    }
    return split, budget - sum(split.values())


@dataclass
class Ledger:
    """One project by the rules, updated only from calls the contract accepted (never read back)."""

    rounds: int
    stake: int
    bond: int
    slash_bps: int
    budget: int
    budget_left: int
    min_trainers: int
    open_window: int
    post_window: int
    view_len: int
    quant_bits: int
    state: State = State.CREATED
    round: int = 0
    round_open: bool = False
    open_deadline: int = 0
    window_end: int = 0
    post_deadline: int = 0
    owner_refund: int = 0
    bond_held: int = 0
    slots: list[int] = field(default_factory=list)
    stakes: dict[int, int] = field(default_factory=dict)
    rewards: dict[int, int] = field(default_factory=dict)
    ejected: set[int] = field(default_factory=set)
    submit_window: int = 0  # the commit window, and the reveal window after it
    sealed: dict[int, tuple[View, bytes]] = field(default_factory=dict)  # this round's commits: view, salt; in order
    commitments: dict[int, int] = field(default_factory=dict)  # this round's reveals
    views: dict[int, View] = field(default_factory=dict)  # this round's revealed views, per slot
    previous: dict[int, View] = field(default_factory=dict)  # the last closed round's views not taken out: sources
    replayed: set[int] = field(default_factory=set)  # this round's slots taken out as replays (absent)
    disputing: bool = False
    dispute_end: int = 0
    claim: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    rejected: set[int] = field(default_factory=set)  # slots of the disputable post's flag 2s, not cured
    cured: set[int] = field(default_factory=set)
    honest_scores: dict[int, int] = field(default_factory=dict)  # what each rejected slot would have scored

    def owed(self) -> int:
        """Everything this project owes."""
        return self.budget_left + self.owner_refund + self.bond_held + sum(self.stakes.values()) + sum(
            self.rewards.values()
        )

    @property
    def round_budget(self) -> int:
        """The open round's budget: budget // rounds, the last round everything left."""
        return self.budget_left if self.round == self.rounds else self.budget // self.rounds

    def accepted(self, flags: Sequence[int]) -> list[int]:
        """The slots with a commitment this round and flag 0."""
        return [slot for slot in self.commitments if flags[slot] == 0]

    def paid(self, flags: Sequence[int]) -> tuple[list[int], bool]:
        """The slots §7 pays, and whether equally: with excluded slots (flag 3) and at most max(1, N // 4) of
        the N accepted and excluded accepted, all of them equally; otherwise the accepted."""
        accepted = self.accepted(flags)
        excluded = [slot for slot in self.commitments if flags[slot] == 3]
        if excluded and len(accepted) <= max(1, (len(accepted) + len(excluded)) // 4):
            return sorted(accepted + excluded), True
        return accepted, False

    def settle(self, flags: list[int], scores: list[int], stamp: int) -> None:
        """Apply §7 for the open round (a post without a flag 2, a finalize or a re-post at `stamp`): the
        budget to the accepted, and to the excluded too, equally, when few are accepted (carried forward when
        neither), flag 1 slashed and ejected, flags 2 and 3 otherwise unpaid."""
        last = self.round == self.rounds
        budget = self.round_budget
        split, dust = shares(budget, *self.paid(flags), scores)
        if split:
            for slot, share in split.items():
                self.rewards[self.slots[slot]] += share
            self.budget_left -= budget
            self.owner_refund += dust
        for slot, flag in enumerate(flags):
            if flag == 1:
                trainer = self.slots[slot]
                cut = self.stakes[trainer] * self.slash_bps // 10_000
                self.stakes[trainer] -= cut
                self.owner_refund += cut
                self.ejected.add(trainer)
        self.views = {slot: view for slot, view in self.views.items() if flags[slot] == 0}  # settled: accepted only
        self.close_round()
        self.open_deadline = stamp + self.open_window
        if last:
            self.owner_refund += self.budget_left
            self.budget_left = 0
            self.state = State.FINISHED

    def close_round(self) -> None:
        """Forget the open round's submissions and dispute."""
        self.round_open = False
        self.previous = dict(self.views)
        self.sealed, self.commitments, self.views, self.replayed = {}, {}, {}, set()
        self.disputing, self.claim, self.rejected, self.cured, self.honest_scores = False, ([], []), set(), set(), {}

    def active_slots(self) -> list[int]:
        """The slots of the trainers not ejected."""
        return [slot for slot, trainer in enumerate(self.slots) if trainer not in self.ejected]

    def dispute(self, flags: list[int], scores: list[int], end: int, honest: dict[int, int]) -> None:
        """A post with a flag 2: provisional until `end`, nothing settled."""
        self.disputing, self.dispute_end, self.claim = True, end, (list(flags), list(scores))
        self.rejected = {slot for slot, flag in enumerate(flags) if flag == 2}
        self.cured = set()
        self.honest_scores = honest

    @property
    def repost_deadline(self) -> int:
        """The last moment of the re-post after a cure."""
        return self.dispute_end + self.post_window

    def timeout_deadline(self) -> int:
        """After this moment the aggregator missed its deadline: the open, the post, or the re-post."""
        if not self.round_open:
            return self.open_deadline
        return self.repost_deadline if self.disputing else self.post_deadline

    def cancel(self) -> None:
        """Cancelled before training: the unspent budget to the owner."""
        self.owner_refund += self.budget_left
        self.budget_left = 0
        self.state = State.CANCELLED

    def timeout(self) -> dict[int, int]:
        """Aggregator timeout: the bond in equal shares to the open round's submitters (missed post or
        re-post) or to the active trainers (missed open), the rest and the unspent budget to the owner;
        returns each compensated party's share."""
        if self.round_open:
            harmed = [self.slots[slot] for slot in sorted(self.commitments)]
        else:
            harmed = [trainer for trainer in self.slots if trainer not in self.ejected]
        share = self.bond_held // len(harmed) if harmed else 0
        paid = {trainer: share for trainer in harmed} if share else {}
        for trainer in paid:
            self.rewards[trainer] += share
        self.owner_refund += self.budget_left + self.bond_held - share * len(paid)
        self.budget_left = 0
        self.bond_held = 0
        self.state = State.CANCELLED  # roundOpen stays as it was (where the project stalled)
        self.disputing = False  # the dispute ended with the project
        return paid

    @property
    def settled(self) -> bool:
        """Finished or Cancelled."""
        return self.state in (State.FINISHED, State.CANCELLED)


class MarketMachine(RuleBasedStateMachine):
    """Random sequences of every marketplace entry point against one ledger."""

    dep: ClassVar[Deployment]
    projects = Bundle("projects")

    def __init__(self) -> None:
        super().__init__()
        self.chain = self.dep.chain
        self.market = self.dep.market
        self.fns = self.market.contract.functions
        self.snapshot = self.chain.snapshot()
        self.start_balance = self.chain.balance(self.market.address)
        self.paid_in = 0
        self.paid_out = 0
        self.ledgers: dict[int, Ledger] = {}
        self.stake_withdrawn: dict[tuple[int, int], int] = {}  # (project, party) -> stake paid out

    # -- helpers -------------------------------------------------------------------------------
    def party(self, index: int) -> Any:
        """Owner (0), aggregator (1) or trainers (2..8); 9 is a bystander. The owner and the aggregator
        may join as trainers too (their own accounts among the trainers)."""
        return self.chain.accounts[index]

    def attempt(self, fn: Any, who: int, value: int = 0, gas: int = GAS_DEFAULT) -> Any:
        """Send `fn` if an eth_call says it would pass (a refused call costs one request); None if refused."""
        sender = self.party(who)
        try:
            fn.call({"from": sender.address, "value": value})
        except Exception:
            return None
        try:
            return self.chain.transact(fn, sender=sender, value=value, gas=gas)
        except ContractRevert:
            return None

    def expect(self, fn: Any, who: int, should: bool | None, errors: Sequence[str] = (), gas: int = GAS_DEFAULT) -> Any:
        """Send `fn` as `attempt` does, where the ledger predicted the outcome: `should` True, it must pass;
        False, it must be refused (by one of `errors`, if any are named); None, either may happen."""
        sender = self.party(who)
        if should is True:  # sent at once: a refusal raises, naming its error
            try:
                return self.chain.transact(fn, sender=sender, gas=gas)
            except ContractRevert as exc:
                raise AssertionError(f"the rules allow this call, the contract refused it: {exc}") from None
        try:
            self.chain.call(fn, sender)
            refusal = None
        except ContractRevert as exc:
            refusal = exc
        if should is False:
            assert refusal is not None, "the rules refuse this call, the contract accepted it"
            assert not errors or refusal.name in errors, f"expected one of {errors}, got {refusal}"
        if refusal is not None:
            return None
        try:
            return self.chain.transact(fn, sender=sender, gas=gas)
        except ContractRevert:
            return None

    def refused(self, fn: Any, who: int) -> bool:
        """True if `fn` from party `who` reverts (checked with eth_call)."""
        try:
            fn.call({"from": self.party(who).address})
        except Exception:
            return True
        return False

    def check_outcomes(self, receipt: TxReceipt, flags: Sequence[int]) -> None:
        """The settling receipt names exactly the slashed (flag 1), rejected (flag 2) and excluded (flag 3) slots."""
        for event, flag in (("TrainerSlashed", 1), ("UpdateRejected", 2), ("UpdateExcluded", 3)):
            slots = [e.args["slot"] for e in self.market.receipt_events(receipt, event)]
            assert slots == [slot for slot, f in enumerate(flags) if f == flag], event

    def stamp(self, receipt: TxReceipt) -> int:
        """The timestamp of the block a transaction was mined in."""
        return int(self.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    def before(self, moment: int) -> bool:
        """The next block is surely at or before `moment` (the clock's drift allowed for)."""
        return self.chain.now() + MARGIN <= moment

    def after(self, moment: int) -> bool:
        """The next block is surely after `moment`."""
        return self.chain.now() > moment

    def pass_moment(self, moment: int) -> None:
        """Travel just past `moment` if it has not passed yet."""
        if self.chain.now() <= moment:
            self.chain.time_travel(moment - self.chain.now() + 1)

    def rewards_of(self, pid: int, ledger: Ledger) -> dict[int, int]:
        """Each slot's credited rewards, read from the contract."""
        return {
            slot: self.market.participant(pid, self.party(who).address).rewards for slot, who in enumerate(ledger.slots)
        }

    # -- setup -----------------------------------------------------------------------------------
    @rule(
        target=projects,
        budget=st.one_of(st.integers(0, 100), st.integers(0, 10**18)),
        rounds=st.integers(1, 5),
        min_trainers=st.integers(1, 2),
        extra=st.integers(0, 6),
        slash_bps=st.sampled_from([0, 1, 3_333, 10_000]),
        stake=st.sampled_from([1, 10**15 + 3]),
        bond_extra=st.sampled_from([0, 0, 1, 7, 10**16, -1]),
        view=st.sampled_from([(1, 16), (20, 16), (47, 8), (31, 32)]),
    )
    def create(
        self, budget: int, rounds: int, min_trainers: int, extra: int, slash_bps: int, stake: int, bond_extra: int,
        view: tuple[int, int],
    ) -> int:
        return self.new_project(budget, rounds, min_trainers, extra, slash_bps, stake, bond_extra, view)

    def new_project(
        self, budget: int, rounds: int, min_trainers: int, extra: int, slash_bps: int, stake: int, bond_extra: int,
        view: tuple[int, int],
    ) -> int:
        """A project whose bond is one round's budget plus `bond_extra` (-1: just too small to start)."""
        bond = max(budget // rounds + bond_extra, 1)
        view_len, quant_bits = view
        settings: dict[str, Any] = dict(
            rounds=rounds, min_trainers=min_trainers, max_trainers=min_trainers + extra, slash_bps=slash_bps,
            stake=stake, aggregator_bond=bond, join_deadline=self.chain.now() + 900, view_len=view_len,
            quant_bits=quant_bits,
        )
        params = self.dep.params(**settings)
        pid = self.dep.create(budget, **settings)
        self.paid_in += budget
        self.ledgers[pid] = Ledger(
            rounds, stake, bond, slash_bps, budget, budget, min_trainers, params.open_window, params.post_window,
            view_len, quant_bits, submit_window=params.submit_window,
        )
        return pid

    @initialize(
        target=projects,
        budget=st.one_of(st.integers(0, 100), st.integers(0, 10**18)),
        rounds=st.integers(1, 5),
        n=st.integers(2, 8),
        slash_bps=st.sampled_from([0, 1, 3_333, 10_000]),
        stake=st.sampled_from([1, 10**15 + 3]),
        bond_extra=st.sampled_from([0, 0, 1, 7, 10**16, -1]),
        view=st.sampled_from([(1, 16), (20, 16), (47, 8), (31, 32)]),
        insiders=st.sampled_from([0, 1, 2]),
        started=st.integers(0, 3),
        played=st.integers(0, 5),
        stalled=st.sampled_from(["", "", "open", "post", "repost", "uncured"]),
        data=st.data(),
    )
    def first_project(
        self, budget: int, rounds: int, n: int, slash_bps: int, stake: int, bond_extra: int, view: tuple[int, int],
        insiders: int, started: int, played: int, stalled: str, data: st.DataObject,
    ) -> int:
        """Every sequence starts with one project with up to 8 trainers (with `insiders` of them the
        aggregator's and the owner's own accounts), usually in Training with rounds played (disputes
        resolved), and in some of those the aggregator then misses a deadline before the last round."""
        pid = self.new_project(budget, rounds, 2, 6, slash_bps, stake, bond_extra, view)
        self.bond(pid, 1)
        for trainer in ([1, 0][:insiders] + [2, 3, 4, 5, 6, 7, 8])[:n]:
            self.join(pid, trainer)
        if started:
            self.start(pid, 0)
            for _ in range(min(played, rounds - 1) if stalled else played):
                self.play_round(pid, data)
            if stalled:
                self.stall(pid, data, stalled)
        return pid

    @rule(pid=projects, amount=st.integers(0, 10**17), who=st.sampled_from([0, 0, 2]))
    def fund(self, pid: int, amount: int, who: int) -> None:
        if self.attempt(self.fns.fund(pid, amount), who, amount):
            ledger = self.ledgers[pid]
            ledger.budget += amount
            ledger.budget_left += amount
            self.paid_in += amount

    @rule(pid=projects, who=st.sampled_from([1, 1, 0]))
    def bond(self, pid: int, who: int) -> None:
        ledger = self.ledgers[pid]
        if self.attempt(self.fns.bond(pid), who, ledger.bond):
            ledger.bond_held = ledger.bond
            ledger.state = State.OPEN
            self.paid_in += ledger.bond

    @rule(pid=projects, trainer=st.integers(0, 8))
    def join(self, pid: int, trainer: int) -> None:
        ledger = self.ledgers[pid]
        if self.attempt(self.fns.join(pid), trainer, ledger.stake):
            ledger.slots.append(trainer)
            ledger.stakes[trainer] = ledger.stake
            ledger.rewards[trainer] = 0
            self.paid_in += ledger.stake

    @rule(pid=projects, who=st.sampled_from([0, 0, 3]))
    def start(self, pid: int, who: int) -> None:
        """The owner's start is decided by the rules once enough trainers joined: the bond must cover
        one round's budget (the budget is final at start)."""
        ledger = self.ledgers[pid]
        covered = ledger.bond >= ledger.budget // ledger.rounds
        should = None
        if who == 0 and ledger.state == State.OPEN and len(ledger.slots) >= ledger.min_trainers:
            should = covered
        receipt = self.expect(self.fns.start(pid), who, should, ["BondBelowRoundBudget"])
        if receipt:
            assert covered, "training started with a bond below one round's budget"
            ledger.state = State.TRAINING
            ledger.open_deadline = self.stamp(receipt) + ledger.open_window

    @rule(pid=projects, n=st.integers(1, 5), who=st.sampled_from([0, 0, 5]))
    def launch(self, pid: int, n: int, who: int) -> None:
        """A longer stride: bond, `n` trainers join, start."""
        self.bond(pid, 1)
        for trainer in range(2, 2 + n):
            self.join(pid, trainer)
        self.start(pid, who)

    @rule(pid=projects, who=st.sampled_from([0, 4]), wait=st.booleans())
    def cancel(self, pid: int, who: int, wait: bool) -> None:
        if wait:
            self.travel(1_000)
        if self.attempt(self.fns.cancel(pid), who):
            self.ledgers[pid].cancel()

    # -- rounds ----------------------------------------------------------------------------------
    @rule(pid=projects)
    def open_round(self, pid: int) -> None:
        receipt = self.attempt(self.fns.openRound(pid, V_COMMIT), 1)
        if receipt:
            ledger = self.ledgers[pid]
            (event,) = self.market.receipt_events(receipt, "RoundOpened")
            ledger.round += 1
            ledger.round_open = True
            ledger.window_end = int(event.args["windowEnd"])
            ledger.post_deadline = int(event.args["postDeadline"])

    @rule(pid=projects, trainer=st.integers(0, 8), stale=st.booleans(), replay=st.booleans())
    def submit(self, pid: int, trainer: int, stale: bool, replay: bool) -> None:
        """A trainer seals the commitment of a real view of the project's size (its reveal is `reveal`); with
        `replay`, another trainer's view of the round before when there is one (`challenge` takes it out)."""
        ledger = self.ledgers[pid]
        round_ = max(ledger.round - 1, 0) if stale else ledger.round
        sources = [v for slot, v in ledger.previous.items() if ledger.slots[slot] != trainer]
        view = sources[0] if replay and sources else make_view((pid, ledger.round, trainer), ledger.view_len,
                                                               ledger.quant_bits)
        salt = bytes([trainer + 1]) * 32
        sealed = self.market.seal(pid, round_, self.party(trainer).address, CID, view.commitment, salt)
        receipt = self.attempt(self.fns.commitUpdate(pid, round_, sealed), trainer)
        if receipt:
            assert not stale, "a submission for a past round was accepted"
            (event,) = self.market.receipt_events(receipt, "UpdateCommitted")
            assert event.args["seq"] == len(ledger.sealed), "the submission rank is not the count of commits before it"
            ledger.sealed[ledger.slots.index(trainer)] = (view, salt)

    @rule(pid=projects, trainer=st.integers(0, 8))
    def reveal(self, pid: int, trainer: int) -> None:
        """A trainer reveals its sealed commit of the open round: it must pass once every active slot has committed
        or the commit window has closed, until one more submit window; before, it must be refused (CommitsOpen)."""
        ledger = self.ledgers[pid]
        slot = ledger.slots.index(trainer) if trainer in ledger.slots else None
        if slot is None or slot not in ledger.sealed or slot in ledger.commitments or slot in ledger.replayed:
            return
        view, salt = ledger.sealed[slot]
        should: bool | None = None
        errors: list[str] = []
        if ledger.state == State.TRAINING and ledger.round_open and not ledger.disputing:
            everyone = set(ledger.active_slots()) <= set(ledger.sealed)
            if self.before(ledger.window_end) and not everyone:
                should, errors = False, ["CommitsOpen"]
            elif (everyone or self.after(ledger.window_end)) and self.before(ledger.window_end + ledger.submit_window):
                should = True
        receipt = self.expect(self.fns.revealUpdate(pid, ledger.round, CID, view.commitment, salt), trainer, should,
                              errors)
        if receipt:
            (event,) = self.market.receipt_events(receipt, "UpdateSubmitted")
            assert event.args["seq"] == list(ledger.sealed).index(slot), "the reveal's rank is not its commit's"
            ledger.commitments[slot] = view.commitment
            ledger.views[slot] = view

    @rule(pid=projects, data=st.data())
    def challenge(self, pid: int, data: st.DataObject) -> None:
        """A bystander challenges a revealed update of the open round as a replay of a view of the round before
        (PROTOCOL.md §3): taken out iff it is one, of another slot, before the post; the slot is then absent from the
        round (no pay, no stake moved, no bond share). Refusals by name where the ledger decides them."""
        ledger = self.ledgers[pid]
        if not ledger.views or not ledger.previous:
            return
        copies = [(i, j) for i, v in ledger.views.items() for j, w in ledger.previous.items()
                  if i != j and v.commitment == w.commitment]  # the replays `submit` made
        if copies and data.draw(st.integers(0, 3)):
            slot, source = data.draw(st.sampled_from(copies))
        else:
            slot = data.draw(st.sampled_from(sorted(ledger.views)))
            source = data.draw(st.sampled_from(sorted(ledger.previous)))
        view, source_view = ledger.views[slot], ledger.previous[source]
        should: bool | None = None
        errors: list[str] = []
        if not (ledger.state == State.TRAINING and ledger.round_open) or ledger.disputing:
            should, errors = False, ["ChallengeClosed"]
        elif slot == source:
            should, errors = False, ["SelfReplay"]
        else:
            replay = is_replay(torch.tensor(view.values), torch.tensor(source_view.values))
            should, errors = replay, ([] if replay else ["NotAReplay"])
        fn = self.market.replays.functions.challengeReplay(pid, ledger.round, slot, ledger.round - 1, source,
                                                          list(view.elements), list(source_view.elements))
        receipt = self.expect(fn, BYSTANDER, should, errors, gas=2 * GAS_CURE)
        if receipt:
            (event,) = self.market.receipt_events(receipt, "UpdateReplayed")
            assert (event.args["slot"], event.args["sourceSlot"]) == (slot, source)
            ledger.commitments.pop(slot)
            ledger.views.pop(slot)
            ledger.replayed.add(slot)
        tally(f"replay challenge: {'taken out' if receipt else 'refused'}")

    def reveal_all(self, pid: int) -> None:
        """Close the open round's commits (the commit window passes unless every active slot sealed), then every
        sealed trainer reveals."""
        ledger = self.ledgers[pid]
        if not set(ledger.active_slots()) <= set(ledger.sealed):
            self.pass_moment(ledger.window_end)
        for slot in list(ledger.sealed):
            self.reveal(pid, ledger.slots[slot])

    def draw_score(self, data: st.DataObject, direction: str) -> int:
        """An accepted slot's score under a random, a zero or a negated validation direction."""
        if direction == "zero":
            return 0
        if direction == "negated":
            return -data.draw(st.integers(0, 50))
        return data.draw(st.integers(-50, 10**6))

    def proof(self, pid: int, ledger: Ledger, flags: list[int], scores: list[int]) -> list[int]:
        """A proof the test verifier accepts: the §6 public input computed in Python (ranks from the ledger)."""
        n = len(ledger.slots)
        commitments = [ledger.commitments.get(slot, 0) for slot in range(n)]
        order = list(ledger.sealed)
        seqs = [order.index(slot) if slot in ledger.commitments else 0 for slot in range(n)]
        assert self.market.submission_order(pid, ledger.round) == seqs
        return [
            public_input(statement(self.chain, self.market, pid, ledger.round, n), self.dep.slots, commitments, flags,
                         scores, seqs)
        ] + [0] * 7

    @rule(pid=projects, data=st.data())
    def post(self, pid: int, data: st.DataObject) -> None:
        """The aggregator posts the open round, or re-posts a disputed one."""
        if self.ledgers[pid].disputing:
            self.repost(pid, data)
        else:
            self.first_post(pid, data)

    def first_post(self, pid: int, data: st.DataObject, flagging: str | None = None, wait: bool = False) -> None:
        """A malicious aggregator's post: random flags (`flagging` 'reject_all' rejects every update,
        'reject_some' at least one), scores from a random, a zero or a negated direction; after the
        window if `wait`, else usually. With a flag 2 the post is only disputable."""
        ledger = self.ledgers[pid]
        if not ledger.round_open or ledger.disputing:
            return
        flagging = flagging or data.draw(st.sampled_from(["random", "random", "reject_all"]))
        direction = data.draw(st.sampled_from(["random", "zero", "negated"]))
        n = len(ledger.slots)
        flags, scores, honest = [0] * n, [0] * n, {}
        for slot in ledger.commitments:
            flags[slot] = 2 if flagging == "reject_all" else data.draw(st.sampled_from([0, 0, 0, 1, 2, 2, 3]))
            score = self.draw_score(data, direction)
            if flags[slot] == 0:
                scores[slot] = score
            elif flags[slot] == 2:
                honest[slot] = score
        if flagging == "reject_some" and ledger.commitments and 2 not in flags:
            slot = data.draw(st.sampled_from(sorted(ledger.commitments)))
            flags[slot], scores[slot], honest[slot] = 2, 0, scores[slot]
        if wait or data.draw(st.integers(0, 3)):
            self.pass_moment(ledger.window_end)
        fn = self.fns.postRound(pid, ledger.round, MODEL_CID, CID, model_out(ledger.round), flags, scores,
                                self.proof(pid, ledger, flags, scores))
        receipt = self.attempt(fn, 1, gas=GAS_POST)
        if not receipt:
            return
        if 2 in flags:
            (event,) = self.market.receipt_events(receipt, "RoundDisputable")
            end = self.stamp(receipt) + ledger.post_window
            assert event.args["rejected"] == sum(1 << slot for slot, flag in enumerate(flags) if flag == 2)
            assert event.args["disputeEnd"] == end
            self.check_outcomes(receipt, [0] * len(flags))  # nothing settles yet
            ledger.dispute(flags, scores, end, honest)
        else:
            assert self.market.receipt_events(receipt, "RoundDisputable") == []  # flags 1 and 3 are proven
            self.check_outcomes(receipt, flags)
            ledger.settle(flags, scores, self.stamp(receipt))

    def repost(self, pid: int, data: st.DataObject, mode: str | None = None) -> None:
        """The aggregator posts a disputed round again: 'honest' accepts the cured slots at the scores they
        would have had, 'fresh' posts new random flags (flag 2 only where still rejected), 'again' keeps
        rejecting the cured slots (NewRejection). Early, uncured or late, the rules refuse it by name."""
        ledger = self.ledgers[pid]
        mode = mode or data.draw(st.sampled_from(["honest", "honest", "fresh", "again"]))
        if data.draw(st.integers(0, 3)):
            self.pass_moment(ledger.dispute_end)
        claim_flags, claim_scores = ledger.claim
        flags, scores = list(claim_flags), list(claim_scores)
        if mode == "honest":
            for slot in ledger.cured:
                flags[slot], scores[slot] = 0, ledger.honest_scores[slot]
        elif mode == "fresh":
            direction = data.draw(st.sampled_from(["random", "zero", "negated"]))
            for slot in ledger.commitments:
                flags[slot] = data.draw(st.sampled_from([0, 0, 1, 3, *([2] if slot in ledger.rejected else [])]))
                scores[slot] = self.draw_score(data, direction) if flags[slot] == 0 else 0
        should: bool | None = None
        errors: list[str] = []
        if ledger.state != State.TRAINING:
            should, errors = False, ["WrongState"]
        elif self.before(ledger.dispute_end):
            should, errors = False, ["DisputeOpen"]
        elif self.after(ledger.dispute_end) and not ledger.cured:
            should, errors = False, ["NothingCured"]
        elif self.after(ledger.repost_deadline):
            should, errors = False, ["DeadlinePassed"]
        elif self.after(ledger.dispute_end) and self.before(ledger.repost_deadline):
            should = mode != "again"
            errors = [] if should else ["NewRejection"]
        elif mode == "again" or not ledger.cured:
            should = False
        fn = self.fns.postRound(pid, ledger.round, MODEL_CID, CID, model_out(ledger.round), flags, scores,
                                self.proof(pid, ledger, flags, scores))
        before = self.rewards_of(pid, ledger)
        receipt = self.expect(fn, 1, should, errors, gas=GAS_POST)
        if not receipt:
            return
        assert ledger.cured and mode != "again", "a re-post settled with nothing cured or a cured slot rejected"
        self.check_outcomes(receipt, flags)
        # Cured slots are credited exactly their §7 share of this settlement; an honest re-post is the post
        # that never rejected them, so that share is what they would have had without the false flag.
        after = self.rewards_of(pid, ledger)
        split, _ = shares(ledger.round_budget, *ledger.paid(flags), scores)
        for slot in ledger.cured:
            assert after[slot] - before[slot] == split.get(slot, 0), f"cured slot {slot} was not paid its share"
            if mode == "honest":
                never_rejected = ledger.paid([0 if s in ledger.cured else f for s, f in enumerate(claim_flags)])
                as_if, _ = shares(ledger.round_budget, *never_rejected, scores)
                assert after[slot] - before[slot] == as_if[slot]
        ledger.settle(flags, scores, self.stamp(receipt))

    @rule(pid=projects, data=st.data())
    def cure(self, pid: int, data: st.DataObject) -> None:
        """A trainer publishes its view: usually a rejected one with its own valid view; sometimes another
        slot, a tampered view, another trainer's view or a malformed one (all refused, by name)."""
        ledger = self.ledgers[pid]
        if not ledger.slots:
            return
        if ledger.rejected and data.draw(st.integers(0, 3)) != 0:
            slot = data.draw(st.sampled_from(sorted(ledger.rejected)))
        else:
            slot = data.draw(st.integers(0, len(ledger.slots) - 1))
        kind = data.draw(st.sampled_from(["valid"] * 5 + ["tampered", "other", "short", "lane"]))
        self.try_cure(pid, slot, kind)

    def try_cure(self, pid: int, slot: int, kind: str) -> None:
        """The trainer in `slot` cures with a view of `kind`; the outcome is the ledger's where it is decided."""
        ledger = self.ledgers[pid]
        own = ledger.views.get(slot) or make_view((pid, ledger.round, 2**32 - 1), ledger.view_len, ledger.quant_bits)
        others = [v for s, v in ledger.views.items() if v.commitment != own.commitment]
        elements = list({
            "valid": own, "tampered": tampered(own), "other": others[0] if others else tampered(own),
        }.get(kind, own).elements)
        if kind == "short":
            elements = elements[:-1] or [*elements, 1]
        elif kind == "lane":
            elements[0] &= ~((1 << ledger.quant_bits) - 1)  # offset 0: below the quantization range
        matches = kind == "valid" and slot in ledger.views
        should: bool | None = None
        errors: list[str] = []
        if not (ledger.state == State.TRAINING and ledger.round_open):
            should = False
        elif not ledger.disputing:
            should, errors = False, ["NoDispute"]
        elif self.after(ledger.dispute_end):
            should, errors = False, ["DeadlinePassed"]
        elif slot not in ledger.rejected:
            should, errors = False, ["NotRejected"]
        elif not matches:
            should = False
            if self.before(ledger.dispute_end):
                errors = {"short": ["ElementCount"], "lane": ["LaneOutOfRange"]}.get(kind, ["CureMismatch"])
        elif self.before(ledger.dispute_end):
            should = True
        fn = self.fns.cure(pid, ledger.round, elements)
        receipt = self.expect(fn, ledger.slots[slot], should, errors, gas=GAS_CURE)
        if receipt:
            assert matches and slot in ledger.rejected, "a cure the rules refuse was accepted"
            (event,) = self.market.receipt_events(receipt, "UpdateCured")
            assert event.args["slot"] == slot
            ledger.rejected.discard(slot)
            ledger.cured.add(slot)

    @rule(pid=projects, data=st.data(), who=st.sampled_from([BYSTANDER, 0, 1, 2]))
    def finalize(self, pid: int, data: st.DataObject, who: int) -> None:
        """Anyone settles an uncured disputable post after its window (usually waiting for its end), with
        the post's own flags and scores or, at times, with one slot's changed."""
        ledger = self.ledgers[pid]
        changed = None
        if ledger.disputing:
            if data.draw(st.integers(0, 3)):
                self.pass_moment(ledger.dispute_end)
            if data.draw(st.integers(0, 4)) == 0:
                changed = data.draw(st.sampled_from(sorted(ledger.commitments)))
        self.try_finalize(pid, who, changed)

    def try_finalize(self, pid: int, who: int, changed: int | None) -> None:
        """Party `who` finalizes with the disputable post's flags and scores, slot `changed`'s altered if
        given (ClaimMismatch); a cured round is refused CureOutstanding, one not disputable NoDispute."""
        ledger = self.ledgers[pid]
        if not ledger.disputing:
            zeros = [0] * len(ledger.slots)
            plain = ledger.state == State.TRAINING and ledger.round_open
            fn = self.fns.finalizeRound(pid, ledger.round, model_out(ledger.round), zeros, zeros)
            self.expect(fn, who, False, ["NoDispute"] if plain else [])
            return
        flags, scores = list(ledger.claim[0]), list(ledger.claim[1])
        if changed is not None:
            if flags[changed] == 0:
                scores[changed] += 1
            else:
                flags[changed] = 2 if flags[changed] == 1 else 1
        should: bool | None = None
        errors: list[str] = []
        if ledger.state != State.TRAINING:
            should, errors = False, ["WrongState"]
        elif self.before(ledger.dispute_end):
            should, errors = False, ["DisputeOpen"]
        elif self.after(ledger.dispute_end):
            should = not ledger.cured and changed is None
            errors = ["CureOutstanding"] if ledger.cured else ["ClaimMismatch"] if changed is not None else []
        elif ledger.cured or changed is not None:
            should = False
        fn = self.fns.finalizeRound(pid, ledger.round, model_out(ledger.round), flags, scores)
        receipt = self.expect(fn, who, should, errors, gas=GAS_POST)
        if receipt:
            assert [e.args["round"] for e in self.market.receipt_events(receipt, "RoundFinalized")] == [ledger.round]
            self.check_outcomes(receipt, flags)
            ledger.settle(flags, scores, self.stamp(receipt))

    def resolve(self, pid: int, data: st.DataObject) -> None:
        """A disputable post runs its course: some rejected trainers cure (a few with a wrong view first),
        then anyone finalizes it, or the aggregator re-posts (at times rejecting again first), or not."""
        ledger = self.ledgers[pid]
        if not ledger.disputing or ledger.state != State.TRAINING:
            return
        for slot in sorted(ledger.rejected):
            if data.draw(st.integers(0, 5)) == 0:
                self.try_cure(pid, slot, data.draw(st.sampled_from(["tampered", "other", "short", "lane"])))
            if data.draw(st.integers(0, 2)):
                self.try_cure(pid, slot, "valid")
        self.pass_moment(ledger.dispute_end)
        if not ledger.cured:
            if data.draw(st.integers(0, 4)) == 0:
                self.try_finalize(pid, BYSTANDER, data.draw(st.sampled_from(sorted(ledger.commitments))))
            self.try_finalize(pid, BYSTANDER, None)
            return
        choice = data.draw(st.sampled_from(["honest"] * 4 + ["fresh"] * 2 + ["again", "miss"]))
        if choice == "again":
            self.repost(pid, data, "again")
            choice = "honest"
        if choice != "miss":
            self.repost(pid, data, choice)

    @rule(pid=projects, data=st.data())
    def play_replayed_round(self, pid: int, data: st.DataObject) -> None:
        """`play_round` where every trainer but the first replays a view of the round before when there is one, and a
        bystander challenges one of the replays before the post."""
        self.resolve(pid, data)
        self.open_round(pid)
        for k, trainer in enumerate(list(self.ledgers[pid].slots)):
            self.submit(pid, trainer, False, k > 0)
        self.reveal_all(pid)
        self.challenge(pid, data)
        self.first_post(pid, data, wait=True)
        self.resolve(pid, data)

    @rule(pid=projects, data=st.data())
    def play_round(self, pid: int, data: st.DataObject) -> None:
        """A longer stride: a dispute left open runs its course; then open a round, some trainers submit (some
        replay), a bystander may challenge one, the aggregator posts it after the window, and a disputable post runs
        its course."""
        self.resolve(pid, data)
        self.open_round(pid)
        for trainer in list(self.ledgers[pid].slots):
            if data.draw(st.integers(0, 3)):
                self.submit(pid, trainer, False, data.draw(st.integers(0, 3)) == 0)
        self.reveal_all(pid)
        if data.draw(st.integers(0, 3)):
            self.challenge(pid, data)
        self.first_post(pid, data, wait=True)
        self.resolve(pid, data)

    @rule(pid=projects, data=st.data())
    def play_round_and_claim(self, pid: int, data: st.DataObject) -> None:
        """Play a round, then some trainers claim (and withdraw their stakes if they may)."""
        self.play_round(pid, data)
        for trainer in list(self.ledgers[pid].slots):
            if data.draw(st.booleans()):
                self.claim(pid, trainer)
                self.withdraw_stake(pid, trainer)

    @rule(pid=projects, wait=st.booleans())
    def timeout(self, pid: int, wait: bool) -> None:
        """Anyone times out an aggregator past its deadline (the open, the post or the re-post); a
        disputable post nobody cured is never timed out (NothingCured): it must be finalized."""
        ledger = self.ledgers[pid]
        if wait:
            self.travel(1_300)
        should: bool | None = None
        errors: list[str] = []
        uncured = ledger.disputing and not ledger.cured
        if ledger.state != State.TRAINING:
            should = False
        elif self.before(ledger.timeout_deadline()):
            should, errors = False, ["DeadlineNotPassed"]
        elif self.after(ledger.timeout_deadline()):
            should, errors = not uncured, ["NothingCured"] if uncured else []
        elif uncured:
            should = False
        cured = {ledger.slots[slot] for slot in ledger.cured}
        receipt = self.expect(self.fns.timeout(pid), BYSTANDER, should, errors)
        if receipt:
            paid = ledger.timeout()
            events = self.market.receipt_events(receipt, "BondCompensation")
            assert {e.args["trainer"]: e.args["amount"] for e in events} == {
                self.party(who).address: share for who, share in paid.items()
            }
            # A cured trainer whose re-post never came shares the bond like every other submitter.
            if paid:
                assert all(paid.get(who) == max(paid.values()) for who in cured)

    @rule(pid=projects, data=st.data(), phase=st.sampled_from(["open", "post", "repost", "uncured"]))
    def stall(self, pid: int, data: st.DataObject, phase: str) -> None:
        """A longer stride: the aggregator misses the open deadline; or opens a round, lets some trainers
        submit and misses the post deadline; or posts a rejection that is cured and misses the re-post;
        or posts a rejection nobody cures, which no timeout settles. Then anyone times the project out."""
        if phase != "open":
            self.open_round(pid)
            for trainer in list(self.ledgers[pid].slots):
                if data.draw(st.booleans()):
                    self.submit(pid, trainer, False, False)
            self.reveal_all(pid)
        if phase in ("repost", "uncured"):
            self.first_post(pid, data, "reject_some", wait=True)
            ledger = self.ledgers[pid]
            if phase == "repost":
                for slot in sorted(ledger.rejected):
                    self.try_cure(pid, slot, "valid")
        self.timeout(pid, True)
        if phase == "uncured":
            self.try_finalize(pid, BYSTANDER, None)

    @rule(seconds=st.sampled_from([30, 400, 700, 1_000]))
    def travel(self, seconds: int) -> None:
        self.chain.time_travel(seconds)

    # -- withdrawals -----------------------------------------------------------------------------
    def withdraw(self, fn: Any, event: str, who: int, due: int, allowed: bool) -> bool:
        """A withdrawal pays exactly `due` when due and allowed, and is refused otherwise."""
        if not (due > 0 and allowed):
            assert self.refused(fn, who), f"{event}: party {who} would be paid although nothing is due"
            return False
        receipt = self.attempt(fn, who)
        assert receipt is not None, f"{event}: {due} wei due to party {who} was refused"
        (paid,) = self.market.receipt_events(receipt, event)
        assert paid.args["amount"] == due
        self.paid_out += due
        return True

    @rule(pid=projects, who=st.integers(0, 8))
    def claim(self, pid: int, who: int) -> None:
        ledger = self.ledgers[pid]
        if self.withdraw(self.fns.claim(pid), "Claimed", who, ledger.rewards.get(who, 0), True):
            ledger.rewards[who] = 0

    @rule(pid=projects, who=st.integers(0, 8))
    def withdraw_stake(self, pid: int, who: int) -> None:
        ledger = self.ledgers[pid]
        allowed = who in ledger.ejected or ledger.settled
        due = ledger.stakes.get(who, 0)
        if self.withdraw(self.fns.withdrawStake(pid), "StakeWithdrawn", who, due, allowed):
            ledger.stakes[who] = 0
            self.stake_withdrawn[pid, who] = self.stake_withdrawn.get((pid, who), 0) + due

    @rule(pid=projects, who=st.sampled_from([0, 0, 2]))
    def withdraw_refund(self, pid: int, who: int) -> None:
        ledger = self.ledgers[pid]
        due = ledger.owner_refund if who == 0 else 0
        if self.withdraw(self.fns.withdrawRefund(pid), "RefundWithdrawn", who, due, True):
            ledger.owner_refund = 0

    @rule(pid=projects, who=st.sampled_from([1, 1, 0]))
    def withdraw_bond(self, pid: int, who: int) -> None:
        ledger = self.ledgers[pid]
        due = ledger.bond_held if who == 1 else 0
        if self.withdraw(self.fns.withdrawBond(pid), "BondWithdrawn", who, due, ledger.settled):
            ledger.bond_held = 0

    @rule(pid=projects)
    def settle_all(self, pid: int) -> None:
        """A longer stride: every party takes whatever the ledger says it is owed."""
        for who in TRAINER_PARTIES:
            self.claim(pid, who)
            self.withdraw_stake(pid, who)
        self.withdraw_refund(pid, 0)
        self.withdraw_bond(pid, 1)

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def conserved(self) -> None:
        """ETH in == ETH out + balance, to the wei."""
        balance = self.chain.balance(self.market.address) - self.start_balance
        assert self.paid_in == self.paid_out + balance

    @rule()
    def audit(self) -> None:
        """Balance == liabilities read from the views == the ledger, party by party; states and disputes
        agree; no trainer that was never a proven outlier lost stake."""
        balance = self.chain.balance(self.market.address) - self.start_balance
        assert balance == sum(ledger.owed() for ledger in self.ledgers.values())
        owed = 0
        for pid, ledger in self.ledgers.items():
            project = self.market.project(pid)
            assert (project.state, project.round, project.round_open, project.disputing) == (
                ledger.state, ledger.round, ledger.round_open, ledger.disputing,
            )
            assert (project.budget_left, project.owner_refund, project.bond_held) == (
                ledger.budget_left, ledger.owner_refund, ledger.bond_held,
            )
            settled = ledger.round - ledger.round_open  # every post names model_out(round): the models chain by one
            assert (self.market.previous_model_commitment(pid), self.market.model_commitment(pid)) == (
                model_out(max(settled - 1, 0)), model_out(settled),
            )
            if ledger.disputing:
                dispute = self.market.dispute(pid, ledger.round)
                assert project.post_deadline == ledger.dispute_end
                assert (dispute.rejected, dispute.cured) == (
                    sum(1 << slot for slot in ledger.rejected), sum(1 << slot for slot in ledger.cured),
                )
            owed += project.budget_left + project.owner_refund + project.bond_held
            assert project.n_trainers == len(ledger.slots)
            for slot, who in enumerate(ledger.slots):
                address = self.market.trainer_at(pid, slot)
                assert address == self.party(who).address
                record = self.market.participant(pid, address)
                assert (record.stake, record.rewards) == (ledger.stakes[who], ledger.rewards[who])
                assert (record.status == Status.EJECTED) == (who in ledger.ejected)
                owed += record.stake + record.rewards
                if who not in ledger.ejected:  # never a proven outlier: its whole stake, held or paid out
                    assert record.stake + self.stake_withdrawn.get((pid, who), 0) == ledger.stake, (
                        f"project {pid}: honest trainer {who} lost stake"
                    )
        assert self.chain.balance(self.market.address) == owed

    def teardown(self) -> None:
        """Audit once more, then roll the chain back for the next sequence."""
        try:
            self.audit()
        finally:
            self.chain.revert(self.snapshot)


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.timeout(max(900, 5 * EXAMPLES))  # the suite's 900 s fit the default count; more sequences take longer
def test_money_is_conserved_under_random_sequences(anvil_node: AnvilHandle) -> None:
    chain = Chain.connect(anvil_node.url)
    snapshot = chain.snapshot()
    try:
        MarketMachine.dep = deploy(chain)
        run_state_machine_as_test(
            MarketMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        chain.revert(snapshot)
