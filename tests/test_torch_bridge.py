"""The bridge to PyTorch (``tinysparse.export``): a pruned tinysparse model goes to a
``.safetensors`` file, into the equivalent PyTorch model pruned with
``torch.nn.utils.prune``, back out of PyTorch with ``safetensors.torch.save_file`` and
into tinysparse again, computing the same outputs all the way (to 1e-6, in float64)."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

import tinysparse as ts  # noqa: E402
from tinysparse.io import ModelFileError  # noqa: E402
from tinysparse.nn.sparse_layers import SparseConv2d, SparseLinear  # noqa: E402

pytestmark = pytest.mark.torch


# ---------------------------------------------------------------- the equivalent models
# The same child names as tinysparse.nn.mlp / lenet300 / lenet5 (the README shows these).
def torch_mlp(sizes, activation="ReLU"):
    from torch import nn

    layers = [("flatten", nn.Flatten())]
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers.append((f"fc{i}", nn.Linear(fan_in, fan_out)))
        if i < len(sizes) - 1:
            layers.append((f"act{i}", getattr(nn, activation)()))
    return nn.Sequential(OrderedDict(layers))


def torch_lenet300():
    return torch_mlp([784, 300, 100, 10])


def torch_lenet5():
    from torch import nn

    class Reshape(nn.Module):  # tinysparse's Reshape(1, 28, 28): (N, 784) or (N, 1, 28, 28)
        def forward(self, x):
            return x.reshape(len(x), 1, 28, 28)

    return nn.Sequential(OrderedDict([
        ("reshape", Reshape()),
        ("conv1", nn.Conv2d(1, 6, 5, padding=2)), ("act1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("act2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(400, 120)), ("act3", nn.ReLU()),
        ("fc2", nn.Linear(120, 84)), ("act4", nn.ReLU()),
        ("fc3", nn.Linear(84, 10)),
    ]))


def load_into_torch(torch_model, state):
    """What the README shows: prune (with an identity mask) every parameter the file
    holds a mask of, then load the state dict."""
    from torch.nn.utils import prune

    for key in state:
        if key.endswith("_mask"):
            layer, _, parameter = key.removesuffix("_mask").rpartition(".")
            prune.identity(torch_model.get_submodule(layer), parameter)
    torch_model.load_state_dict(state)
    return torch_model.eval()


MODELS = {
    "lenet300": (lambda: ts.nn.lenet300(seed=0), torch_lenet300),
    "lenet5": (lambda: ts.nn.lenet5(seed=0), torch_lenet5),
}


@pytest.fixture(scope="module")
def digits(mnist5k):
    return mnist5k.x_test[:256].astype(np.float64)


def outputs(model, x):
    return model(x).data


def torch_outputs(torch, model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", list(MODELS))
def test_a_pruned_model_goes_to_pytorch_and_back(name, torch, digits, tmp_path):
    from safetensors.torch import load_file, save_file

    make_ours, make_theirs = MODELS[name]
    model = make_ours().double()
    ts.prune.prune(model, 0.9, method="magnitude")
    assert any(isinstance(m, (SparseLinear, SparseConv2d)) for m in model.modules())
    ours = outputs(model, digits)
    masks = {name: mask.keep.copy() for name, mask in model.named_masks()}

    path = ts.export_safetensors(model, tmp_path / name)
    assert path == tmp_path / f"{name}.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    state = load_file(path)
    for weight in masks:
        assert f"{weight}_orig" in state and f"{weight}_mask" in state
        assert weight not in state
    theirs = load_into_torch(make_theirs(), state)
    np.testing.assert_allclose(torch_outputs(torch, theirs, digits), ours, rtol=0, atol=1e-6)
    for weight, keep in masks.items():  # PyTorch computes weight_orig * weight_mask
        layer, _, parameter = weight.rpartition(".")
        effective = getattr(theirs.get_submodule(layer), parameter).detach().numpy()
        np.testing.assert_array_equal(effective, model.state_dict()[weight])
        np.testing.assert_array_equal(effective[~keep], 0)

    # back from PyTorch, without torch.save: its state dict as it is
    back_path = tmp_path / f"{name}-from-torch.safetensors"
    save_file(theirs.state_dict(), str(back_path))
    back = ts.import_safetensors(back_path, model=make_ours().double())
    np.testing.assert_allclose(outputs(back, digits), ours, rtol=0, atol=1e-6)
    assert sorted(dict(back.named_masks())) == sorted(masks)
    for weight, mask in back.named_masks():
        np.testing.assert_array_equal(mask.keep, masks[weight])
    assert [type(m) for m in back.modules()] == [type(m) for m in model.modules()]
    assert not back.training

    # and without a template, from the tinysparse header of the exported file
    rebuilt = ts.import_safetensors(path)
    np.testing.assert_array_equal(outputs(rebuilt, digits), ours)
    assert rebuilt.config == model.config and rebuilt.dtype == np.float64


def test_a_dense_model_has_plain_names_and_loads_without_pruning(torch, digits, tmp_path):
    from safetensors.torch import load_file, save_file

    model = ts.nn.mlp([784, 64, 32, 10], activation="tanh", seed=3).double()
    path = ts.export_safetensors(model, tmp_path / "mlp.safetensors")
    state = load_file(path)
    assert sorted(state) == sorted(model.state_dict())
    theirs = torch_mlp([784, 64, 32, 10], activation="Tanh")
    theirs.load_state_dict(state)
    np.testing.assert_allclose(torch_outputs(torch, theirs, digits), outputs(model, digits),
                               rtol=0, atol=1e-6)
    save_file(theirs.state_dict(), str(tmp_path / "back.safetensors"))
    back = ts.import_safetensors(tmp_path / "back.safetensors",
                                 model=ts.nn.mlp([784, 64, 32, 10], activation="tanh").double())
    assert not list(back.named_masks())
    np.testing.assert_allclose(outputs(back, digits), outputs(model, digits), rtol=0, atol=1e-6)


def test_a_model_pruned_in_pytorch_comes_in_with_its_masks(torch, digits, tmp_path):
    """PyTorch keeps the pruned weights in weight_orig; tinysparse zeros them and moves
    the layers pruned enough to the sparse kernels."""
    from safetensors.torch import save_file
    from torch.nn.utils import prune

    theirs = torch_lenet300()
    prune.l1_unstructured(theirs.fc1, "weight", amount=0.95)
    prune.l1_unstructured(theirs.fc2, "weight", amount=0.5)
    path = tmp_path / "pruned-in-torch.safetensors"
    save_file(theirs.state_dict(), str(path))
    template = ts.nn.lenet300(seed=1).double()
    ts.prune.prune(template, 0.8)  # its own masks are dropped for the file's
    ours = ts.import_safetensors(path, model=template)
    assert ours is template
    assert type(ours.fc1) is SparseLinear and ours.fc1.mask.density == pytest.approx(0.05)
    assert type(ours.fc2) is ts.nn.Linear
    assert dict(ours.named_masks())["fc2.weight"].density == 0.5
    assert "fc3.weight" not in dict(ours.named_masks())
    np.testing.assert_array_equal(ours.fc1.mask.keep, theirs.fc1.weight_mask.numpy() == 1)
    np.testing.assert_allclose(outputs(ours, digits), torch_outputs(torch, theirs, digits),
                               rtol=0, atol=1e-6)


def test_the_header_holds_the_dense_architecture_and_the_metadata(tmp_path):
    from safetensors import safe_open

    model = ts.nn.lenet300(seed=0)
    ts.prune.prune(model, 0.9)
    path = ts.export_safetensors(model, tmp_path / "m", metadata={"accuracy": 0.93})
    with safe_open(path, framework="np") as f:
        metadata = f.metadata()
        assert f.get_tensor("fc1.weight_orig").dtype == np.float32
    assert metadata["format"] == "pt"
    header = json.loads(metadata["tinysparse"])
    assert header["architecture"] == ts.nn.lenet300().spec()  # Linear, not SparseLinear
    assert header["metadata"] == {"accuracy": 0.93} and header["dtype"] == "float32"


# ---------------------------------------------------------------- errors
def _export(tmp_path, **changes):
    """A pruned LeNet-300-100's file, with entries changed (None removes one)."""
    from safetensors.numpy import load_file, save_file

    model = ts.nn.lenet300(seed=0)
    ts.prune.prune(model, 0.9)
    path = ts.export_safetensors(model, tmp_path / "model")
    state = load_file(path)
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    return broken


@pytest.mark.parametrize("changes, message", [
    ({"fc2.bias": None}, "no entry fc2.bias"),
    ({"fc1.weight_mask": None}, "fc1.weight_orig without fc1.weight_mask"),
    ({"fc1.weight_orig": None}, "fc1.weight_mask without fc1.weight_orig"),
    ({"fc1.weight": np.zeros((300, 784), np.float32)}, "both fc1.weight and"),
    ({"fc3.bias": np.zeros(11, np.float32)}, "fc3.bias has shape (11,)"),
    ({"fc4.weight": np.zeros((2, 2), np.float32)}, "unexpected entry 'fc4.weight'"),
    ({"fc1.weight_mask": np.full((300, 784), 0.5, np.float32)}, "fc1.weight_mask: a mask"),
    ({"fc1.bias": np.full(300, np.nan, np.float32)}, "fc1.bias: holds NaN"),
    ({"fc1.bias": np.zeros(300, np.int32)}, "fc1.bias: dtype I32"),
])
def test_a_file_that_does_not_fit_the_model_is_refused_naming_the_entry(
        tmp_path, changes, message):
    broken = _export(tmp_path, **changes)
    template = ts.nn.lenet300(seed=5)
    before = template.state_dict()
    with pytest.raises(ModelFileError, match="broken.safetensors") as error:
        ts.import_safetensors(broken, model=template)
    assert message in str(error.value)
    for name, values in template.state_dict().items():  # nothing changed
        np.testing.assert_array_equal(values, before[name])


def test_a_file_that_is_not_safetensors_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    ts.save(ts.nn.lenet300(), path)
    with pytest.raises(ModelFileError, match="model.npz: not a readable safetensors file"):
        ts.import_safetensors(path)
    with pytest.raises(ModelFileError, match="missing.safetensors: no such"):
        ts.import_safetensors(tmp_path / "missing.safetensors")


def test_a_file_without_a_header_needs_a_template(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "plain.safetensors"
    save_file({k: v for k, v in ts.nn.lenet300().state_dict().items()}, str(path))
    with pytest.raises(ModelFileError, match="pass the model to load it into"):
        ts.import_safetensors(path)
    assert ts.import_safetensors(path, model=ts.nn.lenet300(seed=1)) is not None


def test_without_safetensors_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match=r"tinysparse\[torch-bridge\]"):
        ts.export_safetensors(ts.nn.lenet300(), tmp_path / "m")
    with pytest.raises(ImportError, match=r"tinysparse\[torch-bridge\]"):
        ts.import_safetensors(tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())
