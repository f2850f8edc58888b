"""Build output and node_modules may live anywhere: FEDMARKET_BUILD outside the repository, a symlinked node_modules.

market.paths reads the variables at import, so each case runs in a fresh interpreter with them set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from market.paths import NODE_MODULES, ROOT

#: The smallest circuit that includes circomlib (as round.circom does), with one public input.
TINY = 'pragma circom 2.1.0;\ninclude "circomlib/circuits/bitify.circom";\ncomponent main {public [in]} = Num2Bits(4);\n'

VERIFIER = f"""
import json, groth16py
from market.paths import BUILD
from zk.build import compile_main
from zk.onchain import verifier_artifacts
out = BUILD / "zk" / "tiny"
compile_main({TINY!r}, out)
_, vk = groth16py.setup(str(out / "main.r1cs"))
(out / "verification_key.json").write_text(vk.to_json())
groth16, wrapper = verifier_artifacts(out)
print(json.dumps({{"groth16": groth16.source, "wrapper": wrapper.source, "code": len(groth16.deployed_bytecode)}}))
"""

CIRCUIT = f"""
import sys
from pathlib import Path
from zk.build import circuit_key, compile_main, constraint_count, CircuitParams
out = Path(sys.argv[1])
compile_main({TINY!r}, out)
circuit_key(CircuitParams(n=2, d=1))  # reads circomlib's version through the link
print(constraint_count(out))
"""


def _run(code: str, env: dict[str, str], *args: str) -> str:
    """Run `code` in a fresh interpreter at the repository root with `env` added; its stdout."""
    res = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.fixture
def in_repo() -> Iterator[Path]:
    """A fresh folder inside the repository's (git-ignored) build/, removed afterwards."""
    path = ROOT / "build" / f"test-paths-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path)


def test_round_verifier_compiles_with_build_outside_the_repo(tmp_path: Path) -> None:
    build = tmp_path / "build"
    assert not build.resolve().is_relative_to(ROOT)
    out = json.loads(_run(VERIFIER, {"FEDMARKET_BUILD": str(build)}))
    assert out["groth16"] == (build / "zk" / "tiny" / "sol" / "Groth16Verifier.sol").resolve().as_posix()
    assert out["wrapper"] == "contracts/zk/RoundVerifier.sol" and out["code"] > 0
    assert list((build / "solc").glob("*.json")), "the solc cache lives under FEDMARKET_BUILD"


def test_circuit_compiles_through_a_symlinked_node_modules(tmp_path: Path, in_repo: Path) -> None:
    # node_modules elsewhere (a shared install), reached through a symlink inside the repository: circom runs
    # under WASI, which refuses any file whose real path leaves its working directory.
    shared = tmp_path / "shared" / "node_modules"
    shutil.copytree(NODE_MODULES / "circomlib", shared / "circomlib", symlinks=True)
    (shared / ".bin").mkdir()
    (shared / ".bin" / "circom2").symlink_to((NODE_MODULES / ".bin" / "circom2").resolve())
    link = in_repo / "node_modules"
    link.symlink_to(shared, target_is_directory=True)
    out = in_repo / "out"
    constraints = int(_run(CIRCUIT, {"FEDMARKET_NODE_MODULES": str(link)}, str(out)))
    assert constraints > 0 and (out / "main_js" / "main.wasm").is_file()
