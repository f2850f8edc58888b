"""`fedmarket bench adversary`: the named adversaries of issue 11 against the real contracts, and what they won.

Everything runs on ONE fresh anvil (the devnet's chain node, as `fedmarket bench gas`) with ONE deployed
marketplace and ONE round verifier (every project has the digits example's circuit: 4 slots, a 650-value view),
with real training (digits-softmax on small Dirichlet partitions, as in the demo) and real Groth16 round proofs.
Each adversary runs in its own project, driven by the real nodes (AggregatorNode, TrainerNode) or small subclasses
of them that misbehave; nothing of the chain, the storage or the proofs is faked. The trainers neither check the
committed v before submitting nor keep an update against it (TrainerNode's default does both, and would decline every
round of the direction adversaries: tests/test_direction_check.py), so that the bench measures what the contract alone
bounds when a trainer submits into an aimed round, as one with --no-check-direction --no-decline-against does. One
honest baseline project runs
first with the same trainer accounts and data (updates are seeded by trainer address and round, so the same
accounts reproduce the same updates), and every adversary's outcome is measured against it.

The amounts are the digits example's (examples/digits.toml: 4 trainers staking 1 ether, slash 50 %, bond 2
ether, its windows and rule), but a project runs 2 rounds instead of 5 to bound the run time, with the
example's per-round budget (8 ether / 5 = 1.6 ether, so 3.2 ether): FedMarket.start refuses a bond below one
round's budget (BondBelowRoundBudget), which 8 ether over 2 rounds (4 ether a round) against a 2-ether bond
would be.

Every project has the example's 4 slots. Trainers 1-4 are the baseline's; an adversary that needs an account among
the trainers takes slot 4: trainer 4's own account where the baseline's trainer 4 is its honest counterpart (the
aggregator's own account, the withholder), an extra account with nothing in the baseline for the copier. Besides
issue 11's list, `own_account_direction` and `aimed_exclusion` combine two of its attacks: the aggregator's own account
and a chosen v (normalised, as the circuit requires): v along the own account's update, or -v with the own account
flipping its sign so that it alone is along v. The rules bound what they can take rather than zeroing it: their check
is `aimed_share_capped` (the adversary's rewards are at most, per round, the round's budget over its accepted and
excluded slots when few are accepted, PROTOCOL §7, and else over ceil(n / 2), n the accepted trainers, the median
cap of §3) in place of `honest_reward_kept`, and `fedmarket audit` names such a v once the owner
publishes the validation set.

Per project: `honest_stake_lost_wei` (must be 0); `honest_reward_lost_wei` (the honest trainers' rewards in the
baseline over the rounds this run reached, settled or stalled in, minus their rewards here, bond compensation
included; must be 0); `owner_gain_wei` (the owner's refund minus the budget of the rounds never settled, the proven
slashes and the floor dust of the rounds' splits and of the bond's equal split; must be <= 0);
`adversary_gain_wei` (the net wei of the accounts the adversary controls minus their net in the baseline over the
same rounds; must be <= 0 for the trainer-side adversaries); `funds_conserved` (every wei in came out, and the
contract holds nothing). `max_single_honest_reward_lost_wei` shows, for information, the most one honest trainer
lost against its baseline rewards: a different v moves money between honest trainers without changing their total.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from eth_account.signers.local import LocalAccount

from aggregator.node import AggregatorNode, Awaiting, Disputing, Finalized, Opened, RoundResult, Step
from aggregator.rules.direction import quantize_direction
from market.chain.client import Chain
from market.chain.marketplace import MarketEvent, Marketplace, State
from market.dev.demo import accounts
from market.errors import BlobReason, ChainError, ConfigError, ProofError
from market.ml.tasks import dirichlet_partition
from market.parties.context import ProjectContext, load_context
from market.parties.owner import create_project, deploy_round_verifier
from market.parties.project_file import ProjectFile, load_project_file
from market.parties.trainer_node import Cured, Submitted, TrainerNode
from market.parties.validate import Verdict
from market.paths import ROOT
from market.protocol.constants import ETHER
from market.protocol.money import pays_equally
from market.storage import LocalStorage, Storage, cid_from_bytes
from market.toolchain.anvil import fresh_anvil
from zk.build import CircuitParams, dev_setup

#: The project every run uses: the digits example, over fewer rounds (see the module docstring).
EXAMPLE = ROOT / "examples" / "digits.toml"
#: Rounds per project (the example has 5; see the module docstring).
ROUNDS = 2
#: The digits example's budget per round: 8 ether over its 5 rounds.
ROUND_BUDGET = 8 * ETHER // 5
#: Dirichlet concentration and seed of the trainers' data partitions (as in the demo).
ALPHA, SEED = 0.5, 0
#: Most driver steps one project may take before it counts as stuck.
MAX_STEPS = 60
#: The money events, by the party argument and the amount argument (None: the project's owner).
MONEY = {"ProjectCreated": ("owner", "budget"), "Funded": (None, "amount"), "AggregatorBonded": ("aggregator", "amount"),
         "TrainerJoined": ("trainer", "stake"), "Claimed": ("trainer", "amount"), "StakeWithdrawn": ("trainer", "amount"),
         "RefundWithdrawn": ("owner", "amount"), "BondWithdrawn": ("aggregator", "amount"),
         "BondCompensation": ("trainer", "amount"), "TrainerSlashed": ("trainer", "amount")}
#: The events that move wei into the contract, and out of it (credits and slashes move none).
INTO = ("ProjectCreated", "Funded", "AggregatorBonded", "TrainerJoined")
OUT_OF = ("Claimed", "StakeWithdrawn", "RefundWithdrawn", "BondWithdrawn")

Role = Literal["owner", "aggregator", "t4", "extra"]
Phase = Literal["open", "post", "repost"]


@dataclass(frozen=True)
class Adversary:
    """One adversary: the accounts it controls and how the real nodes misbehave for it.

    `reject` maps a round to the slots the aggregator claims invalid (flag 2) there; `miss` is the phase and
    round in which it misses its deadline; `withhold` the round in which trainer 4 reveals without uploading
    its blob; `copier` puts an extra account in slot 4 that copies slot 1's sealed update.
    """

    name: str
    what: str
    controls: tuple[Role, ...]
    direction: Literal["honest", "zero", "negated", "own_update"] = "honest"
    reject: dict[int, frozenset[int]] = field(default_factory=dict)
    miss: tuple[Phase, int] | None = None
    withhold: int | None = None
    copier: bool = False
    own_attack: str | None = None  # trainer 4's attack (market.ml.attacks) when it is the aggregator's account
    aimed: bool = False  # v aimed at an own account: bounded by §7 and the median cap, not zero (module docstring)

    @property
    def trainer_side(self) -> bool:
        """Whether the adversary is a trainer alone (its gain must then be <= 0)."""
        return set(self.controls) <= {"t4", "extra"}


def catalogue(rounds: int = ROUNDS) -> dict[str, Adversary]:
    """The named adversaries of issue 11, for a project of `rounds` rounds (misses in the last round where it matters)."""
    every, honest = frozenset(range(4)), frozenset(range(3))
    last = rounds
    adversaries = [
        Adversary("owner_aggregator_collusion", "the aggregator rejects every trainer in round 1; they cure; it misses "
                  "the re-post", ("owner", "aggregator"), reject={1: every}, miss=("repost", 1)),
        Adversary("aggregator_own_account", "trainer 4 is the aggregator's account; it rejects the 3 others in every "
                  "round; they cure; it re-posts", ("aggregator", "t4"),
                  reject={r: honest for r in range(1, rounds + 1)}),
        Adversary("zero_direction", "the aggregator commits v = 0 (every score 0): the circuit refuses it (§4), so it "
                  "cannot post and its bond pays the submitters", ("aggregator",), direction="zero"),
        Adversary("negated_direction", "the aggregator commits -v (scores negated)", ("aggregator",), direction="negated"),
        Adversary("own_account_direction", "trainer 4 is the aggregator's account; the aggregator commits v = that "
                  "account's own update (normalised), which it knows when it opens the round", ("aggregator", "t4"),
                  direction="own_update", aimed=True),
        Adversary("aimed_exclusion", "trainer 4 is the aggregator's account and flips its update's sign; the "
                  "aggregator commits -v, so every honest update is against v (excluded) and only its own along it",
                  ("aggregator", "t4"), direction="negated", own_attack="sign_flip", aimed=True),
        Adversary("false_flag_cured", "the aggregator rejects trainer 1 in round 1; it cures; the aggregator re-posts",
                  ("aggregator",), reject={1: frozenset({0})}),
        Adversary("withhold_then_cure", "trainer 4 reveals in round 1 without uploading its blob, then cures",
                  ("t4",), withhold=1),
        Adversary("mempool_copier", "an extra account in slot 4 waits for trainer 1's reveal to seal its exact cid "
                  "and commitment; reveals open only once every commit is in, its own included, so its commit window "
                  "closes first and it is absent (before sealed rounds: rejected, it cured and was slashed as the "
                  "later copy)", ("extra",), copier=True),
        Adversary("missed_open", f"the aggregator never opens round {last}", ("aggregator",), miss=("open", last)),
        Adversary("missed_post", "the aggregator never posts round 1", ("aggregator",), miss=("post", 1)),
        Adversary("missed_repost", f"the aggregator rejects trainer 1 in round {last}; it cures; the aggregator "
                  "misses the re-post", ("aggregator",), reject={last: frozenset({0})}, miss=("repost", last)),
    ]
    return {a.name: a for a in adversaries}


HONEST = Adversary("honest_baseline", "every party honest", ())


@dataclass(frozen=True)
class Stalled:
    """The adversarial aggregator lets the `phase` deadline of round `round` pass."""

    round: int
    phase: Phase

    def __str__(self) -> str:
        return f"round {self.round}: the aggregator misses its {self.phase} deadline"


class AdversaryAggregator(AggregatorNode):
    """The real aggregator node, misbehaving as `adversary` says: its v, its flag-2 claims, the deadlines it misses.

    Everything else (witness, proof, post, dispute handling) is the honest node's: a cured slot is always
    validated from its published view, since the contract refuses a re-post that rejects it again.
    """

    def __init__(self, ctx: ProjectContext, signer: LocalAccount, circuit_dir: Path, adversary: Adversary,
                 own: TrainerNode | None = None) -> None:
        """`own` is the trainer node of the aggregator's own account (for the "own_update" direction)."""
        super().__init__(ctx, signer, circuit_dir)
        self.adversary = adversary
        self.own = own

    def direction(self, g_prev: torch.Tensor) -> torch.Tensor:
        """The honest direction, zeroed or negated (the quantized range is symmetric, so -v stays in it), or the
        quantized proof view of the own account's update at g_prev (deterministic, so the same at open and post)."""
        if self.adversary.direction == "own_update":
            c, p = self.ctx, self.market.project(self.ctx.pid)
            update = self.own.update(p.round + int(not p.round_open), g_prev) if self.own else None
            if update is None:
                raise ConfigError("the own_update direction needs the aggregator's own training account")
            view = update.reshape(-1)[c.params.view_offset : c.params.view_offset + c.params.view_len]
            return quantize_direction(view, c.manifest.quant)
        v = super().direction(g_prev)
        return {"honest": v, "zero": torch.zeros_like(v), "negated": -v}[self.adversary.direction]

    def _verdicts(self, round_: int, cured: int = 0) -> tuple[list[str], dict[int, Verdict]]:
        """The honest verdicts, with the slots the adversary rejects in this round (and not cured) claimed invalid."""
        trainers, verdicts = super()._verdicts(round_, cured)
        for i in self.adversary.reject.get(round_, frozenset()):
            if i in verdicts and not cured >> i & 1:
                honest = verdicts[i]
                verdicts[i] = Verdict(honest.trainer, honest.cid, BlobReason.UNAVAILABLE, "claimed by the adversary")
        return trainers, verdicts

    def act(self) -> Step | Stalled:
        """The honest `step`, except in the phase and round where the adversary misses its deadline."""
        if self.adversary.miss is not None:
            phase, round_ = self.adversary.miss
            p = self.market.project(self.ctx.pid)
            if p.state == State.TRAINING:
                if phase == "open" and not p.round_open and p.round + 1 == round_:
                    return Stalled(round_, phase)
                if phase == "post" and p.round_open and not p.disputing and p.round == round_:
                    return Stalled(round_, phase)
                if (phase == "repost" and p.disputing and p.round == round_ and self.market.chain.now() > p.post_deadline
                        and self.market.dispute(self.ctx.pid, round_).cured):
                    return Stalled(round_, phase)
        try:
            return super().step()
        except ProofError:
            if self.adversary.direction != "zero":
                raise
            p = self.market.project(self.ctx.pid)  # v = 0 has no proof (§4): the post can never come
            return Stalled(p.round, "post")


class MempoolCopier(TrainerNode):
    """A trainer that trains nothing: once `victim` has revealed (its UpdateSubmitted event), it would seal and reveal
    the victim's exact cid and commitment under its own key (and cure, if rejected, with the victim's view). The
    reveals of a round open only once its commits close (PROTOCOL.md §3), so it never has one to seal in time."""

    def __init__(self, ctx: ProjectContext, signer: LocalAccount, victim: str) -> None:
        super().__init__(ctx, signer, ctx.task.train, settle=False)
        self.victim = victim

    def victim_submission(self, round_: int) -> MarketEvent | None:
        """The victim's reveal in `round_`, if it came."""
        c = self.ctx
        return next((e for e in c.market.events("UpdateSubmitted", c.pid, from_block=c.created.block_number)
                     if int(e.args["round"]) == round_ and e.args["trainer"] == self.victim), None)

    def sealed_update(self, round_: int) -> tuple[bytes, str, int] | None:
        """The victim's blob, cid and commitment (None until it revealed)."""
        e = self.victim_submission(round_)
        if e is None:
            return None
        cid = cid_from_bytes(e.args["cid"])
        return self.ctx.storage.get(cid), cid, int(e.args["commitment"])


@dataclass
class Ledger:
    """What the driver read while a project ran: cumulative rewards after each settled round, and the unspent budget
    when the project was cancelled."""

    rewards: list[dict[str, int]] = field(default_factory=list)
    unsettled_budget: int = 0
    timed_out: bool = False
    steps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Setup:
    """What every project shares: chain, storage, marketplace, verifier, circuit and accounts."""

    chain: Chain
    storage: Storage
    market: Marketplace
    pf: ProjectFile
    verifier: str
    circuit_dir: Path
    owner: LocalAccount
    aggregator: LocalAccount
    trainers: list[LocalAccount]  # T1..T4, the baseline's trainers
    extra: LocalAccount  # the copier's account


def project_file(rounds: int) -> ProjectFile:
    """The digits example over `rounds` rounds with its per-round budget (see the module docstring)."""
    return dataclasses.replace(load_project_file(EXAMPLE), rounds=rounds, budget=ROUND_BUDGET * rounds)


def setup(chain: Chain, storage: Storage, rounds: int) -> Setup:
    """Deploy the marketplace and the round verifier once, build (cached) the circuit and its keys."""
    owner, aggregator, *trainers = accounts(chain, 5)
    market = Marketplace.deploy(chain, owner)
    pf = project_file(rounds)
    verifier = deploy_round_verifier(market, pf, owner)
    params = CircuitParams.for_rule(pf.max_trainers, pf.manifest.view[1], pf.manifest.quant.bits, pf.manifest.rule)
    return Setup(chain, storage, market, pf, verifier, dev_setup(params), owner, aggregator, trainers[:4], trainers[4])


def _settled(state: State, round_: int, round_open: bool) -> int:
    """Rounds settled so far, from the project's progress."""
    return round_ if state == State.FINISHED else round_ - int(round_open)


def drive(s: Setup, pid: int, aggregator: AdversaryAggregator, trainers: list[TrainerNode], poker: LocalAccount) -> Ledger:
    """Step the nodes until the project ends; when nobody has anything to do, move chain time to the next deadline
    (and call timeout, as `poker`, once a stalled aggregator's deadline has passed). Rewards are read after every
    settled round, before anyone claims."""
    ledger = Ledger()
    addresses = [t.signer.address for t in trainers]
    for _ in range(MAX_STEPS):
        p = s.market.project(pid)
        if p.state in (State.FINISHED, State.CANCELLED):
            return ledger
        done = aggregator.act()
        moved = [t.step() for t in trainers]
        ledger.steps += [str(done)] + [f"{t.signer.address[:8]}: {m}" for t, m in zip(trainers, moved)
                                       if isinstance(m, (Submitted, Cured))]
        p = s.market.project(pid)
        if _settled(p.state, p.round, p.round_open) > len(ledger.rewards):
            ledger.rewards.append({a: s.market.participant(pid, a).rewards for a in addresses})
        if isinstance(done, (Opened, RoundResult, Finalized)) or any(isinstance(m, (Submitted, Cured)) for m in moved):
            continue
        if p.state != State.TRAINING:
            continue
        if isinstance(done, Stalled):
            deadline = (p.post_deadline if p.round_open else p.deadline) + (p.params.post_window if p.disputing else 0)
            s.chain.time_travel(deadline - s.chain.now() + 1)
            ledger.unsettled_budget = s.market.project(pid).budget_left
            s.market.timeout(pid, poker)
            ledger.timed_out = True
            ledger.steps.append(f"timeout after {done}")
        elif isinstance(done, (Awaiting, Disputing)):
            now = s.chain.now()
            until = p.post_deadline if p.disputing else p.deadline if now <= p.deadline else p.reveal_deadline
            s.chain.time_travel(until - now + 1)
        else:
            raise ChainError(f"project {pid}: nothing to do and no deadline to wait for ({done})")
    raise ChainError(f"project {pid}: still running after {MAX_STEPS} steps")


def _flows(market: Marketplace, pid: int, from_block: int) -> dict[str, dict[str, int]]:
    """Per money event name (MONEY), the wei per party."""
    owner = market.project(pid).owner
    out: dict[str, dict[str, int]] = {}
    for name, (who, key) in MONEY.items():
        per = out.setdefault(name, {})
        for e in market.events(name, pid, from_block=from_block):
            party = e.args[who] if who else owner
            per[party] = per.get(party, 0) + int(e.args[key])
    return out


@dataclass
class Outcome:
    """One finished project: its money flows per event and party, the ledger, and its posts."""

    pid: int
    flows: dict[str, dict[str, int]]
    ledger: Ledger
    state: State
    posts: list[dict[str, Any]]
    cures: int
    conserved: bool
    trainers: list[str]
    wall_s: float

    def net(self, party: str) -> int:
        """Wei `party` took out of the project minus what it put in."""
        return sum(self.flows[n].get(party, 0) for n in OUT_OF) - sum(self.flows[n].get(party, 0) for n in INTO)

    def total(self, name: str) -> int:
        """The wei of all events `name`."""
        return sum(self.flows[name].values())

    @property
    def reached(self) -> int:
        """Rounds the project reached: the settled ones, plus the round it stalled in."""
        return len(self.ledger.rewards) + int(self.state == State.CANCELLED)


def run_project(s: Setup, adversary: Adversary) -> Outcome:
    """Create, fund and run one project with `adversary`'s nodes, settle every party, and read what moved."""
    t0 = time.perf_counter()
    chain, market = s.chain, s.market
    created = create_project(market, s.storage, s.pf, s.owner, s.aggregator.address, verifier=s.verifier)
    ctx = load_context(market, s.storage, created.pid)
    parts = dirichlet_partition(ctx.task.train.y.numpy(), len(s.trainers), ALPHA, SEED)
    nodes: list[TrainerNode] = [
        TrainerNode(ctx, acct, ctx.task.train.subset(parts[i]), attack=adversary.own_attack if i == 3 else None,
                    settle=False, withhold=frozenset({adversary.withhold}) if adversary.withhold and i == 3 else frozenset(),
                    check_direction=False, decline_against=False)
        for i, acct in enumerate(s.trainers[: 3 if adversary.copier else 4])
    ]
    if adversary.copier:
        nodes.append(MempoolCopier(ctx, s.extra, victim=s.trainers[0].address))
    own = nodes[3] if adversary.direction == "own_update" else None
    aggregator = AdversaryAggregator(ctx, s.aggregator, s.circuit_dir, adversary, own=own)
    market.bond(created.pid, s.aggregator)
    for node in nodes:
        node.step()  # joins, in slot order
    market.start(created.pid, s.owner)
    ledger = drive(s, created.pid, aggregator, nodes, poker=s.trainers[0])
    for node in nodes:
        node.settle()
    p = market.project(created.pid)
    if p.owner_refund:
        market.withdraw_refund(created.pid, s.owner)
    if p.bond_held:
        market.withdraw_bond(created.pid, s.aggregator)
    block = ctx.created.block_number
    flows = _flows(market, created.pid, block)
    into, out_of = (sum(sum(flows[n].values()) for n in names) for names in (INTO, OUT_OF))
    posts = [{"round": int(e.args["round"]), "flags": [int(f) for f in e.args["flags"]]}
             for e in market.events("RoundPosted", created.pid, from_block=block)]
    return Outcome(created.pid, flows, ledger, market.project(created.pid).state, posts,
                   len(market.events("UpdateCured", created.pid, from_block=block)),
                   into == out_of and chain.balance(market.address) == 0, [n.signer.address for n in nodes],
                   time.perf_counter() - t0)


def measure(s: Setup, adversary: Adversary, out: Outcome, base: Outcome) -> dict[str, Any]:
    """The invariants of one adversary's project against the honest baseline (see the module docstring)."""
    roles = {"owner": s.owner.address, "aggregator": s.aggregator.address, "t4": s.trainers[3].address,
             "extra": s.extra.address}
    mine = {roles[r] for r in adversary.controls}
    honest = [t for t in out.trainers if t not in mine]
    reached = min(out.reached, len(base.ledger.rewards))
    base_rewards = base.ledger.rewards[reached - 1] if reached else {}

    def rewards(o: Outcome, t: str) -> int:
        """Everything credited to trainer `t` and claimed: round rewards and bond compensation."""
        return o.flows["Claimed"].get(t, 0)

    def base_net(party: str) -> int:
        """The party's net in the baseline over the rounds reached: its rewards; the owner paid them all."""
        if party == s.owner.address:
            return -sum(base_rewards.values())
        return base_rewards.get(party, 0)

    stake_lost = sum(out.flows["TrainerJoined"].get(t, 0) - out.flows["StakeWithdrawn"].get(t, 0) for t in honest)
    reward_lost = max(0, sum(base_rewards.get(t, 0) for t in honest) - sum(rewards(out, t) for t in honest))
    single_lost = max((max(0, base_rewards.get(t, 0) - rewards(out, t)) for t in honest), default=0)
    compensation = out.total("BondCompensation")
    round_rewards = out.total("Claimed") - compensation
    slashed = out.total("TrainerSlashed")
    budget = out.total("ProjectCreated") + out.total("Funded")
    dust = budget - out.ledger.unsettled_budget - round_rewards
    bond_dust = s.pf.aggregator_bond - compensation if compensation else 0
    refund = out.total("RefundWithdrawn")
    owner_gain = refund - out.ledger.unsettled_budget - slashed - dust - bond_dust
    gain = sum(out.net(a) for a in mine) - sum(base_net(a) for a in mine)
    mine_rewards = sum(rewards(out, t) for t in mine)
    checks = {"honest_stake_kept": stake_lost == 0,
              "owner_gains_nothing": owner_gain <= 0, "funds_conserved": out.conserved,
              "trainer_adversary_gains_nothing": not adversary.trainer_side or gain <= 0}
    if adversary.aimed:
        checks["aimed_share_capped"] = mine_rewards <= _capped_share(s, out)
    else:
        checks["honest_reward_kept"] = reward_lost == 0
    return {
        "what": adversary.what, "controls": list(adversary.controls), "pid": out.pid, "state": out.state.name,
        "honest_stake_lost_wei": stake_lost, "honest_reward_lost_wei": reward_lost, "owner_gain_wei": owner_gain,
        "adversary_gain_wei": gain, "funds_conserved": out.conserved, "max_single_honest_reward_lost_wei": single_lost,
        "rounds_settled": len(out.ledger.rewards), "rounds_reached": out.reached, "timed_out": out.ledger.timed_out,
        "posts": out.posts, "cures": out.cures, "slashed_wei": slashed, "bond_compensation_wei": compensation,
        "owner_refund_wei": refund, "unsettled_budget_wei": out.ledger.unsettled_budget, "dust_wei": dust + bond_dust,
        "honest_rewards_wei": sum(rewards(out, t) for t in honest),
        "baseline_honest_rewards_wei": sum(base_rewards.get(t, 0) for t in honest),
        "adversary_net_wei": sum(out.net(a) for a in mine), "baseline_adversary_net_wei": sum(base_net(a) for a in mine),
        "checks": checks, "ok": all(checks.values()), "steps": out.ledger.steps, "wall_seconds": out.wall_s,
        "adversary_rewards_wei": mine_rewards,
    }


def _capped_share(s: Setup, out: Outcome) -> int:
    """The most one trainer may take whatever v (PROTOCOL §3, §7): per settled round, its budget over the accepted
    and excluded slots when few are accepted (equal split), else over ceil(n / 2) for its n accepted trainers (the
    median cap); the last post of each round settled it."""
    settling = {p["round"]: p["flags"] for p in out.posts}
    rounds, budget = s.pf.rounds, s.pf.budget
    cap = 0
    for r in range(1, len(out.ledger.rewards) + 1):
        round_budget = budget // rounds if r < rounds else budget - (rounds - 1) * (budget // rounds)
        flags = settling[r]
        accepted = flags.count(0)
        if pays_equally(flags):
            cap += round_budget // (accepted + flags.count(3))
        else:
            cap += round_budget // max(1, (accepted + 1) // 2)
    return cap


def run(only: tuple[str, ...] = (), rounds: int = ROUNDS) -> dict[str, Any]:
    """Run the honest baseline and every adversary (or those named in `only`) and check the invariants."""
    t0 = time.perf_counter()
    named = catalogue(rounds)
    unknown = [n for n in only if n not in named]
    if unknown:
        raise ConfigError(f"unknown adversaries {unknown}: choose among {list(named)}")
    chosen = [named[n] for n in (only or tuple(named))]
    with fresh_anvil() as anvil, tempfile.TemporaryDirectory(prefix="fedmarket-adversary-") as tmp:
        s = setup(Chain.connect(anvil.url), LocalStorage(tmp), rounds)
        base = run_project(s, HONEST)
        baseline = measure(s, HONEST, base, base)
        results = {a.name: measure(s, a, run_project(s, a), base) for a in chosen}
    # An aimed v is bounded, not zero: its honest trainers' loss is reported, not counted in the maxima.
    counted = [r for name, r in results.items() if not named[name].aimed] or [baseline]
    return {
        "adversaries": len(results),
        "max_honest_stake_lost_wei": max(r["honest_stake_lost_wei"] for r in counted),
        "max_honest_reward_lost_wei": max(r["honest_reward_lost_wei"] for r in counted),
        "max_owner_gain_wei": max(r["owner_gain_wei"] for r in counted),
        "funds_conserved": baseline["funds_conserved"] and all(r["funds_conserved"] for r in results.values()),
        "ok": baseline["ok"] and all(r["ok"] and r["funds_conserved"] for r in results.values()),
        "rounds": rounds, "budget_wei": s.pf.budget, "stake_wei": s.pf.stake, "bond_wei": s.pf.aggregator_bond,
        "slash_bps": s.pf.slash_bps, "backend": "anvil", "baseline": baseline, "adversary": results,
        "wall_seconds": time.perf_counter() - t0,
    }
