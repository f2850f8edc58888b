"""Compile the round circuit and make its keys, cached under build/zk/<key> (docs/ZK.md)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

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
#: Who compiles the circuit: circom2 (npm, WASI: a 4 GiB address space), groth16py's in-process native circom-2
#: compiler (`setup_circom`, no such limit, compiles and sets up in one step), or "auto": native only where the
#: cost model predicts more constraints than circom2 compiles (costmodel.WASM_MAX_CONSTRAINTS).
Compiler = Literal["circom2", "native", "auto"]
WASM_MAGIC = b"\0asm\x01\0\0\0"


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
    """Number of R1CS constraints of <out>/main.r1cs (read from its header), or for a native build (no r1cs
    kept) the linear and non-linear constraints its compiler reported in circom.log."""
    r1cs = out / "main.r1cs"
    if not r1cs.exists() and (out / "circom.log").exists():
        log = (out / "circom.log").read_text()
        counts = re.findall(r"^(?:non-)?linear constraints: (\d+)$", log, re.M)
        if len(counts) != 2:
            raise CompileError(f"no constraint counts in {out / 'circom.log'}")
        return sum(int(c) for c in counts)
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


def dev_setup(params: CircuitParams, compiler: Compiler = "auto") -> Path:
    """Fast single-party setup with groth16py, marked and printed as INSECURE; cached.

    Keys already installed in the folder (an earlier dev setup or a ceremony) are kept. `compiler` picks
    circom2 + groth16py.setup or `native_setup` (see Compiler).
    """
    import groth16py

    if choose_compiler(params, compiler) == "native":
        return native_setup(params)
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


def choose_compiler(params: CircuitParams, compiler: Compiler = "auto") -> Literal["circom2", "native"]:
    """The compiler for `params`: the one asked for, or for "auto" circom2 unless its folder was built natively
    or the committed cost model predicts more constraints than circom2's 4 GiB can compile."""
    if compiler != "auto":
        return compiler
    from zk import costmodel

    out = artifact_dir(params)
    if (out / "SETUP.json").exists():
        return "native" if json.loads((out / "SETUP.json").read_text()).get("compiler") == "native" else "circom2"
    if not costmodel.MODEL_PATH.exists():
        return "circom2"
    predicted = costmodel.predict_constraints(costmodel.load_model()["constraints"], params.n, params.d)  # type: ignore[arg-type]
    return "native" if predicted > costmodel.WASM_MAX_CONSTRAINTS else "circom2"


def native_setup(params: CircuitParams, out: Path | None = None) -> Path:
    """Compile and set up in one step with groth16py's native circom-2 compiler (`setup_circom`), for circuits
    too large for circom2's WASI memory; INSECURE development keys like dev_setup's, cached in `out` (default
    artifact_dir). Writes dev.pk, verification_key.json, circom.log (the compiler's summary, whose counts
    `constraint_count` reads), main_js/main.wasm (the witness program, taken from the key) and SETUP.json
    (with the compile and setup seconds)."""
    out = artifact_dir(params) if out is None else out
    with _locked(out):
        if (out / "SETUP.json").exists():
            check_setup_mark(out)
            return out
        print(f"WARNING: {INSECURE_TEXT}", file=sys.stderr)
        (out / "params.json").write_text(json.dumps(asdict(params), sort_keys=True))
        (out / "main.circom").write_text(params.main_source())
        compile_s, total_s = _run_setup_circom(out)
        wasm = out / "main_js" / "main.wasm"
        wasm.parent.mkdir(exist_ok=True)
        wasm.write_bytes(key_wasm(out / "dev.pk"))
        mark = {"setup": INSECURE_MARK, "warning": INSECURE_TEXT, "compiler": "native",
                "tool": "groth16py.setup_circom", "constraints": constraint_count(out),
                "compile_s": compile_s, "setup_s": total_s - compile_s, "seconds": total_s}
        (out / "SETUP.json").write_text(json.dumps(mark, indent=1))  # last: marks the keys complete
    return out


def _run_setup_circom(out: Path) -> tuple[float, float]:
    """setup_circom on <out>/main.circom in a child process (the compiler prints its summary on file descriptor 1,
    which only a child's pipe captures; its memory goes back when it ends); (seconds to the end of the summary,
    i.e. the compile, and seconds in all). CompileError with its output when it fails."""
    import groth16py

    if not hasattr(groth16py, "setup_circom"):
        raise ToolchainError("this groth16py has no native circom compiler (setup_circom): install its wheel")
    code = ("import sys, groth16py; pk, vk = groth16py.setup_circom(sys.argv[1], sys.argv[2:4]); "
            "pk.save(sys.argv[4]); open(sys.argv[5], 'w').write(vk.to_json())")
    cmd = [sys.executable, "-c", code, str(out / "main.circom"), str(CIRCUITS), str(NODE_MODULES),
           str(out / "dev.pk"), str(out / "verification_key.json")]
    t0, compiled, lines = time.perf_counter(), 0.0, []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("labels:"):  # the summary's last line: the compiler is done, setup starts
                compiled = time.perf_counter() - t0
    log = "".join(lines)
    (out / "circom.log").write_text(log)
    if proc.returncode != 0 or not (out / "verification_key.json").exists():
        raise CompileError(f"setup_circom failed in {out} (exit {proc.returncode}):\n{log[-3000:]}")
    return compiled, time.perf_counter() - t0


def key_wasm(pk_path: Path) -> bytes:
    """The circuit's witness program stored in a setup_circom proving key (a length-prefixed wasm module, the
    same bytes circom2 writes as main.wasm); CompileError unless exactly one such module is found."""
    with pk_path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        found, i = [], data.find(WASM_MAGIC)
        while i >= 8:
            size = int.from_bytes(data[i - 8 : i], "little")
            if i + size <= len(data):
                found.append(data[i : i + size])
            i = data.find(WASM_MAGIC, i + 1)
    if len(found) != 1:
        raise CompileError(f"{pk_path} holds {len(found)} length-prefixed wasm modules, not one")
    return found[0]


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
