"""`fedmarket deploy` to a chain that is not the devnet: anvil with chain id 4242, signed by a funded keystore;
the deployment file it writes, read back by `--deployment`; the refusals (old EVM, wrong chain, existing file)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market.chain.client import Chain
from market.chain.deployment import Deployment, needed_opcodes
from market.chain.keys import PASSWORD_ENV, create_keystore, load_keystore
from market.chain.marketplace import Marketplace, artifacts
from market.cli import app
from market.errors import ConfigError
from market.paths import ROOT
from market.toolchain.anvil import AnvilHandle, start_anvil
from market.toolchain.process import stop_process

pytestmark = pytest.mark.anvil

CHAIN_ID = 4242
PASSWORD = "deploy-pw"
NO_IPFS = "/ip4/127.0.0.1/tcp/1/http"  # listing no projects reads nothing from storage
CANCUN = ["PUSH0", "TLOAD", "TSTORE", "MCOPY"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilHandle]:
    """anvil with a chain id that is neither the devnet's nor a known network's."""
    handle = start_anvil(chain_id=CHAIN_ID, log=tmp_path_factory.mktemp("anvil") / "anvil.log")
    yield handle
    stop_process(handle.pid)


@pytest.fixture(scope="module")
def shanghai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilHandle]:
    """anvil running the Shanghai EVM: PUSH0, but no transient storage and no MCOPY (Cancun)."""
    handle = start_anvil(log=tmp_path_factory.mktemp("anvil-shanghai") / "anvil.log", hardfork="shanghai")
    yield handle
    stop_process(handle.pid)


@pytest.fixture(scope="module")
def keystore(node: AnvilHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new account's keystore, funded with 10 ether by development account 0."""
    path = tmp_path_factory.mktemp("keys") / "deployer.json"
    account = create_keystore(path, PASSWORD)
    chain = Chain.connect(node.url)
    chain.transfer(chain.accounts[0], account.address, 10 * 10**18)
    return path


@pytest.fixture(autouse=True)
def no_devnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No devnet file: whatever a command learns of the chain comes from its options and the deployment file."""
    monkeypatch.setattr("market.dev.devnet.DEVNET_FILE", tmp_path / "none.json")


def fedmarket(*args: str) -> tuple[int, str]:
    """Run `fedmarket ARGS` with the keystore password in the environment: exit code and output (an error's lines,
    which the console wraps, joined again)."""
    result = CliRunner(env={PASSWORD_ENV: PASSWORD}).invoke(app, list(args))
    return result.exit_code, result.output if result.exit_code == 0 else " ".join(result.output.split())


@pytest.fixture(scope="module")
def deployed(node: AnvilHandle, keystore: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`fedmarket deploy --rpc URL --keystore K --out FILE --json`: the file and the printed object."""
    out = tmp_path_factory.mktemp("deployment") / "deployment.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("market.dev.devnet.DEVNET_FILE", out.parent / "none.json")
        code, output = fedmarket("deploy", "--rpc", node.url, "--keystore", str(keystore), "--out", str(out), "--json")
    assert code == 0, output
    return out, json.loads(output)


def test_the_compiled_contracts_need_the_cancun_opcodes() -> None:
    assert needed_opcodes([artifacts()["FedMarket"], artifacts()["PoseidonCommit"]]) == CANCUN


def test_deploy_writes_a_file_that_every_command_reads(node: AnvilHandle, keystore: Path, deployed: tuple[Path, dict]) -> None:
    out, printed = deployed
    record = json.loads(out.read_text())
    assert printed == {**record, "file": str(out)}
    chain = Chain.connect(node.url)
    assert record["chain_id"] == CHAIN_ID and record["rpc_url"] == node.url
    assert record["deployer"] == load_keystore(keystore, PASSWORD).address and record["opcodes"] == CANCUN
    assert list(record["contracts"]) == [*(f"PoseidonConstants{i}" for i in range(4)), "PoseidonCommit", "FedMarket"]
    for entry in record["contracts"].values():
        receipt = chain.w3.eth.get_transaction_receipt(entry["tx"])
        assert receipt["contractAddress"] == entry["address"] and receipt["blockNumber"] == entry["block"]
        assert receipt["from"] == record["deployer"] and len(chain.w3.eth.get_code(entry["address"])) > 1
        assert entry["block"] >= record["block"]
    market = Marketplace(chain, record["contracts"]["FedMarket"]["address"])
    assert market.poseidon == record["contracts"]["PoseidonCommit"]["address"] and market.project_count() == 0
    assert record["compiler"]["evmVersion"] == "cancun" and record["compiler"]["optimizer"] == {"enabled": True, "runs": 200}
    assert record["compiler"]["solc"].count(".") == 2
    assert record["sources"]["contracts/FedMarket.sol"] == hashlib.sha256((ROOT / "contracts/FedMarket.sol").read_bytes()).hexdigest()
    assert "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol" in record["sources"]

    for args in (["--deployment", str(out), "projects", "--ipfs", NO_IPFS, "--json"],
                 ["projects", "--deployment", str(out), "--ipfs", NO_IPFS, "--json"]):
        code, output = fedmarket(*args)
        assert code == 0, output
        assert json.loads(output) == {"market": market.address, "state": None, "projects": []}


def test_a_node_of_another_chain_is_refused_naming_both_ids(deployed: tuple[Path, dict], shanghai: AnvilHandle) -> None:
    out, _ = deployed
    code, output = fedmarket("--deployment", str(out), "--rpc", shanghai.url, "--ipfs", NO_IPFS, "projects", "--json")
    assert code == 2 and f"chain id {CHAIN_ID}" in output and "chain id 31337" in output, output


def test_a_chain_without_cancun_is_refused_naming_the_missing_opcodes(shanghai: AnvilHandle, keystore: Path, tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    code, output = fedmarket("deploy", "--rpc", shanghai.url, "--keystore", str(keystore), "--out", str(out))
    assert code == 2, output
    assert "does not support the opcodes TLOAD, TSTORE, MCOPY" in output and "PUSH0" not in output
    assert not out.exists()


def test_an_existing_file_is_never_overwritten(node: AnvilHandle, keystore: Path, deployed: tuple[Path, dict]) -> None:
    out, record = deployed
    chain = Chain.connect(node.url)
    nonce = chain.w3.eth.get_transaction_count(record["deployer"])
    code, output = fedmarket("deploy", "--rpc", node.url, "--keystore", str(keystore), "--out", str(out))
    assert code == 2 and "refusing to overwrite" in output and chain.w3.eth.get_transaction_count(record["deployer"]) == nonce


def test_a_malformed_deployment_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({"format": 1, "chain_id": 1}))
    with pytest.raises(ConfigError, match="is not a fedmarket deployment file"):
        Deployment.load(path)
    with pytest.raises(ConfigError, match="no deployment file"):
        Deployment.load(tmp_path / "none.json")
