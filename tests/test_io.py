"""save / load: one .npz with weights, masks, snapshots and config."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.io import ModelFileError, load_metadata


def test_round_trip_predicts_the_same(tmp_path, mnist5k):
    model = ts.nn.lenet5(seed=2)
    path = ts.save(model, tmp_path / "lenet5", metadata={"note": "untrained"})
    assert path.name == "lenet5.npz"
    loaded = ts.load(path)
    x = mnist5k.x_test[:16]
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    header = load_metadata(path)
    assert header["config"]["name"] == "lenet5" and header["metadata"]["note"] == "untrained"
    assert [p for p in tmp_path.iterdir()] == [path]  # no temporary file left behind


def test_masks_and_snapshots_survive(tmp_path):
    model = ts.nn.lenet300(seed=0)
    keep = np.random.default_rng(0).random(model.fc1.weight.shape) > 0.9
    model.fc1.set_mask("weight", keep)
    model.snapshots = {"init": model.state_dict()}
    loaded = ts.load(ts.save(model, tmp_path / "m.npz"))
    masks = dict(loaded.named_masks())
    np.testing.assert_array_equal(masks["fc1.weight"].keep, keep)
    assert np.all(loaded.fc1.weight.data[~keep] == 0)
    for name, values in model.snapshots["init"].items():
        np.testing.assert_array_equal(loaded.snapshots["init"][name], values)


def test_float64_model_stays_float64(tmp_path):
    loaded = ts.load(ts.save(ts.nn.mlp([3, 2]).double(), tmp_path / "m.npz"))
    assert loaded.dtype == np.float64


def test_bad_files_fail_clearly(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        ts.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ModelFileError, match="not a readable"):
        ts.load(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(ModelFileError, match="not a tinysparse model"):
        ts.load(foreign)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = ts.save(ts.nn.mlp([3, 2]), tmp_path / "m.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["param/fc1.weight"] = np.ones((5, 5), dtype=np.float32)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="do not fit"):
        ts.load(path)
