"""Compile the round circuit and make its keys, cached under build/zk/<key> (docs/ZK.md)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from market.errors import CompileError, ConfigError, ToolchainError, TooManySlots
from market.paths import BUILD, NODE_MODULES

if TYPE_CHECKING:
    from market.protocol.manifest import RuleConfig

CIRCUITS = Path(__file__).resolve().parent / "circuits"
INSECURE_MARK = "INSECURE DEVELOPMENT SETUP"
INSECURE_TEXT = (
    f"{INSECURE_MARK}: single-party Groth16 keys whose maker can forge proofs. "
    "Use a public ptau and a phase-2 ceremony (docs/ZK.md) for real value."
)


@dataclass(frozen=True)
class CircuitParams:
    """Template parameters of zk/circuits/round.circom (see its header)."""

    n: int
    d: int
    bits: int = 16
    f: int = 0
    m: int = 0
    tau_pct: int = 0
    dup_pct: int = 0
    floor_pct: int = 0

    def __post_init__(self) -> None:
        """ConfigError for settings the template cannot be built with (bad settings, not a bad proof)."""
        if not (self.n >= 2 and self.d >= 1 and 2 <= self.bits <= 32):
            raise ConfigError(f"unsupported circuit parameters {self}")
        if min(self.f, self.m, self.tau_pct, self.dup_pct, self.floor_pct) < 0:
            raise ConfigError("f, m, tau_pct, dup_pct and floor_pct must be >= 0")
        if self.n > TooManySlots.MAX_SLOTS:
            raise TooManySlots(self.n)

    @classmethod
    def for_rule(cls, n: int, d: int, bits: int, rule: RuleConfig) -> CircuitParams:
        """The circuit proving `rule` for n slots, a d-long view and `bits`-bit values; ConfigError
        for a rule the circuit does not prove (the registry's `project_rule`)."""
        from aggregator.rules.registry import project_rule

        project_rule(rule.rule)
        return cls(n=n, d=d, bits=bits, f=rule.f, m=rule.m, tau_pct=rule.tau_pct,
                   dup_pct=rule.dup_pct, floor_pct=rule.floor_pct)

    def main_source(self) -> str:
        """The circom main file instantiating the template with these parameters."""
        p = self
        return (
            "pragma circom 2.1.0;\n"
            'include "round.circom";\n'
            f"component main = RoundProof({p.n}, {p.d}, {p.bits}, {p.f}, {p.m}, {p.tau_pct}, {p.dup_pct}, {p.floor_pct});\n"
        )


def circuit_key(params: CircuitParams) -> str:
    """Cache key: hash of the circuit sources, the circomlib version and the parameters."""
    h = hashlib.sha256()
    for src in sorted(CIRCUITS.glob("*.circom")):
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    h.update(_circomlib_version().encode())
    h.update(json.dumps(asdict(params), sort_keys=True).encode())
    return h.hexdigest()[:16]


def artifact_dir(params: CircuitParams) -> Path:
    """build/zk/<key>: r1cs, wasm and keys for these parameters."""
    return BUILD / "zk" / circuit_key(params)


def _circomlib_version() -> str:
    """Version of the circomlib the circuit includes."""
    pkg = NODE_MODULES / "circomlib" / "package.json"
    if not pkg.exists():
        raise ToolchainError(f"circomlib not found at {pkg}: run scripts/bootstrap.sh")
    return str(json.loads(pkg.read_text())["version"])


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on <out>/.lock: one process builds, the others wait and reuse."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def compile_circuit(params: CircuitParams) -> Path:
    """circom2 --O2 --r1cs --wasm of the round circuit, once per key; returns the artifact folder."""
    out = artifact_dir(params)
    with _locked(out):
        if not ((out / "main.r1cs").exists() and (out / "main_js" / "main.wasm").exists()):
            (out / "params.json").write_text(json.dumps(asdict(params), sort_keys=True))
            compile_main(params.main_source(), out)
    return out


def compile_main(source: str, out: Path) -> None:
    """Compile a circom main file (it may include round.circom and circomlib) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "main.circom").write_text(source)
    circom = NODE_MODULES / ".bin" / "circom2"
    # circom2 runs under WASI, which opens a file only if its real path (symlinks resolved) lies below the
    # working directory; run it from the filesystem root so that build output and a node_modules that
    # is, or holds, a symlink to anywhere are all reachable.
    cwd = Path(out.absolute().anchor)
    rel = [os.path.relpath(x.absolute(), cwd) for x in (out / "main.circom", CIRCUITS, NODE_MODULES, out)]
    cmd = [str(circom), rel[0], "--O2", "--r1cs", "--wasm", "-l", rel[1], "-l", rel[2], "-o", rel[3]]
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as e:
        raise ToolchainError(f"cannot run {circom} ({e}): run scripts/bootstrap.sh") from None
    if res.returncode != 0 or not (out / "main.r1cs").exists():
        raise CompileError(f"circom failed in {out}:\n{res.stdout}\n{res.stderr}")
    (out / "circom.log").write_text(res.stdout)


def constraint_count(out: Path) -> int:
    """Number of R1CS constraints of <out>/main.r1cs (read from its header)."""
    r1cs = out / "main.r1cs"
    with r1cs.open("rb") as fh:
        fh.seek(8)
        for _ in range(int.from_bytes(fh.read(4), "little")):
            kind, size = int.from_bytes(fh.read(4), "little"), int.from_bytes(fh.read(8), "little")
            if kind == 1:  # header: n8, prime, nWires, nPubOut, nPubIn, nPrvIn, nLabels (u64), nConstraints
                n8 = int.from_bytes(fh.read(4), "little")
                fh.seek(n8 + 16 + 8, 1)
                return int.from_bytes(fh.read(4), "little")
            fh.seek(size, 1)
    raise CompileError(f"no header section in {r1cs}")


def dev_setup(params: CircuitParams) -> Path:
    """Fast single-party setup with groth16py, marked and printed as INSECURE; cached.

    Keys already installed in the folder (an earlier dev setup or a ceremony) are kept.
    """
    import groth16py

    out = compile_circuit(params)
    with _locked(out):
        if (out / "SETUP.json").exists():
            check_setup_mark(out)
            return out
        print(f"WARNING: {INSECURE_TEXT}", file=sys.stderr)
        t0 = time.perf_counter()
        pk, vk = groth16py.setup(str(out / "main.r1cs"))
        pk.save(str(out / "dev.pk"))
        (out / "verification_key.json").write_text(vk.to_json())
        mark = {"setup": INSECURE_MARK, "warning": INSECURE_TEXT, "seconds": time.perf_counter() - t0}
        (out / "SETUP.json").write_text(json.dumps(mark, indent=1))  # last: marks the keys complete
    return out


def check_setup_mark(out: Path) -> dict[str, object]:
    """Read the setup mark; warn loudly when the keys come from the insecure development setup."""
    mark = json.loads((out / "SETUP.json").read_text())
    if mark.get("setup") == INSECURE_MARK:
        print(f"WARNING: {INSECURE_TEXT} ({out})", file=sys.stderr)
    return mark


def is_insecure(out: Path) -> bool:
    """True when the keys in `out` come from the development setup."""
    return json.loads((out / "SETUP.json").read_text()).get("setup") == INSECURE_MARK


def run_node(args: list[str], cwd: Path | None = None, timeout: float = 3600) -> str:
    """Run a Node tool from node_modules/.bin; its stdout, or ToolchainError with its output."""
    exe = NODE_MODULES / ".bin" / args[0]
    try:
        res = subprocess.run([str(exe), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except OSError as e:
        raise ToolchainError(f"cannot run {exe} ({e}): run scripts/bootstrap.sh") from None
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{' '.join(args[:3])} did not finish within {timeout:g} s") from None
    if res.returncode != 0:
        raise ToolchainError(f"{' '.join(args[:3])} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return res.stdout
