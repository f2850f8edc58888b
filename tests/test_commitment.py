"""PROTOCOL §2 commitments: packing rules, and whole commitments against a JavaScript rendering over circomlibjs."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import numpy as np
import pytest
import torch

from market.errors import QuantizationError
from market.paths import NODE_MODULES, ROOT
from market.protocol.commitment import commit, commit_view, pack, per_element
from market.protocol.quant import QuantSpec

# PROTOCOL §2 written independently in JavaScript (BigInt packing, circomlibjs Poseidon).
JS = """
const {buildPoseidon} = require('circomlibjs');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
buildPoseidon().then(p => {
  const out = cases.map(({bits, q}) => {
    const per = Math.floor(252 / bits), off = 1n << BigInt(bits - 1);
    const elems = [];
    for (let i = 0; i < q.length; i += per) {
      let e = 0n;
      for (let j = 0; j < per && i + j < q.length; j++) e += (BigInt(q[i + j]) + off) << BigInt(bits * j);
      elems.push(e);
    }
    let h = BigInt(q.length);
    for (let b = 0; b === 0 || b < elems.length; b += 15) {
      const block = [h];
      for (let k = 0; k < 15; k++) block.push(b + k < elems.length ? elems[b + k] : 0n);
      h = BigInt(p.F.toString(p(block)));
    }
    return h.toString();
  });
  console.log(JSON.stringify(out));
});
"""


def js_commit(cases: list[tuple[int, list[int]]]) -> list[int]:
    """Commitments computed by the JavaScript rendering of §2."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "circomlibjs").is_dir():
        pytest.skip("node and npm circomlibjs are needed (scripts/bootstrap.sh)")
    payload = json.dumps([{"bits": b, "q": q} for b, q in cases])
    out = subprocess.run([node, "-e", JS], input=payload, capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"}, check=True)
    return [int(v) for v in json.loads(out.stdout)]


def test_commitments_match_javascript() -> None:
    rng = np.random.default_rng(3)
    cases: list[tuple[int, list[int]]] = []
    for bits, n in [(16, 0), (16, 1), (16, 15), (16, 16), (16, 225), (16, 226), (16, 1000), (8, 300), (5, 77),
                    (12, 500), (32, 40), (2, 130)]:
        qmax = 2 ** (bits - 1) - 1
        cases.append((bits, rng.integers(-qmax, qmax + 1, size=n).tolist()))
    cases.append((16, [32767] * 300))
    cases.append((16, [-32767] * 300))
    got = [commit(torch.tensor(q, dtype=torch.int64), QuantSpec(bits, 4)) for bits, q in cases]
    assert got == js_commit(cases)


def test_pack_layout() -> None:
    s = QuantSpec(16, 12)
    assert per_element(s) == 15
    assert pack([-32767, 32767, 0], s) == [1 + 65535 * 2**16 + 32768 * 2**32]
    assert pack(list(range(15)) + [0], s) == [sum((j + 32768) << (16 * j) for j in range(15)), 32768]
    s5 = QuantSpec(5, 2)
    assert pack([1, 2, 3, -1], s5) == [17 + 18 * 32 + 19 * 1024 + 15 * 32768]
    assert pack([], s) == []


def test_inputs_agree_and_ranges_are_checked() -> None:
    s = QuantSpec()
    q = [5, -7, 0, 32767]
    assert commit(q, s) == commit(torch.tensor(q), s) == commit(np.array(q, dtype=np.int32), s)
    assert commit([], s) == commit(torch.zeros(0, dtype=torch.int64), s)
    for bad in ([32768], [-32768], torch.tensor([0.5]), np.array([1.0])):
        with pytest.raises(QuantizationError):
            commit(bad, s)


def test_commit_view_is_the_slice() -> None:
    s = QuantSpec()
    q = torch.arange(-500, 500, dtype=torch.int64).reshape(10, 100)
    assert commit_view(q, 120, 300, s) == commit(q.reshape(-1)[120:420], s)
    with pytest.raises(QuantizationError):
        commit_view(q, 900, 101, s)


def test_commit_speed() -> None:
    s = QuantSpec()
    q = torch.randint(-s.qmax, s.qmax + 1, (45_000,))
    t0 = time.perf_counter()
    commit(q, s)
    rate = q.numel() / (time.perf_counter() - t0)
    # Target >= 100,000 parameters/s on one core; the bound here allows for a busy shared CI machine.
    assert rate > 30_000, f"{rate:.0f} parameters/s"
