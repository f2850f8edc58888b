"""Test support for the marketplace: deploy with the test-only verifier, drive projects, audit the money."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from market.chain.client import Chain
from market.chain.marketplace import ZERO_ADDRESS, Marketplace, ProjectParams
from market.toolchain.solc import ContractArtifact, compile_contracts

TEST_CONTRACTS = Path(__file__).parent / "contracts"
CID = bytes.fromhex("01551220") + bytes(range(32))  # a binary CIDv1 (raw, sha2-256)
MODEL_CID = bytes.fromhex("01551220") + bytes(32)
V_COMMIT = 0x1234_5678


@cache
def with_test_contracts() -> dict[str, ContractArtifact]:
    """contracts/ plus the test-only contracts under tests/contracts, compiled once per process."""
    return compile_contracts([TEST_CONTRACTS])


def commitment(slot: int, round_: int = 1, salt: int = 0) -> int:
    """A distinct nonzero field element standing for a trainer's update commitment."""
    return (salt << 40) | (round_ << 20) | (slot + 1)


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
            aggregator_bond=10**16,
            open_window=600,
            submit_window=600,
            post_window=600,
        )
        base.update(overrides)
        return ProjectParams.make(**base)

    def create(self, budget: int = 10**18, **overrides: Any) -> int:
        """Create a project with `budget` (ERC-20: tokens from deploy_token are pre-approved); returns its id."""
        params = self.params(**overrides)
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
        """A proof the HashCheckVerifier accepts: the contract's own public input in proof[0]."""
        return [self.market.public_input(pid, round_, flags, scores)] + [0] * 7

    def submit(self, pid: int, round_: int, slots: Sequence[int], salt: int = 0) -> None:
        """Trainers in `slots` submit distinct commitments for `round_`."""
        for slot in slots:
            self.market.submit_update(pid, round_, CID, commitment(slot, round_, salt), self.trainers[slot])

    def post(self, pid: int, round_: int, flags: Sequence[int], scores: Sequence[int]) -> Any:
        """Post `round_` with a proof the test verifier accepts."""
        proof = self.proof(pid, round_, flags, scores)
        return self.market.post_round(pid, round_, MODEL_CID, CID, flags, scores, proof, self.aggregator)

    def round(
        self,
        pid: int,
        scores: Sequence[int],
        flags: Sequence[int] | None = None,
        submitted: Sequence[int] | None = None,
    ) -> Any:
        """Open the next round, submit from `submitted` (default: every slot), close the window, post."""
        n = len(scores)
        flags = list(flags) if flags is not None else [0] * n
        self.market.open_round(pid, V_COMMIT, self.aggregator)
        round_ = self.market.project(pid).round
        self.submit(pid, round_, range(n) if submitted is None else submitted)
        project = self.market.project(pid)
        if self.market.round_state(pid, round_).pending:
            self.chain.time_travel(project.deadline - self.chain.now() + 1)
        return self.post(pid, round_, flags, scores)


def deploy(chain: Chain, slots: int = 8) -> Deployment:
    """Deploy FedMarket and a HashCheckVerifier with `slots` trainer slots."""
    arts = with_test_contracts()
    market = Marketplace.deploy(chain, chain.accounts[0], arts["FedMarket"])
    verifier = chain.deploy(arts["HashCheckVerifier"], slots, sender=chain.accounts[0])
    return Deployment(chain, market, verifier, slots)


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

