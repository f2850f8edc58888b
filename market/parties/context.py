"""What every party reads about a project from the chain and storage alone (no local state).

Nodes derive all their decisions from this view, so that a restart loses nothing: the
manifest and the initial model come from the ProjectCreated event, g(r) from RoundPosted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from market.chain.marketplace import MarketEvent, Marketplace, ProjectParams
from market.errors import AggregationError, ConfigError, QuantizationError, StorageError
from market.ml.tasks import BUILTIN, Task, get_task, layout, num_params
from market.ml.tasks.owndata import decode_split, fit_standardize, own_task
from market.ml.tasks.params import ParamSlot
from market.protocol.commitment import commit_model
from market.protocol.manifest import Manifest
from market.protocol.modelblob import decode_model
from market.storage import ContentMismatch, Storage, cid_from_bytes
from zk.build import CircuitParams

#: Largest task manifest fetched (a manifest is a few KiB).
MANIFEST_CAP = 1 << 20


@dataclass(frozen=True)
class ProjectContext:
    """A project's immutable facts: its parameters, manifest, task and the block it was created in."""

    market: Marketplace
    storage: Storage
    pid: int
    params: ProjectParams
    manifest: Manifest
    task: Task
    created: MarketEvent

    @property
    def spec_hex(self) -> str:
        """The on-chain specHash as 64 hex digits (what update blobs must name)."""
        return self.params.spec_hash.hex()

    @property
    def layout(self) -> list[ParamSlot]:
        """The model's parameter layout (names and shapes, flat order)."""
        return layout(self.task.build_model())

    @property
    def numel(self) -> int:
        """Number of parameters of the model."""
        return num_params(self.task.build_model())

    def round_event(self, round_: int) -> MarketEvent | None:
        """The latest RoundPosted event of `round_`, if it was posted: after a cure the round's re-post, which is
        the post that settled (the provisional one before it left the rejected updates out, PROTOCOL.md §5)."""
        events = [e for e in self.market.events("RoundPosted", self.pid, from_block=self.created.block_number)
                  if int(e.args["round"]) == round_]
        return events[-1] if events else None

    def global_model(self, round_: int) -> torch.Tensor:
        """g(round_): the initial model for 0, else the model posted with that round."""
        if round_ == 0:
            cid = cid_from_bytes(self.created.args["modelCid"])
        else:
            event = self.round_event(round_)
            if event is None:
                raise ConfigError(f"project {self.pid}: round {round_} has not been posted")
            cid = cid_from_bytes(event.args["modelCid"])
        return decode_model(self.storage.get(cid), self.numel, self.spec_hex).weights


def circuit_params(ctx: ProjectContext) -> CircuitParams:
    """The round circuit a project's verifier was built for (its slots and PROTOCOL §3 rule parameters)."""
    p = ctx.params
    return CircuitParams.for_rule(p.max_trainers, p.view_len, p.quant_bits, ctx.manifest.rule)


def check_initial_model(ctx: ProjectContext) -> None:
    """ConfigError unless g(0)'s proof view is a fixed-point model whose commitment is the chain's (PROTOCOL §3):
    otherwise no round of the project can be proven, and an aggregator that bonds would lose its bond."""
    try:
        ok = commit_model(ctx.global_model(0), ctx.manifest.view, ctx.manifest.quant) == ctx.params.model_commit
    except QuantizationError as exc:
        raise ConfigError(f"project {ctx.pid}: g(0) cannot be proven from: {exc}") from None
    if not ok:
        raise ConfigError(f"project {ctx.pid}: g(0)'s proof view does not hash to the on-chain model commitment")


class ManifestMismatch(ContentMismatch):
    """A project's task manifest does not hash to its on-chain specHash, or declares other rule parameters than the
    chain holds: whoever published it, it is not the project's (a ContentMismatch: content that fails its hash)."""


def fetch_manifest(storage: Storage, pid: int, task_cid: str, params: ProjectParams) -> Manifest:
    """The project's task manifest from storage (which checks it against its CID), checked against the on-chain
    specHash and rule parameters; ManifestMismatch names what differs (a malformed manifest cannot be the project's)."""
    try:
        manifest = Manifest.from_json(storage.get(task_cid, max_size=MANIFEST_CAP))
    except (ConfigError, AggregationError) as exc:
        raise ManifestMismatch(f"project {pid}: the manifest {task_cid} is malformed: {exc}") from None
    if manifest.digest() != bytes(params.spec_hash):
        raise ManifestMismatch(f"project {pid}: the manifest {task_cid} hashes to {manifest.digest().hex()}, not the "
                               f"on-chain specHash {bytes(params.spec_hash).hex()}")
    rule = manifest.rule
    declared = (rule.f, rule.m, rule.tau_pct, rule.dup_pct, rule.floor_pct)
    on_chain = (params.krum_f, params.krum_m, params.tau_pct, params.dup_pct, params.floor_pct)
    if declared != on_chain:
        raise ManifestMismatch(f"project {pid}: the manifest's rule (f, m, tau_pct, dup_pct, floor_pct) = {declared} is "
                               f"not the on-chain parameters' {on_chain}")
    return manifest


def load_context(market: Marketplace, storage: Storage, pid: int) -> ProjectContext:
    """Read a project's parameters and creation event, fetch and check its manifest."""
    created = market.events("ProjectCreated", pid)
    if not created:
        raise ConfigError(f"no project {pid} on the marketplace at {market.address}")
    event = created[0]
    params = market.project(pid).params
    try:
        manifest = fetch_manifest(storage, pid, cid_from_bytes(event.args["taskCid"]), params)
    except ManifestMismatch:
        raise
    except StorageError as exc:
        raise ConfigError(f"project {pid}: cannot fetch its task manifest: {exc}") from None
    return ProjectContext(market, storage, pid, params, manifest, manifest_task(manifest, storage, f"project {pid}"), event)


def manifest_task(manifest: Manifest, storage: Storage, who: str = "the manifest") -> Task:
    """The task a manifest describes, as the owner, the trainers and the aggregator all build it: a built-in task by
    name, or (own data) the model file and validation split fetched by CID and the published schema; ConfigError when
    the published files do not give the manifest's statistics and spec hash."""
    if manifest.data is None:
        if manifest.task not in BUILTIN:
            raise ConfigError(f"{who}: unknown task {manifest.task!r} and no own-data section; built-in: {sorted(BUILTIN)}")
        return get_task(manifest.task)
    spec = manifest.data
    try:
        source, val_raw = storage.get(spec.model_cid), storage.get(spec.val_cid)
    except StorageError as exc:
        raise ConfigError(f"{who}: cannot fetch its model file or validation split: {exc}") from None
    val = decode_split(val_raw)
    if spec.schema.preprocess == "standardize" and fit_standardize(val[0]) != (spec.schema.mean, spec.schema.std):
        raise ConfigError(f"{who}: the manifest's standardisation is not the published validation split's mean and std")
    task = own_task(manifest.task, source, spec.schema, val, spec.view_prefix, origin=f"model file {spec.model_cid}")
    if task.spec_hash() != manifest.spec_hash:
        raise ConfigError(f"{who}: the published model file and validation split do not give the manifest's spec hash")
    return task
