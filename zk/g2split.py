"""Development keys that load fast: the G2 query proven beside groth16py instead of inside it.

groth16py 0.2.0's `ProvingKey.load` checks every point, and the G2 subgroup checks of `b_g2_query` are ~97% of a
development key's load (docs/ZK.md, key loading). In a Groth16 proof only B's G2 half uses that query:
B2 = beta2 + sum_i w_i B2_i + s delta2, while C takes B's G1 half. So a copy of the key with `b_g2_query` at
infinity (`dev.g1.pk`) loads without those checks and proves A, C and beta2 + s delta2 as before; ffjavascript
(snarkjs' field library) adds sum_i w_i B2_i from the points kept apart (`dev.b2.bin`), in a Node child that runs
while groth16py proves. The sum is the same proof, for the same r and s: it verifies under the same key. The child
runs on one thread: groth16py proves on one core, and the sum (about a third of its time) fits beside it.
Both files come from this machine's own dev.pk (the same trust as loading it), split once under a lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
from pathlib import Path

from py_ecc import optimized_bn128 as bn

from market.errors import ProofError, ToolchainError
from market.paths import NODE_MODULES

#: The split key's files in an artifact folder: the key without its G2 query, then that query for ffjavascript.
G1_KEY, B2_BASES = "dev.g1.pk", "dev.b2.bin"
SCRIPT = Path(__file__).parent / "js" / "g2sum.mjs"
CHUNK = 1 << 16  # G2 points the Node child reads at a time (its peak at n = 16, d = 5,130: docs/ZK.md)
_MAGIC = b"g16pk1"
_G1, _G2 = 64, 128
#: ark-groth16's ProvingKey fields in order, as (name, byte size of a point, a vector?): the verifying key (alpha_g1,
#: beta_g2, gamma_g2, delta_g2, gamma_abc_g1), beta_g1, delta_g1, then the queries; the key's R1CS follows them.
_FIELDS = (("alpha_g1", _G1, False), ("beta_g2", _G2, False), ("gamma_g2", _G2, False), ("delta_g2", _G2, False),
           ("gamma_abc_g1", _G1, True), ("beta_g1", _G1, False), ("delta_g1", _G1, False), ("a_query", _G1, True),
           ("b_g1_query", _G1, True), ("b_g2_query", _G2, True), ("h_query", _G1, True), ("l_query", _G1, True))
_INFINITY = 0x40  # arkworks' flag, in the top bits of a point's last byte
_R = (1 << 256) % bn.field_modulus  # Montgomery's R for ffjavascript's little-endian Montgomery form


def fields(raw: bytes | bytearray) -> dict[str, tuple[int, int, int]]:
    """Each field of a groth16py proving key (magic, then ark-groth16's fields, uncompressed) as (offset of its first
    point, point count, bytes per point); ProofError for a file that is not one or ends inside a field."""
    if raw[:6] != _MAGIC:
        raise ProofError("not a groth16py proving key (no g16pk1 magic)")
    off, out = len(_MAGIC), {}
    for name, size, vector in _FIELDS:
        count = 1
        if vector:
            (count,) = struct.unpack_from("<Q", raw, off)
            off += 8
        if off + count * size > len(raw):
            raise ProofError(f"the proving key ends inside its {name}")
        out[name] = (off, count, size)
        off += count * size
    return out


def b2_query(raw: bytes | bytearray) -> tuple[int, int]:
    """(offset, count) of `b_g2_query` in a groth16py `dev.pk`."""
    start, count, _ = fields(raw)["b_g2_query"]
    return start, count


def at_infinity(key: bytearray, name: str) -> None:
    """Set every point of field `name` of a proving key to infinity, in place (arkworks' uncompressed encoding)."""
    start, count, size = fields(key)[name]
    key[start : start + count * size] = (bytes(size - 1) + bytes([_INFINITY])) * count


def split(raw: bytes | bytearray) -> tuple[bytearray, bytearray]:
    """(the key with every `b_g2_query` point at infinity, those points as ffjavascript bases)."""
    key = bytearray(raw)
    start, count = b2_query(key)
    bases = bytearray(count * _G2)
    mask = (1 << 254) - 1  # below arkworks' two flag bits
    for i in range(count):
        p = start + i * _G2
        if key[p + _G2 - 1] & _INFINITY:
            continue  # zeros: ffjavascript's affine point at infinity
        coords = [int.from_bytes(key[p + 32 * k : p + 32 * k + 32], "little") & mask for k in range(4)]
        bases[i * _G2 : (i + 1) * _G2] = ffjs_base(coords)
    at_infinity(key, "b_g2_query")
    return key, bases


def ffjs_base(coords: list[int]) -> bytes:
    """An affine G2 point (x.c0, x.c1, y.c0, y.c1: arkworks' order and ffjavascript's) as a base of dev.b2.bin."""
    return b"".join((c * _R % bn.field_modulus).to_bytes(32, "little") for c in coords)


def ensure_split(out: Path) -> None:
    """Write dev.b2.bin and then dev.g1.pk from <out>/dev.pk once (the key last: it marks the pair complete)."""
    if (out / G1_KEY).exists():
        return
    with (out / ".split.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / G1_KEY).exists():
            return
        key, bases = split((out / "dev.pk").read_bytes())
        for name, data in ((B2_BASES, bases), (G1_KEY, key)):
            tmp = out / f".{name}.{os.getpid()}"
            tmp.write_bytes(data)
            os.replace(tmp, out / name)


def b2_sum_command(out: Path, wtns: Path, chunk: int = CHUNK) -> list[str]:
    """The Node child's command line: sum_i w_i B2_i for the witness `wtns`, reading `chunk` bases at a time."""
    entry = NODE_MODULES / "ffjavascript" / "main.js"
    return ["node", str(SCRIPT), str(entry), str(out / B2_BASES), str(wtns), str(chunk)]


def start_b2_sum(out: Path, wtns: Path, chunk: int = CHUNK) -> subprocess.Popen[str]:
    """Start the Node child of `b2_sum_command` (read its sum with `b2_sum`)."""
    try:
        return subprocess.Popen(b2_sum_command(out, wtns, chunk), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    except OSError as e:
        raise ToolchainError(f"cannot run node for the proof's G2 sum ({e}): run scripts/bootstrap.sh") from None


def b2_sum(child: subprocess.Popen[str], timeout: float = 3600) -> tuple[bn.FQ2, bn.FQ2, bn.FQ2]:
    """The child's sum, as a py_ecc Jacobian point; ProofError with its output when it failed."""
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        raise ProofError(f"the proof's G2 sum did not finish within {timeout:g} s") from None
    if child.returncode != 0:
        raise ProofError(f"the proof's G2 sum failed (exit {child.returncode}): {stderr[-1500:]}")
    point = json.loads(stdout.strip().splitlines()[-1])
    if point["infinity"]:
        return bn.Z2
    x, y = (bn.FQ2([int(c) for c in point[k]]) for k in ("x", "y"))
    return (x, y, bn.FQ2.one())


def add_to_b(words: tuple[int, ...], b2: tuple[bn.FQ2, bn.FQ2, bn.FQ2]) -> tuple[int, ...]:
    """A proof's words (EVM order: a.x, a.y, b.x1, b.x0, b.y1, b.y0, c.x, c.y) with `b2` added to its B."""
    b = (bn.FQ2([words[3], words[2]]), bn.FQ2([words[5], words[4]]), bn.FQ2.one())
    x, y = bn.normalize(bn.add(b, b2))
    return (words[0], words[1], int(x.coeffs[1]), int(x.coeffs[0]), int(y.coeffs[1]), int(y.coeffs[0]), words[6],
            words[7])
