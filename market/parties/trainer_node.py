"""The trainer node: joins, trains and submits every round, then claims and withdraws.

Like the aggregator it keeps no state: what is due comes from the chain (the round's pending
bitmap says whether this trainer has submitted), and training is seeded by (trainer, round), so
a restarted trainer recomputes the same update, the same blob and the same CID. Submitting is
commit, then reveal once the round's commits are closed (PROTOCOL.md §3: every active slot committed or
declined, or the commit window over); the seal's salt is derived from the signer's key, so the node (or one
restarted after its commit: pending bit cleared, commitment still 0) recomputes what it sealed and reveals it. A trainer
whose update the aggregator rejected (flag 2) cures it in the round's dispute window by publishing its proof
view on chain (PROTOCOL.md §5). A step returns what it did as a typed value (Joined, Submitted, Cured,
Settled ... or one of the idle kinds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from eth_account.signers.local import LocalAccount

from aggregator.rules.shapley import inner_products
from market.chain.marketplace import State, Status
from market.errors import ConfigError, ContractRevert, StorageError, TransientError, solidity_name
from market.ml import attacks
from market.ml.tasks.base import Split
from market.ml.tasks.owndata import check_fits
from market.ml.training import local_update
from market.parties.audit import recomputable_direction
from market.parties.context import ProjectContext
from market.protocol.blob import UpdateHeader, encode
from market.protocol.commitment import commit_directions, commit_view, pack
from market.protocol.quant import clip_rate, quantize, refuse_clipping
from market.storage import cid_of, cid_to_bytes

if TYPE_CHECKING:
    from market.ml.flower import FlowerTrainer

#: Attacks a single trainer can mount on its own (the evaluation also has group attacks).
SOLO_ATTACKS = attacks.SOLO_ATTACKS
#: Salt of an attacker's per-round seed (round_seed), apart from its training seed.
ATTACK_SALT = 2


def round_seed(trainer: str, round_: int, base: int) -> int:
    """A deterministic training seed per (trainer, round)."""
    digest = hashlib.sha256(f"{trainer.lower()}:{round_}:{base}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def split_flat(flat: torch.Tensor, ctx: ProjectContext) -> dict[str, torch.Tensor]:
    """A flat vector as {parameter name: tensor} in the model's layout."""
    out, start = {}, 0
    for slot in ctx.layout:
        size = int(torch.Size(slot.shape).numel())
        out[slot.name] = flat[start : start + size].reshape(slot.shape)
        start += size
    return out


@dataclass(frozen=True)
class Joined:
    """The trainer joined the project with its stake."""

    def __str__(self) -> str:
        return "joined"


@dataclass(frozen=True)
class Committed:
    """The trainer sealed its update for `round` on chain; it uploads and reveals it once the round's commits close."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: sealed, revealing once every trainer has committed or the commit window closes"


@dataclass(frozen=True)
class Submitted:
    """The trainer uploaded the update it sealed for `round` and revealed it; `clip_rate` is the fraction
    of its values that quantization clipped (an honest trainer refuses above MAX_CLIP_RATE, so nothing clips unseen)."""

    round: int
    cid: str
    clip_rate: float = field(default=0.0, compare=False)

    def __str__(self) -> str:
        return f"round {self.round}: submitted {self.cid} (clipped {100 * self.clip_rate:.2f}% of its values)"


@dataclass(frozen=True)
class Cured:
    """The aggregator rejected this trainer's update of `round` (flag 2); the trainer published its proof view on chain."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: rejected without proof, cured on chain"


@dataclass(frozen=True)
class TakenOut:
    """This trainer's update of `round` was taken out as a replay of another trainer's (PROTOCOL.md §3): absent from
    the round, unpaid, its stake untouched."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: taken out as a replay of another trainer's update (UpdateReplayed)"


@dataclass(frozen=True)
class NothingToCopy:
    """A copying attacker (`market.dev.adversary`'s) found no update of another trainer in `round` to seal."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: waiting for an update to copy"


@dataclass(frozen=True)
class Settled:
    """The trainer claimed `claimed` wei of rewards and withdrew `withdrawn` wei of stake (0: nothing to)."""

    claimed: int = 0
    withdrawn: int = 0

    def __str__(self) -> str:
        done = ([f"claimed {self.claimed}"] if self.claimed else []) + (
            [f"withdrew stake {self.withdrawn}"] if self.withdrawn else [])
        return "; ".join(done) or "settled"


@dataclass(frozen=True)
class Waiting:
    """Nothing is due for this trainer now: the project has not started, or this round is submitted or closed."""

    def __str__(self) -> str:
        return "waiting"


@dataclass(frozen=True)
class Ended:
    """The project is over for this trainer (it ended, or the trainer was ejected) and it does not settle."""

    state: State

    def __str__(self) -> str:
        return f"project is {self.state.name}"


@dataclass(frozen=True)
class Unavailable:
    """A step failed on a TransientError (chain or storage not answering); `run` retries it after a pause."""

    error: TransientError

    def __str__(self) -> str:
        return f"waiting ({type(self.error).__name__}: {self.error})"


@dataclass(frozen=True)
class Declined:
    """The trainer sent no update this round (it declined it on chain: `FedMarket.declineRound`), and says why: the
    round's committed v is not the one recomputed here (PROTOCOL §4), or its update is against v, so the direction
    test (§3) would exclude it unpaid and leave the blob in the owner's hands either way."""

    round: int
    reason: str

    def __str__(self) -> str:
        return f"round {self.round}: declined, {self.reason}; nothing submitted"


@dataclass(frozen=True)
class Refused:
    """The contract refused this step's transaction, a race the next step may resolve (see `TrainerNode.run`)."""

    error: ContractRevert

    def __str__(self) -> str:
        return f"refused, looking again: {self.error}"


#: What one step of the trainer can do.
Step = Joined | Committed | Submitted | Declined | Cured | TakenOut | NothingToCopy | Settled | Waiting | Ended


class TrainerNode:
    """One trainer of one project, with its private data and, for evaluation, an optional attack."""

    def __init__(self, ctx: ProjectContext, signer: LocalAccount, data: Split, attack: str | None = None,
                 auto_join: bool = True, settle: bool = True, withhold: frozenset[int] = frozenset(),
                 flower: FlowerTrainer | None = None, check_direction: bool = True,
                 decline_against: bool | None = None) -> None:
        """`flower`, when given, trains in place of market.ml.training (a Flower NumPyClient; `data` is then only
        checked against the schema). `check_direction`: before each submission, recompute the round's v on the
        published validation split and decline a round whose committed v is another (Trust model).
        `decline_against`: also keep an update that is against v (default: an honest node does, an attack node,
        which plays an adversary, does not; see `declines`). `withhold`
        names rounds in which the trainer reveals its update but never uploads the blob (a misbehaviour the demo and
        `bench adversary` use: the aggregator rejects it, the trainer cures). DataMismatch unless `data` fits the
        task's schema (features, classes), so a misfit trainer never stakes."""
        spec = attacks.get_attack(attack, solo=True) if attack is not None else None
        check_fits(data.x.numpy(), data.y.numpy(), ctx.task.features, ctx.task.num_classes, "the trainer's data")
        self.ctx = ctx
        self.signer = signer
        self.attack = attack
        self.attack_spec = spec
        self.auto_join = auto_join
        self.settle_at_end = settle
        self.withhold = withhold
        self.flower = flower
        self.check_direction = check_direction
        self.decline_against = attack is None if decline_against is None else decline_against
        #: Per round checked: v and h recomputed here (None: the task here is not the manifest's, so unchecked).
        self.directions: dict[int, tuple[torch.Tensor, torch.Tensor] | None] = {}
        self._update: tuple[int, torch.Tensor] | None = None  # the latest round's update, computed once
        self._sealed: tuple[int, tuple[bytes, str, int]] | None = None  # its blob, CID and commitment, made once
        #: The clip rate of this trainer's update per round, as last computed (reported in `Submitted`).
        self.clip_rates: dict[int, float] = {}
        self.data = spec.poison(data, ctx.task.num_classes) if spec is not None and spec.poison is not None else data

    def header(self, round_: int, trainer: str) -> UpdateHeader:
        """The blob header every update of `trainer` in `round_` carries."""
        c = self.ctx
        return UpdateHeader(
            chain_id=c.market.chain.chain_id, marketplace=c.market.address, project_id=c.pid, round=round_,
            trainer=trainer, model_spec_hash=c.spec_hex, quant=c.manifest.quant,
            view_offset=c.params.view_offset, view_length=c.params.view_len,
        )

    def update(self, round_: int, g_prev: torch.Tensor) -> torch.Tensor:
        """This round's float update, on g(round-1) = `g_prev`: honest local training (or the Flower client's fit),
        then the attack if any. Kept for the round once made."""
        if self._update is None or self._update[0] != round_:
            self._update = (round_, self._make_update(round_, g_prev))
        return self._update[1]

    def _make_update(self, round_: int, g_prev: torch.Tensor) -> torch.Tensor:
        """`update`, computed."""
        spec = self.attack_spec
        if spec is None:
            return self._train(round_, g_prev)
        honest = self._train(round_, g_prev) if spec.trains else None
        # n is the project's slots: a trainer cannot know how many others will submit.
        seed = round_seed(self.signer.address, round_, ATTACK_SALT)
        return spec(attacks.AttackContext(honest, self.ctx.params.max_trainers, seed))

    def _train(self, round_: int, g_prev: torch.Tensor) -> torch.Tensor:
        """Honest local training on g(round-1) = `g_prev` (or the Flower client's fit), seeded by trainer and round."""
        seed = round_seed(self.signer.address, round_, self.ctx.manifest.hyper.seed)
        if self.flower is not None:
            return self.flower.update(g_prev, self.ctx.manifest, self.ctx.pid, round_, seed)
        hyper = dataclasses.replace(self.ctx.manifest.hyper, seed=seed)
        return local_update(self.ctx.task.build_model, g_prev, self.data, hyper)

    def salt(self, round_: int) -> bytes:
        """The seal's secret salt for `round_`: derived from the signer's key and the round, so a
        node restarted between its commit and its reveal finds it again without keeping state."""
        c = self.ctx
        tag = f"fedmarket-seal:{c.market.chain.chain_id}:{c.market.address}:{c.pid}:{round_}".encode()
        return hashlib.sha256(bytes(self.signer.key) + tag).digest()

    def sealed_update(self, round_: int) -> tuple[bytes, str, int] | None:
        """Train on g(round-1): the encoded blob, its CID and its commitment (None, in a subclass such as
        `bench adversary`'s copier, when it has nothing to seal). Deterministic per trainer and round, so a reveal can
        recompute it; made once per round, so the reveal reuses what the commit sealed (a restarted node remakes it)."""
        if self._sealed is None or self._sealed[0] != round_:
            c = self.ctx
            update = self.update(round_, c.global_model(round_ - 1))
            self.clip_rates[round_] = self.check_clipping(round_, update)
            blob = encode(split_flat(update, c), self.header(round_, self.signer.address), c.layout)
            view = commit_view(quantize(update, c.manifest.quant), c.params.view_offset, c.params.view_len, c.manifest.quant)
            self._sealed = (round_, (blob, str(cid_of(blob)), view))
        return self._sealed[1]

    def check_clipping(self, round_: int, update: torch.Tensor) -> float:
        """The update's clip rate at the project's scale; an honest trainer raises UpdateClipped above MAX_CLIP_RATE
        rather than submit a silently clipped update (an attacker, evaluation only, submits whatever it crafted)."""
        if self.attack_spec is not None:
            return clip_rate(update, self.ctx.manifest.quant)
        return refuse_clipping(update, self.ctx.manifest.quant, f"round {round_}: the update")

    def view_elements(self, round_: int) -> list[int]:
        """The packed proof view of this trainer's update of `round_` (PROTOCOL.md §2), recomputed as it was sealed."""
        c = self.ctx
        update = self.update(round_, c.global_model(round_ - 1))
        return pack(self.quantized_view(update), c.manifest.quant)

    def quantized_view(self, update: torch.Tensor) -> torch.Tensor:
        """The update's proof view as the circuit sees it: quantized (int64), the project's view of the flat model."""
        p = self.ctx.params
        return quantize(update, self.ctx.manifest.quant).reshape(-1)[p.view_offset : p.view_offset + p.view_len]

    def declines(self, round_: int, v_commit: int) -> Declined | None:
        """Where v can be recomputed here: Declined when `check_direction` and `v_commit` is not the v recomputed at
        g(round-1), or when `decline_against` and this round's update is against it (`<v, u> <= 0` over the proof
        view, as the circuit's direction test counts it: it would be excluded unpaid); else None, submit.

        `decline_against` keeps the blob from a poisoned validation split, whose true gradient passes the vCommit
        check. Multi-Krum counts its k and its unselected places on the joined trainers (PROTOCOL §3), so a kept
        update weakens nobody's screen; the price is §7's few-accepted split, which pays an excluded update only
        when at most a quarter of a round's updates are accepted."""
        if not (self.check_direction or self.decline_against):
            return None
        c = self.ctx
        g_prev = c.global_model(round_ - 1)
        if round_ not in self.directions:
            self.directions[round_] = recomputable_direction(c, g_prev)
        dirs = self.directions[round_]
        if dirs is None:
            return None
        v, h = dirs
        if self.check_direction and commit_directions(v, h, c.manifest.quant) != v_commit:
            return Declined(round_, f"the committed v and h are not the validation direction and split step recomputed "
                                    f"at g({round_ - 1}) on the published validation split (PROTOCOL §4)")
        if not self.decline_against:
            return None
        a = inner_products(self.quantized_view(self.update(round_, g_prev))[None, :], v)[0]
        if a <= 0:
            return Declined(round_, f"its update is against v (<v, u> = {a}): the direction test would exclude it "
                                    "unpaid, and the owner would hold its blob (PROTOCOL §3)")
        return None

    def cure(self, round_: int) -> Cured:
        """Answer a rejection (flag 2) of this round's update: publish the proof view on chain (PROTOCOL.md §5)."""
        c = self.ctx
        c.market.cure(c.pid, round_, self.view_elements(round_), self.signer)
        return Cured(round_)

    def commit(self, round_: int) -> bool:
        """Seal the update on chain (PROTOCOL.md §3); False if there is nothing to seal. Its blob is uploaded only
        once the round's commits close (`reveal`), so nobody reads it before committing their own."""
        c = self.ctx
        made = self.sealed_update(round_)
        if made is None:
            return False
        _, cid, commitment = made
        sealed = c.market.seal(c.pid, round_, self.signer.address, cid_to_bytes(cid), commitment, self.salt(round_))
        c.market.commit_update(c.pid, round_, sealed, self.signer)
        return True

    def reveal(self, round_: int) -> str | None:
        """Upload the sealed blob and reveal it on chain, recomputed as sealed (the same on a restart). Returns the
        CID (None if there is nothing to reveal)."""
        c = self.ctx
        made = self.sealed_update(round_)
        if made is None:
            return None
        blob, cid, commitment = made
        if round_ not in self.withhold and c.storage.add(blob) != cid:
            raise StorageError(f"storage named the round {round_} blob differently from its sealed CID {cid}")
        c.market.reveal_update(c.pid, round_, cid_to_bytes(cid), commitment, self.salt(round_), self.signer)
        return cid

    def step(self) -> Step:
        """Do what the chain says is due now for this trainer, and say what that was."""
        c, me = self.ctx, self.signer.address
        project = c.market.project(c.pid)
        part = c.market.participant(c.pid, me)
        if project.state == State.OPEN and part.status == Status.NONE and self.auto_join:
            c.market.join(c.pid, self.signer)
            return Joined()
        if part.status == Status.NONE and project.state not in (State.CREATED, State.OPEN):  # else it ended silently
            raise ConfigError(f"{me} is not a trainer of project {c.pid}, and joining closed when it left Open (it is "
                              f"{solidity_name(project.state)} now): use the key that joined")
        if project.state == State.TRAINING and project.round_open and part.status == Status.ACTIVE:
            if project.disputing:
                rejected = c.market.dispute(c.pid, project.round).rejected
                if rejected >> part.slot & 1 and c.market.chain.now() <= project.post_deadline:
                    return self.cure(project.round)
                return Waiting()
            state, now = c.market.round_state(c.pid, project.round), c.market.chain.now()
            if state.pending >> part.slot & 1:
                if now > project.deadline:
                    return Waiting()  # the commit window closed without this slot: absent from the round
                declined = self.declines(project.round, state.v_commit)
                if declined is not None:  # said on chain, so that the round need not wait for this slot
                    c.market.decline_round(c.pid, project.round, self.signer)
                    return declined
                if not self.commit(project.round):
                    return NothingToCopy(project.round)
                return Committed(project.round)
            if project.reveals_open(now, state.pending) and state.commitments[part.slot] == 0 and part.slot not in c.market.declined_slots(
                    c.pid, project.round, c.created.block_number):  # sealed and not yet revealed, or taken out
                if part.slot in c.market.replayed_slots(c.pid, project.round):
                    return TakenOut(project.round)
                cid = self.reveal(project.round)
                if cid is None:
                    return NothingToCopy(project.round)
                return Submitted(project.round, cid, self.clip_rates.get(project.round, 0.0))
        if project.state in (State.FINISHED, State.CANCELLED) or part.status == Status.EJECTED:
            return self.settle() if self.settle_at_end else Ended(project.state)
        return Waiting()

    def settle(self) -> Settled:
        """Claim credited rewards and withdraw what is left of the stake, when there is something."""
        c, me = self.ctx, self.signer.address
        part = c.market.participant(c.pid, me)
        project = c.market.project(c.pid)
        claimed = withdrawn = 0
        if part.rewards > 0:
            c.market.claim(c.pid, self.signer)
            claimed = part.rewards
        withdrawable = project.state in (State.FINISHED, State.CANCELLED) or part.status == Status.EJECTED
        if part.stake > 0 and withdrawable:
            c.market.withdraw_stake(c.pid, self.signer)
            withdrawn = part.stake
        return Settled(claimed, withdrawn)

    def done(self) -> bool:
        """True once there is nothing more for this trainer to do in the project."""
        c = self.ctx
        project = c.market.project(c.pid)
        part = c.market.participant(c.pid, self.signer.address)
        if part.status == Status.NONE:
            return project.state not in (State.CREATED, State.OPEN)
        ended = project.state in (State.FINISHED, State.CANCELLED) or part.status == Status.EJECTED
        return ended and (not self.settle_at_end or (part.rewards == 0 and part.stake == 0))

    def run(self, poll_s: float = 1.0, log: Callable[[str], None] = print) -> None:
        """Follow the project until this trainer is done, logging every action.

        A TransientError (chain or storage not answering) is logged and the step retried after
        `poll_s`. A ContractRevert is logged and the step retried once after `poll_s` too, since
        each step re-reads the chain: a race such as WindowClosed (the window closed while this
        trainer trained) is gone on the next step, which finds nothing to submit and goes on to the
        next round. The same revert again on the next try is no race but would repeat forever (a full
        project, say): it stops the trainer and is raised. Any other error stops it at once.
        """
        last, refused = "", ""
        while True:
            try:
                result: Step | Unavailable | Refused = self.step()
                finished = self.done()
            except TransientError as exc:
                result, finished = Unavailable(exc), False
            except ContractRevert as exc:
                if exc.name == refused:
                    raise
                result, finished = Refused(exc), False
            if not isinstance(result, Unavailable):
                refused = result.error.name if isinstance(result, Refused) else ""
            if not isinstance(result, Waiting) and str(result) != last:
                log(str(result))
                last = str(result)
            if finished:
                return
            if isinstance(result, (Declined, NothingToCopy, Waiting, Ended, Unavailable, Refused)):
                time.sleep(poll_s)
