"""Conservation of funds and fairness under random call sequences (hypothesis stateful testing on anvil).

An independent Python ledger applies PROTOCOL.md §7 to every call the contract accepted. After
each step: ETH in == ETH out + the contract's balance, to the wei. At check points and at the end
of every sequence: the contract's balance == what it owes (read from its views) == the ledger,
party by party. Every withdrawal pays exactly the caller's ledger balance, and one the ledger
says is due never reverts.

The aggregator is malicious: it flags at random (false flag 2s, every update rejected), picks
zero or negated directions (every accepted score 0 or negative) and misses deadlines. The owner
and the aggregator also join as trainers. Fairness (the trust model's H): a trainer that was never
a proven outlier (flag 1) keeps its whole stake, held or withdrawn, whatever else happened.
`FEDMARKET_HYPOTHESIS_EXAMPLES` raises the number of sequences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from market.chain.client import Chain
from market.chain.marketplace import GAS_DEFAULT, State, Status
from market.errors import ContractRevert
from market.protocol.public_input import public_input
from market.toolchain.anvil import AnvilHandle
from tests.marketplace_harness import CID, MODEL_CID, V_COMMIT, Deployment, commitment, deploy

EXAMPLES = int(os.environ.get("FEDMARKET_HYPOTHESIS_EXAMPLES", "200"))
STEPS = int(os.environ.get("FEDMARKET_HYPOTHESIS_STEPS", "10"))


@dataclass
class Ledger:
    """One project by the rules, updated only from calls the contract accepted (never read back)."""

    rounds: int
    stake: int
    bond: int
    slash_bps: int
    budget: int
    budget_left: int
    state: State = State.CREATED
    round: int = 0
    round_open: bool = False
    window_end: int = 0
    owner_refund: int = 0
    bond_held: int = 0
    slots: list[int] = field(default_factory=list)
    stakes: dict[int, int] = field(default_factory=dict)
    rewards: dict[int, int] = field(default_factory=dict)
    ejected: set[int] = field(default_factory=set)
    commitments: dict[int, int] = field(default_factory=dict)  # this round's, in submission order

    def owed(self) -> int:
        """Everything this project owes."""
        return self.budget_left + self.owner_refund + self.bond_held + sum(self.stakes.values()) + sum(
            self.rewards.values()
        )

    def post(self, flags: list[int], scores: list[int]) -> None:
        """Apply §7 for the open round: the budget to the accepted (split by positive score, equally
        when none is positive; carried forward when nobody is accepted), flag 1 slashed and ejected."""
        last = self.round == self.rounds
        budget = self.budget_left if last else self.budget // self.rounds
        accepted = [slot for slot in self.commitments if flags[slot] == 0]
        if accepted:
            positive = sum(max(scores[slot], 0) for slot in accepted)
            left = budget
            for slot in accepted:
                share = budget // len(accepted) if positive == 0 else budget * max(scores[slot], 0) // positive
                self.rewards[self.slots[slot]] += share
                left -= share
            self.budget_left -= budget
            self.owner_refund += left
        for slot, flag in enumerate(flags):
            if flag == 1:
                trainer = self.slots[slot]
                cut = self.stakes[trainer] * self.slash_bps // 10_000
                self.stakes[trainer] -= cut
                self.owner_refund += cut
                self.ejected.add(trainer)
        self.round_open = False
        self.commitments = {}
        if last:
            self.owner_refund += self.budget_left
            self.budget_left = 0
            self.state = State.FINISHED

    def cancel(self) -> None:
        """Cancelled before training: the unspent budget to the owner."""
        self.owner_refund += self.budget_left
        self.budget_left = 0
        self.state = State.CANCELLED

    def timeout(self) -> dict[int, int]:
        """Aggregator timeout: the bond in equal shares to the open round's submitters (missed post) or
        to the active trainers (missed open), the rest and the unspent budget to the owner; returns
        each compensated party's share."""
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
        self.state = State.CANCELLED
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
        """Owner (0), aggregator (1) or trainers (2..6); 7 is a bystander. The owner and the aggregator
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

    def refused(self, fn: Any, who: int) -> bool:
        """True if `fn` from party `who` reverts (checked with eth_call)."""
        try:
            fn.call({"from": self.party(who).address})
        except Exception:
            return True
        return False

    # -- setup -----------------------------------------------------------------------------------
    @rule(
        target=projects,
        budget=st.integers(0, 10**18),
        rounds=st.integers(1, 4),
        min_trainers=st.integers(1, 2),
        extra=st.integers(0, 5),
        slash_bps=st.sampled_from([0, 1, 3_333, 10_000]),
        stake=st.sampled_from([1, 10**15 + 3]),
        bond=st.sampled_from([3, 7, 10**16]),
    )
    def create(self, budget: int, rounds: int, min_trainers: int, extra: int, slash_bps: int, stake: int, bond: int) -> int:
        params = self.dep.params(
            rounds=rounds, min_trainers=min_trainers, max_trainers=min_trainers + extra, slash_bps=slash_bps,
            stake=stake, aggregator_bond=bond, join_deadline=self.chain.now() + 900,
        )
        pid = self.market.create_project(params, budget, self.dep.owner)
        self.paid_in += budget
        self.ledgers[pid] = Ledger(rounds, stake, bond, slash_bps, budget, budget)
        return pid

    @initialize(
        target=projects,
        budget=st.integers(0, 10**18),
        rounds=st.integers(1, 4),
        n=st.integers(1, 7),
        slash_bps=st.sampled_from([0, 1, 3_333, 10_000]),
        stake=st.sampled_from([1, 10**15 + 3]),
        bond=st.sampled_from([3, 7, 10**16]),
        insiders=st.sampled_from([0, 1, 2]),
        started=st.integers(0, 3),
        played=st.integers(0, 3),
        stalled=st.sampled_from(["", "", "open", "post"]),
        data=st.data(),
    )
    def first_project(
        self, budget: int, rounds: int, n: int, slash_bps: int, stake: int, bond: int, insiders: int,
        started: int, played: int, stalled: str, data: st.DataObject,
    ) -> int:
        """Every sequence starts with one project with up to 7 trainers (with `insiders` of them the
        aggregator's and the owner's own accounts), usually in Training with rounds played, and
        in half of those the aggregator then misses a deadline."""
        pid = self.create(budget, rounds, 2, 5, slash_bps, stake, bond)
        self.bond(pid, 1)
        for trainer in ([1, 0][:insiders] + [2, 3, 4, 5, 6])[:n]:
            self.join(pid, trainer)
        if started:
            self.start(pid, 0)
            for _ in range(played):
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

    @rule(pid=projects, trainer=st.integers(0, 6))
    def join(self, pid: int, trainer: int) -> None:
        ledger = self.ledgers[pid]
        if self.attempt(self.fns.join(pid), trainer, ledger.stake):
            ledger.slots.append(trainer)
            ledger.stakes[trainer] = ledger.stake
            ledger.rewards[trainer] = 0
            self.paid_in += ledger.stake

    @rule(pid=projects, who=st.sampled_from([0, 0, 3]))
    def start(self, pid: int, who: int) -> None:
        if self.attempt(self.fns.start(pid), who):
            self.ledgers[pid].state = State.TRAINING

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

    @rule(pid=projects, trainer=st.integers(0, 6), stale=st.booleans())
    def submit(self, pid: int, trainer: int, stale: bool) -> None:
        ledger = self.ledgers[pid]
        round_ = max(ledger.round - 1, 0) if stale else ledger.round
        value = commitment(trainer, ledger.round)
        salt = bytes([trainer + 1]) * 32
        sealed = self.market.seal(pid, round_, self.party(trainer).address, CID, value, salt)
        receipt = self.attempt(self.fns.commitUpdate(pid, round_, sealed), trainer)
        if receipt:
            receipt = self.attempt(self.fns.revealUpdate(pid, round_, CID, value, salt), trainer)
            assert receipt, "a trainer could not reveal its own commit inside the window"
        if receipt:
            assert not stale, "a submission for a past round was accepted"
            (event,) = self.market.receipt_events(receipt, "UpdateSubmitted")
            assert event.args["seq"] == len(ledger.commitments), "the submission rank is not the count before it"
            ledger.commitments[ledger.slots.index(trainer)] = value

    @rule(pid=projects, data=st.data())
    def post(self, pid: int, data: st.DataObject) -> None:
        ledger = self.ledgers[pid]
        if not ledger.round_open:
            return
        commitments = [ledger.commitments.get(slot, 0) for slot in range(len(ledger.slots))]
        order = list(ledger.commitments)
        seqs = [order.index(slot) if slot in ledger.commitments else 0 for slot in range(len(ledger.slots))]
        assert self.market.submission_order(pid, ledger.round) == seqs
        # A malicious aggregator: random flags or every update rejected; scores from a random,
        # a zero or a negated direction.
        flagging = data.draw(st.sampled_from(["random", "random", "reject_all"]))
        direction = data.draw(st.sampled_from(["random", "zero", "negated"]))
        flags, scores = [], []
        for c in commitments:
            flag = 0
            if c:
                flag = 2 if flagging == "reject_all" else data.draw(st.sampled_from([0, 0, 0, 1, 2, 2]))
            score = 0
            if c and flag == 0:
                score = {"random": data.draw(st.integers(-50, 10**6)), "zero": 0,
                         "negated": -data.draw(st.integers(0, 50))}[direction]
            flags.append(flag)
            scores.append(score)
        if data.draw(st.integers(0, 3)) and self.chain.now() <= ledger.window_end:
            self.chain.time_travel(ledger.window_end - self.chain.now() + 1)
        n, slots = len(commitments), self.dep.slots
        proof = [
            public_input(self.chain.chain_id, self.market.address, pid, ledger.round, V_COMMIT, n, slots,
                         commitments, flags, scores, seqs)
        ] + [0] * 7
        fn = self.fns.postRound(pid, ledger.round, MODEL_CID, CID, flags, scores, proof)
        receipt = self.attempt(fn, 1, gas=2_000_000)
        if receipt:
            rejected = [e.args["slot"] for e in self.market.receipt_events(receipt, "UpdateRejected")]
            slashed = [e.args["slot"] for e in self.market.receipt_events(receipt, "TrainerSlashed")]
            assert rejected == [slot for slot, flag in enumerate(flags) if flag == 2]
            assert slashed == [slot for slot, flag in enumerate(flags) if flag == 1]
            ledger.post(flags, scores)

    @rule(pid=projects, data=st.data())
    def play_round(self, pid: int, data: st.DataObject) -> None:
        """A longer stride: open a round, some trainers submit, post it."""
        self.open_round(pid)
        for trainer in list(self.ledgers[pid].slots):
            if data.draw(st.integers(0, 3)):
                self.submit(pid, trainer, False)
        self.post(pid, data)

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
        if wait:
            self.travel(1_300)
        receipt = self.attempt(self.fns.timeout(pid), 7)
        if receipt:
            paid = self.ledgers[pid].timeout()
            events = self.market.receipt_events(receipt, "BondCompensation")
            assert {e.args["trainer"]: e.args["amount"] for e in events} == {
                self.party(who).address: share for who, share in paid.items()
            }

    @rule(pid=projects, data=st.data(), phase=st.sampled_from(["open", "post"]))
    def stall(self, pid: int, data: st.DataObject, phase: str) -> None:
        """A longer stride: the aggregator misses the open deadline, or opens a round, lets some trainers
        submit and misses the post deadline; then anyone times the project out."""
        if phase == "post":
            self.open_round(pid)
            for trainer in list(self.ledgers[pid].slots):
                if data.draw(st.booleans()):
                    self.submit(pid, trainer, False)
        self.timeout(pid, True)

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

    @rule(pid=projects, who=st.integers(0, 6))
    def claim(self, pid: int, who: int) -> None:
        ledger = self.ledgers[pid]
        if self.withdraw(self.fns.claim(pid), "Claimed", who, ledger.rewards.get(who, 0), True):
            ledger.rewards[who] = 0

    @rule(pid=projects, who=st.integers(0, 6))
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
        for who in range(7):
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
        """Balance == liabilities read from the views == the ledger, party by party; states agree."""
        balance = self.chain.balance(self.market.address) - self.start_balance
        assert balance == sum(ledger.owed() for ledger in self.ledgers.values())
        owed = 0
        for pid, ledger in self.ledgers.items():
            project = self.market.project(pid)
            assert (project.state, project.round, project.round_open) == (ledger.state, ledger.round, ledger.round_open)
            assert (project.budget_left, project.owner_refund, project.bond_held) == (
                ledger.budget_left, ledger.owner_refund, ledger.bond_held,
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
