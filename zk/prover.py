"""Round proofs: witness with the circuit's wasm, Groth16 with groth16py (default) or snarkjs (reference)."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from market.errors import ProofError, ToolchainError
from market.paths import NODE_MODULES
from zk import g2split
from zk.build import run_node

Backend = Literal["groth16py", "snarkjs"]
DEFAULT_BACKEND: Backend = "groth16py"


@dataclass(frozen=True)
class Proof:
    """A Groth16 proof in EVM order: a.x, a.y, b.x1, b.x0, b.y1, b.y0, c.x, c.y."""

    words: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.words) != 8:
            raise ProofError(f"a proof has 8 words, got {len(self.words)}")

    @classmethod
    def from_bytes(cls, blob: bytes) -> Proof:
        """Parse the 256-byte Ethereum layout that groth16py returns."""
        if len(blob) != 256:
            raise ProofError(f"a proof is 256 bytes, got {len(blob)}")
        return cls(tuple(int.from_bytes(blob[32 * i : 32 * i + 32], "big") for i in range(8)))

    def to_bytes(self) -> bytes:
        """The 256-byte Ethereum layout."""
        return b"".join(w.to_bytes(32, "big") for w in self.words)

    @classmethod
    def from_snarkjs(cls, proof: dict[str, list]) -> Proof:
        """From snarkjs proof.json (G2 coordinates [c0, c1])."""
        a, b, c = proof["pi_a"], proof["pi_b"], proof["pi_c"]
        w = [a[0], a[1], b[0][1], b[0][0], b[1][1], b[1][0], c[0], c[1]]
        return cls(tuple(int(x) for x in w))

    def to_snarkjs(self) -> dict[str, object]:
        """To snarkjs proof.json."""
        w = [str(x) for x in self.words]
        return {"pi_a": [w[0], w[1], "1"], "pi_b": [[w[3], w[2]], [w[5], w[4]], ["1", "0"]],
                "pi_c": [w[6], w[7], "1"], "protocol": "groth16", "curve": "bn128"}


def compute_witness(out: Path, inputs: dict[str, object], wtns: Path) -> None:
    """Run the circuit's witness calculator (Node + wasm): circom2's generate_witness.js, or for a native build
    (zk.build.native_setup: the wasm only) snarkjs' `wtns calculate`; fails on any violated constraint."""
    js = out / "main_js"
    inp = wtns.with_suffix(".input.json")
    inp.write_text(json.dumps(_decimal(inputs)))
    if (js / "generate_witness.js").exists():
        cmd = ["node", str(js / "generate_witness.js"), str(js / "main.wasm"), str(inp), str(wtns)]
    else:
        cmd = [str(NODE_MODULES / ".bin" / "snarkjs"), "wtns", "calculate", str(js / "main.wasm"), str(inp), str(wtns)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ProofError(f"witness generation failed (the round's data is inconsistent): {res.stderr[-800:]}")


def _decimal(x: object) -> object:
    """Every integer as a decimal string (JSON numbers lose precision in Node)."""
    if isinstance(x, dict):
        return {k: _decimal(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_decimal(v) for v in x]
    return str(int(x))  # type: ignore[call-overload]


@functools.lru_cache(maxsize=4)
def _proving_key(path: str) -> Any:  # groth16py ships no type stubs
    """Load (once per process) a groth16py proving key: a `.zkey` with `import_zkey`, else a `.pk` file.

    `import_zkey` reads the points as stored, without curve or subgroup checks (a few seconds where `.pk`
    loading spends ~97% of its tens of seconds on the G2 subgroup checks). That is safe only for the
    round.zkey that `zk.ceremony.finalize` installed on this machine after `snarkjs zkey verify` checked it
    against the circuit and the ptau: `proving_key_path` returns no other zkey.
    """
    import groth16py

    if path.endswith(".zkey"):
        pk, _ = groth16py.import_zkey(path)
        return pk
    return groth16py.ProvingKey.load(path)


def proving_key_path(out: Path) -> Path:
    """The groth16py proving key in an artifact folder: a finalized ceremony's verified round.zkey (the fast
    format; finalize writes ceremony.pk after it), its ceremony.pk, else the development key without its G2 query
    (dev.g1.pk, split from dev.pk by zk.g2split: it loads without the G2 checks), else dev.pk itself."""
    if (out / "round.zkey").exists() and (out / "ceremony.pk").exists():
        return out / "round.zkey"
    for name in ("ceremony.pk", g2split.G1_KEY, "dev.pk"):
        if (out / name).exists():
            return out / name
    raise ProofError(f"no proving key in {out}: run zk.build.dev_setup or a ceremony")


def split_dev_key(out: Path) -> None:
    """Split a development folder's dev.pk once (zk.g2split) so that it loads fast; a ceremony's keys stay."""
    if (out / "dev.pk").exists() and not (out / "ceremony.pk").exists():
        g2split.ensure_split(out)


def load_proving_key(out: Path) -> Any:
    """The proving key of an artifact folder, loaded once per process (groth16py ships no type stubs); a
    development key is split first, once."""
    split_dev_key(out)
    return _proving_key(str(proving_key_path(out)))


def preload(out: Path, backend: Backend = DEFAULT_BACKEND) -> None:
    """Load the proving key now (tens of seconds for large circuits) so that the first proof is not slowed."""
    if backend == "groth16py":
        load_proving_key(out)


def prove_wtns(out: Path, wtns: Path, backend: Backend = DEFAULT_BACKEND) -> Proof:
    """Prove from a witness file with the chosen backend."""
    if backend == "groth16py":
        import groth16py

        pk = load_proving_key(out)
        if proving_key_path(out).name != g2split.G1_KEY:
            return Proof.from_bytes(groth16py.prove_wtns(pk, str(wtns)))
        child = g2split.start_b2_sum(out, wtns)  # B's G2 sum in Node, while groth16py proves the rest
        try:
            words = Proof.from_bytes(groth16py.prove_wtns(pk, str(wtns))).words
        except BaseException:
            child.kill()
            child.wait()
            raise
        return Proof(g2split.add_to_b(words, g2split.b2_sum(child)))
    zkey = out / "round.zkey"
    if not zkey.exists():
        raise ToolchainError(f"snarkjs needs a .zkey; {out} has a development key only (docs/ZK.md)")
    proof_json, public_json = wtns.with_suffix(".proof.json"), wtns.with_suffix(".public.json")
    run_node(["snarkjs", "groth16", "prove", str(zkey), str(wtns), str(proof_json), str(public_json)])
    return Proof.from_snarkjs(json.loads(proof_json.read_text()))


def prove(out: Path, inputs: dict[str, object], backend: Backend = DEFAULT_BACKEND) -> Proof:
    """Witness then proof for one set of circuit inputs."""
    with tempfile.TemporaryDirectory(prefix="fedmarket-zk-") as tmp:
        wtns = Path(tmp) / "round.wtns"
        compute_witness(out, inputs, wtns)
        return prove_wtns(out, wtns, backend)
