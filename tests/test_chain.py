"""The chain layer on both backends: deploy, revert decoding, time travel, snapshots, compile errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from market.chain.client import Chain, dev_accounts
from market.errors import ChainError, CompileError, ContractRevert
from market.paths import ROOT
from market.toolchain.solc import compile_contracts, compiles_alone

PROBE_DIR = Path(__file__).parent / "contracts_chain"


@pytest.fixture(scope="module")
def probe_artifact():
    """The compiled Probe test contract."""
    return compile_contracts([PROBE_DIR])["Probe"]


def test_deploy_transact_and_read(chain: Chain, probe_artifact) -> None:
    probe = chain.deploy(probe_artifact, sender=chain.accounts[0])
    receipt = chain.transact(probe.functions.set(42), chain.accounts[1])
    assert receipt["status"] == 1
    assert chain.call(probe.functions.stored()) == 42


def test_custom_error_is_decoded_with_arguments(chain: Chain, probe_artifact) -> None:
    probe = chain.deploy(probe_artifact)
    with pytest.raises(ContractRevert) as info:
        chain.transact(probe.functions.set(3), chain.accounts[1])
    assert info.value.name == "TooSmall"
    assert info.value.error_args == (3, 10)
    with pytest.raises(ContractRevert) as info:
        chain.transact(probe.functions.set(3), chain.accounts[1], gas=200_000)
    assert info.value.name == "TooSmall"
    with pytest.raises(ContractRevert) as info:
        chain.call(probe.functions.named(), sender=chain.accounts[2])
    assert info.value.error_args == ("probe", chain.accounts[2].address)


def test_plain_reason_and_panic(chain: Chain, probe_artifact) -> None:
    probe = chain.deploy(probe_artifact)
    with pytest.raises(ContractRevert) as info:
        chain.call(probe.functions.legacy())
    assert info.value.name == "Error" and info.value.error_args == ("plain reason",)
    with pytest.raises(ContractRevert) as info:
        chain.call(probe.functions.panic(0))
    assert info.value.name == "Panic" and info.value.error_args == (0x12,)


def test_failed_state_changes_nothing(chain: Chain, probe_artifact) -> None:
    probe = chain.deploy(probe_artifact)
    chain.transact(probe.functions.set(11), chain.accounts[0])
    with pytest.raises(ContractRevert):
        chain.transact(probe.functions.set(1), chain.accounts[0], gas=100_000)
    assert chain.call(probe.functions.stored()) == 11


def test_time_travel_and_snapshot(chain: Chain, probe_artifact) -> None:
    probe = chain.deploy(probe_artifact)
    start = chain.now()
    chain.time_travel(3600)
    assert chain.now() >= start + 3600
    assert chain.call(probe.functions.now_()) >= start + 3600
    snap = chain.snapshot()
    chain.transact(probe.functions.set(99), chain.accounts[0])
    chain.revert(snap)
    assert chain.call(probe.functions.stored()) == 0


def test_a_transaction_mined_again_after_a_revert_has_the_new_receipt(chain: Chain, probe_artifact) -> None:
    """The in-process chain keeps mined receipts (its log scans rebuilt them); a revert must forget them."""
    probe = chain.deploy(probe_artifact)
    sender = chain.accounts[3]
    tx = probe.functions.set(42).build_transaction({**chain._tx_params(sender, 0, 200_000), "maxFeePerGas": 10**11})
    raw = sender.sign_transaction(tx).raw_transaction
    snap = chain.snapshot()
    chain.mine()
    first = chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_raw_transaction(raw))
    assert chain.w3.eth.get_transaction_receipt(first["transactionHash"])["blockNumber"] == first["blockNumber"]
    chain.revert(snap)
    again = chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_raw_transaction(raw))
    assert again["transactionHash"] == first["transactionHash"] and again["blockNumber"] == first["blockNumber"] - 1
    assert chain.w3.eth.get_transaction_receipt(first["transactionHash"])["blockNumber"] == again["blockNumber"]
    assert chain.call(probe.functions.stored()) == 42


@pytest.mark.anvil
def test_the_node_is_asked_its_chain_id_once_and_its_blocks_every_time(anvil_chain: Chain, probe_artifact) -> None:
    """web3 checks the chain id before each call and transaction; only that answer is cached, since a revert to a
    snapshot mines the same block numbers again with other contents."""
    sent: Counter[str] = Counter()
    provider: Any = anvil_chain.w3.provider
    send = provider._make_request
    provider._make_request = lambda method, params: (sent.update([method]), send(method, params))[1]
    probe = anvil_chain.deploy(probe_artifact)
    anvil_chain.transact(probe.functions.set(42), anvil_chain.accounts[1])
    assert anvil_chain.call(probe.functions.stored()) == 42
    assert sent["eth_chainId"] == 0 and sent["eth_sendRawTransaction"] == 2 and sent["eth_call"] >= 1
    number = anvil_chain.w3.eth.block_number + 1
    snap = anvil_chain.snapshot()
    anvil_chain.mine()
    first = anvil_chain.w3.eth.get_block(number)["hash"]
    anvil_chain.revert(snap)
    anvil_chain.time_travel(60)
    assert anvil_chain.w3.eth.get_block(number)["hash"] != first


@pytest.mark.anvil
def test_a_target_time_already_past_only_mines_a_block(anvil_chain: Chain, chain: Chain) -> None:
    """`deadline - now + 1` is negative when a slow step outran the window (anvil's time follows the clock, and it
    refuses a negative increase): time_travel then only mines a block, on either backend."""
    for c in (anvil_chain, chain):
        number, now = c.w3.eth.block_number, c.now()
        c.time_travel(-5)
        assert c.w3.eth.block_number == number + 1 and now <= c.now() <= now + 5


def test_development_accounts_are_funded_and_shared(chain: Chain) -> None:
    assert [a.address for a in chain.accounts[:3]] == [a.address for a in dev_accounts(3)]
    assert chain.balance(chain.accounts[0].address) > 10**21


def test_unreachable_rpc_is_a_chain_error() -> None:
    with pytest.raises(ChainError, match="cannot reach"):
        Chain.connect("http://127.0.0.1:9", timeout=1)


def test_compile_error_names_file_and_line(tmp_path: Path) -> None:
    bad = ROOT / "build" / "test-bad-sol"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "Broken.sol").write_text("pragma solidity ^0.8.28;\ncontract Broken { function f() external { uint x = ; } }\n")
    try:
        with pytest.raises(CompileError, match=r"Broken\.sol:2:"):
            compile_contracts([bad])
    finally:
        (bad / "Broken.sol").unlink()
        bad.rmdir()


def test_compile_is_cached(probe_artifact) -> None:
    again = compile_contracts([PROBE_DIR])["Probe"]
    assert again.bytecode == probe_artifact.bytecode


@pytest.mark.parametrize(("imports", "alone"), [
    ('import {B} from "./B.sol";\nimport "@openzeppelin/contracts/token/ERC20/IERC20.sol";', True),
    ('import {FedMarket} from "../../contracts/FedMarket.sol";', False),  # a test contract reaching contracts/
    ('import "contracts/FedMarket.sol";', False),  # resolved against the repository by the driver
    ("", True),  # a generated verifier: no imports at all
])
def test_a_folder_compiles_alone_only_when_it_imports_nothing_outside(tmp_path: Path, imports: str, alone: bool) -> None:
    folder = tmp_path / "sol"
    folder.mkdir()
    (folder / "A.sol").write_text(f"pragma solidity ^0.8.28;\n{imports}\ncontract A {{}}\n")
    (folder / "B.sol").write_text("pragma solidity ^0.8.28;\ncontract B {}\n")
    assert compiles_alone(folder) is alone


def test_a_sender_that_cannot_pay_is_a_chain_error_naming_its_balance(chain: Chain, probe_artifact) -> None:
    """The node's "insufficient funds" (web3's Web3RPCError, a traceback in the CLI) names the account and its
    balance."""
    from eth_account import Account

    probe = chain.deploy(probe_artifact)
    poor = Account.create()
    with pytest.raises(ChainError, match=f"{poor.address} holds 0 ether \\(0 wei\\): not enough"):
        chain.transact(probe.functions.set(42), poor)
    with pytest.raises(ChainError, match=f"{poor.address} holds 0 ether"):
        chain.transact(probe.functions.set(42), poor, gas=100_000)
    with pytest.raises(ChainError, match=f"{poor.address} holds 0 ether"):  # fedmarket deploy's creations
        chain.create(bytes.fromhex(probe_artifact.bytecode), poor)
