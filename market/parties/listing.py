"""The market's projects as a trainer meets them (`fedmarket projects`): typed data read from chain state, storage
and a few narrow event queries.

Everything the contract stores comes from `projectCount()` and `project(pid)`; events are asked only for what
state does not hold, each by its indexed pid from the project's creation block: the creation itself (task and
g(0) CIDs, the block), why a cancelled project was cancelled (an aggregator timeout) and the cures that
overturned an aggregator's flag 2 (docs/PROTOCOL.md §5, §7). The manifest is checked against the on-chain
specHash before anything of it is shown, and nothing a project publishes (an own-data model file) is run here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from market.chain.marketplace import CancelReason, MarketEvent, Marketplace, Project, ProjectParams, Rule, State
from market.errors import ChainError, ConfigError, ProofError, StorageError
from market.parties.context import fetch_manifest
from market.protocol.manifest import Manifest
from market.storage import ContentMismatch, Storage, cid_from_bytes
from zk.build import CircuitParams, is_insecure
from zk.keycheck import KEYS_ROOT, check_verifier

#: The `--state` filters and the contract states each one lists: "open" is every project still taking trainers or
#: waiting for its aggregator's bond (a Created project opens when the aggregator bonds).
STATE_FILTERS: dict[str, frozenset[State]] = {
    "open": frozenset({State.CREATED, State.OPEN}),
    "training": frozenset({State.TRAINING}),
    "finished": frozenset({State.FINISHED}),
    "cancelled": frozenset({State.CANCELLED}),
}
MODEL_CAP = 64 << 20
#: What a listing says where storage could not give the manifest.
NOT_FETCHED = "manifest not fetched"


@dataclass(frozen=True)
class Record:
    """An address's past on this marketplace in one role (owner or aggregator), over the projects it held that role
    in: how many, finished, cancelled, cancelled for an aggregator timeout, and flag-2 claims cured (overturned)."""

    projects: int = 0
    finished: int = 0
    cancelled: int = 0
    rounds_timed_out: int = 0
    flags_overturned: int = 0


@dataclass(frozen=True)
class VerifierSetup:
    """How the keys of a project's verifier were made, where this machine can tell (it has the keys the verifier
    matches): "development" (forgeable), "ceremony" with its contributions, or "unknown" with the reason."""

    kind: str
    contributions: int | None
    detail: str

    def __str__(self) -> str:
        """One line: the kind, and the contributions of a ceremony."""
        return f"ceremony, {self.contributions} contributions" if self.kind == "ceremony" else self.kind


@dataclass(frozen=True)
class Listing:
    """One project as the listing shows it. Amounts are in wei of `token` ("ETH" or the ERC-20's address); `task`
    and `model_params` are None, and `manifest` says why, unless the manifest was fetched and matched the chain."""

    pid: int
    state: str
    owner: str
    aggregator: str
    token: str
    budget: int
    budget_left: int
    round_budget: int
    stake: int
    aggregator_bond: int
    slots_taken: int
    max_trainers: int
    min_trainers: int
    join_deadline: int
    joinable: bool
    rounds_done: int
    rounds: int
    created_block: int
    task_cid: str
    model_cid: str
    manifest: str
    task: str | None
    model_params: int | None
    verifier: str
    verifier_setup: VerifierSetup
    cancel_reason: str | None
    owner_record: Record
    aggregator_record: Record

    def as_json(self) -> dict[str, Any]:
        """Every field, nested dataclasses as objects; the verifier setup with its one-line summary."""
        out = asdict(self)
        out["verifier_setup"]["summary"] = str(self.verifier_setup)
        return out


@dataclass(frozen=True)
class ProjectDetails:
    """What `projects show` gives a trainer deciding whether to join: the listing, the checked manifest (its CID and
    sha256), the rule and its parameters, the windows, quantization and the round circuit's settings."""

    listing: Listing
    manifest: Manifest
    spec_hash: str
    circuit: CircuitParams
    verifier_slots: int
    rule_on_chain: str
    slash_bps: int
    windows: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """The listing's fields, then the manifest and everything the chain fixes for the project's rounds."""
        p = self.manifest
        return {
            **self.listing.as_json(),
            "manifest_sha256": self.spec_hash, "manifest_content": json.loads(p.to_json()),
            "rule": {**asdict(p.rule), "on_chain": self.rule_on_chain, "slash_bps": self.slash_bps},
            "hyper": asdict(p.hyper), "quant": asdict(p.quant), "view": {"offset": p.view[0], "length": p.view[1]},
            "circuit": {**asdict(self.circuit), "verifier_slots": self.verifier_slots},
            "windows": self.windows, "own_data": None if p.data is None else asdict(p.data),
        }


def rounds_done(project: Project) -> int:
    """Rounds settled: the current round unless it is still open (or disputed)."""
    return project.round - 1 if project.round_open else project.round


def round_budget(project: Project) -> int:
    """What each round but the last pays its accepted trainers (PROTOCOL.md §7: budget // rounds)."""
    return project.budget // project.params.rounds


def circuit_of(params: ProjectParams) -> CircuitParams:
    """The round circuit the project's verifier must prove, from the chain alone (the same settings
    `market.parties.context.circuit_params` takes from a checked manifest)."""
    return CircuitParams(n=params.max_trainers, d=params.view_len, bits=params.quant_bits, f=params.krum_f,
                         m=params.krum_m, tau_pct=params.tau_pct, dup_pct=params.dup_pct, floor_pct=params.floor_pct)


def model_params(storage: Storage, model_cid: str) -> int:
    """The number of parameters of g(0), from its safetensors header (PROTOCOL.md §8) alone: no tensor is decoded."""
    raw = storage.get(model_cid, max_size=MODEL_CAP)
    try:
        header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
        return math.prod(int(n) for n in header["weights"]["shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"g(0) at {model_cid} is no model blob: {exc}") from None


def cid_text(raw: bytes) -> str:
    """A CID from an event as text, or its bytes in hex when they are no CID (storage then refuses it by name)."""
    try:
        return cid_from_bytes(raw)
    except StorageError:
        return "0x" + bytes(raw).hex()


def verifier_setup(market: Marketplace, params: ProjectParams, keys_root: Path = KEYS_ROOT) -> VerifierSetup:
    """How the verifier's keys were made, when it matches keys installed here for the project's circuit
    (`zk.keycheck.check_verifier`, what `trainer join` checks); "unknown" with the reason otherwise."""
    try:
        folder = check_verifier(market.chain, params.verifier, circuit_of(params), keys_root)
    except (ProofError, ConfigError) as exc:
        return VerifierSetup("unknown", None, str(exc))
    if is_insecure(folder):
        return VerifierSetup("development", None, f"development keys in {folder}: whoever made them can forge proofs")
    mark = json.loads((folder / "SETUP.json").read_text())
    if mark.get("setup") != "ceremony":
        return VerifierSetup("unknown", None, f"{folder / 'SETUP.json'} names no known setup: {mark.get('setup')!r}")
    return VerifierSetup("ceremony", int(mark["contributions"]), f"phase-2 ceremony keys in {folder}")


class MarketListing:
    """The projects of one marketplace, read once: state of every project, its creation event, and (on first use)
    the events behind the owners' and aggregators' records."""

    def __init__(self, market: Marketplace, storage: Storage, keys_root: Path = KEYS_ROOT) -> None:
        self.market, self.storage, self.keys_root = market, storage, keys_root
        self.projects = {pid: market.project(pid) for pid in range(1, market.project_count() + 1)}
        self.created = {int(e.args["pid"]): e for e in market.events("ProjectCreated")}
        self._setups: dict[tuple[str, CircuitParams], VerifierSetup] = {}
        self._histories: dict[int, tuple[CancelReason | None, int]] = {}
        self.now = market.chain.now()

    def project(self, pid: int) -> Project:
        """Project `pid`; ConfigError naming the ids this marketplace has when it has no such project."""
        if pid not in self.projects:
            have = f"projects 1 to {len(self.projects)}" if self.projects else "no projects"
            raise ConfigError(f"no project {pid} on the marketplace at {self.market.address}: it has {have}")
        return self.projects[pid]

    def creation(self, pid: int) -> MarketEvent:
        """Project `pid`'s ProjectCreated event (ChainError if the node does not return it)."""
        if pid not in self.created:
            raise ChainError(f"the node returned no ProjectCreated event for project {pid} of {self.market.address}")
        return self.created[pid]

    def history(self, pid: int) -> tuple[CancelReason | None, int]:
        """Why project `pid` was cancelled (None if it was not) and how many flag-2 claims its trainers cured: events
        by pid from its creation block, asked only where state says there can be any."""
        if pid not in self._histories:
            project, since = self.projects[pid], self.creation(pid).block_number
            reason = None
            if project.state == State.CANCELLED:
                cancels = self.market.events("ProjectCancelled", pid, from_block=since)
                if not cancels:
                    raise ChainError(f"project {pid} is cancelled but the node returned no ProjectCancelled event")
                reason = CancelReason(cancels[0].args["reason"])
            cured = len(self.market.events("UpdateCured", pid, from_block=since)) if project.round else 0
            self._histories[pid] = (reason, cured)
        return self._histories[pid]

    def record(self, address: str, role: str) -> Record:
        """`address`'s record as `role` ("owner" or "aggregator") over every project of this marketplace."""
        held = [pid for pid, p in self.projects.items()
                if (p.owner if role == "owner" else p.params.aggregator).lower() == address.lower()]
        states = [self.projects[pid].state for pid in held]
        histories = [self.history(pid) for pid in held]
        return Record(
            projects=len(held), finished=states.count(State.FINISHED), cancelled=states.count(State.CANCELLED),
            rounds_timed_out=sum(reason == CancelReason.AGGREGATOR_TIMEOUT for reason, _ in histories),
            flags_overturned=sum(cured for _, cured in histories),
        )

    def setup(self, params: ProjectParams) -> VerifierSetup:
        """The verifier's setup (cached per verifier and circuit: projects often share one)."""
        key = (params.verifier, circuit_of(params))
        if key not in self._setups:
            self._setups[key] = verifier_setup(self.market, params, self.keys_root)
        return self._setups[key]

    def listing(self, pid: int) -> Listing:
        """Project `pid` as the listing shows it; the manifest's fate in `manifest` when it cannot be shown."""
        project, created = self.project(pid), self.creation(pid)
        params = project.params
        task_cid, model_cid = cid_text(created.args["taskCid"]), cid_text(created.args["modelCid"])
        task, size, manifest = None, None, "checked"
        try:
            task = fetch_manifest(self.storage, pid, task_cid, params).task
            size = model_params(self.storage, model_cid)
        except ContentMismatch as exc:
            task, manifest = None, f"mismatch: {exc}"
        except StorageError as exc:
            manifest = f"{NOT_FETCHED}: {exc}" if task is None else f"checked; model size unknown: {exc}"
        reason, _ = self.history(pid)
        return Listing(
            pid=pid, state=project.state.name.lower(), owner=project.owner, aggregator=params.aggregator,
            token="ETH" if params.is_eth else params.token, budget=project.budget, budget_left=project.budget_left,
            round_budget=round_budget(project), stake=params.stake, aggregator_bond=params.aggregator_bond,
            slots_taken=project.n_trainers, max_trainers=params.max_trainers, min_trainers=params.min_trainers,
            join_deadline=params.join_deadline,
            joinable=project.state == State.OPEN and project.n_trainers < params.max_trainers
            and self.now < params.join_deadline,
            rounds_done=rounds_done(project), rounds=params.rounds, created_block=created.block_number,
            task_cid=task_cid, model_cid=model_cid, manifest=manifest, task=task, model_params=size,
            verifier=params.verifier, verifier_setup=self.setup(params),
            cancel_reason=None if reason is None else reason.name.lower(),
            owner_record=self.record(project.owner, "owner"), aggregator_record=self.record(params.aggregator, "aggregator"),
        )

    def listings(self, states: frozenset[State] | None = None) -> list[Listing]:
        """Every project (in `states` if given), by id."""
        return [self.listing(pid) for pid, p in self.projects.items() if states is None or p.state in states]

    def details(self, pid: int) -> ProjectDetails:
        """Everything `projects show` gives; the manifest must be fetched and match the chain (ManifestMismatch,
        or the storage error that kept it away)."""
        project = self.project(pid)
        params = project.params
        manifest = fetch_manifest(self.storage, pid, cid_text(self.creation(pid).args["taskCid"]), params)
        return ProjectDetails(
            listing=self.listing(pid), manifest=manifest, spec_hash=manifest.digest().hex(), circuit=circuit_of(params),
            verifier_slots=project.verifier_slots, rule_on_chain=Rule(params.rule).name.lower(),
            slash_bps=params.slash_bps,
            windows={"open": params.open_window, "submit": params.submit_window, "post": params.post_window,
                     "dispute": params.post_window},
        )
