"""Re-derive every round of a project from the chain's events and the blobs in storage (`fedmarket audit`).

Anyone with the chain and the storage node can run it: it needs no party's keys and no private data,
only the round circuit's verifying key, which is public. Each round is checked against its settling
post (PROTOCOL.md §5: a provisional post with a flag 2 that was cured is replaced by the re-post):

- every submission is fetched and decoded with the header it must carry, and its proof view hashed
  against the on-chain commitment (a cured slot's view is read from its cure's calldata);
- the flags and scores are recomputed with the aggregator's own functions (`zk.witness.build_witness`);
- the proof in the postRound calldata is verified with py-ecc against the public input of §6 rebuilt
  from the chain;
- the full average of §3 (every parameter, beyond the proof view too) is compared with the posted g(r)
  bit for bit: the average is exact integer sums then one correctly rounded float64 division and
  addition cast once to float32 (`aggregator.rules.average`), so every machine gets the same bits and
  no tolerance is needed;
- v and the split step h are recomputed at g(r-1) on the task's validation split when the project names a
  built-in task whose definition (its data digest included) is the one the manifest hashed; otherwise v is "not
  auditable" and only the commitment is checked against the revealed v and h.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aggregator.rules.direction import split_direction, validation_direction
from aggregator.rules.round import aggregate_round
from market.chain.marketplace import MarketEvent
from market.errors import AuditMismatch, ConfigError, InvalidBlob, ProofError, QuantizationError, StorageError
from market.ml.tasks.params import ParamSlot
from market.parties.context import ProjectContext, circuit_params
from market.parties.validate import Submission, Verdict, cured_verdict, validate_submission
from market.protocol.blob import DecodedUpdate, UpdateHeader
from market.protocol.commitment import commit, commit_directions, model_view
from market.protocol.modelblob import ModelBlob, decode_direction, decode_model
from market.protocol.public_input import FLAG_INVALID, Statement, public_input
from market.protocol.quant import model_spec
from market.storage import cid_from_bytes
from zk.build import artifact_dir
from zk.prover import Proof
from zk.verifier import VerifyingKey, verify
from zk.witness import RoundContext, RoundWitness, Slot, build_witness

#: The verdicts of one check of a round.
MATCH, MISMATCH, NOT_AUDITABLE, NOT_CHECKED = "match", "mismatch", "not auditable", "not checked"
#: What is checked in every round, each a field a finding can name.
CHECKS = ("flag", "score", "proof", "model", "v")
#: How the posted g(r) is compared with the recomputed average (see the module docstring).
MODEL_TOLERANCE = "bit-exact"
#: Records a finding of the round being audited: slot (None: round-wide), field, detail.
Report = Callable[[int | None, str, str], None]


@dataclass(frozen=True)
class Finding:
    """One difference between what was posted and what the audit re-derived: where (round, slot or None for a
    round-wide field, field) and what."""

    round: int
    slot: int | None
    field: str
    detail: str

    def error(self) -> AuditMismatch:
        """This finding as the error `fedmarket audit` exits with."""
        return AuditMismatch(self.round, self.slot, self.field, self.detail)


@dataclass(frozen=True)
class SlotAudit:
    """One submission of a round: where its update came from (its blob or its cure), the audit's verdict on it,
    and the posted and recomputed flag and score."""

    slot: int
    trainer: str
    source: str
    verdict: str
    posted_flag: int
    flag: int | None
    posted_score: int
    score: int | None


@dataclass
class RoundAudit:
    """The verdict on one round: each check's result, the submissions and every finding."""

    round: int
    posts: int
    settled: bool
    cured: list[int]
    checks: dict[str, str]
    slots: list[SlotAudit]
    findings: list[Finding]
    notes: list[str]
    seconds: float = 0.0

    @property
    def matched(self) -> bool:
        """Whether every check of the round found what was posted."""
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """The round for the one JSON printer."""
        return {**dataclasses.asdict(self), "matched": self.matched}


@dataclass
class ProjectAudit:
    """The audit of every posted round of one project."""

    pid: int
    rounds: list[RoundAudit] = field(default_factory=list)
    model_tolerance: str = MODEL_TOLERANCE
    seconds: float = 0.0

    @property
    def matched(self) -> int:
        """How many rounds matched in every check."""
        return sum(r.matched for r in self.rounds)

    @property
    def findings(self) -> list[Finding]:
        """Every finding, round by round."""
        return [f for r in self.rounds for f in r.findings]

    def as_dict(self) -> dict[str, Any]:
        """The audit for the one JSON printer."""
        return {"project": self.pid, "rounds": [r.as_dict() for r in self.rounds], "rounds_audited": len(self.rounds),
                "rounds_matched": self.matched, "model_tolerance": self.model_tolerance, "seconds": self.seconds}


@dataclass(frozen=True)
class RoundRecord:
    """What the chain recorded about one round: its opening, reveals, posts and the dispute around them."""

    opened: MarketEvent
    submitted: dict[int, MarketEvent]
    posts: list[MarketEvent]
    disputable: frozenset[str]
    cures: list[MarketEvent]
    finalized: bool

    @property
    def settling(self) -> MarketEvent:
        """The post that counts: the latest (a re-post replaces a cured provisional post, PROTOCOL.md §5)."""
        return self.posts[-1]

    @property
    def settled(self) -> bool:
        """Whether the latest post settled the round (not disputable, or finalized after its window)."""
        return self.settling.tx_hash not in self.disputable or self.finalized

    @property
    def cured(self) -> list[int]:
        """The slots cured before the settling post: their updates are the views in the cures' calldata."""
        post = self.settling
        return sorted(int(e.args["slot"]) for e in self.cures
                      if (e.block_number, e.log_index) < (post.block_number, post.log_index))


def round_records(ctx: ProjectContext) -> dict[int, RoundRecord]:
    """Every posted round of the project, read from the marketplace's events."""
    since = ctx.created.block_number

    def by_round(name: str) -> dict[int, list[MarketEvent]]:
        out: dict[int, list[MarketEvent]] = {}
        for e in ctx.market.events(name, ctx.pid, from_block=since):
            out.setdefault(int(e.args["round"]), []).append(e)
        return out

    opened, submitted, posted = by_round("RoundOpened"), by_round("UpdateSubmitted"), by_round("RoundPosted")
    disputable = frozenset(e.tx_hash for es in by_round("RoundDisputable").values() for e in es)
    cures, finalized, replayed = by_round("UpdateCured"), by_round("RoundFinalized"), by_round("UpdateReplayed")
    # A replay taken out of its round (PROTOCOL.md §3, checked on chain) counts as absent: no submission.
    gone = {r: {int(e.args["slot"]) for e in es} for r, es in replayed.items()}
    return {r: RoundRecord(opened[r][0], {int(e.args["slot"]): e for e in submitted.get(r, [])
                                         if int(e.args["slot"]) not in gone.get(r, set())},
                           posts, disputable, cures.get(r, []), r in finalized)
            for r, posts in sorted(posted.items())}


def installed_verifying_key(ctx: ProjectContext) -> VerifyingKey:
    """The verifying key installed on this machine for the project's circuit settings (zk.build's folder)."""
    path = artifact_dir(circuit_params(ctx)) / "verification_key.json"
    if not path.exists():
        raise ConfigError(f"no verifying key installed for project {ctx.pid}'s circuit ({path}): "
                          "pass the project's verification_key.json with --vk")
    return VerifyingKey.load(path)


def validation_published(ctx: ProjectContext) -> bool:
    """Whether anyone can recompute v: the project's task is built in here with the very definition (data digest
    included, so the validation split) that its manifest hashed."""
    return ctx.task.spec_hash() == ctx.manifest.spec_hash


def recomputed_direction(ctx: ProjectContext, g_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(v, h) at g_prev on the project's validation split (PROTOCOL §4), as the aggregator must commit them."""
    m, t = ctx.manifest, ctx.task
    return (validation_direction(t.build_model, g_prev, t.val, m.view, m.quant),
            split_direction(t.build_model, g_prev, t.val, m.view, m.quant, m.hyper))


def recomputable_direction(ctx: ProjectContext, g_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`recomputed_direction`, or None where the task built here is not the manifest's. Their commitment is the
    round's vCommit when they are honest, and vCommit is unsalted, so a trainer compares them before it submits."""
    return recomputed_direction(ctx, g_prev) if validation_published(ctx) else None


def parameter_name(layout: Sequence[ParamSlot], index: int) -> str:
    """A flat parameter index as `name[i, j]` in the model's layout."""
    for p in layout:
        if p.offset <= index < p.offset + p.length:
            pos = list(torch.unravel_index(torch.tensor(index - p.offset), p.shape)) if p.shape else []
            return f"{p.name}[{', '.join(str(int(x)) for x in pos)}]"
    return f"[{index}]"


def describe_difference(v: torch.Tensor, revealed: torch.Tensor, name: str = "v") -> str:
    """How the recomputed v (or h, `name`) differs from the revealed one, for a finding."""
    if torch.equal(v, -revealed):
        return f"the revealed {name} is minus it"
    diff = (v - revealed).abs()
    return f"{int((diff != 0).sum())} of {v.numel()} values differ from the revealed {name} (at most by {int(diff.max())})"


class Auditor:
    """Re-derives the rounds of one project (module docstring); `audit` runs them all in order."""

    def __init__(self, ctx: ProjectContext, vk: VerifyingKey) -> None:
        self.ctx = ctx
        self.vk = vk
        self.params = circuit_params(ctx)
        self.trainers = ctx.market.trainers(ctx.pid)
        self.n_slots = ctx.market.project(ctx.pid).verifier_slots
        self.layout = ctx.layout
        self.numel = ctx.numel
        self.published = validation_published(ctx)

    def audit(self) -> ProjectAudit:
        """Every posted round, from g(0) on; each round's g(r-1) is the model its predecessor posted."""
        t0 = time.perf_counter()
        out = ProjectAudit(self.ctx.pid)
        g = decode_model(self.ctx.storage.get(cid_from_bytes(self.ctx.created.args["modelCid"])), self.numel,
                         self.ctx.spec_hex).weights
        m_commit = self.ctx.params.model_commit
        g2, m2 = g, m_commit  # g(r-2) and its commitment: g(0)'s in round 1 (PROTOCOL §3's novelty)
        for r, record in round_records(self.ctx).items():
            t = time.perf_counter()
            g_in = g
            result, g = self.audit_round(r, record, g, m_commit, g2, m2)
            g2, m2 = g_in, m_commit
            m_commit = int(record.settling.args["modelCommit"])
            result.seconds = time.perf_counter() - t
            out.rounds.append(result)
        out.seconds = time.perf_counter() - t0
        return out

    def audit_round(self, r: int, record: RoundRecord, g_prev: torch.Tensor, model_in: int,
                    g_prev2: torch.Tensor, model_prev: int) -> tuple[RoundAudit, torch.Tensor]:
        """One round against its settling post, from g(r-1), g(r-2) and the chain's commitments to their views;
        returns its verdict and g(r) (the posted one, or the recomputed average if the posted one cannot be read)."""
        c = self.ctx
        post, n = record.settling, len(self.trainers)
        flags, scores = [int(x) for x in post.args["flags"]], [int(x) for x in post.args["scores"]]
        findings: list[Finding] = []
        notes: list[str] = []
        checks = dict.fromkeys(CHECKS, MATCH)

        def find(slot: int | None, name: str, detail: str) -> None:
            findings.append(Finding(r, slot, name, detail))
            checks[name] = MISMATCH

        def skip(*names: str) -> None:
            for name in names:
                if checks[name] == MATCH:
                    checks[name] = NOT_CHECKED

        if len(flags) != n or len(scores) != n:
            find(None, "flag", f"the post has {len(flags)} flags and {len(scores)} scores for {n} trainers")
            flags, scores = (flags + [0] * n)[:n], (scores + [0] * n)[:n]
        model = self._posted_model(r, post, find)
        v_commit = int(record.opened.args["vCommit"])
        dirs = self._direction(r, post, v_commit, g_prev, find, checks)

        verdicts = self._verdicts(r, record)
        excused = self._excused(verdicts, flags, model, set(record.cured), notes)
        updates = {i: vd.update for i, vd in verdicts.items() if vd.update is not None and i not in excused}
        seqs = {i: int(e.args["seq"]) for i, e in record.submitted.items()}
        commitments = [int(record.submitted[i].args["commitment"]) if i in record.submitted else 0 for i in range(n)]

        witness: RoundWitness | None = None
        quant, view = c.manifest.quant, c.manifest.view
        m_prev: torch.Tensor | None = None
        m_prev2: torch.Tensor | None = None
        try:
            m_prev, m_prev2 = model_view(g_prev, view, quant), model_view(g_prev2, view, quant)
        except QuantizationError as exc:
            find(None, "model", f"g({r - 1})'s or g({max(r - 2, 0)})'s proof view is not a fixed-point model (PROTOCOL §3): {exc}")
        if m_prev is not None and commit(m_prev, model_spec(quant)) != model_in:
            find(None, "model", f"g({r - 1})'s proof view does not hash to the chain's model commitment")
        if m_prev2 is not None and commit(m_prev2, model_spec(quant)) != model_prev:
            find(None, "model", f"g({max(r - 2, 0)})'s proof view does not hash to the chain's previous model commitment")
        if dirs is not None and m_prev is not None and m_prev2 is not None:
            slots = [Slot(commitments[i], updates[i].view() if i in updates else None, seqs[i])
                     if i in record.submitted else Slot() for i in range(n)]
            rctx = RoundContext(c.market.chain.chain_id, c.market.address, c.pid, r, n)
            witness = build_witness(self.params, rctx, *dirs, v_commit, slots, m_prev, m_prev2)
            for i in range(n):
                if witness.flags[i] != flags[i]:
                    why = (verdicts[i].reason or "valid") if i in verdicts else "no submission"
                    find(i, "flag", f"posted {flags[i]}, recomputed {witness.flags[i]} (the update is {why}"
                                    f"{': ' + verdicts[i].detail if i in verdicts and verdicts[i].detail else ''})")
                elif witness.scores[i] != scores[i]:
                    find(i, "score", f"posted {scores[i]}, recomputed {witness.scores[i]}")
        else:
            skip("flag", "score")
            for i, vd in verdicts.items():  # without v only the claims of invalid blobs can be checked
                if (flags[i] == FLAG_INVALID) != (vd.update is None or i in excused):
                    find(i, "flag", f"posted {flags[i]}, but the update is {vd.reason or 'valid'}")

        self._check_proof(r, post, (v_commit, model_prev, model_in), commitments, flags, scores, [seqs.get(i, 0) for i in range(n)],
                          find)
        if witness is None:
            skip("model")
        step = None if m_prev is None or m_prev2 is None else m_prev - m_prev2
        g_new = self._check_model(r, g_prev, dirs, step, updates, seqs, witness, model, int(post.args["modelCommit"]), find)
        slot_rows = [SlotAudit(i, self.trainers[i], "cure" if i in record.cured else "blob",
                               "valid" if vd.update is not None else str(vd.reason), flags[i],
                               witness.flags[i] if witness else None, scores[i], witness.scores[i] if witness else None)
                     for i, vd in sorted(verdicts.items())]
        if not record.settled:
            notes.append("the latest post is disputable and its dispute is not over: audited as it stands")
        audit = RoundAudit(r, len(record.posts), record.settled, record.cured, checks, slot_rows, findings, notes)
        return audit, model.weights if model is not None else g_new

    def _posted_model(self, r: int, post: MarketEvent, find: Report) -> ModelBlob | None:
        """The g(r) blob of the post, checked to name this project and round; None (and a finding) if unreadable."""
        cid = cid_from_bytes(post.args["modelCid"])
        try:
            model = decode_model(self.ctx.storage.get(cid), self.numel, self.ctx.spec_hex)
        except (StorageError, InvalidBlob) as exc:
            find(None, "model", f"the posted g({r}) at {cid} cannot be read: {exc}")
            return None
        if (model.project_id, model.round) != (self.ctx.pid, r):
            find(None, "model", f"the posted g({r}) names project {model.project_id} round {model.round}")
        return model

    def _direction(self, r: int, post: MarketEvent, v_commit: int, g_prev: torch.Tensor, find: Report,
                   checks: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The round's (v, h): the revealed ones checked against vCommit, and recomputed at g(r-1) where the validation
        set is published. Returns the pair that hashes to vCommit (the one the proof used), or None if there is none."""
        c, quant = self.ctx, self.ctx.manifest.quant
        cid = cid_from_bytes(post.args["vCid"])
        revealed: tuple[torch.Tensor, torch.Tensor] | None
        try:
            revealed = decode_direction(c.storage.get(cid), c.params.view_len)
        except (StorageError, InvalidBlob) as exc:
            find(None, "v", f"the revealed v and h at {cid} cannot be read: {exc}")
            revealed = None
        if revealed is not None and commit_directions(*revealed, quant) != v_commit:
            find(None, "v", "the revealed v and h do not hash to the round's vCommit")
            revealed = None
        if not self.published:
            if checks["v"] == MATCH:
                checks["v"] = NOT_AUDITABLE
            return revealed
        v, h = recomputed_direction(c, g_prev)
        if commit_directions(v, h, quant) != v_commit:
            diff = "" if revealed is None else "; " + (describe_difference(h, revealed[1], "h") if torch.equal(v, revealed[0])
                                                      else describe_difference(v, revealed[0]))
            find(None, "v", f"v and h recomputed at g({r - 1}) on the task's validation split do not hash to the round's "
                            "vCommit" + diff)
            return revealed
        return v, h

    def _verdicts(self, r: int, record: RoundRecord) -> dict[int, Verdict]:
        """Every submission of the round checked as the aggregator must: its blob, or its cure's view."""
        c = self.ctx
        expected = UpdateHeader(
            chain_id=c.market.chain.chain_id, marketplace=c.market.address, project_id=c.pid, round=r,
            trainer=self.trainers[0], model_spec_hash=c.spec_hex, quant=c.manifest.quant,
            view_offset=c.params.view_offset, view_length=c.params.view_len,
        )
        cured = set(record.cured)
        out = {}
        for i, e in sorted(record.submitted.items()):
            sub = Submission(e.args["trainer"], e.args["cid"], int(e.args["commitment"]))
            out[i] = (cured_verdict(sub, c.market.cured_elements(c.pid, r, i), expected, self.layout) if i in cured
                      else validate_submission(sub, expected, self.layout, c.storage))
        return out

    def _excused(self, verdicts: dict[int, Verdict], flags: list[int], model: ModelBlob | None, cured: set[int],
                 notes: list[str]) -> set[int]:
        """Slots rejected as unavailable whose blob is available now: availability at posting time cannot be
        re-derived, and the trainer let the dispute window pass without a cure, so the claim stands."""
        reasons = model.report.get("reasons", {}) if model is not None else {}
        out = set()
        for i, vd in verdicts.items():
            said = str(reasons.get(self.trainers[i], ""))
            if vd.update is not None and flags[i] == FLAG_INVALID and i not in cured and said.startswith("unavailable"):
                out.add(i)
                notes.append(f"slot {i}: rejected as unavailable, available now (availability at posting is not auditable)")
        return out

    def _check_proof(self, r: int, post: MarketEvent, header: tuple[int, int, int], commitments: list[int],
                     flags: list[int], scores: list[int], seqs: list[int], find: Report) -> None:
        """Verify the postRound calldata's proof with py-ecc against the §6 public input rebuilt from the chain
        (`header`: the round's v commitment and the commitments to g(r-2) and g(r-1))."""
        c = self.ctx
        tx = c.market.chain.w3.eth.get_transaction(post.tx_hash)  # type: ignore[arg-type]
        fn, args = c.market.contract.decode_function_input(tx["input"])
        if fn.fn_name != "postRound" or [int(x) for x in args["flags"]] != flags or [int(x) for x in args["scores"]] != scores:
            find(None, "proof", f"transaction {post.tx_hash} is not the postRound of these flags and scores")
            return
        try:
            st = Statement(c.market.chain.chain_id, c.market.address, c.pid, r, header[0], header[1], header[2],
                           int(args["modelCommit"]), len(self.trainers))
            pub = public_input(st, self.n_slots, commitments, flags, scores, seqs)
            ok = verify(self.vk, Proof(tuple(int(x) for x in args["proof"])), [pub])
        except ProofError as exc:
            find(None, "proof", f"the public input cannot be rebuilt: {exc}")
            return
        if not ok:
            find(None, "proof", "the proof does not verify against the public input rebuilt from the chain "
                                "(or the verifying key is not this project's)")

    def _check_model(self, r: int, g_prev: torch.Tensor, dirs: tuple[torch.Tensor, torch.Tensor] | None,
                     step: torch.Tensor | None, updates: dict[int, DecodedUpdate], seqs: dict[int, int],
                     witness: RoundWitness | None, model: ModelBlob | None, model_commit: int, find: Report) -> torch.Tensor:
        """The §3 average of the accepted full updates, compared with the posted g(r) parameter by parameter;
        returns the average (g(r-1) when it cannot be computed without v and h, or the previous step)."""
        c = self.ctx
        if dirs is None or witness is None or step is None:
            return g_prev
        valid = sorted(updates)
        view = (torch.stack([updates[i].view() for i in valid]) if valid
                else torch.zeros((0, c.params.view_len), dtype=torch.int64))
        full = torch.stack([updates[i].flat for i in valid]) if valid else torch.zeros((0, self.numel), dtype=torch.int64)
        outcome = aggregate_round(view, full, dirs[0], g_prev, c.manifest.quant, c.manifest.rule, [seqs[i] for i in valid],
                                  c.manifest.view, step, joined=len(self.trainers), split=dirs[1])
        if [witness.flags[i] for i in valid] != outcome.flags:
            raise ProofError(f"round {r}: the aggregation rule and the circuit witness disagree")
        if model is None:
            return outcome.new_global
        if witness.model_commit != model_commit:
            find(None, "model", f"the posted commitment to g({r})'s proof view is not the average's")
        differ = (outcome.new_global.view(torch.int32) != model.weights.view(torch.int32)).nonzero().flatten().tolist()
        if differ:
            j = differ[0]
            off, length = c.params.view_offset, c.params.view_len
            where = "inside" if off <= j < off + length else "outside"
            find(None, "model", f"{len(differ)} of {self.numel} parameters of the posted g({r}) differ from the average; "
                                f"first {parameter_name(self.layout, j)} (flat index {j}, {where} the proof view): posted "
                                f"{float(model.weights[j])!r}, average {float(outcome.new_global[j])!r}")
        return outcome.new_global


def audit_project(ctx: ProjectContext, vk: VerifyingKey | Path | None = None) -> ProjectAudit:
    """Audit every posted round of the project with `vk` (a key, a verification_key.json, or by default the key
    installed here for the project's circuit settings)."""
    key = installed_verifying_key(ctx) if vk is None else vk if isinstance(vk, VerifyingKey) else VerifyingKey.load(vk)
    return Auditor(ctx, key).audit()
