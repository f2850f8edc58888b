"""The trainer node: joins, trains and submits every round, then claims and withdraws.

Like the aggregator it keeps no state: what is due comes from the chain (the round's pending
bitmap says whether this trainer has submitted), and training is seeded by (trainer, round), so
a restarted trainer recomputes the same update, the same blob and the same CID.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable

import torch
from eth_account.signers.local import LocalAccount

from market.chain.marketplace import State, Status
from market.errors import ChainError, ConfigError, StorageError
from market.ml import attacks
from market.ml.tasks.base import Split
from market.ml.training import local_update
from market.parties.context import ProjectContext, verifier_mismatches
from market.protocol.blob import UpdateHeader, decode, encode
from market.protocol.commitment import commit_view
from market.protocol.quant import quantize
from market.storage import cid_from_bytes, cid_to_bytes

#: Attacks a single trainer can mount on its own (the evaluation also has group attacks).
SOLO_ATTACKS = ("sign_flip", "scaling", "gaussian", "label_flip", "free_rider_zero", "free_rider_copy")


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


class TrainerNode:
    """One trainer of one project, with its private data and, for evaluation, an optional attack."""

    def __init__(self, ctx: ProjectContext, signer: LocalAccount, data: Split, attack: str | None = None,
                 auto_join: bool = True, settle: bool = True) -> None:
        if attack is not None and attack not in SOLO_ATTACKS:
            raise ValueError(f"unknown attack {attack!r}; choose one of {SOLO_ATTACKS}")
        mismatches = verifier_mismatches(ctx)
        if mismatches:
            raise ConfigError(f"project {ctx.pid}: its round verifier does not fit it, rounds could never be posted: "
                              f"{'; '.join(mismatches)}")
        self.ctx = ctx
        self.signer = signer
        self.attack = attack
        self.auto_join = auto_join
        self.settle_at_end = settle
        self.data = attacks.label_flip(data, ctx.task.num_classes) if attack == "label_flip" else data

    def header(self, round_: int, trainer: str) -> UpdateHeader:
        """The blob header every update of `trainer` in `round_` carries."""
        c = self.ctx
        return UpdateHeader(
            chain_id=c.market.chain.chain_id, marketplace=c.market.address, project_id=c.pid, round=round_,
            trainer=trainer, model_spec_hash=c.spec_hex, quant=c.manifest.quant,
            view_offset=c.params.view_offset, view_length=c.params.view_len,
        )

    def copy_source(self, round_: int) -> torch.Tensor | None:
        """free_rider_copy: the first update another trainer submitted this round, read back from
        storage as anyone can (None while there is none)."""
        c = self.ctx
        for e in c.market.events("UpdateSubmitted", c.pid, from_block=c.created.block_number):
            if int(e.args["round"]) == round_ and e.args["trainer"] != self.signer.address:
                blob = c.storage.get(cid_from_bytes(e.args["cid"]))
                return decode(blob, self.header(round_, e.args["trainer"]), c.layout).dequantized()
        return None

    def update(self, round_: int, g_prev: torch.Tensor) -> torch.Tensor | None:
        """This round's float update: honest local training, then the attack if any (None: a copier
        with nothing to copy yet)."""
        if self.attack == "free_rider_copy":
            victim = self.copy_source(round_)
            return None if victim is None else attacks.free_rider_copy(victim, seed=round_seed(self.signer.address, round_, 2))
        hyper = dataclasses.replace(self.ctx.manifest.hyper, seed=round_seed(self.signer.address, round_, self.ctx.manifest.hyper.seed))
        honest = local_update(self.ctx.task.build_model, g_prev, self.data, hyper)
        if self.attack == "sign_flip":
            return attacks.sign_flip(honest, boost=2.0)
        if self.attack == "scaling":
            return attacks.scaling(honest, factor=float(self.ctx.params.max_trainers))
        if self.attack == "gaussian":
            sigma = 2.0 * float(honest.norm()) / honest.numel() ** 0.5
            return attacks.gaussian_noise(honest, sigma=sigma, seed=round_seed(self.signer.address, round_, 1))
        if self.attack == "free_rider_zero":
            return attacks.free_rider_zero(honest)
        return honest

    def submit(self, round_: int) -> str | None:
        """Train on g(round-1), upload the blob and commit to it on chain; returns the CID (None if
        there is nothing to submit yet)."""
        c = self.ctx
        update = self.update(round_, c.global_model(round_ - 1))
        if update is None:
            return None
        blob = encode(split_flat(update, c), self.header(round_, self.signer.address), c.layout)
        cid = c.storage.add(blob)
        commitment = commit_view(quantize(update, c.manifest.quant), c.params.view_offset, c.params.view_len, c.manifest.quant)
        c.market.submit_update(c.pid, round_, cid_to_bytes(cid), commitment, self.signer)
        return cid

    def step(self) -> str:
        """Do what the chain says is due now for this trainer; returns a short description."""
        c, me = self.ctx, self.signer.address
        project = c.market.project(c.pid)
        part = c.market.participant(c.pid, me)
        if project.state == State.OPEN and part.status == Status.NONE and self.auto_join:
            c.market.join(c.pid, self.signer)
            return "joined"
        if project.state == State.TRAINING and project.round_open and part.status == Status.ACTIVE:
            pending = c.market.round_state(c.pid, project.round).pending
            if pending >> part.slot & 1 and c.market.chain.now() <= project.deadline:
                cid = self.submit(project.round)
                return f"round {project.round}: " + ("waiting for an update to copy" if cid is None else f"submitted {cid}")
        if project.state in (State.FINISHED, State.CANCELLED) or part.status == Status.EJECTED:
            return self.settle() if self.settle_at_end else f"project is {project.state.name}"
        return "waiting"

    def settle(self) -> str:
        """Claim credited rewards and withdraw what is left of the stake, when there is something."""
        c, me = self.ctx, self.signer.address
        part = c.market.participant(c.pid, me)
        project = c.market.project(c.pid)
        done = []
        if part.rewards > 0:
            c.market.claim(c.pid, self.signer)
            done.append(f"claimed {part.rewards}")
        withdrawable = project.state in (State.FINISHED, State.CANCELLED) or part.status == Status.EJECTED
        if part.stake > 0 and withdrawable:
            c.market.withdraw_stake(c.pid, self.signer)
            done.append(f"withdrew stake {part.stake}")
        return "; ".join(done) or "settled"

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
        """Follow the project until this trainer is done, logging every action."""
        while True:
            try:
                status = self.step()
            except (ChainError, StorageError) as exc:  # e.g. the window closed while training: try again later
                status = f"waiting ({type(exc).__name__}: {exc})"
            if status != "waiting":
                log(status)
            if self.done():
                return
            if status.startswith("waiting"):
                time.sleep(poll_s)
