"""The command line's one session: shared options in both places, one error handler, one printer, a fast start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market.chain.client import Chain
from market.chain.keys import create_keystore
from market.cli import app
from market.cli.session import explain
from market.errors import ConfigError, ContractRevert, StorageUnavailable
from market.toolchain.anvil import AnvilHandle
from market.toolchain.process import free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"
#: Runs `fedmarket ARGS` in this process, then writes its exit code and which heavy modules it imported to stderr.
PROBE = """
import json, runpy, sys
sys.argv = ["fedmarket", *sys.argv[1:]]
try:
    runpy.run_module("market.cli", run_name="__main__")
    code = 0
except SystemExit as exit:
    code = exit.code
sys.stderr.write(json.dumps({"code": code, "heavy": [m for m in ("torch", "web3") if m in sys.modules]}))
"""


def probe(*args: str, env: dict[str, str] | None = None) -> dict:
    """`fedmarket ARGS` in a fresh interpreter: its exit code and the heavy modules it imported."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    return json.loads(out.stderr.strip().splitlines()[-1])


def test_help_imports_neither_torch_nor_web3() -> None:
    assert probe("--help") == {"code": 0, "heavy": []}
    assert probe("trainer", "run", "--help") == {"code": 0, "heavy": []}


def test_keys_show_imports_neither_torch_nor_web3(tmp_path: Path) -> None:
    create_keystore(tmp_path / "key.json", "pw")
    assert probe("keys", "show", str(tmp_path / "key.json"), env={"FEDMARKET_PASSWORD": "pw"}) == {"code": 0, "heavy": []}


def test_explain_maps_bad_input_to_2_and_the_rest_to_1() -> None:
    assert explain(ConfigError("--partition takes I/N")) == (2, ["--partition takes I/N"])
    revert = ContractRevert("WrongState", {"project": 1}, hint="check the project's state")
    assert explain(revert) == (1, ["the contract refused: WrongState(project=1)", "hint: check the project's state"])
    assert explain(ContractRevert("Panic", {}, "panic 0x11")) == (1, ["the contract refused: panic 0x11"])
    assert explain(StorageUnavailable("no node at /ip4/127.0.0.1/tcp/1")) == (1, ["StorageUnavailable: no node at /ip4/127.0.0.1/tcp/1"])


@pytest.fixture
def no_devnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No devnet file: commands that need the chain stop at the endpoint with a ConfigError."""
    monkeypatch.setattr("market.dev.devnet.DEVNET_FILE", tmp_path / "none.json")


@pytest.mark.parametrize("args", [
    ["owner", "create", str(EXAMPLE), "--aggregator", "0x" + "11" * 20, "--dev-account", "0", "--json"],
    ["owner", "start", "1", "--dev-account", "0"],
    ["owner", "settle", "1", "--dev-account", "0", "--json"],
    ["aggregator", "register", "1", "--dev-account", "1", "--json"],
    ["aggregator", "run", "1", "--dev-account", "1", "--poll", "0.3"],
    ["trainer", "join", "1", "--dev-account", "2", "--json"],
    ["trainer", "run", "1", "--partition", "0/4", "--dev-account", "2", "--poll", "0.3", "--attack", "sign_flip"],
    ["trainer", "run", "1", "--data", "my_share.npz", "--dev-account", "2", "--no-check-direction", "--no-decline-against"],
    ["--dev-account", "2", "--json", "trainer", "status", "1"],
    ["owner", "status", "1", "--rpc", "http://127.0.0.1:8545"],
])
def test_the_documented_command_lines_parse(args: list[str], no_devnet: None) -> None:
    """README's and the end-to-end test's command lines get past the parser, to the missing devnet."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "fedmarket devnet up" in result.output, result.output


def test_a_bad_input_exits_2_with_its_message(no_devnet: None) -> None:
    result = CliRunner().invoke(app, ["owner", "fund", "1", "1 banana", "--dev-account", "0"])
    assert result.exit_code == 2 and "banana" in result.output
    result = CliRunner().invoke(app, ["demo", "--trainers", "3", "--attackers", "3"])
    assert result.exit_code == 2 and "attackers" in result.output
    result = CliRunner().invoke(app, ["demo", "--rounds", "0"])  # was a ZeroDivisionError traceback
    assert result.exit_code == 2 and "rounds = 0: must be 1..1000" in result.output, result.output
    result = CliRunner().invoke(app, ["bench", "prove", "--predict", "0", "5130"])  # was a prediction for 0 slots
    assert result.exit_code == 2 and "no round circuit has n = 0 slots" in result.output, result.output


def test_a_malformed_address_exits_2_naming_where_it_came_from(no_devnet: None) -> None:
    """An address option that is not 0x and 40 hex digits, or whose mixed capitals fail EIP-55, is bad input that
    names its option, before any chain is asked (before, web3's ValueError ended in a traceback)."""
    create = ["owner", "create", str(EXAMPLE), "--dev-account", "0", "--aggregator"]
    result = CliRunner().invoke(app, [*create, "0x123"])
    assert result.exit_code == 2 and "--aggregator: '0x123' is not an address" in result.output, result.output
    typo = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"  # account 1's checksummed address, one capital lowered
    result = CliRunner().invoke(app, [*create, typo])
    assert result.exit_code == 2 and "EIP-55" in result.output and typo in result.output, result.output
    result = CliRunner().invoke(app, ["owner", "status", "1", "--rpc", "http://127.0.0.1:1", "--ipfs",
                                      "/ip4/127.0.0.1/tcp/1/http", "--market", "0x12"])
    assert result.exit_code == 2 and "the marketplace (--market): '0x12'" in result.output, result.output


def test_an_unreachable_chain_exits_1_naming_the_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["owner", "status", "1", "--rpc", url, "--ipfs", "/ip4/127.0.0.1/tcp/1/http",
                                      "--market", "0x" + "11" * 20])
    assert result.exit_code == 1 and "ChainUnavailable" in result.output and url in result.output


@pytest.mark.anvil
def test_a_revert_exits_1_with_its_decoded_error_and_hint(anvil_node: AnvilHandle, anvil_chain: Chain) -> None:
    from market.chain.marketplace import Marketplace

    market = Marketplace.deploy(anvil_chain, anvil_chain.accounts[0])
    result = CliRunner().invoke(app, ["owner", "start", "99", "--dev-account", "0", "--rpc", anvil_node.url,
                                      "--ipfs", "/ip4/127.0.0.1/tcp/1/http", "--market", market.address])
    assert result.exit_code == 1, result.output
    assert "the contract refused: UnknownProject(" in result.output and "hint: no project has this id" in result.output


@pytest.mark.anvil
def test_a_marketplace_address_without_code_exits_1_naming_it(anvil_node: AnvilHandle, anvil_chain: Chain) -> None:
    """--market naming an account, not the contract: the chain says so before any call fails to decode."""
    account = anvil_chain.accounts[1].address
    result = CliRunner().invoke(app, ["owner", "status", "1", "--rpc", anvil_node.url,
                                      "--ipfs", "/ip4/127.0.0.1/tcp/1/http", "--market", account])
    assert result.exit_code == 1, result.output
    assert f"no contract at {account} on chain {anvil_chain.chain_id}" in " ".join(result.output.split())


def test_json_is_one_object_wherever_the_option_stands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDMARKET_PASSWORD", "pw")
    path = tmp_path / "key.json"
    created = CliRunner().invoke(app, ["keys", "new", str(path), "--json"])
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data == {"ok": True, "address": data["address"], "keystore": str(path)}
    for args in (["keys", "show", str(path), "--json"], ["--json", "keys", "show", str(path)]):
        shown = CliRunner().invoke(app, args)
        assert shown.exit_code == 0 and json.loads(shown.stdout) == data
    people = CliRunner().invoke(app, ["keys", "show", str(path)])
    assert people.exit_code == 0 and data["address"] in people.stdout and "{" not in people.stdout


def test_bench_cli_measures_the_help_start() -> None:
    result = CliRunner().invoke(app, ["bench", "cli", "--runs", "3", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["runs"] == 3 and figures["command"].endswith("--help")
    assert 0 < figures["help_min_s"] <= figures["help_s"] <= figures["help_max_s"]


def test_bench_prove_bits_needs_one_case() -> None:
    """`--bits` sets one measured case's quantization; the grid and its cost model stay at 16 bits."""
    result = CliRunner().invoke(app, ["bench", "prove", "--bits", "12", "--json"])
    assert result.exit_code != 0 and "--bits applies to one --case" in result.output


def test_both_sources_of_training_data_are_refused_by_name(tmp_path: Path) -> None:
    """--data with --partition: the message says "not both" (it used to ask for one of them)."""
    from market.cli.trainer import _data

    with pytest.raises(ConfigError, match="--data FILE or --partition I/N, not both"):
        _data(None, tmp_path / "share.csv", "0/4")  # type: ignore[arg-type]  # refused before the project is read
    with pytest.raises(ConfigError, match="name the training data"):
        _data(None, None, "")  # type: ignore[arg-type]


def test_a_path_the_file_system_refuses_exits_1_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError (a keystore path under a plain file) is one line naming the path, not a traceback."""
    monkeypatch.setenv("FEDMARKET_PASSWORD", "pw")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    result = CliRunner().invoke(app, ["keys", "new", str(tmp_path / "notes.txt" / "key.json")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception  # not the OSError
    assert str(tmp_path / "notes.txt") in "".join(result.output.split()), result.output  # rich wraps long paths


def test_status_of_a_key_that_never_joined_says_so() -> None:
    """Not "NONE, slot 0" (slot 0 is another trainer's) above an empty table."""
    from market.cli import trainer

    with trainer.console.capture() as captured:
        trainer._render_status({"project": 3, "trainer": "0xabc", "status": "NONE", "slot": 0, "stake": 0,
                                "rewards": 0, "history": []})
    text = " ".join(captured.get().split())
    assert text == "0xabc has not joined project 3: `fedmarket trainer join PID` while it is Open", text
