"""The product layer's pure parts: amounts, project files, manifests, model blobs, keystores, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch
from typer.testing import CliRunner

from market.chain.keys import create_keystore, load_keystore, resolve_signer
from market.cli import app
from market.errors import ConfigError, InvalidBlob
from market.parties.project_file import load_project_file, parse_amount
from market.protocol.manifest import Manifest
from market.protocol.modelblob import DIRECTION_FORMAT, decode_direction, decode_model, encode_direction, encode_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"


@pytest.mark.parametrize(
    ("text", "wei"),
    [(5, 5), ("7", 7), ("1 ether", 10**18), ("1.5 ether", 15 * 10**17), ("200 gwei", 200 * 10**9), ("3 wei", 3)],
)
def test_amounts(text: int | str, wei: int) -> None:
    assert parse_amount(text) == wei


@pytest.mark.parametrize("text", ["1 banana", "x ether", "0.5 wei", "-1 ether", "1 2 3"])
def test_bad_amounts_name_the_value(text: str) -> None:
    with pytest.raises(ConfigError, match=r"amount|number|whole"):
        parse_amount(text)


def test_example_project_file_round_trips_through_the_manifest() -> None:
    pf = load_project_file(EXAMPLE)
    assert (pf.rounds, pf.max_trainers, pf.budget) == (5, 4, 8 * 10**18)
    assert pf.manifest.view == (0, 650)
    again = Manifest.from_json(pf.manifest.to_json())
    assert again == pf.manifest and again.digest() == pf.manifest.digest()
    assert len(pf.manifest.digest()) == 32


def test_project_file_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no project file"):
        load_project_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[project\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_project_file(bad)
    bad.write_text('[project]\ntask = "cats"\n')
    with pytest.raises(ConfigError, match="unknown task"):
        load_project_file(bad)
    bad.write_text("[project]\nmax_trainers = 4\n[rule]\nm = 6\n")
    with pytest.raises(ConfigError, match="m <= max_trainers"):
        load_project_file(bad)
    bad.write_text("[training]\nepochz = 3\n")
    with pytest.raises(ConfigError, match="unknown or missing field"):
        load_project_file(bad)


@pytest.mark.parametrize(("text", "message"), [
    ('[project]\nrounds = "five"', "[project] rounds = 'five': must be an integer"),  # was int()'s ValueError
    ("[project]\nrounds = 5.5", "[project] rounds = 5.5: must be an integer"),  # was read as 5
    ("[project]\nmin_trainers = 5\nmax_trainers = 4", "[project] min_trainers = 5: must be 1..max_trainers (4)"),
    ("[training]\nepochs = 0", "[training] epochs = 0: must be an integer of at least 1"),  # was created: zero updates
    ("[training]\nlr = -1.0", "[training] lr = -1.0: the learning rate must be a finite number above 0"),
    ("[training]\nlr = nan", "[training] lr = nan: the learning rate"),
    ("[quant]\nbits = 40", "[quant] bits must be in 2..32, got 40"),  # was a QuantizationError, exit 1
    ('[rule]\nrule = "bogus"', "[rule] unknown rule 'bogus'; choose one of ['multi_krum', 'fltrust', 'none']"),
])
def test_a_bad_setting_is_named_with_its_table_before_any_gas(tmp_path: Path, text: str, message: str) -> None:
    """Settings the chain would accept but that make a project useless (no training, ascent) or that it refuses
    only after the verifier is deployed, and values of the wrong type: each a ConfigError naming table and key."""
    bad = tmp_path / "bad.toml"
    bad.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_project_file(bad)
    assert str(caught.value).startswith(message), str(caught.value)


def test_manifest_rejects_garbage() -> None:
    for raw in (b"not json", b'{"version": 99}', b'{"version": 1, "task": "x"}'):
        with pytest.raises(ConfigError):
            Manifest.from_json(raw)


def test_model_blob_round_trip_and_refusals() -> None:
    w = torch.linspace(-1, 1, 650)
    raw = encode_model(w, 3, 2, "ab" * 32, {"val_accuracy": 0.9})
    blob = decode_model(raw, 650, "ab" * 32)
    assert torch.equal(blob.weights, w) and (blob.project_id, blob.round) == (3, 2)
    assert blob.report == {"val_accuracy": 0.9}
    with pytest.raises(InvalidBlob) as info:
        decode_model(raw, 651)
    assert info.value.reason == "wrong_shape"
    with pytest.raises(InvalidBlob) as info:
        decode_model(raw, 650, "cd" * 32)
    assert info.value.reason == "wrong_spec"
    with pytest.raises(InvalidBlob) as info:
        decode_model(encode_model(torch.full((650,), float("nan")), 3, 2, "ab" * 32, {}), 650)
    assert info.value.reason == "not_finite"
    with pytest.raises(InvalidBlob) as info:
        decode_model(b"\x00" * 7, 650)
    assert info.value.reason == "undecodable"
    with pytest.raises(InvalidBlob) as info:
        decode_model(encode_direction(torch.zeros(650, dtype=torch.int64), torch.zeros(650, dtype=torch.int64), 3, 2), 650)
    assert info.value.reason == "undecodable"


def test_direction_blob_round_trip() -> None:
    """A round's revealed v and h come back as they went; a wrong length or a blob without h names what is wrong."""
    v, h = torch.arange(-5, 5, dtype=torch.int64), torch.arange(5, -5, -1, dtype=torch.int64)
    back = decode_direction(encode_direction(v, h, 1, 1), 10)
    assert torch.equal(back[0], v) and torch.equal(back[1], h)
    with pytest.raises(InvalidBlob, match="direction v must be int64 of shape"):
        decode_direction(encode_direction(v, h, 1, 1), 11)
    only_v = safetensors.torch.save({"v": v}, metadata={"format": DIRECTION_FORMAT, "project_id": "1", "round": "1"})
    with pytest.raises(InvalidBlob, match="direction h must be"):
        decode_direction(only_v, 10)


def test_keystore_round_trip_and_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    account = create_keystore(path, "pw")
    assert load_keystore(path, "pw").address == account.address
    with pytest.raises(ConfigError, match="wrong password"):
        load_keystore(path, "nope")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        create_keystore(path, "pw")
    with pytest.raises(ConfigError, match="exactly one signer"):
        resolve_signer(None, None)
    with pytest.raises(ConfigError, match="exactly one signer"):
        resolve_signer(path, 1)
    with pytest.raises(ConfigError, match=r"numbered 0\.\.9"):
        resolve_signer(None, 12)
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"empty\.json is not a keystore \(JSON without 'version'"):
        load_keystore(tmp_path / "empty.json", "pw")  # was web3's KeyError
    (tmp_path / "hollow.json").write_text('{"version": 3, "crypto": {}}')
    with pytest.raises(ConfigError, match=r"hollow\.json is a malformed keystore \(KeyError"):
        load_keystore(tmp_path / "hollow.json", "pw")


def test_cli_without_a_devnet_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("market.dev.devnet.DEVNET_FILE", tmp_path / "none.json")
    result = CliRunner().invoke(app, ["owner", "status", "1"])
    assert result.exit_code == 2
    assert "fedmarket devnet up" in result.output


def test_cli_refuses_a_key_on_the_command_line() -> None:
    result = CliRunner().invoke(app, ["trainer", "join", "1", "--private-key", "0x01"])
    assert result.exit_code == 2


def test_keys_commands_create_and_show_a_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDMARKET_PASSWORD", "correct horse")
    path = tmp_path / "owner.json"
    created = CliRunner().invoke(app, ["keys", "new", str(path), "--json"])
    assert created.exit_code == 0, created.output
    address = created.output.strip().splitlines()[-1].split('"address": "')[1].split('"')[0]
    shown = CliRunner().invoke(app, ["keys", "show", str(path)])
    assert shown.exit_code == 0 and address in shown.output
    monkeypatch.setenv("FEDMARKET_PASSWORD", "wrong")
    refused = CliRunner().invoke(app, ["keys", "show", str(path)])
    assert refused.exit_code == 2 and "wrong password" in refused.output
