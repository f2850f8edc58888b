"""Poseidon against circomlibjs 0.1.7 from npm (run here with node), for every width 1..16."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from market.paths import NODE_MODULES, ROOT
from market.protocol.constants import FIELD_MODULUS
from market.protocol.poseidon import poseidon

JS = """
const {buildPoseidon} = require('circomlibjs');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
buildPoseidon().then(p => {
  console.log(JSON.stringify(cases.map(c => p.F.toString(p(c.map(BigInt))))));
});
"""


def circomlibjs_poseidon(cases: list[list[int]]) -> list[int]:
    """Hash each input list with circomlibjs' poseidon (the reference implementation)."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "circomlibjs").is_dir():
        pytest.skip("node and npm circomlibjs are needed (scripts/bootstrap.sh)")
    out = subprocess.run(
        [node, "-e", JS], input=json.dumps([[str(v) for v in c] for c in cases]), capture_output=True, text=True,
        cwd=ROOT, env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"}, timeout=120, check=True,
    )
    return [int(v) for v in json.loads(out.stdout)]


def test_matches_circomlibjs_for_all_widths() -> None:
    rng = random.Random(7)
    cases = [[rng.randrange(FIELD_MODULUS) for _ in range(n)] for n in range(1, 17)]
    cases += [[0] * 16, [FIELD_MODULUS - 1] * 16, list(range(1, 17)), [1], [1, 2]]
    assert [poseidon(c) for c in cases] == circomlibjs_poseidon(cases)


def test_known_vectors() -> None:
    # circomlib's own test vectors (test/poseidoncircuit.js).
    assert poseidon([1, 2]) == 0x115CC0F5E7D690413DF64C6B9662E9CF2A3617F2743245519E19607A4417189A
    assert poseidon([1, 2, 3, 4]) == 0x299C867DB6C1FDD79DCEFA40E4510B9837E60EBB1CE0663DBAA525DF65250465


def test_input_count_is_checked() -> None:
    with pytest.raises(ValueError):
        poseidon([])
    with pytest.raises(ValueError):
        poseidon([0] * 17)
