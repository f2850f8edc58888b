"""Typed Python wrapper of the FedMarket contract: one method per entry point, typed readers and events.

Every money rule lives in contracts/FedMarket.sol (docs/PROTOCOL.md §5-§7); this module only
encodes calls, sends the right value for the project's asset and decodes what comes back. CIDs
are passed and returned as binary CIDv1 bytes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from enum import IntEnum
from functools import cache, cached_property
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from market.chain.client import Chain
from market.chain.poseidon_contract import deploy_poseidon
from market.errors import ChainError, ConfigError
from market.toolchain.solc import ContractArtifact, compile_contracts

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: Gas sent with each kind of transaction (explicit: estimate_gas repeats the verifier's pairings).
GAS_DEFAULT = 600_000
GAS_CREATE = 900_000
GAS_POST_BASE = 1_500_000
GAS_POST_PER_TRAINER = 40_000
GAS_CURE_BASE = 300_000
GAS_CURE_PER_BLOCK = 400_000
#: Widest block range one eth_getLogs request covers; wider ranges are paged.
LOG_PAGE = 2_000
#: The contract's bounds on a project's settings (FedMarket's public constants of the same names,
#: PROTOCOL.md §7): most rounds, shortest and longest window, and how far ahead the join deadline may lie.
MAX_ROUNDS = 1_000
MIN_WINDOW = 60
MAX_WINDOW = 30 * 86_400
MAX_JOIN_DELAY = 365 * 86_400


class State(IntEnum):
    """Project lifecycle state (FedMarket.State)."""

    NONE = 0
    CREATED = 1
    OPEN = 2
    TRAINING = 3
    FINISHED = 4
    CANCELLED = 5


class Status(IntEnum):
    """A trainer's standing in a project (FedMarket.Status)."""

    NONE = 0
    ACTIVE = 1
    EJECTED = 2


class CancelReason(IntEnum):
    """Why a project was cancelled (FedMarket.CancelReason)."""

    OWNER_CANCELLED = 0
    NOT_ENOUGH_TRAINERS = 1
    AGGREGATOR_TIMEOUT = 2


class Rule(IntEnum):
    """Outlier rule of a project (PROTOCOL.md §3)."""

    MULTI_KRUM = 0
    FLTRUST_COSINE = 1


#: The contract's enums by the ABI internalType of an error input, so that reverts name their values.
#: (`rule` is a plain uint8 on chain: no error carries a Rule.)
ENUMS: dict[str, type[IntEnum]] = {
    "enum FedMarket.State": State, "enum FedMarket.Status": Status, "enum FedMarket.CancelReason": CancelReason,
}

#: What the user can do about a revert, by the custom error's name (ContractRevert.hint).
HINTS = {
    "UnknownProject": "no project has this id on this marketplace; check the PID and --market",
    "WrongState": "check the project's state with `fedmarket owner status PID`",
    "FundingClosed": "a project can be funded only while it is Created or Open",
    "NotCancellable": "only a Created or Open project can be cancelled",
    "NotOwner": "sign with the owner's key (--keystore or --dev-account)",
    "NotAggregator": "sign with the project's aggregator key",
    "NotTrainer": "join first: `fedmarket trainer join PID`",
    "TrainerEjected": "this key was ejected; `fedmarket trainer withdraw PID` returns what is left of its stake",
    "AlreadyJoined": "this key already joined; `fedmarket trainer status PID` shows its slot",
    "AlreadySubmitted": "one submission per round; wait for the next round",
    "WindowClosed": "this round's commit (or reveal) window has closed; wait for the next round",
    "CommitsOpen": "reveals open once every trainer has committed or declined, or the commit window has closed: wait",
    "RoundNotOpen": "wait for the aggregator to open the round",
    "DeadlinePassed": "the deadline passed; anyone may now call the timeout path",
    "DeadlineNotPassed": "wait until the deadline has passed",
    "NotEnoughTrainers": "wait for more trainers to join, or cancel after the join deadline",
    "WrongAmount": "send exactly the stake or bond the project asks for",
    "InvalidProof": "the round proof did not verify: the aggregator's keys or inputs do not match the verifier",
    "NothingToWithdraw": "there is nothing credited to this key in this project",
    "StakeLocked": "stakes are withdrawable once the project has finished or been cancelled",
    "BondLocked": "the bond is withdrawable once the project has finished or been cancelled",
    "ZeroStake": "a project needs a nonzero stake, or anyone could fill every slot for free",
    "ZeroBond": "a project needs a nonzero aggregator bond: it pays the trainers if the aggregator stalls",
    "SlashingWithoutThreshold": "plain Multi-Krum (tau_pct = 0) flags f honest trainers every round: "
                                "set tau_pct > 0 or slash_bps = 0",
    "NoHonestMajority": "Multi-Krum needs max_trainers > 2 f and m <= max_trainers - f (m = 0 selects n - f)",
    "OutOfBounds": "the setting named in the error must lie between the bounds it gives (PROTOCOL.md §7)",
    "VerifierSettingsMismatch": "the round verifier was built for other circuit settings than the project's: deploy "
                                "the one built for its project file (`fedmarket owner create` does)",
    "TooManySlots": "a round verifier may have at most 126 slots, where contribution scores stay unique (PROTOCOL.md §3)",
    "BondBelowRoundBudget": "the aggregator bond must cover one round's budget (budget / rounds) so that a "
                            "missed post makes the round's submitters whole; cancel and recreate with a larger bond",
    "NoDispute": "this round's post rejected nobody (flag 2), or it is not posted yet: there is nothing to cure",
    "NotRejected": "only a trainer whose update was rejected (flag 2) and not yet cured may cure",
    "CureMismatch": "the published proof view does not hash to this trainer's on-chain commitment",
    "DisputeOpen": "the dispute window is still open: wait until it ends",
    "CureOutstanding": "a trainer cured: the aggregator must re-post the round (or miss its deadline and pay its bond)",
    "NothingCured": "nobody cured: the post is final, settle it with finalizeRound",
    "ClaimMismatch": "pass exactly the flags and scores of the round's RoundPosted event",
    "NewRejection": "a re-post may reject only slots rejected before and not cured",
    "InvalidFlag": "a flag is 0 (accepted or absent), 1 (slashed), 2 (invalid blob) or 3 (excluded), PROTOCOL.md §5",
    "NotReplayJudge": "replays are taken out through the marketplace's ReplayChallenge (REPLAYS): `challenge_replay`",
}

#: Hints for the ReplayChallenge errors (PROTOCOL.md §3).
REPLAY_HINTS = {
    "ChallengeClosed": "a replay is challenged in the open round, before the aggregator posts it",
    "SourceRoundOutOfRange": "the source must be an update of one of the REPLAY_LOOKBACK (4) rounds before the challenged one",
    "SelfReplay": "name another trainer's update as the source: a trainer's update near its own last one is no replay",
    "NoRevealedUpdate": "both updates must be revealed: the challenged one in the open round, the source in its round "
                        "(and not taken out itself)",
    "ViewMismatch": "publish the packed proof views that the two on-chain commitments were made of",
    "NotAReplay": "the updates lie neither within REPLAY_PCT (25 %) of the smaller squared norm nor along one line "
                  "within LINE_PCT (a squared cosine of 90 %)",
}

#: Hints for the PoseidonCommit errors a cure's malformed view reverts with (they bubble up through FedMarket.cure).
POSEIDON_HINTS = {
    "ElementCount": "the cure must publish ceil(view_len / (252 // quant_bits)) packed elements",
    "LaneOutOfRange": "a packed element holds a value outside the quantization range (or nonzero padding)",
}


@dataclass(frozen=True)
class ProjectParams:
    """A project's creation parameters, field for field the Solidity struct (same order)."""

    token: str
    rounds: int
    min_trainers: int
    max_trainers: int
    krum_f: int
    krum_m: int
    rule: int
    quant_bits: int
    aggregator: str
    open_window: int
    submit_window: int
    post_window: int
    verifier: str
    join_deadline: int
    tau_pct: int
    slash_bps: int
    stake: int
    aggregator_bond: int
    quant_scale_log2: int
    view_offset: int
    view_len: int
    spec_hash: bytes
    dup_pct: int
    floor_pct: int
    model_commit: int

    @classmethod
    def make(
        cls,
        *,
        aggregator: str,
        verifier: str,
        join_deadline: int,
        model_commit: int,
        rounds: int = 3,
        min_trainers: int = 1,
        max_trainers: int = 8,
        stake: int = 10**16,
        aggregator_bond: int = 10**17,
        token: str = ZERO_ADDRESS,
        open_window: int = 3_600,
        submit_window: int = 3_600,
        post_window: int = 3_600,
        krum_f: int = 0,
        krum_m: int = 0,
        tau_pct: int = 175,
        slash_bps: int = 5_000,
        rule: int = Rule.MULTI_KRUM,
        quant_bits: int = 16,
        quant_scale_log2: int = 12,
        view_offset: int = 0,
        view_len: int = 1,
        spec_hash: bytes = bytes(32),
        dup_pct: int = 5,
        floor_pct: int = 10,
    ) -> ProjectParams:
        """Parameters with the defaults a small project would use (keyword arguments only)."""
        return cls(
            token=token, rounds=rounds, min_trainers=min_trainers, max_trainers=max_trainers, krum_f=krum_f,
            krum_m=krum_m, rule=int(rule), quant_bits=quant_bits, aggregator=aggregator,
            open_window=open_window, submit_window=submit_window, post_window=post_window, verifier=verifier,
            join_deadline=join_deadline, tau_pct=tau_pct, slash_bps=slash_bps, stake=stake,
            aggregator_bond=aggregator_bond, quant_scale_log2=quant_scale_log2, view_offset=view_offset,
            view_len=view_len, spec_hash=spec_hash, dup_pct=dup_pct, floor_pct=floor_pct, model_commit=model_commit,
        )

    @property
    def circuit_settings(self) -> list[int]:
        """What the verifier's `settings()` must answer for these parameters, the slots aside (its first entry:
        at least `max_trainers`): view length, bits, f, m, tau_pct, dup_pct, floor_pct, rule."""
        return [self.view_len, self.quant_bits, self.krum_f, self.krum_m, self.tau_pct, self.dup_pct,
                self.floor_pct, self.rule]

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple (addresses checksummed)."""
        values = list(astuple(self))
        for i, f in enumerate(fields(self)):
            if f.name in ("token", "aggregator", "verifier"):
                values[i] = Web3.to_checksum_address(values[i])
        return tuple(values)

    @classmethod
    def from_tuple(cls, values: Sequence[Any]) -> ProjectParams:
        """Decode the ABI tuple returned by the contract."""
        return cls(*values)

    @property
    def is_eth(self) -> bool:
        """True if the project's asset is ETH."""
        return int(self.token, 16) == 0


@dataclass(frozen=True)
class Project:
    """Everything the contract stores about a project."""

    pid: int
    params: ProjectParams
    owner: str
    state: State
    round: int
    round_open: bool
    n_trainers: int
    n_active: int
    verifier_slots: int
    deadline: int
    post_deadline: int
    disputing: bool
    reveal_window: int
    budget: int
    budget_left: int
    owner_refund: int
    bond_held: int
    ejected_mask: int

    @property
    def reveal_deadline(self) -> int:
        """The open round's last second for reveals (PROTOCOL.md §3): one submit window past its commits' end."""
        return self.deadline + self.reveal_window

    def commits_closed(self, now: int, pending: int) -> bool:
        """Whether the open round takes no more commits at chain time `now`, given its `pending` bitmap (PROTOCOL.md
        §3): no active slot is pending, or the commit window is over. Its reveals open then, and a post may follow."""
        return pending == 0 or now > self.deadline

    def reveals_open(self, now: int, pending: int) -> bool:
        """Whether the open round takes reveals at chain time `now` (PROTOCOL.md §3): its commits are closed and its
        reveal window is not."""
        return now <= self.reveal_deadline and self.commits_closed(now, pending)


@dataclass(frozen=True)
class RoundState:
    """A round's validation commitment, the slots still expected and each joined slot's commitment."""

    v_commit: int
    pending: int
    commitments: tuple[int, ...]


@dataclass(frozen=True)
class Dispute:
    """A round's dispute (PROTOCOL.md §5): the claim hash of its disputable post, and the slots rejected
    (flag 2, not cured) and cured, as bitmaps; all zero if its post rejected nobody."""

    claim: bytes
    rejected: int
    cured: int


@dataclass(frozen=True)
class Participant:
    """One trainer's record in one project; `seq` is the rank of its latest submission in its round."""

    stake: int
    rewards: int
    status: Status
    slot: int
    seq: int = 0


@dataclass(frozen=True)
class MarketEvent:
    """One decoded marketplace event; `args` maps argument names to values (CIDs as bytes)."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int


def seal(chain_id: int, market: str, pid: int, round_: int, trainer: str, cid: bytes, commitment: int,
         salt: bytes) -> bytes:
    """FedMarket.commitUpdate's seal: keccak256(abi.encode(chainid, market, pid, round, trainer,
    keccak256(cid), commitment, salt)).

    Binding chain, contract, project, round and trainer means a reveal seen in the mempool cannot
    be replayed by anyone else or anywhere else (PROTOCOL.md §3).
    """
    if len(salt) != 32:
        raise ConfigError(f"a seal's salt must be 32 bytes, got {len(salt)}")
    return bytes(Web3.keccak(abi_encode(
        ["uint256", "address", "uint256", "uint256", "address", "bytes32", "uint256", "bytes32"],
        [chain_id, Web3.to_checksum_address(market), pid, round_, Web3.to_checksum_address(trainer),
         bytes(Web3.keccak(cid)), commitment, salt],
    )))


@cache
def artifacts() -> dict[str, ContractArtifact]:
    """The compiled contracts/ (cached per process; the compiler caches on disk)."""
    return compile_contracts()


def _check_pid(pid: int) -> None:
    """ConfigError for a project id outside the contract's uint256 (web3 would refuse to encode it, in a traceback)."""
    if not 0 <= pid < 1 << 256:
        raise ConfigError(f"no project {pid}: project ids are 1, 2, 3, ...")


class Marketplace:
    """A deployed FedMarket contract driven through a `Chain`."""

    def __init__(self, chain: Chain, address: str, artifact: ContractArtifact | None = None) -> None:
        self.chain = chain
        self.artifact = artifact or artifacts()["FedMarket"]
        self.contract: Contract = chain.contract(address, self.artifact, enums=ENUMS, hints=HINTS)
        chain.register_abi(artifacts()["PoseidonCommit"].abi, hints=POSEIDON_HINTS)  # a malformed cure reverts there
        self.address: str = self.contract.address
        self._params: dict[int, ProjectParams] = {}

    @classmethod
    def deploy(
        cls, chain: Chain, sender: LocalAccount, artifact: ContractArtifact | None = None, poseidon: str | None = None
    ) -> Marketplace:
        """Deploy a fresh FedMarket (and the PoseidonCommit its cures use, unless `poseidon` names one) and wrap it."""
        artifact = artifact or artifacts()["FedMarket"]
        if poseidon is None:
            poseidon = deploy_poseidon(chain, sender)
        contract = chain.deploy(artifact, Web3.to_checksum_address(poseidon), sender=sender)
        return cls(chain, contract.address, artifact)

    @cached_property
    def poseidon(self) -> str:
        """The PoseidonCommit this marketplace checks cures with (PROTOCOL.md §5)."""
        return str(self.chain.call(self.contract.functions.POSEIDON()))

    # -- transactions -----------------------------------------------------------------------------
    def _send(self, fn: Any, sender: LocalAccount, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Send one transaction with explicit gas; reverts raise ContractRevert."""
        return self.chain.transact(fn, sender=sender, value=value, gas=gas or GAS_DEFAULT)

    def _value(self, pid: int, amount: int, value: int | None) -> int:
        """The ETH to attach: `value` if given, else `amount` for an ETH project and 0 for ERC-20."""
        if value is not None:
            return value
        return amount if self.params(pid).is_eth else 0

    def params(self, pid: int) -> ProjectParams:
        """The creation parameters of project `pid` (cached: they never change)."""
        if pid not in self._params:
            self._params[pid] = self.project(pid).params
        return self._params[pid]

    def create_project(
        self,
        params: ProjectParams,
        budget: int,
        sender: LocalAccount,
        *,
        task_cid: bytes = b"",
        model_cid: bytes = b"",
        value: int | None = None,
        gas: int | None = None,
    ) -> int:
        """Create a project escrowing `budget` (ERC-20: approve it first); returns its id."""
        value = (budget if params.is_eth else 0) if value is None else value
        fn = self.contract.functions.createProject(params.as_tuple(), budget, task_cid, model_cid)
        receipt = self.chain.transact(fn, sender=sender, value=value, gas=gas or GAS_CREATE)
        (event,) = self.receipt_events(receipt, "ProjectCreated")
        pid = int(event.args["pid"])
        self._params[pid] = event.args["params"]
        return pid

    def fund(self, pid: int, amount: int, sender: LocalAccount, *, value: int | None = None) -> TxReceipt:
        """Add `amount` to a Created or Open project's budget (owner)."""
        return self._send(self.contract.functions.fund(pid, amount), sender, self._value(pid, amount, value))

    def bond(self, pid: int, sender: LocalAccount, *, value: int | None = None) -> TxReceipt:
        """Deposit the aggregator's bond (aggregator)."""
        amount = self.params(pid).aggregator_bond
        return self._send(self.contract.functions.bond(pid), sender, self._value(pid, amount, value))

    def join(self, pid: int, sender: LocalAccount, *, value: int | None = None) -> TxReceipt:
        """Join with the project's stake (trainer)."""
        amount = self.params(pid).stake
        return self._send(self.contract.functions.join(pid), sender, self._value(pid, amount, value))

    def start(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Start training (owner, or anyone after the join deadline)."""
        return self._send(self.contract.functions.start(pid), sender)

    def cancel(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Cancel a Created or Open project (owner, or anyone when too few trainers joined in time)."""
        return self._send(self.contract.functions.cancel(pid), sender)

    def open_round(self, pid: int, v_commit: int, sender: LocalAccount) -> TxReceipt:
        """Open the next round with the validation-direction commitment (aggregator)."""
        return self._send(self.contract.functions.openRound(pid, v_commit), sender)

    def seal(self, pid: int, round_: int, trainer: str, cid: bytes, commitment: int, salt: bytes) -> bytes:
        """The seal `trainer` commits for this update in this contract (see `seal`)."""
        return seal(self.chain.w3.eth.chain_id, self.address, pid, round_, trainer, cid, commitment, salt)

    def commit_update(self, pid: int, round_: int, sealed: bytes, sender: LocalAccount) -> TxReceipt:
        """Seal this round's update (trainer, PROTOCOL.md §3): fixes its rank, hides cid and commitment."""
        return self._send(self.contract.functions.commitUpdate(pid, round_, sealed), sender)

    def decline_round(self, pid: int, round_: int, sender: LocalAccount) -> TxReceipt:
        """Decline this round instead of submitting (trainer, PROTOCOL.md §4): absent, and no longer pending."""
        return self._send(self.contract.functions.declineRound(pid, round_), sender)

    def declined_slots(self, pid: int, round_: int, from_block: int = 0) -> set[int]:
        """The slots that declined round `round_` (RoundDeclined events from `from_block` on, filtered by the
        indexed round, so that a poll reads only this round's logs)."""
        return {int(e.args["slot"]) for e in self.events("RoundDeclined", pid, from_block, round_=round_)}

    def round_opened_block(self, pid: int, round_: int, from_block: int = 0) -> int:
        """The block in which round `round_` of project `pid` was opened (its RoundOpened event from
        `from_block` on); ChainError if it was not."""
        found = self.events("RoundOpened", pid, from_block, round_=round_)
        if not found:
            raise ChainError(f"project {pid}: round {round_} was not opened after block {from_block}")
        return found[-1].block_number

    def reveal_update(
        self, pid: int, round_: int, cid: bytes, commitment: int, salt: bytes, sender: LocalAccount
    ) -> TxReceipt:
        """Reveal the update sealed by commit_update (trainer), once the round's commits are closed (`reveals_open`)."""
        return self._send(self.contract.functions.revealUpdate(pid, round_, cid, commitment, salt), sender)

    def reveals_open(self, pid: int, round_: int) -> bool:
        """Whether round `round_` takes reveals now (PROTOCOL.md §3): it is the open round, no active slot is still
        pending or its commit window is over, and its reveal window is not."""
        p = self.project(pid)
        if not p.round_open or p.round != round_:
            return False
        return p.reveals_open(self.chain.now(), self.round_state(pid, round_).pending)

    def submit_updates(
        self, pid: int, round_: int, updates: Sequence[tuple[LocalAccount, bytes, int]], salt: bytes | None = None,
        close_commits: bool = False,
    ) -> list[TxReceipt]:
        """Commit every `(sender, cid, commitment)`, then reveal every one (trainers); returns the reveals' receipts.

        For callers with nothing to hide (tests, benches). The reveals need the round's commits closed: `updates` and
        the declines before must cover every active slot, or the commit window must be over by the reveals;
        `close_commits` moves a test or devnet chain's time past the window when a slot is still pending. Each
        update is sealed with `salt`, or with a fresh random one when none is given.
        """
        salts = [secrets.token_bytes(32) if salt is None else salt for _ in updates]
        for (sender, cid, commitment), s in zip(updates, salts):
            self.commit_update(pid, round_, self.seal(pid, round_, sender.address, cid, commitment, s), sender)
        if close_commits and self.round_state(pid, round_).pending:
            self.chain.time_travel(self.project(pid).deadline - self.chain.now() + 1)
        return [self.reveal_update(pid, round_, cid, commitment, s, sender)
                for (sender, cid, commitment), s in zip(updates, salts)]

    def post_round(
        self,
        pid: int,
        round_: int,
        model_cid: bytes,
        v_cid: bytes,
        model_commit: int,
        flags: Sequence[int],
        scores: Sequence[int],
        proof: Sequence[int],
        sender: LocalAccount,
        *,
        gas: int | None = None,
    ) -> TxReceipt:
        """Post a round's new model (its cid and its view's commitment), flags, scores and proof (aggregator).

        Flags per slot (PROTOCOL.md §5): 0 accepted or absent, 1 slashed and ejected, 2 invalid blob (makes the
        post disputable), 3 excluded (unpaid, keeps its stake and slot).
        """
        fn = self.contract.functions.postRound(
            pid, round_, model_cid, v_cid, model_commit, list(flags), list(scores), [int(x) for x in proof]
        )
        gas = gas or GAS_POST_BASE + GAS_POST_PER_TRAINER * len(flags)
        return self.chain.transact(fn, sender=sender, gas=gas)

    def cure(self, pid: int, round_: int, elements: Sequence[int], sender: LocalAccount) -> TxReceipt:
        """Answer a flag-2 rejection in a disputable round by publishing the packed proof view (trainer, §5)."""
        fn = self.contract.functions.cure(pid, round_, [int(e) for e in elements])
        return self.chain.transact(fn, sender=sender, gas=GAS_CURE_BASE + GAS_CURE_PER_BLOCK * (len(elements) // 15 + 1))

    @cached_property
    def replays(self) -> Contract:
        """The ReplayChallenge this marketplace created (its REPLAYS)."""
        address = str(self.chain.call(self.contract.functions.REPLAYS()))
        return self.chain.contract(address, artifacts()["ReplayChallenge"], enums=ENUMS, hints=REPLAY_HINTS)

    def challenge_replay(self, pid: int, round_: int, slot: int, source: tuple[int, int], elements: Sequence[int],
                         source_elements: Sequence[int], sender: LocalAccount) -> TxReceipt:
        """Take the update in `slot` out of the open round as a replay of the update of `source` = (one of the 4 rounds
        before, another slot), publishing both packed proof views (anyone, before the post; PROTOCOL.md §3)."""
        fn = self.replays.functions.challengeReplay(pid, round_, slot, source[0], source[1], [int(e) for e in elements],
                                                    [int(e) for e in source_elements])
        blocks = len(elements) // 15 + 1
        return self.chain.transact(fn, sender=sender, gas=GAS_CURE_BASE + 2 * GAS_CURE_PER_BLOCK * blocks)

    def finalize_round(
        self, pid: int, round_: int, model_commit: int, flags: Sequence[int], scores: Sequence[int],
        sender: LocalAccount,
    ) -> TxReceipt:
        """Settle a disputable round whose window ended without a cure (anyone; the post's model commitment,
        flags and scores)."""
        fn = self.contract.functions.finalizeRound(pid, round_, model_commit, list(flags), list(scores))
        return self.chain.transact(fn, sender=sender, gas=GAS_POST_BASE + GAS_POST_PER_TRAINER * len(flags))

    def timeout(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Cancel a project whose aggregator missed a deadline (anyone); its bond pays the harmed trainers first."""
        return self._send(self.contract.functions.timeout(pid), sender)

    def claim(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Withdraw the caller's credited rewards."""
        return self._send(self.contract.functions.claim(pid), sender)

    def withdraw_stake(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Withdraw the caller's stake (project ended, or caller ejected)."""
        return self._send(self.contract.functions.withdrawStake(pid), sender)

    def withdraw_refund(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Withdraw the owner's refundable balance."""
        return self._send(self.contract.functions.withdrawRefund(pid), sender)

    def withdraw_bond(self, pid: int, sender: LocalAccount) -> TxReceipt:
        """Withdraw the aggregator's bond."""
        return self._send(self.contract.functions.withdrawBond(pid), sender)

    # -- readers ----------------------------------------------------------------------------------
    def project_count(self) -> int:
        """Number of projects created (ids 1..count)."""
        return int(self.chain.call(self.contract.functions.projectCount()))

    def project(self, pid: int) -> Project:
        """Everything stored about project `pid`; ConfigError for an id no project can have (not a uint256)."""
        _check_pid(pid)
        params_tuple, owner, progress, funds, ejected = self.chain.call(self.contract.functions.project(pid))
        params = self._params.setdefault(pid, ProjectParams.from_tuple(params_tuple))
        state, round_, round_open, n_trainers, n_active, slots, deadline, post_deadline, disputing, reveal_window = progress
        budget, budget_left, owner_refund, bond_held = funds
        return Project(
            pid=pid, params=params, owner=owner, state=State(state), round=round_,
            round_open=bool(round_open), n_trainers=n_trainers, n_active=n_active, verifier_slots=slots,
            deadline=deadline, post_deadline=post_deadline, disputing=bool(disputing), reveal_window=reveal_window,
            budget=budget, budget_left=budget_left,
            owner_refund=owner_refund, bond_held=bond_held, ejected_mask=ejected,
        )

    def round_state(self, pid: int, round_: int) -> RoundState:
        """Validation commitment, pending bitmap and the joined slots' commitments of a round."""
        v_commit, pending, commitments = self.chain.call(self.contract.functions.roundState(pid, round_))
        return RoundState(int(v_commit), int(pending), tuple(int(c) for c in commitments))

    def dispute(self, pid: int, round_: int) -> Dispute:
        """Round `round_`'s dispute record (all zero if its post rejected nobody)."""
        claim, rejected, cured = self.chain.call(self.contract.functions.dispute(pid, round_))
        return Dispute(bytes(claim), int(rejected), int(cured))

    def replayed_slots(self, pid: int, round_: int) -> set[int]:
        """The slots whose update of `round_` was taken out as a replay (UpdateReplayed, PROTOCOL.md §3)."""
        return {int(e.args["slot"]) for e in self.events("UpdateReplayed", pid, round_=round_)}

    def cured_elements(self, pid: int, round_: int, slot: int) -> list[int]:
        """The packed proof view a trainer published with its cure of `round_` (from the cure's calldata)."""
        for event in self.events("UpdateCured", pid):
            if event.args["round"] == round_ and event.args["slot"] == slot:
                tx = self.chain.w3.eth.get_transaction(event.tx_hash)  # type: ignore[arg-type]
                _, args = self.contract.decode_function_input(tx["input"])
                return [int(e) for e in args["elements"]]
        raise ChainError(f"no cure of slot {slot} in round {round_} of project {pid}")

    def participant(self, pid: int, trainer: str) -> Participant:
        """A trainer's record (status NONE if it never joined)."""
        stake, rewards, status, slot, seq = self.chain.call(
            self.contract.functions.participant(pid, Web3.to_checksum_address(trainer))
        )
        return Participant(int(stake), int(rewards), Status(status), int(slot), int(seq))

    def trainer_at(self, pid: int, slot: int) -> str:
        """The trainer in `slot` (the zero address if empty)."""
        return str(self.chain.call(self.contract.functions.trainerAt(pid, slot)))

    def trainers(self, pid: int) -> list[str]:
        """Every joined trainer in slot order."""
        return [self.trainer_at(pid, slot) for slot in range(self.project(pid).n_trainers)]

    def submission_order(self, pid: int, round_: int) -> list[int]:
        """Each joined slot's 0-based submission rank in `round_`, 0 where it did not submit (PROTOCOL.md §6).

        Only the latest round opened is kept on chain (earlier rounds revert OrderNotKept; their
        ranks are the `seq` of their UpdateSubmitted events).
        """
        return [int(s) for s in self.chain.call(self.contract.functions.submissionOrder(pid, round_))]

    def public_input(self, pid: int, round_: int, model_commit: int, flags: Sequence[int], scores: Sequence[int]) -> int:
        """The public input the contract requires for this new model commitment, flags and scores (PROTOCOL.md §6).

        The contract adds the submission ranks and the stored model commitments (modelPrev, modelIn) itself; only
        the latest round opened can be asked.
        """
        fn = self.contract.functions.roundPublicInput(pid, round_, model_commit, list(flags), list(scores))
        return int(self.chain.call(fn))

    def model_commitment(self, pid: int) -> int:
        """The commitment to the latest settled model's proof view (g(0)'s before round 1 settles)."""
        return int(self.chain.call(self.contract.functions.modelCommitment(pid)))

    def previous_model_commitment(self, pid: int) -> int:
        """The commitment to the model settled before the latest one, M(r-2), the start of the previous proven
        step (PROTOCOL.md §3, §6: the header's modelPrev); g(0)'s until round 2 settles."""
        return int(self.chain.call(self.contract.functions.previousModelCommitment(pid)))

    # -- events -----------------------------------------------------------------------------------
    def _decode(self, name: str, raw: Any) -> MarketEvent:
        """A web3 EventData as a MarketEvent (params as ProjectParams, enums as IntEnums)."""
        args = dict(raw["args"])
        if "params" in args:
            args["params"] = ProjectParams.from_tuple(list(dict(args["params"]).values()))
        if "reason" in args:
            args["reason"] = CancelReason(args["reason"])
        for key in ("flags", "scores"):
            if key in args:
                args[key] = [int(v) for v in args[key]]
        return MarketEvent(
            name=name,
            args=args,
            block_number=int(raw["blockNumber"]),
            tx_hash="0x" + bytes(raw["transactionHash"]).hex(),
            log_index=int(raw["logIndex"]),
        )

    def receipt_events(self, receipt: TxReceipt, name: str) -> list[MarketEvent]:
        """The `name` events a transaction emitted."""
        event = self.contract.events[name]()
        return [self._decode(name, raw) for raw in event.process_receipt(receipt, errors=DISCARD)]

    def events(
        self, name: str, pid: int | None = None, from_block: int = 0, to_block: int | None = None,
        round_: int | None = None,
    ) -> list[MarketEvent]:
        """`name` events (of project `pid`, and of round `round_`, if given) in [from_block, to_block], paged in
        narrow ranges. Both are indexed topics of the events that carry them, so the node filters them."""
        if name not in {e["name"] for e in self.artifact.abi if e.get("type") == "event"}:
            raise ChainError(f"FedMarket has no event {name!r}")
        last = self.chain.w3.eth.block_number if to_block is None else to_block
        if pid is not None:
            _check_pid(pid)
        filters: dict[str, int] = {} if pid is None else {"pid": pid}
        if round_ is not None:
            filters["round"] = round_
        found: list[MarketEvent] = []
        start = from_block
        while start <= last:
            end = min(last, start + LOG_PAGE - 1)
            logs = self.contract.events[name].get_logs(argument_filters=filters or None, from_block=start, to_block=end)
            found.extend(self._decode(name, raw) for raw in logs)
            start = end + 1
        return found
