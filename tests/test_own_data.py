"""Own data from the command line (issue 13, item 1): the project file's data and model files, the manifest's schema and
preprocessing, the published model file and validation split, trainers' schema checks, and quantization that fits."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from market.errors import ConfigError, DataMismatch, QuantizationError, UpdateClipped
from market.ml.tasks import get_task, task_from_files
from market.ml.tasks.owndata import fit_standardize, load_task_data, preprocess, scale_warning
from market.parties.context import manifest_task
from market.parties.project_file import load_project_file
from market.protocol.manifest import DataSchema, Manifest
from market.protocol.quant import QuantSpec, clip_rate, fit_scale_log2, model_spec, refuse_clipping
from market.storage import LocalStorage, cid_of

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "own_data"
def readme_csv_command() -> str:
    """The README walkthrough's own Python command that writes the owner's 70 wine rows and three trainers' 36-row
    shares (so this test runs what the README says)."""
    found = re.search(r'python -c "\n(.*?)\n" build/own_data', (ROOT / "README.md").read_text(), re.S)
    assert found is not None, "README's Own data walkthrough lost its CSV command"
    return found.group(1)


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the example's project.toml and model.py and the walkthrough's CSVs."""
    folder = tmp_path_factory.mktemp("own_data")
    for name in ("project.toml", "model.py"):
        shutil.copy(EXAMPLE / name, folder / name)
    subprocess.run([sys.executable, "-c", readme_csv_command(), str(folder)], check=True)
    return folder


def project(folder: Path, text: str) -> Path:
    """A project file in `folder` (next to the data) holding `text`."""
    path = folder / "p.toml"
    path.write_text(text)
    return path


def test_the_example_makes_a_manifest_that_every_party_rebuilds(wine: Path, tmp_path: Path) -> None:
    pf = load_project_file(wine / "project.toml")
    m = pf.manifest
    assert m.data is not None and m.task == "wine" and m.view == (0, 42)
    schema = m.data.schema
    assert (schema.features, schema.classes, schema.label_column, schema.preprocess) == (13, 3, "label", "standardize")
    assert Manifest.from_json(m.to_json()) == m and b'"data"' in m.to_json()
    assert [str(cid_of(b)) for b in pf.blobs] == [m.data.model_cid, m.data.val_cid]
    storage = LocalStorage(tmp_path / "store")
    for blob in pf.blobs:
        storage.add(blob)
    task = manifest_task(m, storage)  # what load_context does for trainers and the aggregator
    assert task.spec_hash() == m.spec_hash and task.num_classes == 3 and len(task.train) == 0
    assert abs(float(task.val.x.mean())) < 1e-5  # standardised with the validation split's own statistics
    assert any("from the owner's trial round" in n for n in pf.notes)
    assert not any(n.startswith("warning") for n in pf.notes)
    # The published statistics and files are bound: tampered ones are refused by name.
    shifted = replace(schema, mean=(schema.mean[0] + 1.0, *schema.mean[1:]))
    with pytest.raises(ConfigError, match="not the published validation split's mean and std"):
        manifest_task(replace(m, data=replace(m.data, schema=shifted)), storage)
    with pytest.raises(ConfigError, match="do not give the manifest's spec hash"):
        manifest_task(replace(m, spec_hash="00" * 32), storage)
    with pytest.raises(ConfigError, match="cannot fetch its model file"):
        manifest_task(m, LocalStorage(tmp_path / "empty"))


def test_a_built_in_project_file_is_unchanged() -> None:
    pf = load_project_file(ROOT / "examples" / "digits.toml")
    assert pf.manifest.data is None and b'"data"' not in pf.manifest.to_json()
    assert pf.manifest.quant == QuantSpec(16, 12) and pf.blobs == () and pf.notes == ()


@pytest.mark.parametrize(("text", "message"), [
    ('[project]\ntask = "mydata"\n', "unknown task 'mydata'.*data = FILE"),
    ('[project]\ndata = "wine.csv"\n', r"\[project\] model = FILE is missing"),
    ('[project]\nmodel = "model.py"\n', r"\[project\] data = FILE is missing"),
    ('data = "wine.csv"\nmodel = "model.py"\n', "unknown table or top-level key 'data'"),
    ('[project]\ndata = "wine.csv"\nmodle = "model.py"\n', r"unknown key 'modle' in \[project\]"),
    ('[project]\nlabel_column = "y"\n', "label_column is for own data"),
    ('[project]\ndata = "nope.csv"\nmodel = "model.py"\n', "no such file"),
    ('[project]\ndata = "wine.csv"\nmodel = "model.py"\nlabel_column = "class"\n', "no column 'class'"),
    ('[project]\ndata = "wine.csv"\nmodel = "model.py"\npreprocess = "minmax"\n', "preprocess = 'minmax'"),
    ('[project]\ndata = "wine.csv"\nmodel = "model.py"\ntask = "digits-softmax"\n', "names a built-in task"),
    ('[project]\ndata = "wine.csv"\nmodel = "model.py"\nview = "9."\n', r"view = '9\.'"),
    ('[data]\nfile = "wine.csv"\n', "unknown table or top-level key 'data'"),
])
def test_project_file_mistakes_are_named_config_errors(wine: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_project_file(project(wine, text))


def test_a_model_that_does_not_fit_the_data_is_named(wine: Path) -> None:
    (wine / "wide.py").write_text("from torch import nn\n\ndef build_model():\n    return nn.Linear(12, 3)\n")
    with pytest.raises(ConfigError, match="does not take 13 features"):
        load_project_file(project(wine, '[project]\ndata = "wine.csv"\nmodel = "wide.py"\n'))
    (wine / "two.py").write_text("from torch import nn\n\ndef build_model():\n    return nn.Linear(13, 2)\n")
    with pytest.raises(ConfigError, match="the data has 3 classes"):
        load_project_file(project(wine, '[project]\ndata = "wine.csv"\nmodel = "two.py"\n'))


@pytest.mark.parametrize(("source", "message"), [
    ("import not_a_package\n", "running the model file failed: ModuleNotFoundError"),  # these three were tracebacks
    ("def build_model():\n    return 42\n", "build_model\\(\\) returned a int, not a torch nn.Module"),
    ("def build_model():\n    raise KeyError('w')\n", "build_model\\(\\) failed: KeyError"),
    ("from torch import nn\nclass M(nn.Module):\n    def forward(self, x):\n        return (x,)\n"
     "def build_model():\n    return M()\n", "forward returns a tuple, not a tensor of logits"),
])
def test_a_model_file_that_fails_is_named_not_a_traceback(wine: Path, source: str, message: str) -> None:
    """The model file is the owner's code: whatever it raises or returns, owner create names the file and the fault."""
    (wine / "bad.py").write_text(source)
    with pytest.raises(ConfigError, match=message) as caught:
        load_project_file(project(wine, '[project]\ndata = "wine.csv"\nmodel = "bad.py"\n'))
    assert str(caught.value).startswith(str(wine / "bad.py"))


def test_unscaled_features_warn_by_name_and_a_declared_scale_that_clips_is_flagged(wine: Path) -> None:
    pf = load_project_file(project(wine, '[project]\ndata = "wine.csv"\nmodel = "model.py"\npreprocess = "none"\n'
                                         '[training]\nepochs = 5\nbatch_size = 8\nlr = 0.1\n[quant]\nscale_log2 = 12\n'))
    warning = next(n for n in pf.notes if "feature scales differ" in n)
    assert "proline" in warning and "magnesium" in warning and 'preprocess = "standardize"' in warning
    assert pf.manifest.quant.scale_log2 == 12  # declared: kept, but the owner is told it clips
    assert any("trainers refuse updates that clip" in n for n in pf.notes)


def test_trainer_data_must_fit_the_schema_and_is_preprocessed(wine: Path, tmp_path: Path) -> None:
    task = task_from_files("wine", wine / "wine.csv", wine / "model.py")
    assert task.schema is not None
    share = load_task_data(task, wine / "share0.csv")
    raw = np.loadtxt(wine / "share0.csv", delimiter=",", skiprows=1)
    assert torch.allclose(share.x, torch.as_tensor(preprocess(raw[:, :13], task.schema)))
    assert share.y.tolist() == raw[:, 13].astype(int).tolist()
    (tmp_path / "narrow.csv").write_text("a,b,label\n1,2,0\n")
    with pytest.raises(DataMismatch, match="2 features per row, but the project's schema has 13"):
        load_task_data(task, tmp_path / "narrow.csv")
    header = (wine / "share0.csv").read_text().splitlines()[0]
    (tmp_path / "labels.csv").write_text(header + "\n" + ",".join(["1"] * 13) + ",5\n")
    with pytest.raises(DataMismatch, match=r"labels \[5\] are outside the project's 3 classes"):
        load_task_data(task, tmp_path / "labels.csv")
    with pytest.raises(DataMismatch, match="13 features per row, but the project's schema has 64"):
        load_task_data(get_task("digits-softmax"), wine / "share0.csv")  # was a torch shape error


def test_standardisation_and_scale_warning_are_pure() -> None:
    x = np.array([[1.0, 5.0, 1000.0], [3.0, 5.0, 3000.0]], dtype=np.float32)
    mean, std = fit_standardize(x)
    assert mean == (2.0, 5.0, 2000.0) and std == (1.0, 1.0, 1000.0)  # a constant column keeps std 1
    schema = DataSchema(3, 2, "label", "standardize", mean, std)
    assert preprocess(x, schema).tolist() == [[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]]
    none = DataSchema(3, 2, "label", "none")
    assert preprocess(x, none).tolist() == x.tolist()
    warning = scale_warning(x, ["a", "b", "c"], none)
    assert warning is not None and "c (std 1000)" in warning and "against a (std 1)" in warning
    assert scale_warning(x, ["a", "b", "c"], schema) is None
    with pytest.raises(ConfigError, match="takes 3 means"):
        DataSchema(3, 2, "label", "standardize")


def test_clip_rate_and_the_fitted_scale() -> None:
    spec = QuantSpec(16, 12)  # range +-8
    assert clip_rate(torch.tensor([0.0, 7.9, -8.5, 100.0]), spec) == 0.5
    assert clip_rate(torch.zeros(0), spec) == 0.0
    update, model = torch.tensor([0.3, -0.9, 0.1]), torch.tensor([0.5, -1.0])
    scale = fit_scale_log2(update, model)
    assert clip_rate(4 * update, QuantSpec(16, scale)) == 0.0 and model_spec(QuantSpec(16, scale)).clip >= 64
    finer = QuantSpec(16, scale + 1)
    assert clip_rate(4 * update, finer) > 0 or model_spec(finer).clip < 64
    with pytest.raises(QuantizationError, match="standardize the features"):
        fit_scale_log2(torch.tensor([1e6]), model)


def test_an_update_that_would_clip_is_refused_saying_what_to_change() -> None:
    spec = QuantSpec(16, 12)
    fine = torch.full((200,), 0.5)
    assert refuse_clipping(fine, spec, "round 1: the update") == 0.0
    fine[0] = 100.0  # 1 of 200 values: 0.5%, reported but allowed
    assert refuse_clipping(fine, spec, "round 1: the update") == 0.005
    fine[1:3] = -100.0
    with pytest.raises(UpdateClipped, match=r"round 1: the update would clip 1\.50% .*scale_log2 = 12.*smaller scale_log2"):
        refuse_clipping(fine, spec, "round 1: the update")



@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.ipfs
@pytest.mark.timeout(1800)
def test_the_readme_walkthrough_on_the_devnet(wine: Path, tmp_path: Path) -> None:
    """README "Own data", command by command in separate processes: a CSV and a model file to a finished, settled project
    in which the three honest trainers are never flagged and the model learns."""
    from market.chain.client import Chain
    from market.chain.marketplace import Marketplace, State
    from market.dev.devnet import Devnet
    from market.ml.training import evaluate
    from market.parties.context import load_context
    from market.storage import IpfsStorage
    from market.toolchain.process import free_port

    env = {**os.environ, "FEDMARKET_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    fedmarket = [sys.executable, "-m", "market.cli"]

    def cli(*args: str) -> dict[str, Any]:
        out = subprocess.run([*fedmarket, *args, "--json"], env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    cli("devnet", "up", "--rpc-port", str(free_port()), "--ipfs-port", str(free_port()))
    net = Devnet.load(tmp_path / "home" / "devnet" / "devnet.json")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        created = cli("owner", "create", str(wine / "project.toml"), "--dev-account", "0",
                      "--aggregator", net.accounts[1]["address"])
        pid = str(created["pid"])
        assert any("trial round" in n for n in created["notes"])
        cli("aggregator", "register", pid, "--dev-account", "1")
        refused = subprocess.run([*fedmarket, "trainer", "join", pid, "--dev-account", "5", "--data",
                                  str(ROOT / "examples" / "own_data" / "model.py")], env=env, capture_output=True, text=True,
                                 timeout=300, cwd=ROOT)
        assert refused.returncode == 2 and "unsupported data format" in refused.stdout + refused.stderr
        for i in range(3):
            cli("trainer", "join", pid, "--dev-account", str(2 + i), "--data", str(wine / f"share{i}.csv"))
        cli("owner", "start", pid, "--dev-account", "0")
        logs = [tmp_path / f"{name}.log" for name in ("aggregator", "trainer0", "trainer1", "trainer2")]
        commands = [["aggregator", "run", pid, "--dev-account", "1", "--poll", "0.3"]] + [
            ["trainer", "run", pid, "--dev-account", str(2 + i), "--data", str(wine / f"share{i}.csv"), "--poll", "0.3"]
            for i in range(3)]
        for log, command in zip(logs, commands):
            with log.open("wb") as fh:
                procs.append(subprocess.Popen([*fedmarket, *command], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                              start_new_session=True, cwd=ROOT))
        for proc, log in zip(procs, logs):
            assert proc.wait(timeout=1200) == 0, log.read_text()[-3000:]
        cli("owner", "settle", pid, "--dev-account", "0")

        market = Marketplace(Chain.connect(net.rpc_url), net.contracts["FedMarket"])
        assert market.project(int(pid)).state == State.FINISHED
        posted = market.events("RoundPosted", int(pid))
        assert [int(e.args["round"]) for e in posted] == [1, 2]
        assert all(int(f) == 0 for e in posted for f in e.args["flags"])
        assert all("clipped 0.00% of its values" in log.read_text() for log in logs[1:])
        ctx = load_context(market, IpfsStorage(net.ipfs_api), int(pid))
        owner = task_from_files("wine", wine / "wine.csv", wine / "model.py")  # the owner's test split, never published
        assert ctx.task.spec_hash() == owner.spec_hash()
        _, acc0 = evaluate(owner.build_model, ctx.global_model(0), owner.test)
        _, acc = evaluate(owner.build_model, ctx.global_model(2), owner.test)
        assert acc >= acc0 + 0.3 and acc >= 0.8, (acc0, acc)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([*fedmarket, "devnet", "down"], env=env, capture_output=True, timeout=120, cwd=ROOT)
