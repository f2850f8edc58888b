"""What binding a round's data to the proof costs, per way of doing it (docs/ZK.md "The public input").

Four statements bind the same PROTOCOL §6 data (header, N slots of commitment, flag, score, rank):
(a) `sha`: sha256 of the 170 + 41 N bytes, one public input (today); (b) `poseidon16`: a Poseidon(16)
chain over the data packed into field elements, one public input, recomputed on chain by a
PoseidonCommit-style contract; (c) `plain`: the packed elements are the public inputs; (d) `fold`: the
contract folds a Poseidon(5) seed at openRound and each revealed commitment with Poseidon(3) at reveal
(paid by the trainer), the proof takes the fold, modelOut and the slot words as public inputs.

`run()` measures, here: constraints of zk/circuits/bench/pubinput.circom's templates (circom2), proving
time of some of them (groth16py, development keys), and on a fresh anvil the gas of sha256, of
PoseidonCommit per Poseidon(16) block, of circomlibjs' Poseidon(2..6) contracts, of generated Groth16
verifiers with k public inputs (real proofs) and of today's postRound at each N; `cost_table` turns
those figures into constraints, proving seconds and postRound gas per option and N.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from market.paths import BUILD, NODE_MODULES, ROOT
from market.protocol.constants import FIELD_MODULUS
from zk.build import CIRCUITS, compile_main, constraint_count

SLOTS = (4, 8, 16, 32)
BENCH_SOURCE = CIRCUITS / "bench" / "pubinput.circom"
#: Poseidon widths (inputs per call) measured on chain with circomlibjs' generated contracts.
SMALL_WIDTHS = (2, 3, 5, 6)
#: Bench circuits proven to measure groth16py's time per constraint (the SHA ones dominate the fit).
PROVE_CIRCUITS = ("ShaInput(4)", "ShaInput(8)", "PoseidonInput(32,16)", "FoldInput(32)", "PlainInput(32)")
TIMINGS = ("constraints", "setup_s", "witness_s", "prove_s", "prove_cpu_s")
SHA_BLOCK_BITS = 512
SHA256_PRECOMPILE = "0x0000000000000000000000000000000000000002"
SLOT_WORD_BITS = 74  # flag (2) | score + 2^63 (64) | seq (8)
SLOTS_PER_WORD = 3
HEADER_WORDS = 6  # chainId | marketplace, projectId | round | nTrainers, vCommit, modelPrev, modelIn, modelOut
#: Inputs to the circomlibjs contracts for the fold: the seed at openRound, one step per reveal.
FOLD_SEED_WIDTH = 5
FOLD_STEP_WIDTH = 3
BENCH_CID = bytes.fromhex("01551220") + bytes(range(32))
MODEL_COMMIT = 0x4D0D_E100

GAS_METER = """// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;
/// Gas of one external call as a contract pays it (cold target included); zk/hashcost.py only.
contract HashCostMeter {
    function measure(address target, bytes calldata data) external returns (uint256 used, bool ok) {
        uint256 g = gasleft();
        (ok, ) = target.call(data);
        used = g - gasleft();
    }
}
"""


# ---- pure arithmetic (unit-tested) -------------------------------------------------------------


def data_bytes(n: int) -> int:
    """Length of PROTOCOL §6's data for n slots."""
    return 170 + 41 * n


def sha_blocks(n: int) -> int:
    """SHA-256 compression blocks over the §6 data (padding: a 1 bit and the 64-bit length)."""
    return (8 * data_bytes(n) + 1 + 64 + SHA_BLOCK_BITS - 1) // SHA_BLOCK_BITS


def slot_words(n: int) -> int:
    """Field elements holding n slots' (flag, score, seq), three 74-bit slots per element."""
    return (n + SLOTS_PER_WORD - 1) // SLOTS_PER_WORD


def packed_count(n: int) -> int:
    """Field elements of the packed round data (pubinput.circom `packedCount`)."""
    return HEADER_WORDS + n + slot_words(n)


def chain_blocks(elements: int, width: int) -> int:
    """Poseidon(width) calls of a §2-style chain absorbing `elements` (width - 1 per call, plus the chain value)."""
    return max(1, -(-elements // (width - 1)))


def fold_inputs(n: int) -> int:
    """Public inputs of the fold statement: the fold, modelOut and the slot words."""
    return 2 + slot_words(n)


def pack_header(chain_id: int, marketplace: int, project: int, round_: int, n_trainers: int) -> tuple[int, int]:
    """The two header elements, as pubinput.circom packs them (and a contract would)."""
    if not (chain_id < 2**64 and marketplace < 2**160 and project < 2**64 and round_ < 2**32 and n_trainers < 2**16):
        raise ValueError("header value out of its §6 width")
    return chain_id | marketplace << 64, project | round_ << 64 | n_trainers << 96


def pack_slots(flags: Sequence[int], scores: Sequence[int], seqs: Sequence[int]) -> list[int]:
    """The slot words: slot i = flag | (score + 2^63) << 2 | seq << 66 at bit 74 (i mod 3) of word i // 3."""
    words = [0] * slot_words(len(flags))
    for i, (f, s, q) in enumerate(zip(flags, scores, seqs, strict=True)):
        if not (0 <= f < 4 and -(2**63) <= s < 2**63 and 0 <= q < 256):
            raise ValueError(f"slot {i}: flag, score or seq out of range")
        words[i // SLOTS_PER_WORD] |= (f | (s + 2**63) << 2 | q << 66) << (SLOT_WORD_BITS * (i % SLOTS_PER_WORD))
    return words


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys against xs: fixed and marginal cost from a few measurements."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - slope * mx, slope


def cost_table(m: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Per option and N: hashing constraints, proving seconds (constraints x measured s/constraint),
    gas of the binding in postRound (hash + verifier), the whole postRound, and gas paid outside it.

    `m` holds the measurements of `run()`: constraints[template], s_per_constraint, verifier
    (intercept, slope per public input), sha_gas[n], p16 (fixed, per block), small_gas[width],
    postRound_bookkeeping[n] (today's postRound less its verifier call, sha256 included).
    """
    c, rate = m["constraints"], m["s_per_constraint"]
    v0, v1 = m["verifier"]
    p16_fixed, p16_block = m["p16"]
    verifier = lambda k: v0 + v1 * k
    table: dict[str, dict[str, dict[str, float]]] = {}
    for n in SLOTS:
        shared = c[f"Shared({n})"]
        hashing = {
            "sha": c[f"ShaInput({n})"] - shared,
            "poseidon16": c[f"PoseidonInput({n},16)"] - shared,
            "plain": c[f"PlainInput({n})"] - shared,
            "fold": c[f"FoldInput({n})"] - shared,
        }
        bind = {
            "sha": m["sha_gas"][str(n)] + verifier(1),
            "poseidon16": p16_fixed + p16_block * chain_blocks(packed_count(n), 16) + verifier(1),
            "plain": verifier(packed_count(n)),
            "fold": verifier(fold_inputs(n)),
        }
        outside = {"sha": 0.0, "poseidon16": 0.0, "plain": 0.0,
                   "fold": m["small_gas"][str(FOLD_SEED_WIDTH)] + n * m["small_gas"][str(FOLD_STEP_WIDTH)]}
        rest = m["postRound_bookkeeping"][str(n)] - m["sha_gas"][str(n)]
        table[str(n)] = {
            name: {
                "constraints": hashing[name],
                "prove_s": round(hashing[name] * rate, 2),
                "public_inputs": {"sha": 1, "poseidon16": 1, "plain": packed_count(n), "fold": fold_inputs(n)}[name],
                "bind_gas": round(bind[name]),
                "postRound_gas": round(rest + bind[name]),
                "outside_postRound_gas": round(outside[name]),
            }
            for name in hashing
        }
    return table


# ---- measurements ----------------------------------------------------------------------------


def bench_dir(template: str) -> Path:
    """build/zk/bench/<hash>: the compiled template, keyed by the bench source and the template call."""
    key = hashlib.sha256(BENCH_SOURCE.read_bytes() + template.encode()).hexdigest()[:16]
    return BUILD / "zk" / "bench" / key


def compile_bench(template: str) -> Path:
    """Compile `component main = <template>` from pubinput.circom (cached); returns its folder."""
    out = bench_dir(template)
    if not (out / "main.r1cs").exists():
        src = f'pragma circom 2.1.0;\ninclude "bench/pubinput.circom";\ncomponent main = {template};\n'
        compile_main(src, out)
        (out / "template.txt").write_text(template)
    return out


def bench_inputs(template: str, seed: int = 1) -> dict[str, Any]:
    """Witness inputs for a bench template: a round with one absent slot (the last) and distinct ranks."""
    n = int(template.split("(")[1].split(",")[0].rstrip(")"))
    rng = random.Random(seed)
    present = [i < n - 1 for i in range(n)]
    ranks = rng.sample(range(n - 1), n - 1) + [0]
    inputs: dict[str, Any] = {
        "chainId": 31337, "marketplace": rng.getrandbits(160), "projectId": 7, "round": 3, "nTrainers": n,
        "vCommit": rng.randrange(1, FIELD_MODULUS), "modelPrev": rng.randrange(1, FIELD_MODULUS),
        "modelIn": rng.randrange(1, FIELD_MODULUS), "modelOut": rng.randrange(1, FIELD_MODULUS),
        "commitment": [rng.randrange(1, FIELD_MODULUS) if p else 0 for p in present],
        "flag": [rng.randrange(4) if p else 0 for p in present],
        "score": [rng.randrange(-(2**63), 2**63) % FIELD_MODULUS if p else 0 for p in present],
        "seq": ranks,
    }
    if template.startswith("FoldInput"):
        order = rng.sample(range(n - 1), n - 1)
        inputs["pos"] = [[int(s < n - 1 and order[s] == i) for i in range(n)] for s in range(n)]
    return inputs


def _witness(out: Path, template: str, wtns: Path) -> None:
    """The bench circuit's witness (Node + its wasm); raises on a violated constraint."""
    from zk.prover import compute_witness

    compute_witness(out, bench_inputs(template), wtns)


def prove_bench(template: str, tmp: Path) -> dict[str, Any]:
    """groth16py setup, witness and proof of a bench circuit: timings, proof words and public signals."""
    import groth16py

    from zk.prover import Proof

    out = compile_bench(template)
    t0 = time.perf_counter()
    pk, vk = groth16py.setup(str(out / "main.r1cs"))
    t1 = time.perf_counter()
    wtns = tmp / f"{bench_dir(template).name}.wtns"
    _witness(out, template, wtns)
    t2, c2 = time.perf_counter(), time.process_time()
    proof = Proof.from_bytes(groth16py.prove_wtns(pk, str(wtns)))
    t3, c3 = time.perf_counter(), time.process_time()
    publics = _public_signals(out, wtns)
    return {"template": template, "constraints": constraint_count(out), "setup_s": round(t1 - t0, 2),
            "witness_s": round(t2 - t1, 2), "prove_s": round(t3 - t2, 3), "prove_cpu_s": round(c3 - c2, 2),
            "proof": list(proof.words),
            "publics": publics, "vk": vk}


def _public_signals(out: Path, wtns: Path) -> list[int]:
    """The public signals of a witness (wires 1..nPublic of the .wtns), read with the r1cs header's count."""
    with (out / "main.r1cs").open("rb") as fh:
        fh.seek(8)
        for _ in range(int.from_bytes(fh.read(4), "little")):
            kind, size = int.from_bytes(fh.read(4), "little"), int.from_bytes(fh.read(8), "little")
            if kind == 1:
                n8 = int.from_bytes(fh.read(4), "little")
                fh.seek(n8 + 4, 1)
                n_out, n_pub = (int.from_bytes(fh.read(4), "little") for _ in range(2))
                break
            fh.seek(size, 1)
    data = wtns.read_bytes()
    # .wtns: magic, version, sections; section 1 = n8 (4), prime (n8), nWitness (4); section 2 = the values.
    pos, count = 12, int.from_bytes(data[8:12], "little")
    sections: dict[int, tuple[int, int]] = {}
    for _ in range(count):
        kind, size = int.from_bytes(data[pos : pos + 4], "little"), int.from_bytes(data[pos + 4 : pos + 12], "little")
        sections[kind] = (pos + 12, size)
        pos += 12 + size
    w8 = int.from_bytes(data[sections[1][0] : sections[1][0] + 4], "little")
    at = sections[2][0]
    return [int.from_bytes(data[at + w8 * i : at + w8 * (i + 1)], "little") for i in range(1, 1 + n_out + n_pub)]


def _hex(data: str | bytes) -> bytes:
    """Bytes from web3's 0x-hex (or bytes) encoding."""
    return bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)


def _circomlibjs_code(width: int) -> bytes:
    """Creation code of circomlibjs 0.1.7's generated Poseidon contract for `width` inputs."""
    script = f"import('circomlibjs').then(m => process.stdout.write(m.poseidonContract.createCode({width})))"
    res = subprocess.run(["node", "-e", script], cwd=NODE_MODULES.parent, capture_output=True, text=True, check=True)
    return bytes.fromhex(res.stdout.removeprefix("0x"))


def _round_gas(chain: Any, market: Any, check_verifier: Any, gas: Callable[[str, bytes], int], n: int) -> tuple[int, int]:
    """One n-trainer project through round 1 with the test-only HashCheckVerifier (accepts proof[0] == the
    public input): postRound's gas less the verifier call (today's bookkeeping, sha256 included), and the
    largest revealUpdate."""
    from market.chain.marketplace import ProjectParams

    owner, aggregator = chain.accounts[0], chain.accounts[1]
    trainers = chain.accounts[2 : 2 + n]
    hv = chain.deploy(check_verifier, n, sender=owner)
    params = ProjectParams.make(aggregator=aggregator.address, verifier=hv.address, join_deadline=chain.now() + 3_600,
                                rounds=1, min_trainers=n, max_trainers=n, stake=10**15, aggregator_bond=10**18,
                                model_commit=MODEL_COMMIT)
    chain.transact(hv.functions.setSettings([0, *params.circuit_settings]), owner)
    pid = market.create_project(params, 10**18, owner)
    market.bond(pid, aggregator)
    for t in trainers:
        market.join(pid, t)
    market.start(pid, owner)
    market.open_round(pid, 0x1234_5678, aggregator)
    reveal = max(r["gasUsed"] for r in market.submit_updates(pid, 1, [(t, BENCH_CID, (i + 1) << 8)
                                                                     for i, t in enumerate(trainers)]))
    flags, scores = [0] * n, [1_000 + i for i in range(n)]
    proof = [market.public_input(pid, 1, MODEL_COMMIT + 1, flags, scores)] + [0] * 7
    posted = market.post_round(pid, 1, BENCH_CID, BENCH_CID, MODEL_COMMIT + 1, flags, scores, proof, aggregator)["gasUsed"]
    return int(posted) - gas(hv.address, _hex(hv.encode_abi("verifyRound", [proof[0], proof]))), int(reveal)


def measure_chain(proven: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """On a fresh anvil: sha256 precompile gas at each N, PoseidonCommit per Poseidon(16) block, circomlibjs
    Poseidon(w) per call, the generated verifiers of the proven bench circuits, and today's postRound."""
    import numpy as np
    from eth_account import Account
    from eth_utils import keccak
    from web3 import Web3
    from web3.types import RPCEndpoint

    from market.chain.client import Chain, dev_accounts
    from market.chain.marketplace import Marketplace
    from market.chain.poseidon_contract import artifact as poseidon_artifact
    from market.chain.poseidon_contract import deploy_poseidon
    from market.protocol.commitment import pack
    from market.protocol.poseidon import poseidon
    from market.protocol.quant import QuantSpec
    from market.toolchain.anvil import fresh_anvil
    from market.toolchain.solc import compile_contracts

    with tempfile.TemporaryDirectory(prefix="fedmarket-hashcost-") as tmp:
        sol = Path(tmp)
        (sol / "HashCostMeter.sol").write_text(GAS_METER)
        names: dict[str, str] = {}
        for template, p in proven.items():
            name = f"BenchVerifier{len(names)}"
            (sol / f"{name}.sol").write_text(p["vk"].to_solidity(pragma="^0.8.28", contract_name=name))
            names[template] = name
        arts = compile_contracts([sol, ROOT / "tests" / "contracts"])
    with fresh_anvil() as anvil:
        accounts = dev_accounts(2) + [Account.from_key(keccak(b"fedmarket-hashcost-%d" % i)) for i in range(max(SLOTS))]
        chain = Chain.connect(anvil.url, accounts=accounts)
        for acct in accounts[2:]:
            chain.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**20)])
        owner = accounts[0]
        meter = chain.deploy(arts["HashCostMeter"], sender=owner)

        def gas(target: str, data: bytes) -> int:
            used, ok = chain.call(meter.functions.measure(Web3.to_checksum_address(target), data))
            if not ok:
                raise RuntimeError(f"bench call to {target} failed")
            return int(used)

        sha_gas = {str(n): gas(SHA256_PRECOMPILE, bytes(data_bytes(n))) for n in SLOTS}
        address = deploy_poseidon(chain, owner)
        pc = chain.contract(address, poseidon_artifact())
        spec = QuantSpec(bits=16)
        rng = np.random.default_rng(0)
        p16_blocks = (1, 2, 3, 4)
        views = [pack(rng.integers(-spec.qmax, spec.qmax, 225 * b, endpoint=True), spec) for b in p16_blocks]
        p16 = [gas(address, _hex(pc.encode_abi("commitPacked", [225 * b, 16, v]))) for b, v in zip(p16_blocks, views)]
        small: dict[str, int] = {}
        for w in SMALL_WIDTHS:
            addr = chain.deploy_code(_circomlibjs_code(w), owner)
            xs = list(range(1, w + 1))
            data = Web3.keccak(text=f"poseidon(uint256[{w}])")[:4] + b"".join(a.to_bytes(32, "big") for a in xs)
            out = chain.w3.eth.call({"to": Web3.to_checksum_address(addr), "data": data})
            if int.from_bytes(out, "big") != poseidon(xs):
                raise RuntimeError(f"circomlibjs Poseidon({w}) disagrees with market.protocol.poseidon")
            small[str(w)] = gas(addr, data)
        verifiers: dict[str, dict[str, int]] = {}
        for template, p in proven.items():
            v = chain.deploy(arts[names[template]], sender=owner)
            w = p["proof"]
            args: list[Any] = [[w[0], w[1]], [[w[2], w[3]], [w[4], w[5]]], [w[6], w[7]], p["publics"]]
            if not chain.call(v.functions.verifyProof(*args)):
                raise RuntimeError(f"the generated verifier refused the proof of {template}")
            verifiers[template] = {"public_inputs": len(p["publics"]), "gas": gas(v.address, _hex(v.encode_abi("verifyProof", args)))}
        market = Marketplace.deploy(chain, owner, arts["FedMarket"])
        post: dict[str, int] = {}
        reveal: dict[str, int] = {}
        for n in SLOTS:
            post[str(n)], reveal[str(n)] = _round_gas(chain, market, arts["HashCheckVerifier"], gas, n)
    return {"sha_gas": sha_gas, "p16_calls": dict(zip(map(str, p16_blocks), p16, strict=True)),
            "p16": fit_line(p16_blocks, p16), "small_gas": small, "verifiers": verifiers, "postRound_bookkeeping": post,
            "revealUpdate": reveal}


def run(log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict[str, Any]:
    """Compile every bench template, prove PROVE_CIRCUITS and the verifier-gas circuits, measure gas on
    anvil; returns the measurements and `cost_table`'s table (minutes on two cores)."""
    templates = [t for n in SLOTS for t in (f"Shared({n})", f"ShaInput({n})", f"PoseidonInput({n},16)",
                                               f"PlainInput({n})", f"FoldInput({n})")]
    templates += [f"PoseidonInput(32,{w})" for w in SMALL_WIDTHS]
    constraints: dict[str, int] = {}
    for t in templates:
        t0 = time.perf_counter()
        constraints[t] = constraint_count(compile_bench(t))
        log(f"{t}: {constraints[t]} constraints ({time.perf_counter() - t0:.0f} s)")
    gas_circuits = ["PoseidonInput(4,16)"] + [f"PlainInput({n})" for n in SLOTS] + [f"FoldInput({n})" for n in SLOTS]
    proven: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fedmarket-hashcost-") as tmp:
        for t in dict.fromkeys([*PROVE_CIRCUITS, *gas_circuits]):
            proven[t] = prove_bench(t, Path(tmp))
            log(f"{t}: setup {proven[t]['setup_s']} s, prove {proven[t]['prove_s']} s ({proven[t]['prove_cpu_s']} CPU-s)")
    timed = [proven[t] for t in PROVE_CIRCUITS]
    rate = sum(p["prove_s"] for p in timed) / sum(p["constraints"] for p in timed)
    chain = measure_chain(proven)
    verifier_fit = fit_line([v["public_inputs"] for v in chain["verifiers"].values()],
                            [v["gas"] for v in chain["verifiers"].values()])
    measured: dict[str, Any] = {
        "constraints": constraints,
        "proving": {t: {k: proven[t][k] for k in TIMINGS} for t in PROVE_CIRCUITS},
        "s_per_constraint": rate,
        "verifier": verifier_fit,
        "verifier_gas": chain["verifiers"],
        "sha_gas": chain["sha_gas"],
        "p16": chain["p16"],
        "p16_calls": chain["p16_calls"],
        "small_gas": chain["small_gas"],
        "postRound_bookkeeping": chain["postRound_bookkeeping"],
        "revealUpdate": chain["revealUpdate"],
    }
    measured["table"] = cost_table(measured)
    return measured


if __name__ == "__main__":
    print(json.dumps(run(), indent=1, default=str))
