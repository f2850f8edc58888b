"""Tasks: built-in digits models, parameter layout and proof view, splits, loaders, spec hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from market.errors import ConfigError
from market.ml.tasks import (
    dirichlet_partition,
    flatten,
    get_task,
    holdout_split,
    layout,
    num_params,
    proof_view,
    task_from_files,
    unflatten_into,
)
from market.ml.tasks.loaders import load_csv, load_data, load_image_folder, load_npz


def test_digits_softmax_has_650_parameters_and_full_view() -> None:
    task = get_task("digits-softmax")
    assert num_params(task.build_model()) == 650 and task.view() == (0, 650)
    assert [(s.name, s.shape, s.offset) for s in layout(task.build_model())] == [
        ("0.weight", (10, 64), 0), ("0.bias", (10,), 640)]
    assert len(task.train) + len(task.val) + len(task.test) == 1797 and task.num_classes == 10


def test_mlp_proof_view_is_the_head() -> None:
    task = get_task("digits-mlp")
    assert num_params(task.build_model()) == 64 * 32 + 32 + 32 * 10 + 10
    assert task.view() == (64 * 32 + 32, 32 * 10 + 10)
    with pytest.raises(ValueError):
        proof_view(task.build_model(), "9.")


def test_flatten_unflatten_roundtrip() -> None:
    model = get_task("digits-mlp").model(3)
    flat = flatten(model)
    other = unflatten_into(get_task("digits-mlp").model(4), flat)
    assert torch.equal(flatten(other), flat)
    assert torch.equal(flat[:2048], model[0].weight.detach().reshape(-1))
    with pytest.raises(ValueError):
        unflatten_into(model, flat[:-1])
    task = get_task("digits-mlp")
    assert torch.equal(flatten(task.model(3)), flat) and not torch.equal(flatten(task.model(4)), flat)


def test_spec_hash_is_stable_and_distinguishes_tasks() -> None:
    a, b = get_task("digits-softmax"), get_task("digits-softmax")
    assert a.spec_hash() == b.spec_hash() and len(a.spec_hash()) == 64
    assert a.spec_hash() != get_task("digits-mlp").spec_hash()
    with pytest.raises(KeyError):
        get_task("cifar")


def test_holdout_split_is_disjoint_and_stratified() -> None:
    y = np.repeat(np.arange(4), 50)
    tr, va, te = holdout_split(y, 0.2, 0.2, seed=0)
    assert len(set(tr) | set(va) | set(te)) == 200 and len(va) == 40 and len(te) == 40
    assert np.bincount(y[te]).tolist() == [10, 10, 10, 10]


def test_dirichlet_partition() -> None:
    y = np.repeat(np.arange(10), 100)
    parts = dirichlet_partition(y, 10, alpha=0.5, seed=1, min_size=10)
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(1000)) and min(len(p) for p in parts) >= 10
    skew = [np.bincount(y[p], minlength=10).max() / len(p) for p in parts]
    assert max(skew) > 0.3  # non-IID: some client is dominated by one class
    assert all(np.array_equal(p, q) for p, q in zip(parts, dirichlet_partition(y, 10, 0.5, 1, 10)))
    with pytest.raises(ValueError):
        dirichlet_partition(y[:50], 10, 0.5, 0, min_size=10)


def test_npz_and_csv_loaders(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", x=np.ones((3, 2, 2)), y=np.array([0, 1, 1]))
    x, y = load_npz(tmp_path / "d.npz")
    assert x.shape == (3, 4) and x.dtype == np.float32 and y.tolist() == [0, 1, 1]
    (tmp_path / "d.csv").write_text("a,b,label\n1.5,2,0\n3,4,2\n")
    x, y = load_csv(tmp_path / "d.csv")
    assert x.tolist() == [[1.5, 2.0], [3.0, 4.0]] and y.tolist() == [0, 2]
    with pytest.raises(ConfigError):
        load_csv(tmp_path / "d.csv", label_column="target")
    (tmp_path / "bad.csv").write_text("a,label\n1,-1\n")
    with pytest.raises(ConfigError):
        load_csv(tmp_path / "bad.csv")


def test_a_bad_data_file_is_a_config_error_that_names_it(tmp_path) -> None:
    """What a trainer may pass as --data before it stakes: each fault named, none a numpy or OS traceback."""
    with pytest.raises(ConfigError, match="no such file or folder"):
        load_data(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ConfigError, match=r"text\.npz: not a numpy \.npz archive"):
        load_data(tmp_path / "text.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 3, dtype=object), y=np.zeros(3, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"not a numpy \.npz archive"):
        load_data(tmp_path / "obj.npz")
    np.savez(tmp_path / "rows.npz", x=np.zeros((4, 2)), y=np.zeros(3, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"\(4, 2\) and 'y' \(3,\) must have one row per label"):
        load_data(tmp_path / "rows.npz")
    x = np.zeros((4, 2))
    x[2, 1], x[3, 0] = np.nan, np.inf
    np.savez(tmp_path / "nan.npz", x=x, y=np.zeros(4, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"2 NaN or infinite feature values \(the first in row 2\)"):
        load_data(tmp_path / "nan.npz")
    for name, text in (("empty.csv", ""), ("semicolons.csv", "a;b;label\n1;2;0\n"), ("ragged.csv", "a,b,label\n1,2,0\n3,4\n")):
        (tmp_path / name).write_text(text)  # were IndexError and ValueError tracebacks
        with pytest.raises(ConfigError, match=f"{name}: not a comma-separated table with a header row"):
            load_data(tmp_path / name)
    (tmp_path / "gap.csv").write_text("a,b,label\n1,,0\n3,x,1\n")
    with pytest.raises(ConfigError, match=r"2 non-numeric or missing feature values \(the first in row 0\)"):
        load_data(tmp_path / "gap.csv")


def test_image_folder_loader(tmp_path) -> None:
    from PIL import Image

    for label, shade in (("cat", 0), ("dog", 255)):
        (tmp_path / label).mkdir()
        Image.new("L", (10, 10), shade).save(tmp_path / label / "a.png")
    x, y = load_image_folder(tmp_path, size=(4, 4))
    assert x.shape == (2, 16) and y.tolist() == [0, 1]
    assert x[0].max() == 0.0 and x[1].min() == 1.0
    (tmp_path / "dog" / "b.png").write_text("not an image")  # was PIL's UnidentifiedImageError traceback
    with pytest.raises(ConfigError, match=r"b\.png: not a readable image"):
        load_image_folder(tmp_path, size=(4, 4))


def test_task_from_user_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(60, 5)), y=np.repeat([0, 1, 2], 20))
    (tmp_path / "model.py").write_text(
        "from torch import nn\n\ndef build_model():\n    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))\n"
    )
    task = task_from_files("mine", tmp_path / "data.npz", tmp_path / "model.py", view_prefix="2.")
    assert task.view() == (24, 15) and task.num_classes == 3
    assert len(task.train) + len(task.val) + len(task.test) == 60
    h = task.spec_hash()
    (tmp_path / "model.py").write_text((tmp_path / "model.py").read_text() + "# changed\n")
    assert task_from_files("mine", tmp_path / "data.npz", tmp_path / "model.py", "2.").spec_hash() != h
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigError):
        task_from_files("mine", tmp_path / "data.npz", tmp_path / "empty.py")
