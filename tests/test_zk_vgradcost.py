"""zk/vgradcost.py and zk/circuits/bench/vgrad.circom: the proven validation direction's reference agrees with the
float sparsemax gradient, and the circuit accepts exactly that direction and its hints."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from market.errors import ProofError
from zk.prover import compute_witness
from zk.vgradcost import VGradParams, compile_case, direction, field_inputs, sparsemax_support

P = VGradParams(n=6, c=4, f=5)


def case(seed: int = 3) -> tuple[list[list[int]], list[int], list[list[int]], list[int]]:
    """A split and a model whose logits put some rows' sparsemax on one class and others' on several."""
    rng = random.Random(seed)
    X = [[rng.randrange(2**P.xb) for _ in range(P.f)] for _ in range(P.n)]
    W = [[rng.randrange(-(2**11), 2**11) for _ in range(P.f)] for _ in range(P.c)]
    return X, [rng.randrange(P.c) for _ in range(P.n)], W, [rng.randrange(-(2**11), 2**11) for _ in range(P.c)]


def float_direction(X: list[list[int]], labels: list[int], W: list[list[int]], b: list[int]) -> torch.Tensor:
    """Minus the sparsemax loss's gradient in float64 (scripts/hidden_split.py's formula), normalised to qmax and
    rounded: what the integers must reproduce."""
    x = torch.tensor(X, dtype=torch.float64) / 2**P.x_log2
    z = (x @ torch.tensor(W, dtype=torch.float64).T + torch.tensor(b, dtype=torch.float64)) / 2**P.w_log2
    z = z / P.temperature
    srt = torch.sort(z, 1, descending=True).values
    cum = srt.cumsum(1)
    size = (1 + torch.arange(1, P.c + 1, dtype=z.dtype) * srt > cum).sum(1, keepdim=True)
    prob = (z - (cum.gather(1, size - 1) - 1) / size).clamp(min=0)
    d = prob - torch.nn.functional.one_hot(torch.tensor(labels), P.c).double()
    g = -torch.cat([d.T @ x, d.sum(0)[:, None]], 1).flatten()
    return torch.round(g * P.qmax / g.abs().max())


def test_the_support_of_a_hand_computed_row() -> None:
    # z / K = (1, 0.5, -1): tau = 0.25, p = (0.75, 0.25, 0)
    assert sparsemax_support([4, 2, -4], 4) == [1, 1, 0]
    assert sparsemax_support([12, 0, 0], 4) == [1, 0, 0]  # z / K = (3, 0, 0): all on the first class
    assert sparsemax_support([1, 1, 1], 4) == [1, 1, 1]


def test_the_integer_direction_is_the_float_one() -> None:
    inputs = direction(P, *case())
    assert len({sum(s) for s in inputs["s"]}) > 1, "the case should mix support sizes"
    assert inputs["v"] == [int(x) for x in float_direction(*case())]
    assert max(abs(x) for x in inputs["v"]) == P.qmax


def test_a_zero_gradient_has_no_direction() -> None:
    X, labels, W, b = case()
    with pytest.raises(ProofError, match="gradient is zero"):
        direction(VGradParams(n=1, c=1, f=1), [[0]], [0], [[0]], [0])
    with pytest.raises(ProofError, match="5-bit features"):
        direction(P, [[32] * P.f] + X[1:], labels, W, b)


def test_the_circuit_takes_the_direction_and_refuses_any_other(tmp_path: Path) -> None:
    out = compile_case(P)
    inputs = direction(P, *case())
    compute_witness(out, field_inputs(inputs), tmp_path / "ok.wtns")
    tampered = {
        "v": lambda v: [v[0] + 1, *v[1:]],
        "s": lambda s: [[1 - s[0][0], *s[0][1:]], *s[1:]],
        "m": lambda m: [m[0] + 1, *m[1:]],
        "pick": lambda p: [*p[1:], p[0]],
        "Mx": lambda mx: mx + 1,
    }
    for key, change in tampered.items():
        bad = {**inputs, key: change(inputs[key])}
        with pytest.raises(ProofError, match="witness generation failed"):
            compute_witness(out, field_inputs(bad), tmp_path / f"{key}.wtns")
