"""Issue 14 item 4, measured and not adopted: does groth16py's snarkjs 0.1 JSON key reader load a development key faster?

groth16py 0.2.0's `ProvingKey.load` checks every G2 point of a `dev.pk` (docs/ZK.md, key loading); its
`import_snarkjs_pk` reads a legacy snarkjs 0.1 `groth` JSON key without subgroup checks. This script rewrites a
development key into that form: the arkworks points as they are (groth16py's setup uses the libsnark reduction,
whose H points are the monomial `tau^i Z(tau) / delta` that snarkjs 0.1 also used), the r1cs matrices as snarkjs
0.1's per-wire maps with its instance rows, and `null` C points for the public wires. It then times, in one run,
loading and two proofs with each key, and checks every proof with py-ecc.

Run: `.venv/bin/python scripts/legacy_key_load.py` (builds the n = 2, d = 4 circuit if needed; ~2 min, 1.5 GiB).

The legacy prover tries websnark's g = 7 FFT domain before snarkjs' g = 5 (groth16py's setup uses g = 5), so each
proof is made twice. `--permute` tries to make the first domain the right one: both roots generate the same subgroup,
w7 = w5^c, so constraint row j of the g = 5 key is row c^-1 j of a g = 7 one, and the key's points stay as they are.
groth16py 0.2.0 refuses such a key ("legacy prove: query shorter than assignment"); its source is not published, so
why is not known. Run: `.venv/bin/python scripts/legacy_key_load.py --permute`.
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from zk.bench import _round_data, _witness
from zk.build import CircuitParams, dev_setup
from zk.prover import Proof, compute_witness
from zk.verifier import VerifyingKey, verify
from zk.witness import RoundContext

FR = 21888242871839275222246405745257275088548364400416034343698204186575808495617  # BN254's scalar field
G1_INFINITY = ["0", "1", "0"]
G2_INFINITY = [["0", "0"], ["1", "0"], ["0", "0"]]


def _points(raw: bytes, off: int, n: int, size: int) -> list[Any]:
    """n arkworks uncompressed affine points (G1: size 64, G2: 128; little-endian coordinates, flags in the top two
    bits of the last byte, 0x40 = infinity) as snarkjs 0.1 projective decimal strings."""
    a = np.frombuffer(raw, dtype=np.uint8, count=size * n, offset=off).reshape(n, size).copy()
    infinity = a[:, size - 1] & 0x40
    a[:, size - 1] &= 0x3F
    out: list[Any] = []
    for row, inf in zip(a, infinity):
        if inf:
            out.append(G1_INFINITY if size == 64 else G2_INFINITY)
            continue
        c = [str(int.from_bytes(row[k : k + 32].tobytes(), "little")) for k in range(0, size, 32)]
        out.append([c[0], c[1], "1"] if size == 64 else [[c[0], c[1]], [c[2], c[3]], ["1", "0"]])
    return out


def read_dev_pk(path: Path) -> dict[str, Any]:
    """The arkworks ProvingKey inside a groth16py `dev.pk` (magic `g16pk1`, then ark-groth16's field order)."""
    raw = path.read_bytes()
    if raw[:6] != b"g16pk1":
        raise ValueError(f"{path} is not a groth16py proving key")
    off, pk = 6, {}

    def take(name: str, size: int, vector: bool = False) -> None:
        nonlocal off
        n = 1
        if vector:
            n = struct.unpack_from("<Q", raw, off)[0]
            off += 8
        pts = _points(raw, off, n, size)
        pk[name] = pts if vector else pts[0]
        off += n * size

    for name, size, vector in (("alpha1", 64, False), ("beta2", 128, False), ("gamma2", 128, False),
                               ("delta2", 128, False), ("gamma_abc", 64, True), ("beta1", 64, False),
                               ("delta1", 64, False), ("a", 64, True), ("b1", 64, True), ("b2", 128, True),
                               ("h", 64, True), ("l", 64, True)):
        take(name, size, vector)
    return pk


def read_r1cs(path: Path) -> tuple[int, int, list[list[list[tuple[int, int]]]]]:
    """(wires, public wires without the constant, constraints as [A, B, C] lists of (wire, coefficient))."""
    raw = path.read_bytes()
    sections: dict[int, int] = {}
    off = 12
    for _ in range(struct.unpack_from("<I", raw, 8)[0]):
        kind, size = struct.unpack_from("<IQ", raw, off)
        sections[kind] = off + 12
        off += 12 + size
    head = sections[1]
    field = struct.unpack_from("<I", raw, head)[0]
    wires, outputs, public, _, _, count = struct.unpack_from("<IIIIQI", raw, head + 4 + field)
    off, constraints = sections[2], []
    for _ in range(count):
        lcs = []
        for _ in range(3):
            terms = struct.unpack_from("<I", raw, off)[0]
            off += 4
            lc = []
            for _ in range(terms):
                lc.append((struct.unpack_from("<I", raw, off)[0], int.from_bytes(raw[off + 4 : off + 36], "little")))
                off += 36
            lcs.append(lc)
        constraints.append(lcs)
    return wires, outputs + public, constraints


def domain_exponent(r: int = FR) -> int:
    """c with w7 = w5^c, where wg = g^((r-1)/2^28) is the 2^28-th root of unity from generator g (Pohlig-Hellman)."""
    t = (r - 1) >> 28
    w5, w7 = pow(5, t, r), pow(7, t, r)
    c = 0
    for bit in range(28):
        if pow(w7 * pow(w5, (1 << 28) - c, r) % r, 1 << (27 - bit), r) != 1:
            c |= 1 << bit
    assert pow(w5, c, r) == w7
    return c


def legacy_key(out: Path, permute: bool = False) -> dict[str, Any]:
    """The snarkjs 0.1 `groth` proving key JSON of a development key folder; `permute`: rows in g = 7 domain order."""
    pk = read_dev_pk(out / "dev.pk")
    wires, public, constraints = read_r1cs(out / "main.r1cs")
    domain = 1
    while domain < len(constraints) + public + 1:
        domain *= 2
    inverse = pow(domain_exponent() % domain, -1, domain) if permute else 1
    pols: list[list[dict[str, str]]] = [[{} for _ in range(wires)] for _ in range(3)]
    for row, lcs in enumerate(constraints):
        for k in range(3):
            for wire, coef in lcs[k]:
                pols[k][wire][str(inverse * row % domain)] = str(coef)
    for s in range(public + 1):  # snarkjs 0.1's (and arkworks') instance rows
        pols[0][s][str(inverse * (len(constraints) + s) % domain)] = "1"
    return {
        "protocol": "groth", "nVars": wires, "nPublic": public, "domainBits": domain.bit_length() - 1,
        "domainSize": domain, "polsA": pols[0], "polsB": pols[1], "polsC": pols[2], "A": pk["a"], "B1": pk["b1"],
        "B2": pk["b2"], "C": [None] * (public + 1) + pk["l"], "vk_alfa_1": pk["alpha1"], "vk_beta_1": pk["beta1"],
        "vk_delta_1": pk["delta1"], "vk_beta_2": pk["beta2"], "vk_delta_2": pk["delta2"],
        "hExps": pk["h"] + [G1_INFINITY] * (domain + 1 - len(pk["h"])),
    }


def main() -> None:
    """Convert, then time load + two proofs with each key in this process; print one JSON object. With `--permute`:
    convert with rows in g = 7 order and print what one proof with that key gives."""
    import groth16py

    if "--permute" in sys.argv[1:]:
        permuted()
        return

    p = CircuitParams(n=2, d=4, f=0, m=2)
    out = dev_setup(p)
    vk = VerifyingKey.load(out / "verification_key.json")
    v, ups = _round_data(p)
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), v, ups)
    res: dict[str, Any] = {"n": p.n, "d": p.d}
    with tempfile.TemporaryDirectory() as tmp:
        wtns, legacy = Path(tmp) / "w.wtns", Path(tmp) / "legacy_pk.json"
        compute_witness(out, w.inputs, wtns)
        t0 = time.perf_counter()
        legacy.write_text(json.dumps(legacy_key(out)))
        res["convert_s"], res["legacy_mib"] = time.perf_counter() - t0, legacy.stat().st_size / 2**20
        for name, load in (("legacy", lambda: groth16py.import_snarkjs_pk(str(legacy), str(out / "verification_key.json"))[0]),
                           ("dev_pk", lambda: groth16py.ProvingKey.load(str(out / "dev.pk")))):
            t0 = time.perf_counter()
            key = load()
            res[f"{name}_load_s"] = time.perf_counter() - t0
            for i in (1, 2):
                t0 = time.perf_counter()
                proof = Proof.from_bytes(groth16py.prove_wtns(key, str(wtns)))
                res[f"{name}_prove{i}_s"] = time.perf_counter() - t0
                res[f"{name}_proof{i}_verifies"] = verify(vk, proof, [w.public_input])
            del key
    print(json.dumps({k: round(x, 2) if isinstance(x, float) else x for k, x in res.items()}))


def permuted() -> None:
    """One proof with the g = 7-ordered legacy key: the proof's time and check, or groth16py's refusal."""
    import groth16py

    p = CircuitParams(n=2, d=4, f=0, m=2)
    out = dev_setup(p)
    vk = VerifyingKey.load(out / "verification_key.json")
    v, ups = _round_data(p)
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), v, ups)
    res: dict[str, Any] = {"n": p.n, "d": p.d, "c": domain_exponent()}
    with tempfile.TemporaryDirectory() as tmp:
        wtns, legacy = Path(tmp) / "w.wtns", Path(tmp) / "legacy_pk.json"
        compute_witness(out, w.inputs, wtns)
        legacy.write_text(json.dumps(legacy_key(out, permute=True)))
        key = groth16py.import_snarkjs_pk(str(legacy), str(out / "verification_key.json"))[0]
        t0 = time.perf_counter()
        try:
            proof = Proof.from_bytes(groth16py.prove_wtns(key, str(wtns)))
        except Exception as exc:  # what groth16py says about the key is the finding
            res["refused"] = f"{type(exc).__name__}: {exc}"
        else:
            res["prove_s"], res["verifies"] = time.perf_counter() - t0, verify(vk, proof, [w.public_input])
    print(json.dumps({k: round(x, 2) if isinstance(x, float) else x for k, x in res.items()}))


if __name__ == "__main__":
    main()
