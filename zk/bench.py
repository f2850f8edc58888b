"""`fedmarket bench prove`: constraints, witness and proving time, memory, verification time and gas."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch
from web3.types import RPCEndpoint

from market.chain.client import Chain, dev_accounts
from market.chain.marketplace import Marketplace, ProjectParams
from market.paths import BUILD, NODE_MODULES
from market.protocol.commitment import commit
from market.protocol.quant import QuantSpec, model_spec
from market.toolchain.anvil import start_anvil
from market.toolchain.process import stop_process
from market.toolchain.solc import compile_contracts
from zk import ceremony
from zk.build import CircuitParams, compile_circuit, compile_main, constraint_count, dev_setup
from zk.onchain import deploy_verifier, solidity_dir
from zk.prover import Proof, compute_witness, prove_wtns
from zk.verifier import VerifyingKey, verify
from zk.witness import RoundContext, RoundWitness, Slot, build_witness

#: Proving cases (n, d), cheapest first; later ones are skipped once the time budget is spent.
CASES = [(4, 650), (8, 650), (16, 650), (4, 4096), (8, 4096), (16, 4096)]
#: The rule of the proving cases: Multi-Krum f = 1 with both free-rider screens (examples/digits.toml).
CASE_RULE = {"f": 1, "dup_pct": 5, "floor_pct": 10}
#: Largest circuit attempted on a 2-core, 24 GiB machine (setup memory grows with it).
MAX_CONSTRAINTS = 1_600_000
CID = bytes.fromhex("01551220") + bytes(32)
#: The round circuit's commitment block alone (~600 constraints): small enough for a local 2^10 ptau.
COMMIT_ONLY_SOURCE = """pragma circom 2.1.0;
include "round.circom";
template CommitOnly() { signal input o[16]; signal output out; component c = Commit(16, 16); c.o <== o; out <== c.out; }
component main = CommitOnly();
"""


def _round_data(p: CircuitParams, seed: int = 1) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A validation direction and n updates, the last one poisoned. The honest updates lie ~18%
    (relative squared distance) apart: no copies at dup_pct = 5."""
    spec, g = QuantSpec(bits=p.bits), torch.Generator().manual_seed(seed)
    v = torch.randint(-spec.qmax, spec.qmax + 1, (p.d,), generator=g)
    v[0] = spec.qmax  # normalised, as PROTOCOL §4's direction always is
    base = torch.randint(-400, 400, (p.d,), generator=g)
    ups = [base + torch.randint(-120, 120, (p.d,), generator=g) for _ in range(p.n)]
    ups[-1] = (-40 * ups[-1]).clamp(-spec.qmax, spec.qmax)
    return v, ups


def _witness(p: CircuitParams, ctx: RoundContext, v: torch.Tensor, ups: list[torch.Tensor]) -> RoundWitness:
    """Witness of a round from g(r-2) = g(r-1) = 0 where every trainer submitted, in slot order (seq = slot)."""
    spec = QuantSpec(bits=p.bits)
    zero = torch.zeros(p.d, dtype=torch.int64)
    return build_witness(p, ctx, v, commit(v, spec), [Slot(commit(u, spec), u, i) for i, u in enumerate(ups)], zero, zero)


def _peak(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run a command; (seconds, peak resident MiB, CPU seconds, stdout) of it and its children."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, cpu = [0], [0.0]

    def watch() -> None:
        while proc.poll() is None:
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs))
                cpu[0] = max(cpu[0], sum(sum(p.cpu_times()[:2]) for p in procs))
            except psutil.Error:
                break
            time.sleep(0.05)

    th = threading.Thread(target=watch)
    th.start()
    out, err = proc.communicate()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(err.decode()[-1000:])
    return time.perf_counter() - t0, peak[0] / 2**20, cpu[0], out.decode()


def _groth16py_child(out: Path, wtns: Path) -> list[str]:
    """A child process that loads the proving key, then proves; prints both times as JSON."""
    code = ("import json, time; from pathlib import Path; import groth16py; "
            "from zk.prover import proving_key_path; t = time.perf_counter(); "
            f"pk = groth16py.ProvingKey.load(str(proving_key_path(Path({str(out)!r})))); "
            "t1 = time.perf_counter(); "
            f"groth16py.prove_wtns(pk, {str(wtns)!r}); "
            "print(json.dumps({'load_s': t1 - t, 'prove_s': time.perf_counter() - t1}))")
    return [sys.executable, "-c", code]


def prove_case(p: CircuitParams) -> dict[str, float]:
    """Compile, set up, witness and prove one (n, d); groth16py in a child process for its memory."""
    tag = f"n{p.n}_d{p.d}"
    t0 = time.perf_counter()
    out = compile_circuit(p)
    res: dict[str, float] = {f"compile_s_{tag}": time.perf_counter() - t0, f"constraints_{tag}": constraint_count(out)}
    t0 = time.perf_counter()
    dev_setup(p)
    res[f"setup_s_{tag}"] = time.perf_counter() - t0
    v, ups = _round_data(p)
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), v, ups)
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "w.wtns"
        t0 = time.perf_counter()
        compute_witness(out, w.inputs, wtns)
        res[f"witness_s_{tag}"] = time.perf_counter() - t0
        _, res[f"prove_peak_mib_{tag}"], res[f"prove_cpu_s_{tag}"], times = _peak(_groth16py_child(out, wtns))
        res[f"prove_s_{tag}"] = json.loads(times)["prove_s"]  # the key stays loaded in a prover node
        res[f"key_load_s_{tag}"] = json.loads(times)["load_s"]
        proof = prove_wtns(out, wtns)
    t0 = time.perf_counter()
    ok = verify(VerifyingKey.load(out / "verification_key.json"), proof, [w.public_input])
    res[f"verify_py_s_{tag}"] = time.perf_counter() - t0
    if not ok:
        raise RuntimeError(f"bench proof for {tag} did not verify")
    return res


def prover_comparison() -> dict[str, float]:
    """groth16py against snarkjs on one zkey: the commitment circuit with a local ceremony (cached)."""
    out = BUILD / "zk" / "bench-commit16"
    if not (out / "round.zkey").exists():
        ptau = ceremony.local_ptau(10, BUILD / "zk" / "ptau" / "local-10.ptau")
        compile_main(COMMIT_ONLY_SOURCE, out)
        ceremony.start(out, ptau)
        ceremony.contribute(out, "bench")
        ceremony.finalize(out, ptau)
    res: dict[str, float] = {"constraints_commit16": constraint_count(out)}
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "w.wtns"
        compute_witness(out, {"o": list(range(16))}, wtns)
        wall, res["prove_peak_mib_commit16_groth16py"], _, times = _peak(_groth16py_child(out, wtns))
        res["prove_s_commit16_groth16py"] = json.loads(times)["prove_s"]
        res["prove_wall_s_commit16_groth16py"] = wall
        snarkjs = [str(NODE_MODULES / ".bin" / "snarkjs"), "groth16", "prove", str(out / "round.zkey"), str(wtns),
                   str(Path(tmp) / "p.json"), str(Path(tmp) / "pub.json")]
        res["prove_wall_s_commit16_snarkjs"], res["prove_peak_mib_commit16_snarkjs"], _, _ = _peak(snarkjs)
    return res


def slope(n: int = 2, d0: int = 15, d1: int = 45) -> float:
    """Marginal constraints per proven parameter per trainer: (C(d1) - C(d0)) / ((d1 - d0) n), d multiples of 15."""
    c0 = constraint_count(compile_circuit(CircuitParams(n=n, d=d0)))
    c1 = constraint_count(compile_circuit(CircuitParams(n=n, d=d1)))
    return (c1 - c0) / ((d1 - d0) * n)


def gas_case(chain: Chain, p: CircuitParams) -> dict[str, int]:
    """postRound with a real proof on `chain`: its gas, and the gas verifyRound uses inside a transaction."""
    out = dev_setup(p)
    verifier = deploy_verifier(chain, out, allow_insecure=True)
    market = Marketplace.deploy(chain, chain.accounts[0],
                                compile_contracts(extra_dirs=(solidity_dir(out),))["FedMarket"])
    owner, agg, trainers = chain.accounts[0], chain.accounts[1], chain.accounts[2 : 2 + p.n]
    pp = ProjectParams.make(aggregator=agg.address, verifier=verifier.address, join_deadline=chain.now() + 10_000,
                            rounds=1, min_trainers=1, max_trainers=p.n, stake=10**15, aggregator_bond=10**18,
                            krum_f=p.f, krum_m=p.m, tau_pct=p.tau_pct, view_len=p.d, quant_bits=p.bits,
                            dup_pct=p.dup_pct, floor_pct=p.floor_pct,
                            slash_bps=0,  # the contract refuses slashing with plain Multi-Krum (tau_pct = 0)
                            model_commit=commit(torch.zeros(p.d, dtype=torch.int64), model_spec(QuantSpec(bits=p.bits))))
    pid = market.create_project(pp, 10**18, owner, task_cid=CID, model_cid=CID)
    market.bond(pid, agg)
    for t in trainers:
        market.join(pid, t)
    market.start(pid, owner)
    v, ups = _round_data(p)
    spec = QuantSpec(bits=p.bits)
    market.open_round(pid, commit(v, spec), agg)
    round_ = market.project(pid).round
    for t, u in zip(trainers, ups):
        market.submit_update(pid, round_, CID, commit(u, spec), t)
    if market.round_state(pid, round_).pending:
        chain.time_travel(market.project(pid).deadline - chain.now() + 1)
    w = _witness(p, RoundContext(chain.w3.eth.chain_id, market.address, pid, round_, p.n), v, ups)
    from zk.prover import prove

    proof = prove(out, w.inputs)
    receipt = market.post_round(pid, round_, CID, CID, w.model_commit, w.flags, w.scores, proof.words, agg)
    tx = chain.transact(verifier.functions.verifyRound(w.public_input, list(proof.words)), agg, gas=1_000_000)
    return {f"postRound_gas_n{p.n}": int(receipt["gasUsed"]),
            f"verifier_gas_n{p.n}": int(tx["gasUsed"]) - _intrinsic(w.public_input, proof)}


def _intrinsic(public_input: int, proof: Proof) -> int:
    """Intrinsic gas of a verifyRound transaction (21000 + calldata), to report the call's own gas."""
    data = bytes(4) + public_input.to_bytes(32, "big") + proof.to_bytes()
    return 21_000 + sum(16 if b else 4 for b in data) + 4 * 16  # selector counted as non-zero


def _anvil_chain(n_accounts: int) -> tuple[Chain, int]:
    """A fresh anvil with `n_accounts` funded development accounts; (chain, pid to stop)."""
    handle = start_anvil()
    chain = Chain.connect(handle.url, accounts=dev_accounts(n_accounts))
    for acct in chain.accounts[10:]:
        chain.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**22)])
    return chain, handle.pid


def estimate_constraints(n: int, d: int, screens: bool = False) -> int:
    """Rough size of RoundProof(n, d, 16): §6 sha256 blocks, range checks, distances, the model's view (two
    24-bit range checks, the average's n products and remainder checks, v's normalisation per value); `screens`
    (dup_pct or floor_pct > 0) adds the squared norms, one constraint per value per slot."""
    blocks = (8 * (138 + 41 * n) + 65 + 511) // 512
    model = d * (2 * 24 + n + 2 * n.bit_length() + 3)
    return 29_300 * blocks + 18 * (n + 1) * d + d * n * (n - 1) // 2 + model + (n * d if screens else 0)


def run(budget_s: float = 2400.0) -> dict:
    """All the figures that fit in `budget_s` seconds; skipped cases are named with the reason.

    Partial results are kept in build/zk/bench-partial.json as each case ends.
    """
    t_start = time.perf_counter()
    partial = BUILD / "zk" / "bench-partial.json"
    res: dict = {"prover_default": "groth16py", "setup": "INSECURE DEVELOPMENT SETUP (groth16py single-party)"}
    res["constraints_per_param"] = slope()
    skipped: list[str] = []
    chain, pid = _anvil_chain(40)
    try:
        for n in (4, 32):
            res.update(gas_case(chain, CircuitParams(n=n, d=15, f=1)))
            partial.write_text(json.dumps(res, indent=1))
    finally:
        stop_process(pid)
    for n, d in CASES:
        if time.perf_counter() - t_start > budget_s:
            skipped.append(f"n{n}_d{d}: time budget of {budget_s:.0f} s spent")
            continue
        estimate = estimate_constraints(n, d, screens=True)
        if estimate > MAX_CONSTRAINTS:
            skipped.append(f"n{n}_d{d}: ~{estimate} constraints exceed {MAX_CONSTRAINTS} on this machine")
            continue
        res.update(prove_case(CircuitParams(n=n, d=d, **CASE_RULE)))
        partial.write_text(json.dumps(res, indent=1))
    res.update(prover_comparison())
    res["snarkjs"] = ("round circuits need a ceremony .zkey and snarkjs cannot prepare a 2^17+ ptau here: "
                      "both provers are compared on the commitment circuit (prove_s_commit16_*)")
    res["skipped"] = skipped
    res["total_s"] = time.perf_counter() - t_start
    return res


if __name__ == "__main__":
    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 2400.0), indent=1))
