"""`fedmarket projects` and `projects show` on the in-process chain: five projects in every state, listed with every
field and filtered by state; a bad PID, a manifest that does not hash to its specHash and one corrupted in storage
are named errors; the verifier's setup is told from the keys it matches."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from market.chain.client import Chain
from market.chain.marketplace import artifacts
from market.cli import app
from market.cli.session import Session
from market.errors import StorageError
from market.parties import listing
from market.parties.listing import verifier_setup
from market.parties.owner import create_project
from market.parties.project_file import load_project_file
from market.storage import LocalStorage, cid_to_bytes
from tests.marketplace_harness import V_COMMIT, Deployment, deploy
from zk.build import INSECURE_MARK

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"
FIELDS = {
    "pid", "state", "owner", "aggregator", "token", "budget", "budget_left", "round_budget", "stake", "aggregator_bond",
    "slots_taken", "max_trainers", "min_trainers", "join_deadline", "joinable", "rounds_done", "rounds", "created_block",
    "task_cid", "model_cid", "manifest", "task", "model_params", "verifier", "verifier_setup", "cancel_reason",
    "owner_record", "aggregator_record",
}
RECORD = {"projects": 5, "finished": 1, "cancelled": 1, "rounds_timed_out": 1, "flags_overturned": 1}


def past(dep: Deployment, deadline: int) -> None:
    """Let chain time pass `deadline`."""
    dep.chain.time_travel(max(deadline - dep.chain.now() + 1, 1))


def market_of_five(dep: Deployment, store: LocalStorage) -> dict[str, Any]:
    """On one marketplace, owner account 0 and aggregator account 1: 1 finished after a flag 2 its trainer cured,
    2 cancelled for an aggregator timeout, 3 training (stand-in CIDs: nothing in storage), 4 the digits example open
    with one trainer in, 5 created with 4's manifest under another specHash."""
    m, chain = dep.market, dep.chain
    finished = dep.create(view_len=4)
    dep.start(finished, 2)
    m.open_round(finished, V_COMMIT, dep.aggregator)
    views = dep.submit_views(finished, 1, [0, 1])
    dep.post(finished, 1, [2, 0], [0, 1])  # rejects slot 0's blob: disputable
    dep.cure(finished, 1, 0, views[0])
    past(dep, m.project(finished).post_deadline)
    dep.post(finished, 1, [0, 0], [1, 1])  # the re-post with the cured update
    dep.round(finished, [1, 1])
    timed_out = dep.create()
    dep.start(timed_out, 2)
    past(dep, m.project(timed_out).deadline)
    m.timeout(timed_out, chain.accounts[-1])
    training = dep.create()
    dep.start(training, 2)
    owner = dep.owner
    pf = load_project_file(EXAMPLE)
    rule = pf.manifest.rule
    circuit = [pf.max_trainers, pf.manifest.view[1], pf.manifest.quant.bits, rule.f, rule.m, rule.tau_pct,
               rule.dup_pct, rule.floor_pct]
    verifier = chain.deploy(artifacts()["RoundVerifier"], owner.address, circuit, sender=owner)  # no Groth16 behind it
    created = create_project(m, store, pf, owner, dep.aggregator.address, verifier=verifier.address)
    m.bond(created.pid, dep.aggregator)
    m.join(created.pid, dep.trainers[0])
    forged = dataclasses.replace(m.params(created.pid), spec_hash=hashlib.sha256(b"another manifest").digest(),
                                 join_deadline=chain.now() + 3_600)
    tampered = m.create_project(forged, pf.budget, owner, task_cid=cid_to_bytes(created.task_cid),
                                model_cid=cid_to_bytes(created.model_cid))
    assert (finished, timed_out, training, created.pid, tampered) == (1, 2, 3, 4, 5)
    return {"task_cid": created.task_cid, "budget": pf.budget, "rounds": pf.rounds, "spec_hash": pf.manifest.digest().hex()}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Deployment, LocalStorage, dict[str, Any]]:
    """The five projects, built once for the module."""
    store = LocalStorage(tmp_path_factory.mktemp("store"))
    dep = deploy(Chain.in_process(), slots=4)
    return dep, store, market_of_five(dep, store)


@pytest.fixture
def cli(market: tuple[Deployment, LocalStorage, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs `fedmarket ARGS` against the module's marketplace and store; returns the result."""
    dep, store, _ = market
    monkeypatch.setattr(Session, "marketplace", dep.market)
    monkeypatch.setattr(Session, "storage", store)
    return lambda *args: CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_the_listing_has_every_field_and_each_project_its_state(cli: Any, market: Any) -> None:
    dep, _, facts = market
    result = cli("projects", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["market"] == dep.market.address and data["state"] is None
    projects = {p["pid"]: p for p in data["projects"]}
    assert sorted(projects) == [1, 2, 3, 4, 5]
    for p in projects.values():
        assert set(p) == FIELDS, set(p) ^ FIELDS
        assert p["owner"] == dep.owner.address and p["aggregator"] == dep.aggregator.address and p["token"] == "ETH"
        assert p["owner_record"] == RECORD and p["aggregator_record"] == RECORD
        assert p["verifier_setup"]["kind"] == "unknown" and p["verifier_setup"]["contributions"] is None
    states = {pid: (p["state"], p["rounds_done"], p["cancel_reason"]) for pid, p in projects.items()}
    assert states == {1: ("finished", 2, None), 2: ("cancelled", 0, "aggregator_timeout"), 3: ("training", 0, None),
                      4: ("open", 0, None), 5: ("created", 0, None)}
    for pid in (1, 2, 3):  # stand-in CIDs the store does not hold
        assert projects[pid]["manifest"].startswith(listing.NOT_FETCHED) and projects[pid]["task"] is None
    digits = projects[4]
    assert digits["manifest"] == "checked" and digits["task"] == "digits-softmax" and digits["model_params"] == 650
    assert digits["task_cid"] == facts["task_cid"] and digits["budget"] == digits["budget_left"] == facts["budget"]
    assert digits["round_budget"] == facts["budget"] // facts["rounds"] and digits["rounds"] == facts["rounds"]
    assert (digits["slots_taken"], digits["max_trainers"], digits["min_trainers"], digits["joinable"]) == (1, 4, 4, True)
    assert digits["stake"] == 10**18 and digits["join_deadline"] > dep.chain.now()
    assert projects[5]["manifest"].startswith("mismatch: project 5: the manifest") and projects[5]["task"] is None
    assert projects[5]["verifier_setup"] == digits["verifier_setup"]


@pytest.mark.parametrize(("state", "pids"), [("open", [4, 5]), ("training", [3]), ("finished", [1]), ("cancelled", [2])])
def test_the_state_filter(cli: Any, state: str, pids: list[int]) -> None:
    result = cli("projects", "--state", state, "--json")
    assert result.exit_code == 0, result.output
    assert [p["pid"] for p in json.loads(result.stdout)["projects"]] == pids


def test_show_checks_the_manifest_and_gives_the_rule_budget_and_circuit(cli: Any, market: Any) -> None:
    _, _, facts = market
    result = cli("projects", "show", "4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= FIELDS and data["manifest_sha256"] == facts["spec_hash"]
    assert data["manifest_content"]["task"] == "digits-softmax" and data["hyper"]["epochs"] == 2
    assert data["rule"] == {
        "rule": "multi_krum", "f": 1, "m": 0, "tau_pct": 175, "dup_pct": 5, "floor_pct": 10, "cos_threshold_pct": 0,
        "on_chain": "multi_krum", "slash_bps": 5000}
    assert data["circuit"] == {"n": 4, "d": 650, "bits": 16, "f": 1, "m": 0, "tau_pct": 175, "dup_pct": 5,
                               "floor_pct": 10, "verifier_slots": 4}
    assert data["windows"] == {"open": 600, "submit": 120, "post": 900, "dispute": 900}
    assert data["round_budget"] == facts["budget"] // facts["rounds"] and data["own_data"] is None
    people = cli("projects", "show", "4")
    assert people.exit_code == 0 and "digits-softmax" in people.stdout and facts["spec_hash"] in people.stdout
    table = cli("projects")
    assert table.exit_code == 0 and "digits-softmax" in table.stdout and "mismatch" in table.stdout


def test_a_manifest_that_is_not_the_projects_is_a_named_error(cli: Any, market: Any) -> None:
    _, store, facts = market
    result = cli("projects", "show", "5")
    said = " ".join(result.output.split())  # the message, unwrapped
    assert result.exit_code == 1, said
    assert said.startswith(f"ManifestMismatch: project 5: the manifest {facts['task_cid']} hashes to {facts['spec_hash']}, "
                           "not the on-chain specHash"), said
    path = store._path(facts["task_cid"])
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b'"epochs":2', b'"epochs":9'))  # corrupted in storage: fails its CID
        result = cli("projects", "show", "4")
        assert result.exit_code == 1 and "ContentMismatch" in result.output, result.output
        listed = json.loads(cli("projects", "--state", "open", "--json").stdout)["projects"]
        assert listed[0]["manifest"].startswith("mismatch: ") and listed[0]["task"] is None
    finally:
        path.write_bytes(original)


def test_a_pid_without_a_project_is_named(cli: Any) -> None:
    result = cli("projects", "show", "99")
    assert result.exit_code == 2 and "no project 99" in result.output and "projects 1 to 5" in result.output


@pytest.mark.parametrize(("mark", "kind", "contributions"), [
    ({"setup": INSECURE_MARK}, "development", None), ({"setup": "ceremony", "contributions": 3}, "ceremony", 3),
])
def test_the_setup_is_read_from_the_keys_the_verifier_matches(market: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              mark: dict[str, Any], kind: str, contributions: int | None) -> None:
    dep, _, _ = market
    (tmp_path / "SETUP.json").write_text(json.dumps(mark))
    monkeypatch.setattr(listing, "check_verifier", lambda *args: tmp_path)
    setup = verifier_setup(dep.market, dep.market.params(4))
    assert (setup.kind, setup.contributions) == (kind, contributions)
    assert str(setup) == ("development" if kind == "development" else "ceremony, 3 contributions")


def test_an_event_cid_that_is_no_cid_is_shown_in_hex_and_refused_by_storage(market: Any) -> None:
    _, store, _ = market
    assert listing.cid_text(b"") == "0x" and listing.cid_text(b"\x01\x02") == "0x0102"
    with pytest.raises(StorageError, match="not a CID"):
        store.get(listing.cid_text(b"\x01\x02"))
