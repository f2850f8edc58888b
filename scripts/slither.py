"""Static analysis of contracts/ with slither (run by `make lint`): exits 1 on any High or Medium finding
that contracts/slither-triage.json does not explain, and lists the Low ones.

slither-analyzer pins web3<8 while the project pins web3 8, so slither runs from a venv of its own
(build/slither-venv, installed from requirements-slither.lock). crytic-compile drives the npm solc through
scripts/solc-driver.js (no compiler download) on a standard-JSON input with the project's own settings.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import venv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from market.paths import BUILD, CONTRACTS, ROOT
from market.toolchain.solc import DRIVER, SETTINGS

LOCK = ROOT / "requirements-slither.lock"
TRIAGE = CONTRACTS / "slither-triage.json"
TOOL_VENV = BUILD / "slither-venv"
INPUT = BUILD / "slither" / "standard-input.json"
GATED = ("High", "Medium")


@dataclass(frozen=True)
class Finding:
    """One slither result: its detector, impact, where it lies (Contract.function) and its text."""

    detector: str
    impact: str
    where: str
    description: str


@dataclass(frozen=True)
class Triage:
    """The triage file: detectors excluded as a whole, and explained findings by (detector, Contract.function)."""

    excluded: Mapping[str, str]
    explained: Mapping[tuple[str, str], str]


def ensure_tool_venv() -> Path:
    """The slither executable of the tool venv, (re)installed when the lock file or the interpreter changed.
    pip --no-deps with the fully pinned lock: no resolver run, and the venv needs no pip of its own."""
    stamp = hashlib.sha256(LOCK.read_bytes() + sys.version.encode()).hexdigest()[:16]
    stamp_file = TOOL_VENV / ".fedmarket-stamp"
    if not stamp_file.exists() or stamp_file.read_text().strip() != stamp:
        print(f"slither: installing {LOCK.name} into {TOOL_VENV}", flush=True)
        venv.EnvBuilder(clear=True, symlinks=True, with_pip=False).create(TOOL_VENV)
        python = TOOL_VENV / "bin" / "python"
        install = ["install", "-q", "--no-deps", "--no-compile", "-r", str(LOCK)]
        proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), *install], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"slither: installing {LOCK.name} failed (pip exit {proc.returncode})")
        stamp_file.write_text(stamp + "\n")
    return TOOL_VENV / "bin" / "slither"


def standard_input(contracts: Path, root: Path) -> dict[str, Any]:
    """The solc standard-JSON input for every .sol file under `contracts`, named relative to `root` as
    market.toolchain.solc names them, with the project's settings; crytic-compile sets the outputs."""
    sources = {path.relative_to(root).as_posix(): {"content": path.read_text()} for path in sorted(contracts.rglob("*.sol"))}
    settings = {key: value for key, value in SETTINGS.items() if key != "outputSelection"}
    return {"language": "Solidity", "sources": sources, "settings": settings}


def pinned_version(lock: str, package: str) -> str:
    """The exact version that the lock file's text pins `package` to (what the tool venv runs)."""
    for line in lock.splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise SystemExit(f"{LOCK.name} does not pin {package}")


def load_triage(path: Path) -> Triage:
    """Parse the triage file; every exclusion and entry must carry a one-line reason."""
    data = json.loads(path.read_text())
    excluded = dict(data.get("detectors_to_exclude", {}))
    explained: dict[tuple[str, str], str] = {}
    for entry in data.get("findings", []):
        explained[(entry["detector"], entry["function"])] = entry["reason"]
    for reason in [*excluded.values(), *explained.values()]:
        if not reason.strip() or "\n" in reason:
            raise SystemExit(f"{path}: every triage reason must be one non-empty line, got {reason!r}")
    return Triage(excluded=excluded, explained=explained)


def location(element: Mapping[str, Any]) -> str:
    """Where a result element lies, as Contract.member: nodes and local variables resolve to their function."""
    parent = element.get("type_specific_fields", {}).get("parent")
    if element.get("type") == "contract" or parent is None:
        return str(element.get("name", "?"))
    if parent.get("type") == "contract":
        return f"{parent['name']}.{element['name']}"
    return location(parent)


def findings(report: Mapping[str, Any]) -> list[Finding]:
    """The detector results of a `slither --json` report, located by their first element."""
    results = report.get("results", {}).get("detectors", [])
    return [
        Finding(
            detector=r["check"],
            impact=r["impact"],
            where=location(r["elements"][0]) if r.get("elements") else "?",
            description=r["description"].strip(),
        )
        for r in results
    ]


def classify(found: Iterable[Finding], triage: Triage) -> tuple[list[Finding], list[Finding], set[tuple[str, str]]]:
    """Split the gated (High/Medium) findings into unexplained and explained; also the triage keys that matched
    nothing (stale entries, e.g. after the contract changed)."""
    unexplained: list[Finding] = []
    explained: list[Finding] = []
    for f in found:
        if f.impact in GATED:
            (explained if (f.detector, f.where) in triage.explained else unexplained).append(f)
    stale = set(triage.explained) - {(f.detector, f.where) for f in explained}
    return unexplained, explained, stale


def run_slither(slither: Path, triage: Triage) -> dict[str, Any]:
    """Run slither on the project's standard-JSON input (dependencies, informational and optimization results
    left out) and return its JSON report; exit 2 with slither's output when it could not analyse."""
    INPUT.parent.mkdir(parents=True, exist_ok=True)
    INPUT.write_text(json.dumps(standard_input(CONTRACTS, ROOT), indent=1))
    cmd = [str(slither), str(INPUT), "--compile-force-framework", "solc-json", "--solc", str(DRIVER)]
    cmd += ["--filter-paths", "node_modules", "--exclude-informational", "--exclude-optimization"]
    cmd += ["--fail-none", "--disable-color", "--json", "-"]
    if triage.excluded:
        cmd += ["--exclude", ",".join(sorted(triage.excluded))]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        report = {"success": False}
    if proc.returncode != 0 or not report.get("success"):
        sys.stderr.write(proc.stderr + proc.stdout[-4000:])
        raise SystemExit(f"slither failed (exit {proc.returncode}): {report.get('error')}")
    return report


def main() -> int:
    """Install slither if needed, analyse contracts/, print the findings by impact; 1 if any is unexplained."""
    start = time.monotonic()
    slither = ensure_tool_venv()
    triage = load_triage(TRIAGE)
    version = pinned_version(LOCK.read_text(), "slither-analyzer")
    found = findings(run_slither(slither, triage))
    unexplained, explained, stale = classify(found, triage)
    for f in explained:
        print(f"slither: {f.impact} {f.detector} in {f.where}: triaged ({triage.explained[(f.detector, f.where)]})")
    lows: dict[str, list[str]] = {}
    for f in found:
        if f.impact == "Low":
            lows.setdefault(f.detector, []).append(f.where)
    for detector, places in sorted(lows.items()):
        print(f"slither: Low {detector} ({len(places)}): {', '.join(sorted(set(places)))}")
    for detector, function in sorted(stale):
        print(f"slither: warning: triage entry {detector} / {function} matches no finding (remove it from {TRIAGE.name}?)")
    for f in unexplained:
        print(f"slither: UNEXPLAINED {f.impact} {f.detector} in {f.where}:\n{f.description}\n")
    print(
        f"slither {version}: {len(found)} finding(s), {len(explained)} High/Medium triaged, "
        f"{len(unexplained)} unexplained ({time.monotonic() - start:.1f} s)"
    )
    if unexplained:
        print(f"slither: fix each unexplained finding, or triage it in {TRIAGE} with a one-line reason")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
