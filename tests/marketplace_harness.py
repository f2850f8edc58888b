"""Test support for the marketplace: deploy with the test-only verifier, drive projects, audit the money.

Trainers submit stand-in commitments (`commitment`) unless a test needs to cure a rejection: then
`make_view` gives a real proof view, its packed elements and its PROTOCOL.md §2 commitment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import TxReceipt

from market.chain.client import Chain
from market.chain.marketplace import ZERO_ADDRESS, Marketplace, ProjectParams
from market.dev.gasbench import fit_settings
from market.errors import ContractRevert
from market.protocol.commitment import commit, pack
from market.protocol.constants import ETHER
from market.protocol.money import round_weights
from market.protocol.public_input import Statement
from market.protocol.quant import QuantSpec
from market.toolchain.solc import ContractArtifact, compile_contracts

#: The digits example's amounts (examples/digits.toml), on which the attack tests play.
BUDGET = 8 * ETHER
ROUNDS = 5
TRAINERS = 4
STAKE = ETHER
BOND = 2 * ETHER
SLASH_BPS = 5_000
ROUND_BUDGET = BUDGET // ROUNDS


def reverts(name: str, action: Callable[[], Any], *args: Any) -> ContractRevert:
    """Run `action`, expect the custom error `name` (and `args` if given)."""
    with pytest.raises(ContractRevert) as info:
        action()
    assert info.value.name == name, f"expected {name}, got {info.value}"
    if args:
        assert info.value.error_args == args
    return info.value


TEST_CONTRACTS = Path(__file__).parent / "contracts"
CID = bytes.fromhex("01551220") + bytes(range(32))  # a binary CIDv1 (raw, sha2-256)
MODEL_CID = bytes.fromhex("01551220") + bytes(32)
V_COMMIT = 0x1234_5678
MODEL_COMMIT = 0x4D0D_E100  # g(0)'s view commitment (any field element: the test verifier checks no circuit)


def model_out(round_: int) -> int:
    """The model commitment the harness posts for `round_` (one per round, so that a post binds its round's)."""
    return MODEL_COMMIT + round_


@cache
def with_test_contracts() -> dict[str, ContractArtifact]:
    """contracts/ plus the test-only contracts under tests/contracts, compiled once per process."""
    return compile_contracts([TEST_CONTRACTS])


def commitment(slot: int, round_: int = 1, salt: int = 0) -> int:
    """A distinct nonzero field element standing for a trainer's update commitment."""
    return (salt << 40) | (round_ << 20) | (slot + 1)


@dataclass(frozen=True)
class View:
    """A trainer's quantized proof view with its packed field elements and its commitment (PROTOCOL.md §2)."""

    values: tuple[int, ...]
    bits: int
    elements: tuple[int, ...]
    commitment: int


def split(budget: int, flags: Sequence[int], scores: Sequence[int]) -> tuple[list[int], int]:
    """PROTOCOL.md §7 for one posted round in which every slot submitted: shares and the owner's dust.

    Accepted (flag 0) slots share `budget` by max(score, 0), equally when none is positive; when few are
    accepted (`round_weights`), accepted and excluded (flag 3) share it equally; with neither nothing is
    spent (the caller carries `budget` forward) and this returns no dust.
    """
    weights = round_weights(flags, scores)
    if not any(weights):
        return [0] * len(flags), 0
    shares = [budget * w // sum(weights) for w in weights]
    return shares, budget - sum(shares)


def view_of(values: Sequence[int], bits: int = 16) -> View:
    """The View of these quantized values at `bits` bits."""
    spec = QuantSpec(bits=bits)
    return View(tuple(values), bits, tuple(pack(list(values), spec)), commit(list(values), spec))


def make_view(seed: int | Sequence[int], length: int, bits: int = 16) -> View:
    """A random view of `length` values spanning the whole quantization range, the same for the same seed."""
    qmax = QuantSpec(bits=bits).qmax
    values = np.random.default_rng(seed).integers(-qmax, qmax, size=length, endpoint=True)
    return view_of([int(v) for v in values], bits)


def tampered(view: View) -> View:
    """Another valid view of the same length: the first value changed (it hashes to another commitment)."""
    first = view.values[0]
    return view_of([-first if first else 1, *view.values[1:]], view.bits)


@dataclass
class Deployment:
    """A marketplace and a HashCheckVerifier on one chain, with named roles."""

    chain: Chain
    market: Marketplace
    verifier: Contract
    slots: int
    tokens: dict[str, Contract] = field(default_factory=dict)

    @property
    def owner(self) -> LocalAccount:
        """The project owner (account 0)."""
        return self.chain.accounts[0]

    @property
    def aggregator(self) -> LocalAccount:
        """The aggregator (account 1)."""
        return self.chain.accounts[1]

    @property
    def trainers(self) -> list[LocalAccount]:
        """Trainer accounts (accounts 2..)."""
        return self.chain.accounts[2:]

    def params(self, **overrides: Any) -> ProjectParams:
        """Small-project parameters bound to this deployment's aggregator and verifier."""
        base: dict[str, Any] = dict(
            aggregator=self.aggregator.address,
            verifier=self.verifier.address,
            join_deadline=self.chain.now() + 1_000,
            rounds=2,
            min_trainers=2,
            max_trainers=4,
            stake=10**15,
            aggregator_bond=10**18,  # covers one round's budget of the default budget (start refuses less)
            open_window=600,
            submit_window=600,
            post_window=600,
            model_commit=MODEL_COMMIT,
        )
        base.update(overrides)
        return ProjectParams.make(**base)

    def create(self, budget: int = 10**18, **overrides: Any) -> int:
        """Create a project with `budget` (ERC-20: tokens from deploy_token are pre-approved), the verifier set to
        its circuit settings; returns its id."""
        params = self.params(**overrides)
        if any(entry.get("name") == "setSettings" for entry in self.verifier.abi):  # the test verifier
            fit_settings(self.chain, self.verifier.address, params)
        return self.market.create_project(params, budget, self.owner, task_cid=CID, model_cid=MODEL_CID)

    def token_contract(self, address: str) -> Contract:
        """A deployed test token by address."""
        return next(t for t in self.tokens.values() if t.address == address)

    def deploy_token(self, name: str = "TestToken") -> Contract:
        """Deploy a mintable test ERC-20 and give every account 2**120 of it, approved to the market."""
        token = self.chain.deploy(with_test_contracts()[name], sender=self.owner)
        for acct in self.chain.accounts:
            self.chain.transact(token.functions.mint(acct.address, 2**120), self.owner, gas=100_000)
            self.chain.transact(
                token.functions.approve(self.market.address, 2**255), acct, gas=100_000
            )
        self.tokens[name] = token
        return token

    def open(self, pid: int, n: int) -> None:
        """Bond and let `n` trainers join."""
        self.market.bond(pid, self.aggregator)
        for trainer in self.trainers[:n]:
            self.market.join(pid, trainer)

    def start(self, pid: int, n: int) -> None:
        """Bond, join `n` trainers and start training."""
        self.open(pid, n)
        self.market.start(pid, self.owner)

    def proof(self, pid: int, round_: int, flags: Sequence[int], scores: Sequence[int]) -> list[int]:
        """A proof the HashCheckVerifier accepts: the contract's own public input in proof[0] (new model: model_out)."""
        return [self.market.public_input(pid, round_, model_out(round_), flags, scores)] + [0] * 7

    def submit(self, pid: int, round_: int, slots: Sequence[int], salt: int = 0) -> None:
        """Trainers in `slots` submit distinct commitments for `round_` (commits, then reveals: when a slot is left
        pending, chain time moves past the commit window first). No slots: nothing happens."""
        if slots:
            self.market.submit_updates(pid, round_, [(self.trainers[slot], CID, commitment(slot, round_, salt))
                                                     for slot in slots], close_commits=True)

    def submit_views(self, pid: int, round_: int, slots: Sequence[int]) -> dict[int, View]:
        """Trainers in `slots` submit the commitments of real views of the project's length and width."""
        params = self.market.params(pid)
        views = {slot: make_view((pid, round_, slot), params.view_len, params.quant_bits) for slot in slots}
        self.market.submit_updates(pid, round_, [(self.trainers[slot], CID, views[slot].commitment) for slot in slots],
                                   close_commits=True)
        return views

    def cure(self, pid: int, round_: int, slot: int, view: View) -> TxReceipt:
        """The trainer in `slot` publishes `view` to cure its rejection in `round_`."""
        return self.market.cure(pid, round_, view.elements, self.trainers[slot])

    def post(self, pid: int, round_: int, flags: Sequence[int], scores: Sequence[int]) -> Any:
        """Post `round_` with a proof the test verifier accepts."""
        proof = self.proof(pid, round_, flags, scores)
        return self.market.post_round(pid, round_, MODEL_CID, CID, model_out(round_), flags, scores, proof, self.aggregator)

    def finalize(self, pid: int, round_: int, flags: Sequence[int], scores: Sequence[int]) -> TxReceipt:
        """Let the dispute window of `round_` pass (nobody cured) and settle its post (called by a bystander)."""
        self.chain.time_travel(max(self.market.project(pid).post_deadline - self.chain.now() + 1, 1))
        return self.market.finalize_round(pid, round_, model_out(round_), flags, scores, self.chain.accounts[-1])

    def round(
        self,
        pid: int,
        scores: Sequence[int],
        flags: Sequence[int] | None = None,
        submitted: Sequence[int] | None = None,
    ) -> Any:
        """Open the next round, submit from `submitted` (default: every slot), close the window, post.

        A post that rejects a slot (flag 2) is disputable: nobody cures here, so the window passes and
        the post is finalized. Returns the receipt that settled the round (the post's or the finalize's).
        """
        n = len(scores)
        flags = list(flags) if flags is not None else [0] * n
        self.market.open_round(pid, V_COMMIT, self.aggregator)
        round_ = self.market.project(pid).round
        self.submit(pid, round_, range(n) if submitted is None else submitted)
        project = self.market.project(pid)
        if self.market.round_state(pid, round_).pending and self.chain.now() <= project.deadline:
            self.chain.time_travel(project.deadline - self.chain.now() + 1)
        receipt = self.post(pid, round_, flags, scores)
        if self.market.project(pid).disputing:
            return self.finalize(pid, round_, flags, scores)
        return receipt


def deploy(chain: Chain, slots: int = 8) -> Deployment:
    """Deploy FedMarket and a HashCheckVerifier with `slots` trainer slots, answering the default parameters'
    circuit settings."""
    arts = with_test_contracts()
    market = Marketplace.deploy(chain, chain.accounts[0], arts["FedMarket"])
    verifier = chain.deploy(arts["HashCheckVerifier"], slots, sender=chain.accounts[0])
    dep = Deployment(chain, market, verifier, slots)
    fit_settings(chain, verifier.address, dep.params())  # the default parameters' settings
    return dep


def liabilities(dep: Deployment, token: str = ZERO_ADDRESS) -> int:
    """What the marketplace owes in `token`: every project's held funds plus every participant's."""
    total = 0
    market = dep.market
    for pid in range(1, market.project_count() + 1):
        project = market.project(pid)
        if int(project.params.token, 16) != int(token, 16):
            continue
        total += project.budget_left + project.owner_refund + project.bond_held
        for trainer in market.trainers(pid):
            record = market.participant(pid, trainer)
            total += record.stake + record.rewards
    return total


def held(dep: Deployment, token: str = ZERO_ADDRESS) -> int:
    """The marketplace's balance of `token` (ETH for the zero address)."""
    if int(token, 16) == 0:
        return dep.chain.balance(dep.market.address)
    return int(dep.chain.call(dep.token_contract(token).functions.balanceOf(dep.market.address)))


def assert_solvent(dep: Deployment, token: str = ZERO_ADDRESS) -> None:
    """The contract holds exactly what it owes, to the wei."""
    assert held(dep, token) == liabilities(dep, token)


def withdraw_all(dep: Deployment, pid: int, n: int) -> dict[str, int]:
    """Every party of project `pid` (its first `n` trainers) withdraws whatever it may; returns what each was
    paid ('owner', 'aggregator', 't0'..). Afterwards the project owes nothing and the marketplace is solvent."""
    m = dep.market
    paid: dict[str, int] = {}

    def take(name: str, action: Callable[[], TxReceipt], event: str) -> None:
        try:
            receipt = action()
        except ContractRevert as exc:
            assert exc.name == "NothingToWithdraw", exc
            return
        (ev,) = m.receipt_events(receipt, event)
        paid[name] = paid.get(name, 0) + int(ev.args["amount"])

    for slot, trainer in enumerate(dep.trainers[:n]):
        take(f"t{slot}", partial(m.claim, pid, trainer), "Claimed")
        take(f"t{slot}", partial(m.withdraw_stake, pid, trainer), "StakeWithdrawn")
    take("owner", lambda: m.withdraw_refund(pid, dep.owner), "RefundWithdrawn")
    take("aggregator", lambda: m.withdraw_bond(pid, dep.aggregator), "BondWithdrawn")
    project = m.project(pid)
    assert project.budget_left + project.owner_refund + project.bond_held == 0
    for trainer in dep.trainers[:n]:
        record = m.participant(pid, trainer.address)
        assert record.stake + record.rewards == 0
    assert_solvent(dep)
    return {name: paid.get(name, 0) for name in ["owner", "aggregator", *(f"t{i}" for i in range(n))]}


def statement(chain: Chain, market: Marketplace, pid: int, round_: int, n: int, v_commit: int = V_COMMIT) -> Statement:
    """The §6 header of the harness's `round_` (every earlier round settled with the harness's model_out): the
    previous step starts at M(r-2), g(0)'s in rounds 1 and 2."""
    return Statement(chain.chain_id, market.address, pid, round_, v_commit, model_out(max(round_ - 2, 0)),
                     model_out(round_ - 1), model_out(round_), n)
