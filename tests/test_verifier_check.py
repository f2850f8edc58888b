"""A trainer joins only a project whose verifier proves exactly its circuit with the keys installed here
(zk/keycheck.py, issue 12 item 3): the RoundVerifier's code and settings, the Groth16 verifier's code (its
verifying key), and no development keys on a chain that may hold value unless accepted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from py_ecc.bn128 import field_modulus
from typer.testing import CliRunner
from web3.contract import Contract

from market.chain.client import Chain
from market.chain.marketplace import Marketplace, Status
from market.cli import app
from market.errors import InsecureKeys, KeysNotInstalled, VerifierMismatch
from market.parties.owner import create_project
from market.parties.project_file import load_project_file
from market.storage import IpfsStorage
from market.toolchain.anvil import AnvilHandle
from market.toolchain.ipfs_node import NodeHandle
from market.toolchain.solc import ContractArtifact, compile_contracts
from tests.fixtures_zk import PARAMS
from tests.test_cli import EXAMPLE
from zk.build import CircuitParams
from zk.keycheck import DEV_CHAIN_IDS, check_project_verifier, check_verifier, code_matches, refuse_insecure_keys
from zk.onchain import CIRCUIT_KEYS, deploy_verifier, solidity_dir, verifier_artifacts

pytestmark = pytest.mark.anvil


def circuit(params: CircuitParams) -> list[int]:
    """The RoundVerifier constructor's settings array for `params`."""
    return [getattr(params, key) for key in CIRCUIT_KEYS]


def wrap(chain: Chain, zk_artifacts: Path, groth16: str, params: CircuitParams = PARAMS) -> Contract:
    """A RoundVerifier, compiled here, over the Groth16 verifier at `groth16`, claiming `params`."""
    return chain.deploy(verifier_artifacts(zk_artifacts)[1], groth16, circuit(params))


def groth16_from(zk_artifacts: Path, folder: Path, negate_alpha: bool) -> ContractArtifact:
    """The Groth16Verifier generated in `folder` from the installed verifying key, or from another one: the
    same key with alpha negated (a valid point, so a key another setup could have made)."""
    vk = json.loads((zk_artifacts / "verification_key.json").read_text())
    if negate_alpha:
        x, y, z = vk["vk_alpha_1"]
        vk["vk_alpha_1"] = [x, str(field_modulus - int(y)), z]
    folder.mkdir(parents=True)
    (folder / "verification_key.json").write_text(json.dumps(vk))
    return compile_contracts(extra_dirs=(solidity_dir(folder),))["Groth16Verifier"]


@pytest.fixture(scope="module")
def generated(zk_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ContractArtifact]:
    """The Groth16Verifier of the installed key generated elsewhere (another build folder), and of another key."""
    root = tmp_path_factory.mktemp("generated")
    return {"same key": groth16_from(zk_artifacts, root / "same", negate_alpha=False),
            "other key": groth16_from(zk_artifacts, root / "other", negate_alpha=True)}


def test_a_matching_verifier_passes(anvil_chain: Chain, zk_artifacts: Path) -> None:
    verifier = deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True)
    checked = check_project_verifier(anvil_chain, verifier.address, PARAMS)  # development keys, but on 31337
    assert checked.keys == zk_artifacts and checked.insecure


def test_the_same_key_generated_in_another_folder_passes(anvil_chain: Chain, zk_artifacts: Path,
                                                         generated: dict[str, ContractArtifact]) -> None:
    """Only the code counts, not the path of the Solidity the owner compiled (hashed in the metadata)."""
    groth16 = anvil_chain.deploy(generated["same key"])
    assert check_verifier(anvil_chain, wrap(anvil_chain, zk_artifacts, groth16.address).address, PARAMS) == zk_artifacts


@pytest.mark.parametrize(("field", "getter"), [("n", "maxTrainers"), ("d", "viewLen"), ("bits", "quantBits"),
                                               ("f", "krumF"), ("m", "krumM"), ("tau_pct", "tauPct"),
                                               ("dup_pct", "dupPct"), ("floor_pct", "floorPct")])
def test_a_verifier_for_other_settings_is_refused_naming_the_setting(anvil_chain: Chain, zk_artifacts: Path,
                                                                     field: str, getter: str) -> None:
    """The same Groth16 verifier, wrapped with a settings array that differs in one place."""
    groth16 = deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True).functions.groth16().call()
    other = dataclasses.replace(PARAMS, **{field: getattr(PARAMS, field) + 1})
    verifier = wrap(anvil_chain, zk_artifacts, groth16, other)
    with pytest.raises(VerifierMismatch) as info:
        check_project_verifier(anvil_chain, verifier.address, PARAMS)
    assert info.value.what == getter
    assert f"verifier {getter} = {getattr(other, field)}, project {field} = {getattr(PARAMS, field)}" in str(info.value)


@pytest.mark.parametrize("target", ["other key", "no code", "another contract"])
def test_a_verifier_over_another_groth16_verifier_is_refused(anvil_chain: Chain, zk_artifacts: Path,
                                                             generated: dict[str, ContractArtifact], target: str) -> None:
    """The right wrapper and settings over a Groth16 verifier of another key, an account without code, or
    a contract that is no Groth16 verifier at all (here: the marketplace)."""
    if target == "other key":
        address = str(anvil_chain.deploy(generated["other key"]).address)
    elif target == "no code":
        address = anvil_chain.accounts[5].address
    else:
        address = Marketplace.deploy(anvil_chain, anvil_chain.accounts[0]).address
    verifier = wrap(anvil_chain, zk_artifacts, address)
    with pytest.raises(VerifierMismatch, match=r"verification_key\.json: another verifying key") as info:
        check_project_verifier(anvil_chain, verifier.address, PARAMS)
    assert info.value.what == "Groth16Verifier code" and address in str(info.value)


def test_a_verifier_that_is_no_round_verifier_is_refused(anvil_chain: Chain, zk_artifacts: Path) -> None:
    """A contract answering every settings getter as the project wants is still refused when its code is not
    RoundVerifier's (here the Groth16 verifier itself, which has none of them)."""
    groth16 = deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True).functions.groth16().call()
    with pytest.raises(VerifierMismatch) as info:
        check_project_verifier(anvil_chain, groth16, PARAMS)
    assert info.value.what == "RoundVerifier code"


def test_no_installed_keys_is_a_named_error_saying_how_to_install_them(anvil_chain: Chain, zk_artifacts: Path,
                                                                      tmp_path: Path) -> None:
    verifier = deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True)
    with pytest.raises(KeysNotInstalled, match=r"fedmarket zk ceremony finalize PROJECT\.toml --ptau PTAU") as info:
        check_verifier(anvil_chain, verifier.address, PARAMS, keys_root=tmp_path)
    assert info.value.folder.startswith(str(tmp_path))


def test_an_immutable_must_read_the_same_at_every_place(anvil_chain: Chain, zk_artifacts: Path) -> None:
    """Hand-made runtime code could answer a getter with one value and use another in the check it runs."""
    wrapper = verifier_artifacts(zk_artifacts)[1]
    code = bytes(anvil_chain.w3.eth.get_code(deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True).address))
    assert code_matches(code, wrapper.deployed_bytecode, wrapper.immutables)
    places = next(p for p in wrapper.immutables.values() if len(p) > 1)
    start, length = places[0]
    forged = bytearray(code)
    forged[start + length - 1] ^= 1
    assert not code_matches(bytes(forged), wrapper.deployed_bytecode, wrapper.immutables)
    forged = bytearray(code)
    forged[-3] ^= 1  # inside the metadata: not code
    assert code_matches(bytes(forged), wrapper.deployed_bytecode, wrapper.immutables)
    forged[0] ^= 1
    assert not code_matches(bytes(forged), wrapper.deployed_bytecode, wrapper.immutables)


@pytest.mark.parametrize("chain_id", [1, 10, 11155111, 8453])
def test_development_keys_on_a_chain_that_may_hold_value_need_the_trainers_consent(chain_id: int) -> None:
    with pytest.raises(InsecureKeys, match=rf"chain {chain_id} may hold value.*--accept-insecure-keys") as info:
        refuse_insecure_keys(chain_id, insecure=True, accept_insecure_keys=False)
    assert info.value.chain_id == chain_id
    refuse_insecure_keys(chain_id, insecure=True, accept_insecure_keys=True)
    refuse_insecure_keys(chain_id, insecure=False, accept_insecure_keys=False)  # ceremony keys


def test_development_keys_pass_on_development_chains() -> None:
    for chain_id in (31337, 1337):
        assert chain_id in DEV_CHAIN_IDS
        refuse_insecure_keys(chain_id, insecure=True, accept_insecure_keys=False)


@pytest.mark.ipfs
def test_trainer_join_and_run_refuse_a_project_whose_verifier_does_not_match(
        anvil_node: AnvilHandle, anvil_chain: Chain, ipfs_api: NodeHandle, zk_artifacts: Path) -> None:
    """`trainer join` and `trainer run` on two projects with the test circuit's settings: one with its verifier
    joins, one whose wrapper forwards to a contract that is no Groth16 verifier (which createProject, comparing
    only settings, accepts) is refused with the named error, and nothing is staked."""
    pf = load_project_file(EXAMPLE)
    rule = dataclasses.replace(pf.manifest.rule, f=PARAMS.f, m=PARAMS.m, tau_pct=PARAMS.tau_pct,
                               dup_pct=PARAMS.dup_pct, floor_pct=PARAMS.floor_pct)
    manifest = dataclasses.replace(pf.manifest, view=(0, PARAMS.d), rule=rule)
    pf = dataclasses.replace(pf, manifest=manifest, max_trainers=PARAMS.n, slash_bps=0)
    owner, aggregator = anvil_chain.accounts[0], anvil_chain.accounts[1]
    market = Marketplace.deploy(anvil_chain, owner)
    storage = IpfsStorage(ipfs_api.api_addr)
    good = deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True)
    bad = wrap(anvil_chain, zk_artifacts, market.address)
    pids = {name: create_project(market, storage, pf, owner, aggregator.address, verifier=v.address).pid
            for name, v in (("good", good), ("bad", bad))}
    for pid in pids.values():  # both Open: only the check can refuse the bad one
        market.bond(pid, aggregator)
    where = ["--rpc", anvil_node.url, "--ipfs", ipfs_api.api_addr, "--market", market.address, "--dev-account", "2"]

    joined = CliRunner().invoke(app, ["trainer", "join", str(pids["good"]), *where, "--json"])
    assert joined.exit_code == 0, joined.output
    data = json.loads(joined.stdout)
    assert data["keys"] == str(zk_artifacts) and data["insecure_keys"] is True  # chain 31337: no flag needed

    for args in (["join", str(pids["bad"])], ["run", str(pids["bad"]), "--partition", "0/4", "--poll", "0.1"]):
        refused = CliRunner().invoke(app, ["trainer", *args, *where, "--accept-insecure-keys"])
        assert refused.exit_code == 1, refused.output
        assert "VerifierMismatch: Groth16Verifier code" in refused.output
    assert market.participant(pids["bad"], anvil_chain.accounts[2].address).status == Status.NONE


def test_an_owners_verifier_that_is_not_the_circuits_round_verifier_is_refused_before_any_gas(tmp_path: Path) -> None:
    """`owner create --verifier` names a contract that is no RoundVerifier (here the marketplace itself), or one
    with other settings: refused by name before anything is sent. It used to reach createProject, which reverted
    without data, or to create a project that every trainer refuses at join."""
    from market.chain.marketplace import artifacts
    from market.storage import LocalStorage

    chain = Chain.in_process()
    owner = chain.accounts[0]
    market = Marketplace.deploy(chain, owner)
    pf = load_project_file(EXAMPLE)
    rule = pf.manifest.rule
    other = chain.deploy(artifacts()["RoundVerifier"], owner.address, [pf.max_trainers + 1, pf.manifest.view[1],
                         pf.manifest.quant.bits, rule.f, rule.m, rule.tau_pct, rule.dup_pct, rule.floor_pct], sender=owner)
    storage = LocalStorage(tmp_path)
    with pytest.raises(VerifierMismatch, match=f"the contract at {market.address} is not the RoundVerifier"):
        create_project(market, storage, pf, owner, chain.accounts[1].address, verifier=market.address)
    with pytest.raises(VerifierMismatch, match=f"verifier maxTrainers = {pf.max_trainers + 1}, project n = {pf.max_trainers}"):
        create_project(market, storage, pf, owner, chain.accounts[1].address, verifier=other.address)
    assert market.project_count() == 0
