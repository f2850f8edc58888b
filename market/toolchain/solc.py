"""Solidity compilation through py-solc-x, driving the npm `solc` package; artifacts cached by content hash."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from market.errors import CompileError, ToolchainError
from market.paths import BUILD, CONTRACTS, NODE_MODULES, ROOT

DRIVER = ROOT / "scripts" / "solc-driver.js"
#: The path of a Solidity import statement (`import "x";`, `import {A} from "x";`, `import * as A from "x";`).
IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*\s+from\s+)?["']([^"']+)["']""", re.MULTILINE)
SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                    "evm.deployedBytecode.immutableReferences"]}},
}


@dataclass(frozen=True)
class ContractArtifact:
    """One compiled contract: its ABI, creation and runtime bytecode (hex, no 0x), and where in the runtime
    code the constructor writes each immutable (by solc's AST id: its (byte offset, length) places, zero in
    `deployed_bytecode`)."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    immutables: dict[str, tuple[tuple[int, int], ...]]


def _source_name(path: Path) -> str:
    """The solc source unit name of a file: its path relative to the repository root when it lies inside it
    (so relative imports such as `../../contracts/X.sol` resolve), else its absolute real path (build output
    may live anywhere, e.g. under FEDMARKET_BUILD)."""
    real = path.resolve()
    return (real.relative_to(ROOT) if real.is_relative_to(ROOT) else real).as_posix()


def _sources(dirs: Sequence[Path]) -> dict[str, dict[str, str]]:
    """All .sol files under `dirs`, keyed by their source unit name."""
    return {_source_name(path): {"content": path.read_text()} for d in dirs for path in sorted(Path(d).rglob("*.sol"))}


def _standard_input(sources: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The solc standard-JSON input for `sources` with the project's settings."""
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compiler_version() -> str:
    """The npm solc version, part of the cache key."""
    package = NODE_MODULES / "solc" / "package.json"
    if not package.exists():
        raise ToolchainError(f"npm solc not found at {package}: run scripts/bootstrap.sh (npm install)")
    return str(json.loads(package.read_text())["version"])


def _format_errors(errors: list[dict[str, Any]]) -> str:
    """Compiler errors as `file:line:col: message` lines."""
    lines = []
    for err in errors:
        loc = err.get("sourceLocation") or {}
        text = err.get("formattedMessage") or err.get("message", "")
        where = loc.get("file", "?")
        lines.append(f"{where}: {text.strip()}")
    return "\n".join(lines)


def _run_solc(standard_input: dict[str, Any]) -> dict[str, Any]:
    """Compile through solcx with the Node driver as the solc binary; raise CompileError with file and line."""
    try:
        output = solcx.compile_standard(standard_input, solc_binary=DRIVER, allow_empty=True)
    except SolcError as exc:
        try:
            errors = json.loads(exc.stdout_data or "{}").get("errors", [])
        except (AttributeError, ValueError):
            errors = []
        detail = _format_errors([e for e in errors if e.get("severity") == "error"]) or str(exc)
        raise CompileError(f"Solidity compilation failed:\n{detail}") from None
    except FileNotFoundError as exc:
        raise ToolchainError(f"cannot run the solc driver ({exc}); is node installed?") from None
    fatal = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if fatal:
        raise CompileError(f"Solidity compilation failed:\n{_format_errors(fatal)}")
    return output


def compiles_alone(folder: Path) -> bool:
    """Whether the .sol files under `folder` import only each other (by relative paths that stay inside it) and npm
    packages (`@scope/...`, from node_modules either way), so that the folder compiles on its own; any other
    import (`../contracts/X.sol`, or a path the driver resolves against the repository) needs contracts/ beside it."""
    inside = folder.resolve()
    for path in folder.rglob("*.sol"):
        for target in IMPORT.findall(path.read_text()):
            if target.startswith("@"):
                continue
            if not target.startswith(("./", "../")) or not (path.parent / target).resolve().is_relative_to(inside):
                return False
    return True


def _compile_group(dirs: Sequence[Path]) -> dict[str, Any]:
    """solc's standard-JSON output for the .sol files under `dirs`, cached under build/solc by a content hash;
    a file lock lets one process compile while the others wait and reuse."""
    standard_input = _standard_input(_sources(dirs))
    key = hashlib.sha256(
        json.dumps([compiler_version(), standard_input], sort_keys=True).encode()
    ).hexdigest()[:24]
    cache = BUILD / "solc" / f"{key}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            output: dict[str, Any] = json.loads(cache.read_text())
        else:
            output = _run_solc(standard_input)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(output))
            tmp.replace(cache)
    return output


def compile_contracts(extra_dirs: Sequence[Path] = ()) -> dict[str, ContractArtifact]:
    """Compile contracts/ (and `extra_dirs`, e.g. test contracts or a generated verifier). A self-contained extra
    folder compiles on its own, so a new verifier does not recompile contracts/; the folders that import from
    outside themselves compile in one run together with contracts/."""
    folders = [Path(d) for d in extra_dirs]
    alone = [d for d in folders if compiles_alone(d)]
    groups = [[CONTRACTS, *(d for d in folders if d not in alone)], *([d] for d in alone)]
    artifacts: dict[str, ContractArtifact] = {}
    for group in groups:
        for source, contracts in _compile_group(group).get("contracts", {}).items():
            for name, data in contracts.items():
                artifacts[name] = ContractArtifact(
                    name=name,
                    source=source,
                    abi=data["abi"],
                    bytecode=data["evm"]["bytecode"]["object"],
                    deployed_bytecode=data["evm"]["deployedBytecode"]["object"],
                    immutables={ast_id: tuple((ref["start"], ref["length"]) for ref in refs)
                                for ast_id, refs in data["evm"]["deployedBytecode"]["immutableReferences"].items()},
                )
    return artifacts
