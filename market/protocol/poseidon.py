"""Poseidon over BN254, bit-compatible with circomlib/circomlibjs for 1..16 inputs (t = 2..17).

A port of circomlibjs `poseidon_opt.js` (sparse partial rounds, after filecoin's neptune). The round
constants in `poseidon_constants.json.gz` are circomlibjs 0.1.7's `src/poseidon_constants_opt.json`
(GPL-3.0), gzipped unchanged.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import repeat
from operator import add, mul
from typing import Any

from market.protocol.constants import FIELD_MODULUS

try:  # GMP integers make the same arithmetic ~2x faster; plain ints give identical results.
    from gmpy2 import mpz as _num
except ImportError:  # pragma: no cover - depends on the environment
    _num = int

_P = _num(FIELD_MODULUS)
N_ROUNDS_F = 8
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)


@dataclass(frozen=True)
class _Params:
    """Constants for one width t, laid out for the loops below."""

    t: int
    c: tuple[int, ...]  # round constants, circomlibjs order
    m_cols: tuple[tuple[int, ...], ...]  # column i of M: new state[i] = sum_j M[j][i] * state[j]
    p_cols: tuple[tuple[int, ...], ...]  # the same for the pre-sparse matrix P
    s_first: tuple[int, ...]  # per partial round: weight of state[0] in the new state[0]
    s_rows: tuple[tuple[int, ...], ...]  # per partial round: weights of state[1..t-1] in the new state[0]
    s_cols: tuple[tuple[int, ...], ...]  # per partial round: how state[0] feeds state[1..t-1]


@cache
def _constants() -> dict[str, list[Any]]:
    """The vendored circomlibjs constants, parsed once."""
    raw = resources.files("market.protocol").joinpath("poseidon_constants.json.gz").read_bytes()
    return json.loads(gzip.decompress(raw))


@cache
def params(t: int) -> _Params:
    """The constants for width `t`, as ints."""
    opt = _constants()

    def ints(x: Iterable[object]) -> list[int]:
        return [_num(int(str(v), 16)) for v in x]

    c, s = ints(opt["C"][t - 2]), ints(opt["S"][t - 2])
    m = [ints(row) for row in opt["M"][t - 2]]
    p = [ints(row) for row in opt["P"][t - 2]]
    w = 2 * t - 1
    return _Params(
        t=t,
        c=tuple(c),
        m_cols=tuple(tuple(m[j][i] for j in range(t)) for i in range(t)),
        p_cols=tuple(tuple(p[j][i] for j in range(t)) for i in range(t)),
        s_first=tuple(s[w * r] for r in range(N_ROUNDS_P[t - 2])),
        s_rows=tuple(tuple(s[w * r + 1 : w * r + t]) for r in range(N_ROUNDS_P[t - 2])),
        s_cols=tuple(tuple(s[w * r + t : w * r + w]) for r in range(N_ROUNDS_P[t - 2])),
    )


def _pow5(a: int) -> int:
    """a**5 mod the field."""
    a2 = a * a % _P
    return a2 * a2 % _P * a % _P


def _full_round(state: list[int], cols: tuple[tuple[int, ...], ...], consts: Sequence[int] | None) -> list[int]:
    """S-box on every element, add the round constants (if any), mix with the matrix given by its columns."""
    state = [_pow5(a) for a in state]
    if consts is not None:
        state = list(map(add, state, consts))
    return [sum(map(mul, col, state)) % _P for col in cols]


def poseidon(inputs: Sequence[int], init_state: int = 0) -> int:
    """circomlib `Poseidon(n)` of `inputs` (1..16 field elements, reduced mod the BN254 scalar field)."""
    n = len(inputs)
    if not 1 <= n <= len(N_ROUNDS_P):
        raise ValueError(f"Poseidon takes 1..{len(N_ROUNDS_P)} inputs, got {n}")
    t = n + 1
    prm = params(t)
    c, half = prm.c, N_ROUNDS_F // 2
    state = [(_num(v) + k) % _P for v, k in zip([init_state, *inputs], c[:t], strict=True)]
    for r in range(half - 1):
        state = _full_round(state, prm.m_cols, c[(r + 1) * t : (r + 2) * t])
    state = _full_round(state, prm.p_cols, c[half * t : (half + 1) * t])
    base = (half + 1) * t
    # Sparse partial rounds; state[1..] stays unreduced (under 520 bits) until after the last one.
    x, rest = state[0], state[1:]
    for r, (first, row, col) in enumerate(zip(prm.s_first, prm.s_rows, prm.s_cols, strict=True)):
        a2 = x * x % _P
        x = (a2 * a2 % _P * x + c[base + r]) % _P
        s0 = (first * x + sum(map(mul, row, rest))) % _P
        rest = list(map(add, rest, map(mul, repeat(x), col)))
        x = s0
    state = [x, *(a % _P for a in rest)]
    base += len(prm.s_rows)
    for r in range(half - 1):
        state = _full_round(state, prm.m_cols, c[base + r * t : base + (r + 1) * t])
    return int(_full_round(state, prm.m_cols, None)[0])
