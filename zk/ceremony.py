"""Production keys: a public powers-of-tau file plus a phase-2 ceremony with snarkjs (docs/ZK.md).

The zkeys live in <artifacts>/ceremony/NNNN.zkey, one per contribution; `finalize` checks the
chain against the circuit and the ptau, and installs round.zkey, verification_key.json and a
groth16py proving key. Anyone may contribute; a forged proof needs every contributor to collude.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

from market.errors import ConfigError, ProofError
from zk import g2split
from zk.build import INSECURE_MARK, INSECURE_TEXT, run_node
from zk.verifier import VerifyingKey


def _zkeys(out: Path) -> list[Path]:
    """The ceremony's zkeys, in order."""
    return sorted((out / "ceremony").glob("[0-9][0-9][0-9][0-9].zkey"))


def _latest(out: Path) -> tuple[list[Path], Path]:
    """The zkeys and the next one's path; ProofError before `start` (nothing to contribute on)."""
    zkeys = _zkeys(out)
    if not zkeys:
        raise ProofError(f"no ceremony started in {out}: run `fedmarket zk ceremony start` first")
    return zkeys, out / "ceremony" / f"{len(zkeys):04d}.zkey"


def _local_mark(ptau: Path) -> Path:
    """Sidecar file that marks a ptau made by local_ptau."""
    return ptau.with_suffix(".INSECURE")


def local_ptau(power: int, path: Path, entropy: str | None = None) -> Path:
    """A prepared powers-of-tau made here with one contribution: development and tests only.

    snarkjs needs minutes at 2^12 and hours at 2^16+ on two cores; real deployments take a public ptau.
    """
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    p0, p1 = path.with_suffix(".0.ptau"), path.with_suffix(".1.ptau")
    run_node(["snarkjs", "powersoftau", "new", "bn128", str(power), str(p0)])
    run_node(["snarkjs", "powersoftau", "contribute", str(p0), str(p1), "--name=local",
              f"-e={entropy or secrets.token_hex(32)}"])
    run_node(["snarkjs", "powersoftau", "prepare", "phase2", str(p1), str(path)])
    p0.unlink()
    p1.unlink()
    _local_mark(path).write_text(INSECURE_TEXT)
    return path


def check_ptau(ptau: Path) -> None:
    """ConfigError naming `ptau` unless it is a readable powers-of-tau file (snarkjs' own error is a Node stack)."""
    try:
        with ptau.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(f"--ptau {ptau}: {exc.strerror or exc}") from None
    if magic != b"ptau":
        raise ConfigError(f"--ptau {ptau}: not a powers-of-tau file (snarkjs' .ptau starts with 'ptau')")


def start(out: Path, ptau: Path) -> Path:
    """Phase 2, step 0: the circuit-specific zkey (no contribution yet: delta == gamma)."""
    check_ptau(ptau)
    (out / "ceremony").mkdir(parents=True, exist_ok=True)
    first = out / "ceremony" / "0000.zkey"
    run_node(["snarkjs", "groth16", "setup", str(out / "main.r1cs"), str(ptau), str(first)])
    return first


def contribute(out: Path, name: str, entropy: str | None = None) -> Path:
    """Add one contribution to the latest zkey; prints (and returns the zkey with) its hash."""
    zkeys, nxt = _latest(out)
    log = run_node(["snarkjs", "zkey", "contribute", str(zkeys[-1]), str(nxt), f"--name={name}",
                    f"-e={entropy or secrets.token_hex(32)}"])
    (out / "ceremony" / f"{nxt.stem}.log").write_text(log)
    return nxt


def beacon(out: Path, beacon_hex: str, iterations_log2: int = 10) -> Path:
    """A last, public-randomness contribution (e.g. a future block hash, as hex)."""
    if not beacon_hex or len(beacon_hex) % 2 or any(c not in "0123456789abcdefABCDEF" for c in beacon_hex):
        raise ConfigError(f"--hex {beacon_hex!r}: the beacon is an even number of hex digits (a block hash, say)")
    zkeys, nxt = _latest(out)
    run_node(["snarkjs", "zkey", "beacon", str(zkeys[-1]), str(nxt), beacon_hex, str(iterations_log2),
              "--name=beacon"])
    return nxt


def finalize(out: Path, ptau: Path) -> Path:
    """Verify the last zkey against circuit and ptau, export its keys and mark the folder."""
    import groth16py

    check_ptau(ptau)
    zkeys = _zkeys(out)
    if len(zkeys) < 2:
        raise ProofError("a ceremony needs at least one phase-2 contribution")
    final = zkeys[-1]
    report = run_node(["snarkjs", "zkey", "verify", str(out / "main.r1cs"), str(ptau), str(final)])
    if "ZKey Ok!" not in report:
        raise ProofError(f"zkey verification failed:\n{report[-2000:]}")
    vk_path = out / "ceremony" / "verification_key.json"
    run_node(["snarkjs", "zkey", "export", "verificationkey", str(final), str(vk_path)])
    VerifyingKey.load(vk_path)  # refuses delta == gamma
    shutil.copy(final, out / "round.zkey")
    shutil.copy(vk_path, out / "verification_key.json")
    pk, _ = groth16py.import_zkey(str(out / "round.zkey"))
    pk.save(str(out / "ceremony.pk"))
    for stale in ("dev.pk", g2split.G1_KEY, g2split.B2_BASES, "sol"):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    mark: dict[str, object] = {"setup": "ceremony", "contributions": len(zkeys) - 1, "ptau": ptau.name}
    if _local_mark(ptau).exists():  # the ptau's maker alone can forge: still a development setup
        mark = {**mark, "setup": INSECURE_MARK, "warning": f"{INSECURE_TEXT} (local powers of tau)"}
    (out / "SETUP.json").write_text(json.dumps(mark, indent=1))
    (out / "ceremony" / "verify.log").write_text(report)
    return out
