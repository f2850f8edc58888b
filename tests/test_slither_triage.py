"""The slither gate of `make lint` (scripts/slither.py): how findings are located and matched against the
triage file, on slither's own JSON shapes; slither itself runs in `make lint`, not here."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

from market.paths import CONTRACTS, ROOT


def _load_gate() -> ModuleType:
    """scripts/slither.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("slither_gate", ROOT / "scripts" / "slither.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gate = _load_gate()

CONTRACT = {"type": "contract", "name": "FedMarket"}
FUNCTION = {"type": "function", "name": "_push", "type_specific_fields": {"parent": CONTRACT}}


def _result(check: str, impact: str, element: dict[str, Any]) -> dict[str, Any]:
    """A detector result as `slither --json` writes it (the fields the gate reads)."""
    return {"check": check, "impact": impact, "elements": [element], "description": f"{check} here\n"}


def test_location_resolves_nodes_and_locals_to_their_function() -> None:
    node = {"type": "node", "name": "to.call()", "type_specific_fields": {"parent": FUNCTION}}
    local = {"type": "variable", "name": "count", "type_specific_fields": {"parent": FUNCTION}}
    state = {"type": "variable", "name": "_projects", "type_specific_fields": {"parent": CONTRACT}}
    assert gate.location(FUNCTION) == "FedMarket._push"
    assert gate.location(node) == "FedMarket._push"
    assert gate.location(local) == "FedMarket._push"
    assert gate.location(state) == "FedMarket._projects"
    assert gate.location(CONTRACT) == "FedMarket"


def test_classify_gates_high_and_medium_only_and_reports_stale_entries() -> None:
    report = {
        "results": {
            "detectors": [
                _result("arbitrary-send-eth", "High", FUNCTION),
                _result("reentrancy-eth", "High", FUNCTION),
                _result("timestamp", "Low", FUNCTION),
            ]
        }
    }
    triage = gate.Triage(
        excluded={},
        explained={("arbitrary-send-eth", "FedMarket._push"): "pull payment", ("uninitialized-local", "FedMarket.gone"): "old"},
    )
    unexplained, explained, stale = gate.classify(gate.findings(report), triage)
    assert [(f.detector, f.where) for f in unexplained] == [("reentrancy-eth", "FedMarket._push")]
    assert [f.detector for f in explained] == ["arbitrary-send-eth"]
    assert stale == {("uninitialized-local", "FedMarket.gone")}


def test_triage_file_gives_one_line_reasons() -> None:
    triage = gate.load_triage(gate.TRIAGE)
    assert triage.explained
    assert all(reason.strip() and "\n" not in reason for reason in [*triage.excluded.values(), *triage.explained.values()])


def test_standard_input_covers_every_contract_with_project_settings() -> None:
    data = gate.standard_input(CONTRACTS, ROOT)
    assert "contracts/FedMarket.sol" in data["sources"]
    assert "contracts/zk/RoundVerifier.sol" in data["sources"]
    assert data["settings"]["evmVersion"] == "cancun"
    assert "outputSelection" not in data["settings"]


def test_lock_pins_slither() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", gate.pinned_version(gate.LOCK.read_text(), "slither-analyzer"))
