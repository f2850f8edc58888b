"""`fedmarket bench prove`: constraints, compile, setup, key load, witness and proving time, memory, verification
time and gas over n in {4, 8, 16, 32} and d in {650, 5130, 16384}, and the cost model (zk/costmodel.py) fitted
to them: a case that does not fit the budget or this machine is predicted, never dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import torch
from web3.types import RPCEndpoint

from market.chain.client import Chain, dev_accounts
from market.chain.marketplace import Marketplace, ProjectParams
from market.errors import FedMarketError
from market.paths import BUILD, NODE_MODULES
from market.protocol.commitment import commit, commit_directions
from market.protocol.quant import QuantSpec, model_spec
from market.toolchain.anvil import start_anvil
from market.toolchain.process import stop_process
from market.toolchain.solc import compile_contracts
from zk import ceremony, costmodel
from zk.build import (
    CircuitParams,
    artifact_dir,
    choose_compiler,
    compile_circuit,
    compile_main,
    constraint_count,
    dev_setup,
)
from zk.onchain import deploy_verifier, solidity_dir
from zk.prover import Proof, compute_witness, proving_key_path, split_dev_key
from zk.verifier import VerifyingKey, verify
from zk.witness import RoundContext, RoundWitness, Slot, build_witness

#: Proving cases (n, d): issue 14's curve; PRIORITY first (its targets), then the others cheapest first.
CASES = [(n, d) for d in (650, 5130, 16384) for n in (4, 8, 16, 32)]
PRIORITY = [(8, 650), (16, 5130)]
#: The rule of the proving cases: Multi-Krum f = 1 with both free-rider screens (examples/digits.toml).
CASE_RULE = {"f": 1, "dup_pct": 5, "floor_pct": 10}
#: Compile-only circuits whose constraint counts fit C(n, d): four or more n for e(n), two d for the slopes, two d
#: past one Poseidon block (225 values) for the commitments' blocks, and n = 16 so that the n^2 d term is not guessed
#: from n <= 8 alone.
FIT_N, FIT_D, FIT_EXTRA = (2, 3, 4, 6, 8), (15, 45), ((2, 240), (4, 240), (16, 15), (16, 45))
#: Share of this machine's memory a case may be predicted to need (the rest: the OS and the other jobs).
RAM_SHARE = 0.7
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


def _directions(p: CircuitParams, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(v, h, vCommit) of a bench round: a split step h normalised as v, from its own generator."""
    spec = QuantSpec(bits=p.bits)
    h = torch.randint(-spec.qmax, spec.qmax + 1, (p.d,), generator=torch.Generator().manual_seed(7))
    h[-1] = spec.qmax
    return v, h, commit_directions(v, h, spec)


def _witness(p: CircuitParams, ctx: RoundContext, v: torch.Tensor, ups: list[torch.Tensor]) -> RoundWitness:
    """Witness of a round from g(r-2) = g(r-1) = 0 where every trainer submitted, in slot order (seq = slot)."""
    spec = QuantSpec(bits=p.bits)
    zero = torch.zeros(p.d, dtype=torch.int64)
    return build_witness(p, ctx, *_directions(p, v), [Slot(commit(u, spec), u, i) for i, u in enumerate(ups)], zero, zero)


class StepTimeout(RuntimeError):
    """A measured step ran past the time left of the bench's budget and was stopped."""


def _peak(cmd: list[str], timeout: float | None = None) -> tuple[float, float, float, str]:
    """Run a command; (seconds, peak resident MiB, CPU seconds, stdout) of it and its children. StepTimeout
    when it runs longer than `timeout` seconds (it and its children are killed)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, cpu, killed = [0], [0.0], [False]

    def watch() -> None:
        while proc.poll() is None:
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs))
                cpu[0] = max(cpu[0], sum(sum(p.cpu_times()[:2]) for p in procs))
                if timeout is not None and time.perf_counter() - t0 > timeout:
                    killed[0] = True
                    for p in reversed(procs):
                        p.kill()
            except psutil.Error:
                pass  # a child ended between listing and reading: the next sample sees the rest
            time.sleep(0.05)

    th = threading.Thread(target=watch)
    th.start()
    out, err = proc.communicate()
    th.join()
    if killed[0]:
        raise StepTimeout(f"stopped after {time.perf_counter() - t0:.0f} s, the time left of the budget")
    if proc.returncode != 0:
        raise RuntimeError(_brief(err.decode(), 1500))
    return time.perf_counter() - t0, peak[0] / 2**20, cpu[0], out.decode()


def _brief(message: str, keep: int = 400) -> str:
    """The start and the end of a long error (a tool's usage line and its last frames)."""
    return message if len(message) <= 2 * keep else f"{message[:keep]} ... {message[-keep:]}"


#: The figures of each build step that its folder's bench-steps.json keeps (a native build is one step).
RECORDED = {"compile": ("compile_s", "compile_peak_mib"), "setup": ("setup_s", "setup_peak_mib"),
            "native": ("native_s", "native_peak_mib", "native_compile_s", "native_setup_s")}


def _recorded_steps(out: Path, res: dict[str, Any], steps: tuple[str, ...] = ("compile", "setup")) -> None:
    """Keep a build's cost with it: freshly measured `steps` figures (RECORDED) go to <out>/bench-steps.json, and
    a step found cached takes the figures recorded when it was built (`<step>_recorded`), if any."""
    record = out / "bench-steps.json"
    kept = json.loads(record.read_text()) if record.exists() else {}
    for step in steps:
        keys = RECORDED[step]
        if not res[f"{step}_cached"]:
            kept.update({k: res[k] for k in keys})
        elif all(k in kept for k in keys):
            res.update({k: kept[k] for k in keys}, **{f"{step}_recorded": True})
    record.write_text(json.dumps(kept, indent=1))


def _timed(name: str, cmd: list[str], deadline: float) -> tuple[float, float, float, str]:
    """`_peak` of one step of a case, stopped at `deadline` (time.perf_counter()); StepTimeout names the step."""
    try:
        return _peak(cmd, deadline - time.perf_counter())
    except StepTimeout as e:
        raise StepTimeout(f"{name} {e}") from None


def _groth16py_child(out: Path, wtns: Path) -> list[str]:
    """A child process that loads the proving key as the prover does (zk.prover), then proves; prints both times
    and the proof's CPU seconds (this process's: a split development key's Node child is not counted), and writes
    the proof next to the witness (`.proof`)."""
    code = ("import json, time; from pathlib import Path; "
            "from zk.prover import load_proving_key, prove_wtns; t = time.perf_counter(); "
            f"pk = load_proving_key(Path({str(out)!r})); "
            "t1 = time.perf_counter(); c1 = time.process_time(); "
            f"proof = prove_wtns(Path({str(out)!r}), Path({str(wtns)!r})).to_bytes(); t2 = time.perf_counter(); "
            f"Path({str(wtns.with_suffix('.proof'))!r}).write_bytes(proof); "
            "print(json.dumps({'load_s': t1 - t, 'prove_s': t2 - t1, 'prove_only_cpu_s': time.process_time() - c1}))")
    return [sys.executable, "-c", code]


def _build_child(p: CircuitParams, step: str) -> list[str]:
    """A child process running zk.build's `step` (compile_circuit or dev_setup) for `p`, to measure its memory."""
    code = (f"import json; from zk.build import CircuitParams, {step}; "
            f"{step}(CircuitParams(**json.loads({json.dumps(asdict(p))!r})))")
    return [sys.executable, "-c", code]


def _native_build(p: CircuitParams, res: dict[str, Any], deadline: float) -> None:
    """zk.build.native_setup (compile and setup in one child, groth16py's native circom-2) for a case circom2
    cannot compile: `native_s` and `native_peak_mib` for both, and the compile and setup seconds it recorded
    (`native_compile_s`, `native_setup_s`); kept apart from the circom2 figures that the cost model fits."""
    out = artifact_dir(p)
    res["compiler"], res["native_cached"] = "native", (out / "SETUP.json").exists()
    res["native_s"], res["native_peak_mib"], _, _ = _timed("native compile and setup",
                                                           _build_child(p, "native_setup"), deadline)
    mark = json.loads((out / "SETUP.json").read_text())
    res["native_compile_s"], res["native_setup_s"] = mark["compile_s"], mark["setup_s"]
    res["constraints"] = constraint_count(out)
    _recorded_steps(out, res, ("native",))


def prove_case(p: CircuitParams, deadline: float = float("inf")) -> dict[str, Any]:
    """Compile, set up, load the key, witness and prove one (n, d), each step with its time and the steps in
    child processes with their peak memory; `*_cached` says a step found its output already built. A case that
    circom2 cannot compile (by the cost model, or an earlier failure) is built natively (`_native_build`). A step
    still running at `deadline` (time.perf_counter()) is stopped: StepTimeout names it."""
    out = artifact_dir(p)
    res: dict[str, Any] = {"loadavg_1m_start": os.getloadavg()[0]}
    record = out / "bench-steps.json"
    failed = json.loads(record.read_text()).get("compile_failed") if record.exists() else None
    if failed or choose_compiler(p) == "native":
        if failed:
            res["circom2_failed"] = failed
        _native_build(p, res, deadline)
    else:
        res.update(compile_cached=(out / "main.r1cs").exists(), setup_cached=(out / "SETUP.json").exists())
        try:
            res["compile_s"], res["compile_peak_mib"], _, _ = _timed("compile", _build_child(p, "compile_circuit"),
                                                                     deadline)
        except StepTimeout:
            raise
        except RuntimeError as e:  # circom2 runs under WASI: a 4 GiB address space
            record.write_text(json.dumps({"compile_failed": _brief(str(e))}, indent=1))
            raise
        res["constraints"] = constraint_count(out)
        res["setup_s"], res["setup_peak_mib"], _, _ = _timed("setup", _build_child(p, "dev_setup"), deadline)
        _recorded_steps(out, res)
    t0 = time.perf_counter()
    split_dev_key(out)  # once a key, as the prover's first load would: not a load's cost
    res["split_s"] = time.perf_counter() - t0
    res["key_file"] = proving_key_path(out).name
    res["key_mib"] = proving_key_path(out).stat().st_size / 2**20
    v, ups = _round_data(p)
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), v, ups)
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "w.wtns"
        t0 = time.perf_counter()
        compute_witness(out, w.inputs, wtns)
        res["witness_s"] = time.perf_counter() - t0
        _, res["prove_peak_mib"], res["prove_cpu_s"], printed = _timed("key load and proof",
                                                                       _groth16py_child(out, wtns), deadline)
        times = json.loads(printed)
        res["prove_s"] = times["prove_s"]  # the key stays loaded in a prover node
        res["key_load_s"] = times["load_s"]
        res["prove_only_cpu_s"] = times["prove_only_cpu_s"]  # CPU over wall: the prover's cores
        proof = Proof.from_bytes(wtns.with_suffix(".proof").read_bytes())
    t0 = time.perf_counter()
    ok = verify(VerifyingKey.load(out / "verification_key.json"), proof, [w.public_input])
    res["verify_py_s"] = time.perf_counter() - t0
    if not ok:
        raise RuntimeError(f"bench proof for n{p.n}_d{p.d} did not verify")
    res["loadavg_1m_end"] = os.getloadavg()[0]
    return res


def measure_case(n: int, d: int, bits: int = 16) -> dict[str, Any]:
    """One case of the curve with the cases' rule at `bits`-bit quantization (a project's `quant_bits`), without
    the grid or refitting zk/costmodel.json: its figures beside the model's prediction (fitted at 16 bits, so
    given only for them)."""
    p = CircuitParams(n=n, d=d, bits=bits, **CASE_RULE)
    res: dict[str, Any] = {"case": f"n{n}_d{d}", "bits": bits, "case_rule": CASE_RULE, "cpus": os.cpu_count()}
    if bits == costmodel.BITS and costmodel.MODEL_PATH.exists():
        res["predicted_before"] = costmodel.predict(costmodel.load_model(), n, d)
    t0 = time.perf_counter()
    res.update(prove_case(p))
    res["total_s"] = time.perf_counter() - t0
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
    res.update(_key_loads(out))
    return res


def _key_loads(out: Path) -> dict[str, float]:
    """Seconds to load a finalized ceremony's key both ways: ceremony.pk (every point checked) and the verified
    round.zkey (`import_zkey`, unchecked: what zk.prover loads)."""
    import groth16py

    t0 = time.perf_counter()
    groth16py.ProvingKey.load(str(out / "ceremony.pk"))
    t1 = time.perf_counter()
    groth16py.import_zkey(str(out / "round.zkey"))
    return {"key_load_s_commit16_pk": t1 - t0, "key_load_s_commit16_zkey": time.perf_counter() - t1}


def constraint_samples() -> list[tuple[int, int, int]]:
    """(n, d, constraints) of the compile-only circuits FIT_N x FIT_D and FIT_EXTRA with the cases' rule (cached)."""
    grid = [*((n, d) for n in FIT_N for d in FIT_D), *FIT_EXTRA]
    return [(n, d, constraint_count(compile_circuit(CircuitParams(n=n, d=d, **CASE_RULE)))) for n, d in grid]


def per_param(samples: list[tuple[int, int, int]], n: int = 2) -> float:
    """Marginal constraints per proven parameter per trainer at n slots: (C(d1) - C(d0)) / ((d1 - d0) n)."""
    (d0, c0), (d1, c1) = sorted((d, c) for m, d, c in samples if m == n)[:2]
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
    market.open_round(pid, _directions(p, v)[2], agg)
    round_ = market.project(pid).round
    market.submit_updates(pid, round_, [(t, CID, commit(u, spec)) for t, u in zip(trainers, ups)], close_commits=True)
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


def _figures(tag: str, case: dict[str, Any]) -> dict[str, Any]:
    """A measured case's figures as flat `<figure>_<tag>` keys (as `fedmarket bench prove --json` always printed)."""
    return {f"{k}_{tag}": v for k, v in case.items() if k not in ("n", "d", "predicted_before")}


def _summary(model: dict[str, Any], first: dict[str, float], measured: dict[str, dict[str, Any]],
             reasons: dict[str, str]) -> dict[str, Any]:
    """The model, its check against the real counts, the breakdown of every case, the skipped cases predicted by
    the final model, and issue 14's keys (a skipped case's value is its prediction, named in `predicted_keys`)."""
    out: dict[str, Any] = {"cost_model": model, "constraints_check": {}, "breakdown": {}, "predicted": {}}
    for t, c in measured.items():
        guess = costmodel.predict_constraints(first, c["n"], c["d"])
        out["constraints_check"][t] = {"measured": c["constraints"], "from_small_compiles": guess,
                                       "error_pct": round(100 * (guess - c["constraints"]) / c["constraints"], 2)}
    for n, d in CASES:
        t = f"n{n}_d{d}"
        out["breakdown"][t] = costmodel.breakdown(model["constraints"], n, d)
        if t in reasons:
            out["predicted"][t] = {**costmodel.predict(model, n, d), "reason": reasons[t]}
    out["predicted_keys"] = []
    for key in ("prove_s_n16_d5130", "prove_peak_mib_n16_d5130", "key_load_s_n8_d650", "prove_s_n8_d650"):
        step, t = key.rsplit("_n", 1)[0], "n" + key.rsplit("_n", 1)[1]
        if t in measured:
            out[key] = measured[t][step]
        else:
            out[key] = out["predicted"][t][step]
            out["predicted_keys"].append(key)
    return out


def _fresh(measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured cases without the figures of steps that found their output cached and no record of its cost
    (a cache hit costs nothing)."""
    out = []
    for c in measured.values():
        unknown = tuple(s for s in ("compile", "setup", "native") if c.get(f"{s}_cached") and not c.get(f"{s}_recorded"))
        out.append({k: v for k, v in c.items() if not k.startswith(unknown)})
    return out


def _model(coef: dict[str, float], measured: dict[str, dict[str, Any]], prior: dict[str, Any]) -> dict[str, Any]:
    """The cost model: constraint coefficients, and step fits from the measured cases; steps not measured here
    keep the prior model's fit (zk/costmodel.json as the run found it)."""
    return {"constraints": coef, "steps": {**prior.get("steps", {}), **costmodel.fit_steps(_fresh(measured))}}


def run(budget_s: float = 2400.0, ram_mib: float | None = None, gas: bool = True) -> dict:
    """All the figures that fit in `budget_s` seconds and `ram_mib` of memory; every case that does not is
    predicted by the cost model (a `predicted` block with the reason), and the model is written to zk/costmodel.json.

    Partial results are kept in build/zk/bench-partial.json as each step ends.
    """
    t_start = time.perf_counter()
    ram = ram_mib if ram_mib is not None else RAM_SHARE * psutil.virtual_memory().total / 2**20
    partial = BUILD / "zk" / "bench-partial.json"
    partial.parent.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"prover_default": "groth16py", "setup": "INSECURE DEVELOPMENT SETUP (groth16py single-party)",
                           "case_rule": CASE_RULE, "cpus": os.cpu_count(), "ram_limit_mib": round(ram),
                           "loadavg_1m_start": os.getloadavg()[0]}
    samples = constraint_samples()
    res["constraint_samples"] = samples
    res["constraints_per_param"] = per_param(samples)
    coef = costmodel.fit_constraints(samples)
    prior = json.loads(costmodel.MODEL_PATH.read_text()) if costmodel.MODEL_PATH.exists() else {"steps": {}}
    partial.write_text(json.dumps(res, indent=1))
    if gas:
        chain, pid = _anvil_chain(40)
        try:
            for n in (4, 32):
                res.update(gas_case(chain, CircuitParams(n=n, d=15, f=1)))
                partial.write_text(json.dumps(res, indent=1))
        finally:
            stop_process(pid)
    measured: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str] = {}
    rest = sorted((c for c in CASES if c not in PRIORITY), key=lambda c: costmodel.predict_constraints(coef, *c))
    for n, d in [*PRIORITY, *rest]:
        tag = f"n{n}_d{d}"
        pred = costmodel.predict(_model(coef, measured, prior), n, d)
        reason = costmodel.skip_reason(pred, budget_s - (time.perf_counter() - t_start), ram)
        if reason is None:
            try:
                measured[tag] = {"n": n, "d": d, "predicted_before": pred,
                                 **prove_case(CircuitParams(n=n, d=d, **CASE_RULE), t_start + budget_s)}
            except StepTimeout as e:
                reason = f"{e}; the figures are predicted"
            except (RuntimeError, FedMarketError) as e:  # circom or groth16py out of memory, a tool failing
                reason = f"failed here: {_brief(str(e))}"
        if reason is not None:
            reasons[tag] = reason
            res.setdefault("predicted", {})[tag] = {**pred, "reason": reason}
        res.update(_figures(tag, measured.get(tag, {})))
        partial.write_text(json.dumps(res, indent=1))
    final_coef = costmodel.fit_constraints(samples + [(c["n"], c["d"], c["constraints"]) for c in measured.values()])
    model = _model(final_coef, measured, prior)
    res.update(_summary(model, coef, measured, reasons))
    costmodel.MODEL_PATH.write_text(json.dumps({**model, "fitted_on": {
        "constraint_samples": samples, "cases": {t: {k: c[k] for k in ("constraints", *costmodel.STEPS) if k in c}
                                                 for t, c in measured.items()},
        "steps_fitted_here": sorted(costmodel.fit_steps(_fresh(measured))), "cpus": os.cpu_count(),
        "command": "fedmarket bench prove"}}, indent=1) + "\n")
    res.update(prover_comparison())
    res["snarkjs"] = ("round circuits need a ceremony .zkey and snarkjs cannot prepare a 2^17+ ptau here: "
                      "both provers are compared on the commitment circuit (prove_s_commit16_*)")
    res["loadavg_1m_end"] = os.getloadavg()[0]
    res["total_s"] = time.perf_counter() - t_start
    partial.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 2400.0), indent=1))
