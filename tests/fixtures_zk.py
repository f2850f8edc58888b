"""Shared helpers for the zero-knowledge tests: a tiny circuit, its dev keys and round data."""

from __future__ import annotations

import functools
import json

import torch

from market.paths import NODE_MODULES
from market.public_input import FIELD_MODULUS as R
from market.quant import QuantSpec

N_ROUNDS_P = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68]


@functools.lru_cache(maxsize=1)
def _constants() -> tuple[list, list]:
    """circomlibjs' reference Poseidon constants (C, M), as ints."""
    raw = json.loads((NODE_MODULES / "circomlibjs" / "src" / "poseidon_constants.json").read_text())
    c = [[int(x, 16) for x in row] for row in raw["C"]]
    m = [[[int(x, 16) for x in r] for r in mat] for mat in raw["M"]]
    return c, m


def ref_poseidon(inputs: list[int]) -> int:
    """Reference circomlib Poseidon (independent of market/poseidon.py), for cross-checks."""
    cs, ms = _constants()
    t = len(inputs) + 1
    c, m, rp = cs[t - 2], ms[t - 2], N_ROUNDS_P[t - 2]
    st = [0] + [x % R for x in inputs]
    for r in range(8 + rp):
        st = [(a + c[r * t + i]) % R for i, a in enumerate(st)]
        if r < 4 or r >= 4 + rp:
            st = [pow(a, 5, R) for a in st]
        else:
            st[0] = pow(st[0], 5, R)
        st = [sum(m[i][j] * st[j] for j in range(t)) % R for i in range(t)]
    return st[0]


def ref_commit(q: torch.Tensor, spec: QuantSpec) -> int:
    """PROTOCOL §2 commitment with the reference Poseidon."""
    vals = [int(x) + spec.offset for x in q.tolist()]
    per = 252 // spec.bits
    elems = [sum(o << (spec.bits * j) for j, o in enumerate(vals[s : s + per])) for s in range(0, len(vals), per)]
    h = len(vals)
    blocks = max(1, -(-len(elems) // 15))
    for bi in range(blocks):
        chunk = elems[15 * bi : 15 * bi + 15]
        h = ref_poseidon([h] + chunk + [0] * (15 - len(chunk)))
    return h
