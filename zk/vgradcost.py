"""What proving the validation direction costs (README Limits: the statement change that stops the split's free riders).

Today every project publishes its validation split so that each trainer recomputes `v`; a free rider then trains on
that split and is paid up to 6.24 honest shares (`fedmarket eval`). If the split stayed secret and the round proof
computed `v` from its commitment, nobody could: `scripts/hidden_split.py sealed` measures what that buys, and
`sparsemax` that a loss without an exponential (the sparsemax loss of the logits over a temperature) ranks trainers as
well as the cross-entropy. This module measures the proof's side: `zk/circuits/bench/vgrad.circom`'s `VDirection`,
minus the sparsemax loss's gradient of a linear model on a committed split, normalised to max |v| = qmax, in exact
integers; `direction` is its reference (the circuit's inputs and hints, bit for bit). Not counted here: the model
view's unpacking (round.circom has it already) and the split's commitment (its 5-bit values are range-checked here;
for digits they pack into 346 field elements, about 24 Poseidon(16) blocks, some 12,000 constraints at
zk/costmodel.json's 499 a block).

Measured (2026-12-04, this machine, 2 cores, nothing else running; `--prove`): digits, T = 4: 674,123 constraints
(the two products 2 x 172,800, the features' range checks 86,400, the sparsemax about 121,500, the normalisation
about 117,600), compile 110.7 s (circom2), setup 36.6 s, witness 0.4 s, proof 14.9 s (groth16py), peak 1.7 GiB.
That is 1.43 times today's whole n = 8, d = 650 round circuit (472,874); as a second proof at the round's open,
while the trainers train, it would keep the round proof's 15 s target.

Run: `.venv/bin/python -m zk.vgradcost --json` (digits: 270 rows, 10 classes, 64 features; `--case N C F` for others,
`--prove` to time a development setup and proof).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from market.errors import ProofError
from market.paths import BUILD
from market.protocol.constants import FIELD_MODULUS
from zk.build import CIRCUITS, compile_main, constraint_count

SOURCE = CIRCUITS / "bench" / "vgrad.circom"
#: digits-softmax: the eval's validation split (270 rows of 8 x 8 pixels, 17 grey levels) and its 10 classes.
DIGITS = (270, 10, 64)


@dataclass(frozen=True)
class VGradParams:
    """One circuit: `n` rows, `c` classes, `f` features of `xb` bits; the model view's weights of `wb` bits (signed,
    scale 2^`w_log2`), the bias's input `bs` (the feature scale's 1); the sparsemax temperature `temperature` on the
    float logits; `qmax` the direction's bound."""

    n: int
    c: int
    f: int
    xb: int = 5
    wb: int = 24
    w_log2: int = 12
    x_log2: int = 4
    temperature: int = 4
    qmax: int = 2**15 - 1

    @property
    def bs(self) -> int:
        """The bias's input in X's units: 1.0 at X's scale 2^x_log2."""
        return 2**self.x_log2

    @property
    def k(self) -> int:
        """K: one unit of the sparsemax's input, z = Z / K (Z's scale times the temperature)."""
        return self.temperature * 2 ** (self.w_log2 + self.x_log2)

    @property
    def lcm(self) -> int:
        """L = lcm(1..C): every support size divides it, so D = K L (p - y) is an integer."""
        return math.lcm(*range(1, self.c + 1))

    @property
    def z_max(self) -> int:
        """A bound on |Z|."""
        return self.f * (2**self.xb - 1) * 2 ** (self.wb - 1) + self.bs * 2 ** (self.wb - 1)

    @property
    def zb(self) -> int:
        """Bits of the support's comparisons: |k Z - theta| + 1 <= 2 C z_max + K + 1."""
        return (2 * self.c * self.z_max + self.k + 1).bit_length()

    @property
    def gb(self) -> int:
        """Bits of the normalisation's comparisons: 2 max|g| and its remainders, |g| <= N K L max(2^xb - 1, bs)."""
        return (2 * self.n * self.k * self.lcm * max(2**self.xb - 1, self.bs) + 1).bit_length()

    def template(self) -> str:
        """The `component main` call."""
        return (f"VDirection({self.n}, {self.c}, {self.f}, {self.xb}, {self.zb}, {self.gb}, {self.k}, {self.lcm}, "
                f"{self.bs}, {self.qmax})")


def sparsemax_support(z: list[int], k_unit: int) -> list[int]:
    """The support of sparsemax(z / K) as 0/1 per class, exactly: the largest k with K + k z_(k) > sum_{j<=k} z_(j)
    (z sorted down); then the classes with k z_c > sum_top_k z - K."""
    top = sorted(z, reverse=True)
    size = max(k for k in range(1, len(z) + 1) if k_unit + k * top[k - 1] > sum(top[:k]))
    theta = sum(top[:size]) - k_unit
    support = [int(size * zc > theta) for zc in z]
    if sum(support) != size:
        raise ProofError("sparsemax support size disagrees with its threshold")
    return support


def direction(p: VGradParams, X: list[list[int]], labels: list[int], W: list[list[int]], b: list[int]) -> dict[str, Any]:
    """The circuit's inputs: the split, the model, the hints and `v` = floor((2 qmax g + M) / (2 M)), g minus the
    gradient (times N K L and X's scale), M = max |g| (ProofError when g = 0: no direction to prove)."""
    if any(not 0 <= x < 2**p.xb for row in X for x in row) or any(not 0 <= y < p.c for y in labels):
        raise ProofError(f"the split must hold {p.xb}-bit features and labels below {p.c}")
    D: list[list[int]] = []
    S: list[list[int]] = []
    m: list[int] = []
    for row, y in zip(X, labels):
        z = [sum(x * w for x, w in zip(row, W[c])) + p.bs * b[c] for c in range(p.c)]
        s = sparsemax_support(z, p.k)
        size = sum(s)
        theta = sum(zc for zc, sc in zip(z, s) if sc) - p.k
        S.append(s)
        m.append(p.lcm // size)
        D.append([sc * (size * zc - theta) * (p.lcm // size) - int(c == y) * p.k * p.lcm
                  for c, (zc, sc) in enumerate(zip(z, s))])
    g: list[int] = []
    for c in range(p.c):
        g += [-sum(d[c] * row[f] for d, row in zip(D, X)) for f in range(p.f)]
        g.append(-p.bs * sum(d[c] for d in D))
    mx = max(abs(x) for x in g)
    if mx == 0:
        raise ProofError("the split's gradient is zero at this model: v has no direction")
    j = next(i for i, x in enumerate(g) if abs(x) == mx)
    v = [(2 * p.qmax * x + mx) // (2 * mx) for x in g]
    return {"X": X, "Y": [[int(c == y) for c in range(p.c)] for y in labels], "W": W, "b": b, "s": S, "m": m,
            "pick": [int(i == j) for i in range(len(g))], "Mx": mx, "Mxinv": pow(mx, -1, FIELD_MODULUS), "v": v}


def field_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Every integer reduced into the field (negative weights and directions included)."""
    def red(x: Any) -> Any:
        return [red(y) for y in x] if isinstance(x, list) else int(x) % FIELD_MODULUS
    return {k: red(v) for k, v in inputs.items()}


def compile_case(p: VGradParams) -> Path:
    """Compile `component main = VDirection(...)` (cached under build/zk/bench by source and call)."""
    template = p.template()
    out = BUILD / "zk" / "bench" / hashlib.sha256(SOURCE.read_bytes() + template.encode()).hexdigest()[:16]
    if not (out / "main.r1cs").exists():
        compile_main(f'pragma circom 2.1.0;\ninclude "bench/vgrad.circom";\ncomponent main = {template};\n', out)
        (out / "template.txt").write_text(template)
    return out


def random_case(p: VGradParams, seed: int = 0) -> tuple[list[list[int]], list[int], list[list[int]], list[int]]:
    """A split and a model view of `p`'s shape: features uniform, weights of a few hundredths around zero."""
    import random

    rng = random.Random(seed)
    X = [[rng.randrange(2**p.xb) for _ in range(p.f)] for _ in range(p.n)]
    labels = [rng.randrange(p.c) for _ in range(p.n)]
    spread = 2 ** (p.w_log2 - 3)
    W = [[rng.randrange(-spread, spread) for _ in range(p.f)] for _ in range(p.c)]
    b = [rng.randrange(-spread, spread) for _ in range(p.c)]
    return X, labels, W, b


def measure(p: VGradParams, prove: bool = False) -> dict[str, Any]:
    """Constraints (and compile time) of one case; with `prove`, a development setup, the witness and a proof timed."""
    t0 = time.perf_counter()
    out = compile_case(p)
    res: dict[str, Any] = {"case": [p.n, p.c, p.f], "template": p.template(), "compile_s": round(time.perf_counter() - t0, 1),
                           "constraints": constraint_count(out)}
    if prove:
        import groth16py

        from zk.prover import Proof, compute_witness

        t1 = time.perf_counter()
        pk, _ = groth16py.setup(str(out / "main.r1cs"))
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="fedmarket-vgrad-") as tmp:
            wtns = Path(tmp) / "vgrad.wtns"
            compute_witness(out, field_inputs(direction(p, *random_case(p))), wtns)
            t3 = time.perf_counter()
            Proof.from_bytes(groth16py.prove_wtns(pk, str(wtns)))
            t4 = time.perf_counter()
        res.update(setup_s=round(t2 - t1, 1), witness_s=round(t3 - t2, 1), prove_s=round(t4 - t3, 1))
    return res


def main() -> None:
    """Print the measured cases."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs=3, type=int, action="append", metavar=("N", "C", "F"))
    parser.add_argument("--temperature", type=int, default=4)
    parser.add_argument("--prove", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = args.case or [list(DIGITS)]
    rows = [measure(VGradParams(n=n, c=c, f=f, temperature=args.temperature), args.prove) for n, c, f in cases]
    print(json.dumps(rows, indent=1) if args.json else "\n".join(map(str, rows)))


if __name__ == "__main__":
    main()
