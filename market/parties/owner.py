"""The owner's side: create a project (verifier, manifest, initial model, escrow) and read its status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from aggregator.rules.registry import project_rule
from market.chain.marketplace import Marketplace, ProjectParams, State
from market.ml.tasks import flatten
from market.parties.context import ProjectContext, load_context, manifest_task
from market.parties.project_file import ProjectFile
from market.parties.trust import round_basis, trust_table
from market.protocol.commitment import commit_model
from market.protocol.modelblob import decode_model, encode_model
from market.protocol.quant import snap_view
from market.storage import Storage, cid_from_bytes, cid_to_bytes
from zk.build import CircuitParams


@dataclass(frozen=True)
class Created:
    """A new project: its id, verifier and the CIDs of its manifest and initial model."""

    pid: int
    verifier: str
    task_cid: str
    model_cid: str


def project_circuit(pf: ProjectFile) -> CircuitParams:
    """The round circuit a project file's settings fix (slots, view length, bits, rule): the one its verifier is
    deployed for, or that an owner's `--verifier` must have been."""
    return CircuitParams.for_rule(pf.max_trainers, pf.manifest.view[1], pf.manifest.quant.bits, pf.manifest.rule)


def deploy_round_verifier(market: Marketplace, pf: ProjectFile, sender: LocalAccount) -> str:
    """Build (cached) the round circuit for the project and deploy its Groth16 verifier.

    Uses the development setup, which prints and records an INSECURE mark: its maker could forge
    proofs. Production keys come from a ceremony (docs/ZK.md).
    """
    from zk.build import dev_setup
    from zk.onchain import deploy_verifier

    return str(deploy_verifier(market.chain, dev_setup(project_circuit(pf)), sender=sender, allow_insecure=True).address)


def create_project(market: Marketplace, storage: Storage, pf: ProjectFile, owner: LocalAccount,
                   aggregator: str, verifier: str | None = None, model_seed: int = 0) -> Created:
    """Publish the manifest, an own-data project's model file and validation split, and g(0), deploy the round verifier
    (unless given) and escrow the budget. The task is rebuilt from what was published, as trainers and the aggregator do."""
    for blob in pf.blobs:
        storage.add(blob)
    task = manifest_task(pf.manifest, storage)
    task_cid = storage.add(pf.manifest.to_json())
    quant, view = pf.manifest.quant, pf.manifest.view
    g0 = snap_view(flatten(task.model(model_seed)), view, quant)  # the view on the fixed-point grid (PROTOCOL §3)
    model_cid = storage.add(encode_model(g0, 0, 0, pf.manifest.digest().hex(), {}))
    if verifier:  # an owner's --verifier: the RoundVerifier of exactly this circuit, as every trainer checks at join
        from zk.keycheck import check_wrapper

        check_wrapper(market.chain, verifier, project_circuit(pf))
    verifier = verifier or deploy_round_verifier(market, pf, owner)
    rule = pf.manifest.rule
    params = ProjectParams.make(
        aggregator=aggregator, verifier=verifier, join_deadline=market.chain.now() + pf.join_window,
        rounds=pf.rounds, min_trainers=pf.min_trainers, max_trainers=pf.max_trainers, stake=pf.stake,
        aggregator_bond=pf.aggregator_bond, token=pf.token, open_window=pf.open_window,
        submit_window=pf.submit_window, post_window=pf.post_window, krum_f=rule.f, krum_m=rule.m,
        tau_pct=rule.tau_pct, slash_bps=pf.slash_bps, rule=project_rule(rule.rule), quant_bits=pf.manifest.quant.bits,
        quant_scale_log2=pf.manifest.quant.scale_log2, view_offset=pf.manifest.view[0],
        view_len=pf.manifest.view[1], spec_hash=pf.manifest.digest(), dup_pct=rule.dup_pct, floor_pct=rule.floor_pct,
        model_commit=commit_model(g0, view, quant),
    )
    pid = market.create_project(params, pf.budget, owner, task_cid=cid_to_bytes(task_cid), model_cid=cid_to_bytes(model_cid))
    return Created(pid, verifier, task_cid, model_cid)


def _trainers_by_round(ctx: ProjectContext, name: str) -> dict[int, list[str]]:
    """Per round, the trainers of the project's `name` events (one with a trainer and a round), in chain order."""
    out: dict[int, list[str]] = {}
    for e in ctx.market.events(name, ctx.pid, from_block=ctx.created.block_number):
        out.setdefault(int(e.args["round"]), []).append(e.args["trainer"])
    return out


def round_reports(ctx: ProjectContext) -> list[dict[str, Any]]:
    """Every post of a round: flags, scores and the post's gas from the chain, the aggregator's report from g(r)'s blob
    (validation accuracy, reasons, proving time), each decision's basis (market.parties.trust), and whether the post
    was disputable (a flag 2: provisional until its dispute window ended), which trainers cured (PROTOCOL.md §5) and
    which declined the round on chain (§4: a v they could not accept, or an update against it) and whose updates were
    taken out as replays (§3); a cured round has a second post."""
    trainers = ctx.market.trainers(ctx.pid)
    since = ctx.created.block_number
    submitted = _trainers_by_round(ctx, "UpdateSubmitted")
    disputable = {e.tx_hash: int(e.args["disputeEnd"]) for e in ctx.market.events("RoundDisputable", ctx.pid, from_block=since)}
    cured = _trainers_by_round(ctx, "UpdateCured")
    declined = _trainers_by_round(ctx, "RoundDeclined")  # refused the round's v, or kept an update against it (§4)
    replayed = _trainers_by_round(ctx, "UpdateReplayed")  # taken out as replays (§3): absent from the round
    out = []
    for event in ctx.market.events("RoundPosted", ctx.pid, from_block=since):
        cid = cid_from_bytes(event.args["modelCid"])
        report = decode_model(ctx.storage.get(cid), ctx.numel, ctx.spec_hex).report
        flags = dict(zip(trainers, [int(f) for f in event.args["flags"]]))
        out.append({
            "round": int(event.args["round"]), "model_cid": cid, "block": event.block_number,
            "flags": flags, "decisions": round_basis(flags, set(submitted.get(int(event.args["round"]), []))
                                                     - set(replayed.get(int(event.args["round"]), []))),
            "scores": dict(zip(trainers, [int(s) for s in event.args["scores"]])),
            "val_accuracy": report.get("val_accuracy"), "reasons": report.get("reasons", {}),
            "prove_s": report.get("prove_s"), "gas": ctx.market.chain.gas_used(event.tx_hash),
            "dispute_end": disputable.get(event.tx_hash), "cured": cured.get(int(event.args["round"]), []),
            "declined": declined.get(int(event.args["round"]), []),
            "replayed": replayed.get(int(event.args["round"]), []),
        })
    return out


def project_status(market: Marketplace, storage: Storage, pid: int, ctx: ProjectContext | None = None) -> dict[str, Any]:
    """Everything about a project, read from the chain and storage (`ctx`: its context, when the caller holds it)."""
    project = market.project(pid)
    ctx = ctx or load_context(market, storage, pid)
    trainers = []
    for address in market.trainers(pid):
        part = market.participant(pid, address)
        trainers.append({"address": address, "slot": part.slot, "status": part.status.name,
                         "stake": part.stake, "rewards": part.rewards})
    return {
        "project": pid, "state": project.state.name, "round": project.round, "rounds": project.params.rounds,
        "round_open": project.round_open, "owner": project.owner, "aggregator": project.params.aggregator,
        "task": ctx.manifest.task, "budget": project.budget, "budget_left": project.budget_left,
        "owner_refund": project.owner_refund, "bond_held": project.bond_held, "deadline": project.deadline,
        "reveal_deadline": project.reveal_deadline if project.round_open else None,
        "post_deadline": project.post_deadline, "disputing": project.disputing, "trainers": trainers, "history": round_reports(ctx),
        "finished": project.state in (State.FINISHED, State.CANCELLED), "trust": trust_table(),
    }
