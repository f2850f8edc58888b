"""End to end on the devnet, in separate processes: the owner's command line, 4 trainer daemons (one
attacking) and the aggregator daemon, which is killed and restarted mid-project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market.chain.client import Chain
from market.chain.marketplace import Marketplace, State, Status
from market.dev.devnet import Devnet
from market.storage import IpfsStorage
from market.toolchain.process import free_port, process_alive

pytestmark = [pytest.mark.slow, pytest.mark.anvil, pytest.mark.ipfs]
FEDMARKET = [sys.executable, "-m", "market.cli"]
ROUNDS = 3
PROJECT = """
[project]
task = "digits-softmax"
rounds = {rounds}
min_trainers = 4
max_trainers = 4
budget = "6 ether"
stake = "1 ether"
aggregator_bond = "2 ether"
submit_window = 600
[rule]
f = 1
m = 0
tau_pct = 175
slash_bps = 5000
"""


def cli(env: dict[str, str], *args: str) -> dict:
    """Run one `fedmarket ... --json` command and parse its JSON line."""
    out = subprocess.run([*FEDMARKET, *args, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def daemon(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start a long-running `fedmarket` command in its own process group."""
    with log.open("ab") as fh:
        return subprocess.Popen([*FEDMARKET, *args], env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_marketplace_across_processes(tmp_path: Path) -> None:
    env = {**os.environ, "FEDMARKET_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    up = subprocess.run([*FEDMARKET, "devnet", "up", "--rpc-port", str(free_port()), "--ipfs-port", str(free_port()), "--json"],
                        env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    net = Devnet.load(tmp_path / "home" / "devnet" / "devnet.json")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        project_file = tmp_path / "project.toml"
        project_file.write_text(PROJECT.format(rounds=ROUNDS))
        aggregator = net.accounts[1]["address"]
        created = cli(env, "owner", "create", str(project_file), "--aggregator", aggregator, "--dev-account", "0")
        pid = created["pid"]
        cli(env, "aggregator", "register", str(pid), "--dev-account", "1")
        for i in range(4):
            cli(env, "trainer", "join", str(pid), "--dev-account", str(2 + i))
        cli(env, "owner", "start", str(pid), "--dev-account", "0")
        (listed,) = cli(env, "projects", "--json")["projects"]  # what a trainer finds (issue 15), every field read
        assert (listed["pid"], listed["state"], listed["task"], listed["model_params"], listed["manifest"]) == (
            pid, "training", "digits-softmax", 650, "checked")
        assert (listed["budget"], listed["token"], listed["stake"], listed["slots_taken"], listed["max_trainers"]) == (
            6 * 10**18, "ETH", 10**18, 4, 4)
        assert listed["join_deadline"] > 0 and not listed["joinable"] and (listed["rounds_done"], listed["rounds"]) == (0, ROUNDS)
        assert listed["verifier_setup"]["kind"] == "development" and listed["verifier_setup"]["summary"] == "development"
        assert listed["owner_record"] == listed["aggregator_record"] == {
            "projects": 1, "finished": 0, "cancelled": 0, "rounds_timed_out": 0, "flags_overturned": 0}

        market = Marketplace(Chain.connect(net.rpc_url), net.contracts["FedMarket"])
        agg_args = ("aggregator", "run", str(pid), "--dev-account", "1", "--poll", "0.3")
        procs.append(daemon(env, tmp_path / "aggregator.log", *agg_args))
        for i in range(4):
            attack = ["--attack", "sign_flip"] if i == 3 else ["--withhold", "2"] if i == 0 else []
            procs.append(daemon(env, tmp_path / f"trainer{i}.log", "trainer", "run", str(pid), "--partition", f"{i}/4",
                                "--dev-account", str(2 + i), "--poll", "0.3", *attack))

        wait_for(lambda: market.project(pid).round >= 2, 600, "round 2 to open")
        os.killpg(procs[0].pid, signal.SIGKILL)  # crash the aggregator mid-project
        procs[0].wait()
        procs[0] = daemon(env, tmp_path / "aggregator.log", *agg_args)
        # Trainer 0 withholds its round-2 blob: the post is disputable, the trainer cures, and after the
        # dispute window (time moved on) the aggregator posts round 2 again with the cured update.
        wait_for(lambda: bool(market.events("UpdateCured", pid)), 600, "the withheld round-2 update to be cured")
        market.chain.time_travel(market.project(pid).params.post_window + 1)
        for proc in procs:
            assert proc.wait(timeout=900) == 0, (tmp_path / "aggregator.log").read_text()[-3000:]
        owner_settle = cli(env, "owner", "settle", str(pid), "--dev-account", "0")

        project = market.project(pid)
        assert project.state == State.FINISHED
        posted = market.events("RoundPosted", pid)
        assert [int(e.args["round"]) for e in posted] == [1, 2, 2, 3]  # none lost; round 2 disputed, then re-posted
        (disputed,) = market.events("RoundDisputable", pid)
        (cure,) = market.events("UpdateCured", pid)
        assert int(disputed.args["round"]) == 2 and cure.args["trainer"] == net.accounts[2]["address"]
        assert posted[1].args["flags"][int(cure.args["slot"])] == 2 and posted[2].args["flags"][int(cure.args["slot"])] == 0
        posted = [posted[0], *posted[2:]]  # the posts that settled
        trainers = market.trainers(pid)
        attacker = net.accounts[5]["address"]
        slot = trainers.index(attacker)
        # the sign flipper moves against v: excluded (flag 3) in every round, unpaid, never slashed or ejected
        assert all(e.args["flags"][slot] == 3 for e in posted)
        # honest trainers are never slashed (non-IID data may leave one out of a round: flag 3, unpaid then)
        assert all(e.args["flags"][i] in (0, 3) for e in posted for i in range(4) if i != slot)
        assert sum(e.args["flags"][i] == 0 for e in posted for i in range(4) if i != slot) >= 2 * ROUNDS
        assert market.participant(pid, attacker).status != Status.EJECTED
        assert sum(e.args["trainer"] == attacker for e in market.events("UpdateExcluded", pid)) == ROUNDS
        claimed = {e.args["trainer"]: int(e.args["amount"]) for e in market.events("Claimed", pid)}
        assert attacker not in claimed and sum(claimed.values()) > 0
        withdrawn = {e.args["trainer"]: int(e.args["amount"]) for e in market.events("StakeWithdrawn", pid)}
        assert all(withdrawn[t] == 10**18 for t in trainers)
        for t in trainers:  # nothing left credited in the contract
            part = market.participant(pid, t)
            assert (part.stake, part.rewards) == (0, 0)
        refund = owner_settle["amount"]
        assert sum(claimed.values()) + refund == 6 * 10**18  # the budget; nothing slashed
        assert market.chain.balance(market.address) == 0

        storage = IpfsStorage(net.ipfs_api)
        from market.ml.training import evaluate
        from market.parties.context import load_context

        ctx = load_context(market, storage, pid)
        _, acc0 = evaluate(ctx.task.build_model, ctx.global_model(0), ctx.task.test)
        _, acc = evaluate(ctx.task.build_model, ctx.global_model(ROUNDS), ctx.task.test)
        assert acc > acc0 + 0.3
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([*FEDMARKET, "devnet", "down"], env=env, capture_output=True, timeout=60)
    assert not process_alive(net.anvil_pid) and not process_alive(net.ipfs_pid)
