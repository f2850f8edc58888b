"""The aggregator node: opens rounds, validates and scores updates, proves and posts.

Every step is derived from the chain and storage (the node keeps no state of its own), and every
computation is deterministic, so a node that crashes and restarts recomputes the same v, the same
decisions and the same blobs, and the contract refuses a second post of the same round. A step
returns what it did as a typed value (NotTraining, Awaiting, Opened or a RoundResult).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from eth_account.signers.local import LocalAccount

from aggregator.rules.direction import split_direction, validation_direction
from aggregator.rules.fltrust import CosineResult
from aggregator.rules.novelty import previous_step
from aggregator.rules.replay import LOOKBACK, find_replays
from aggregator.rules.round import aggregate_round
from aggregator.rules.screen import ScreenedKrum
from market.chain.marketplace import Marketplace, State
from market.errors import ConfigError, ContractRevert, ProofError, TransientError
from market.ml.training import evaluate
from market.parties.context import ProjectContext, circuit_params
from market.parties.validate import Submission, Verdict, cured_verdict, validate_round
from market.protocol.blob import UpdateHeader
from market.protocol.commitment import commit_directions, model_view, pack
from market.protocol.modelblob import encode_direction, encode_model
from market.storage import cid_to_bytes
from zk.build import dev_setup
from zk.prover import DEFAULT_BACKEND, Backend, preload, prove
from zk.witness import RoundContext, Slot, build_witness


def outlier_reason(decision: ScreenedKrum | CosineResult | None, pos: int) -> str:
    """Why the `pos`-th valid update is slashed or excluded (PROTOCOL §3, §5), for the round report."""
    if isinstance(decision, ScreenedKrum) and decision.copy[pos]:
        return "excluded (copy of an update submitted before it)"
    if isinstance(decision, ScreenedKrum) and decision.low[pos]:
        return "slashed (norm below the floor)"
    if isinstance(decision, ScreenedKrum) and decision.public[pos]:
        return "excluded (lies within the public directions: v, the split step and the last step explain it)"
    if isinstance(decision, ScreenedKrum) and decision.against[pos]:
        return "excluded (does not move along the validation direction)"
    return "excluded (Multi-Krum)"


@dataclass(frozen=True)
class NotTraining:
    """Nothing to do: the project is not training (not started yet, or over)."""

    state: State

    def __str__(self) -> str:
        return f"project is {self.state.name}"


@dataclass(frozen=True)
class Awaiting:
    """Round `round` is open and some submissions (commits or reveals) are still due before its deadline."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: waiting for submissions"


@dataclass(frozen=True)
class Opened:
    """The node committed to the validation direction and opened round `round`."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: opened"


@dataclass(frozen=True)
class Disputing:
    """Round `round` was posted with a rejection (flag 2); its dispute window runs until `until` (PROTOCOL.md §5)."""

    round: int
    until: int

    def __str__(self) -> str:
        return f"round {self.round}: dispute window open until {self.until}"


@dataclass(frozen=True)
class Finalized:
    """The dispute window of round `round` ended without a cure; the node settled the post as it stood."""

    round: int

    def __str__(self) -> str:
        return f"round {self.round}: no cure, post final"


@dataclass(frozen=True)
class Unavailable:
    """A step failed on a TransientError (chain or storage not answering); `run` retries it after a pause."""

    error: TransientError

    def __str__(self) -> str:
        return f"waiting after an error ({type(self.error).__name__}: {self.error})"


@dataclass
class RoundResult:
    """What the node did in one round (posted it), for tables and reports."""

    round: int
    trainers: list[str]
    submitted: list[int]
    flags: list[int]
    scores: list[int]
    reasons: dict[str, str]
    accuracy: float
    loss: float
    prove_s: float
    gas: int
    model_cid: str
    proof: tuple[int, ...]
    public_input: int
    cured: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        again = f" again with cured slots {self.cured}" if self.cured else ""
        return (f"round {self.round}: posted{again}, flags {self.flags}, val. accuracy {100 * self.accuracy:.1f}%, "
                f"proof {self.prove_s:.1f} s, gas {self.gas:,}")


#: What one step of the node can do; NotTraining, Awaiting and Disputing mean "nothing yet", after which `run` sleeps.
Step = NotTraining | Awaiting | Disputing | Opened | Finalized | RoundResult


class AggregatorNode:
    """Processes the rounds of one project for its bonded aggregator."""

    def __init__(self, ctx: ProjectContext, signer: LocalAccount, circuit_dir: Path | None = None,
                 backend: Backend = DEFAULT_BACKEND) -> None:
        if signer.address.lower() != ctx.params.aggregator.lower():  # else every round's openRound would revert
            raise ConfigError(f"{signer.address} is not project {ctx.pid}'s aggregator ({ctx.params.aggregator}): "
                              "sign with the key the owner named at creation")
        self.ctx = ctx
        self.signer = signer
        self.backend = backend
        self.circuit_dir = circuit_dir or dev_setup(circuit_params(ctx))
        preload(self.circuit_dir, backend)
        #: Per round, the block it was opened in: the polls for its declines read logs from there on.
        self._opened_at: dict[int, int] = {}
        #: Proof views of earlier rounds' accepted updates, by (round, slot): the replay sources.
        self._sources: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def market(self) -> Marketplace:
        """The marketplace wrapper."""
        return self.ctx.market

    def direction(self, g_prev: torch.Tensor) -> torch.Tensor:
        """The quantized validation direction at g(r-1) over the proof view (PROTOCOL §4)."""
        c = self.ctx
        return validation_direction(c.task.build_model, g_prev, c.task.val, c.manifest.view, c.manifest.quant)

    def split(self, g_prev: torch.Tensor) -> torch.Tensor:
        """The quantized split step at g(r-1) over the proof view (PROTOCOL §4)."""
        c = self.ctx
        return split_direction(c.task.build_model, g_prev, c.task.val, c.manifest.view, c.manifest.quant, c.manifest.hyper)

    def step(self) -> Step:
        """Do the one thing the chain says is due now: open a round, post it, or nothing."""
        project = self.market.project(self.ctx.pid)
        if project.state != State.TRAINING:
            return NotTraining(project.state)
        if not project.round_open:
            return self.open_round(project.round + 1)
        if project.disputing:
            return self.follow_dispute(project.round, project.post_deadline)
        rs, now = self.market.round_state(self.ctx.pid, project.round), self.market.chain.now()
        # The contract takes a post once the commits are closed (no active slot pending, or the commit window over)
        # and no sealed commit may still be revealed (every one revealed, or the reveal window over): PROTOCOL.md §3.
        if not project.commits_closed(now, rs.pending):
            return Awaiting(project.round)
        if now <= project.reveal_deadline:
            revealed = sum(1 for c in rs.commitments if c) + len(self.market.replayed_slots(self.ctx.pid, project.round))
            sealed = project.n_active - rs.pending.bit_count() - revealed
            if sealed > 0 and sealed > len(self.declined(project.round)):
                return Awaiting(project.round)
        return self.post_round(project.round)

    def declined(self, round_: int) -> set[int]:
        """The slots that declined `round_` on chain, read from the block the round was opened in."""
        if round_ not in self._opened_at:
            self._opened_at[round_] = self.market.round_opened_block(self.ctx.pid, round_, self.ctx.created.block_number)
        return self.market.declined_slots(self.ctx.pid, round_, self._opened_at[round_])

    def open_round(self, round_: int) -> Opened:
        """Commit to v and h at g(round-1) and open the round."""
        g_prev = self.ctx.global_model(round_ - 1)
        v_commit = commit_directions(self.direction(g_prev), self.split(g_prev), self.ctx.manifest.quant)
        self.market.open_round(self.ctx.pid, v_commit, self.signer)
        return Opened(round_)

    def follow_dispute(self, round_: int, until: int) -> Disputing | Finalized | RoundResult:
        """A posted round with a rejection (PROTOCOL.md §5): wait out its dispute window, then settle the post
        as it stood if nobody cured, else post the round again with every cured update included."""
        if self.market.chain.now() <= until:
            return Disputing(round_, until)
        dispute = self.market.dispute(self.ctx.pid, round_)
        if dispute.cured == 0:
            posted = [e for e in self.market.events("RoundPosted", self.ctx.pid, from_block=self.ctx.created.block_number)
                      if int(e.args["round"]) == round_][-1]
            self.market.finalize_round(self.ctx.pid, round_, int(posted.args["modelCommit"]), posted.args["flags"],
                                       posted.args["scores"], self.signer)
            return Finalized(round_)
        return self.post_round(round_, cured=dispute.cured)

    def _verdicts(self, round_: int, cured: int = 0) -> tuple[list[str], dict[int, Verdict]]:
        """Fetch and validate every submission of the round; trainers by slot and verdicts by slot. A slot in the
        bitmap `cured` takes the proof view its trainer published on chain instead of its blob."""
        c = self.ctx
        trainers = self.market.trainers(c.pid)
        events = [e for e in self.market.events("UpdateSubmitted", c.pid, from_block=c.created.block_number)
                  if int(e.args["round"]) == round_]
        expected = UpdateHeader(
            chain_id=self.market.chain.chain_id, marketplace=self.market.address, project_id=c.pid, round=round_,
            trainer=trainers[0], model_spec_hash=c.spec_hex, quant=c.manifest.quant,
            view_offset=c.params.view_offset, view_length=c.params.view_len,
        )
        slots = [int(e.args["slot"]) for e in events]
        subs = [Submission(e.args["trainer"], e.args["cid"], int(e.args["commitment"])) for e in events]
        fetched = validate_round([s for i, s in zip(slots, subs) if not cured >> i & 1], expected, c.layout, c.storage)
        verdicts = dict(zip([i for i in slots if not cured >> i & 1], fetched))
        for i, sub in zip(slots, subs):
            if cured >> i & 1:
                verdicts[i] = cured_verdict(sub, self.market.cured_elements(c.pid, round_, i), expected, c.layout)
        return trainers, verdicts

    def sources(self, round_: int) -> dict[tuple[int, int], torch.Tensor]:
        """The proof views of the accepted updates of the `LOOKBACK` rounds before `round_` (a settled round keeps
        their commitments only): what a replay in `round_` is challenged with (PROTOCOL.md §3). Fetched once, then
        kept."""
        c = self.ctx
        for past in range(max(1, round_ - LOOKBACK), round_):
            if any(key[0] == past for key in self._sources):
                continue
            commitments = self.market.round_state(c.pid, past).commitments
            _, verdicts = self._verdicts(past)
            self._sources.update({(past, i): verdict.update.view() for i, verdict in verdicts.items()
                                  if verdict.update is not None and commitments[i]})
        self._sources = {key: view for key, view in self._sources.items() if key[0] >= round_ - LOOKBACK}
        return {key: view for key, view in self._sources.items() if key[0] < round_}

    def challenge_replays(self, round_: int, verdicts: dict[int, Verdict]) -> dict[int, tuple[int, int]]:
        """Take out of round `round_` every valid update that replays another trainer's accepted update of the 4 rounds
        before (PROTOCOL.md §3; ReplayChallenge checks both views and their distance). Returns slot -> (round, slot) of
        each source; a challenge that someone else's came before is skipped (the round's commitments say what is out)."""
        quant = self.ctx.manifest.quant
        now = {i: verdict.update.view() for i, verdict in verdicts.items() if verdict.update is not None}
        sources = self.sources(round_)
        found = find_replays(now, sources)
        for slot, source in found.items():
            try:
                self.market.challenge_replay(self.ctx.pid, round_, slot, source, pack(now[slot], quant),
                                             pack(sources[source], quant), self.signer)
            except ContractRevert as exc:
                if exc.name != "NoRevealedUpdate":
                    raise
        return found

    def post_round(self, round_: int, cured: int = 0) -> RoundResult:
        """Validate, take out the replays, run the rule, aggregate, upload, prove and post round `round_` (again, after
        the cures in the bitmap `cured`: those updates are the views their trainers published, PROTOCOL.md §5; the
        replays were taken out before the first post)."""
        c, quant = self.ctx, self.ctx.manifest.quant
        g_prev = c.global_model(round_ - 1)
        g_prev2 = c.global_model(max(round_ - 2, 0))  # the previous step starts there (PROTOCOL §3's novelty)
        v, h = self.direction(g_prev), self.split(g_prev)
        trainers, verdicts = self._verdicts(round_, cured)
        replays = {} if cured else self.challenge_replays(round_, verdicts)
        rs = self.market.round_state(c.pid, round_)
        if commit_directions(v, h, quant) != rs.v_commit:
            raise ProofError(f"round {round_}: the recomputed validation direction and split step do not match the "
                             "on-chain commitment")
        taken = [i for i in verdicts if not rs.commitments[i]]  # replays taken out, by this node or anyone: absent
        verdicts = {i: verdict for i, verdict in verdicts.items() if rs.commitments[i]}
        seqs = self.market.submission_order(c.pid, round_)
        updates = {i: verdict.update for i, verdict in verdicts.items() if verdict.update is not None}  # the accepted
        slots = [Slot(rs.commitments[i], updates[i].view() if i in updates else None, seqs[i])
                 if i in verdicts else Slot() for i in range(len(trainers))]
        rctx = RoundContext(self.market.chain.chain_id, self.market.address, c.pid, round_, len(trainers))
        witness = build_witness(circuit_params(c), rctx, v, h, rs.v_commit, slots, model_view(g_prev, c.manifest.view, quant),
                                model_view(g_prev2, c.manifest.view, quant))

        valid = sorted(updates)
        self._sources.update({(round_, i): updates[i].view() for i in valid  # later rounds' replay sources: the accepted
                              if witness.flags[i] == 0})
        view = torch.stack([updates[i].view() for i in valid]) if valid else torch.zeros((0, c.params.view_len), dtype=torch.int64)
        full = torch.stack([updates[i].flat for i in valid]) if valid else torch.zeros((0, c.numel), dtype=torch.int64)
        outcome = aggregate_round(view, full, v, g_prev, quant, c.manifest.rule, [seqs[i] for i in valid], c.manifest.view,
                                  previous_step(g_prev, g_prev2, c.manifest.view, quant), joined=len(trainers), split=h)
        if [witness.flags[i] for i in valid] != outcome.flags or not torch.equal(
                model_view(outcome.new_global, c.manifest.view, quant), witness.model_out):
            raise ProofError(f"round {round_}: the aggregation rule and the circuit witness disagree")

        loss, acc = evaluate(c.task.build_model, outcome.new_global, c.task.val)
        n = len(trainers)
        reasons = {trainers[i]: f"{verdict.reason}: {verdict.detail}" for i, verdict in verdicts.items() if not verdict.accepted}
        reasons.update({trainers[i]: outlier_reason(outcome.detail, pos) for pos, i in enumerate(valid) if witness.flags[i] in (1, 3)})
        reasons.update({trainers[i]: "declined the round on chain (RoundDeclined)"
                        for i in self.declined(round_)})
        reasons.update({trainers[i]: (f"replays slot {replays[i][1]}'s update of round {replays[i][0]}" if i in replays
                                      else "a replay") + ": taken out, absent from the round (UpdateReplayed)"
                        for i in taken})
        t0 = time.perf_counter()
        proof = prove(self.circuit_dir, witness.inputs, self.backend)  # the proof binds g(r)'s commitment, not its blob
        prove_s = time.perf_counter() - t0
        if not cured and self.market.round_state(c.pid, round_).commitments != rs.commitments:
            return self.post_round(round_)  # someone took a replay out meanwhile (from a blob this node found invalid)
        report = {"round": round_, "flags": witness.flags[:n], "scores": witness.scores[:n], "reasons": reasons,
                  "val_accuracy": acc, "val_loss": loss, "submitted": sorted(verdicts), "prove_s": round(prove_s, 3)}
        model_cid = c.storage.add(encode_model(outcome.new_global, c.pid, round_, c.spec_hex, report))
        v_cid = c.storage.add(encode_direction(v, h, c.pid, round_))
        receipt = self.market.post_round(c.pid, round_, cid_to_bytes(model_cid), cid_to_bytes(v_cid), witness.model_commit,
                                         witness.flags[:n], witness.scores[:n], list(proof.words), self.signer)
        return RoundResult(round_, trainers, sorted(verdicts), witness.flags[:n], witness.scores[:n], reasons, acc, loss, prove_s,
                           int(receipt["gasUsed"]), model_cid, proof.words, witness.public_input,
                           [i for i in range(n) if cured >> i & 1])

    def finish(self) -> int | None:
        """Once the project has finished or been cancelled, withdraw the bond if held: the wei withdrawn
        (0 if none was held); None while the project goes on."""
        project = self.market.project(self.ctx.pid)
        if project.state not in (State.FINISHED, State.CANCELLED):
            return None
        if project.bond_held:
            self.market.withdraw_bond(self.ctx.pid, self.signer)
        return project.bond_held

    def run(self, poll_s: float = 1.0, log: Callable[[str], None] = print) -> None:
        """Follow the chain until the project has finished or been cancelled, opening and posting each round.

        A TransientError (chain or storage not answering) is logged and the step retried after
        `poll_s`: every step re-reads its state from the chain, so a retry is safe. Any other error,
        a ContractRevert above all, is deterministic and would repeat forever: it stops the node at
        once and is raised as it is (a revert decoded, with its hint).
        """
        last = ""
        while True:
            try:
                result: Step | Unavailable = self.step()
                withdrawn = self.finish()
            except TransientError as exc:
                result, withdrawn = Unavailable(exc), None
            if str(result) != last:
                log(str(result))
                last = str(result)
            if withdrawn is not None:
                if withdrawn:
                    log(f"withdrew the bond ({withdrawn} wei)")
                return
            if isinstance(result, (NotTraining, Awaiting, Disputing, Unavailable)):
                time.sleep(poll_s)
