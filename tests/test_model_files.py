"""Model files that `load` must refuse, and models that `save` must refuse (issue 14).

Each bad file is built by hand from a good one. Every refusal is a `ModelFileError` whose
message names the file and the entry; nothing is built before the arrays are known to fit
the architecture. `tests/model_file_mutations.py` runs the same property on many random
corruptions (`test_mutated_files_load_exactly_or_are_refused`, at the end).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.io import HEADER_KEY, ModelFileError
from tinysparse.nn.module import Module


def read_back(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the other arrays of a good model file."""
    with np.load(path) as archive:
        arrays = dict(archive)
    return json.loads(str(arrays.pop(HEADER_KEY))), arrays


def write(path: Path, header, arrays: dict[str, np.ndarray]) -> Path:
    """A .npz of ``arrays`` with ``header`` (JSON-able, or an array as it is) as its header."""
    header = header if isinstance(header, np.ndarray) else np.array(json.dumps(header))
    np.savez(path, **{HEADER_KEY: header}, **arrays)
    return path


def refusal(path: Path, *expected: str) -> str:
    """The message of the `ModelFileError` that loading ``path`` raises; it names the file
    and contains each of ``expected``."""
    with pytest.raises(ModelFileError) as info:
        ts.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for text in expected:
        assert text in message, message
    return message


@pytest.fixture
def mlp_file(tmp_path) -> tuple[Path, dict, dict[str, np.ndarray]]:
    """A saved mlp([4, 3, 2]): its path, header and arrays."""
    path = ts.save(ts.nn.mlp([4, 3, 2], seed=0), tmp_path / "mlp.npz")
    return (path, *read_back(path))


@pytest.fixture
def pruned_file(tmp_path) -> tuple[Path, dict, dict[str, np.ndarray]]:
    """A saved LeNet-5 with masked dense and sparse layers and a snapshot."""
    model = ts.nn.lenet5(seed=0)
    ts.prune.snapshot(model)
    ts.prune.prune(model, 0.9)
    assert ts.nn.has_sparse_layers(model)
    path = ts.save(model, tmp_path / "pruned.npz")
    return (path, *read_back(path))


def layer(header: dict, name: str) -> dict:
    """The spec of the Sequential's layer ``name`` in ``header``."""
    return dict(header["architecture"]["layers"])[name]


# ---------------------------------------------------------------- not a model file at all
def test_npy_renamed_npz(tmp_path):
    np.save(tmp_path / "weights.npy", np.ones(3))
    path = (tmp_path / "weights.npy").rename(tmp_path / "weights.npz")
    refusal(path, "a single .npy array")


def test_plain_text_renamed_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are not weights\n")
    refusal(path, "not a zip archive")


def test_directory_and_missing_file(tmp_path):
    refusal(tmp_path / "missing.npz", "no such model file")
    (tmp_path / "folder.npz").mkdir()
    refusal(tmp_path / "folder.npz", "cannot be read")


def test_truncated_file(mlp_file):
    path, _, _ = mlp_file
    path.write_bytes(path.read_bytes()[:-100])
    refusal(path, "not a readable .npz file")


def test_flipped_byte_fails_the_checksum(tmp_path):
    path = tmp_path / "m.npz"
    ts.save(ts.nn.mlp([4, 3, 2]), path)
    header, arrays = read_back(path)
    write(path, header, arrays)  # stored, not deflated: the weights' bytes are in the file
    data = bytearray(path.read_bytes())
    at = data.index(arrays["param/fc1.weight"].tobytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    refusal(path, "param/fc1.weight", "CRC")


@pytest.mark.parametrize("garbled", ["{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), ",
                                     "{[1]: 2}", "{'descr': '<f4', 'fortran_order': False, "
                                     "'shape': (3, 4), 'x': {1, [2]}}", "(" * 300])
def test_npy_header_that_is_not_a_header(mlp_file, garbled):
    """NumPy's parser raises more than ValueError on these (TypeError, TokenError)."""
    path, header, arrays = mlp_file
    text = garbled + " " * (-(len(garbled) + 11) % 64) + "\n"
    del arrays["param/fc1.weight"]
    write(path, header, arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("param/fc1.weight.npy", b"\x93NUMPY\x01\x00"
                         + len(text).to_bytes(2, "little") + text.encode() + b"\0" * 48)
    refusal(path, "param/fc1.weight: not a readable .npy array")


def test_zip_entry_that_is_not_an_array(mlp_file):
    path, header, arrays = mlp_file
    write(path, header, arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "hello")
    refusal(path, "'notes.txt'", "only .npy arrays")


def test_directory_declaring_more_bytes_than_the_file_holds(mlp_file):
    """A zip's directory gives each member's size; a member may not claim more than the
    file can hold (a zip bomb's trick), checked before anything is read."""
    path, header, arrays = mlp_file
    write(path, header, arrays)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the directory's first entry
    data[entry + 24:entry + 28] = struct.pack("<I", 0xFFFFFFF0)  # its uncompressed size
    path.write_bytes(bytes(data))
    refusal(path, "declares 4,294,967,280 bytes", "more than the file holds")


def test_npy_header_declaring_a_huge_array_allocates_nothing(mlp_file):
    path, header, arrays = mlp_file
    write(path, header, arrays)
    with zipfile.ZipFile(path, "a") as archive, archive.open("param/huge.npy", "w") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**7)})
        f.write(b"\0" * 16)
    tracemalloc.start()
    try:
        refusal(path, "param/huge", "declares shape (10000000, 10000000)", "holds 16 bytes")
        assert tracemalloc.get_traced_memory()[1] < 10 * 2**20
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- the header
@pytest.mark.parametrize("value, found", [([], "a list"), ([1, 2], "a list"), (3, "3"),
                                          ("model", "'model'"), (None, "None")])
def test_header_that_is_not_an_object(mlp_file, value, found):
    path, _, arrays = mlp_file
    refusal(write(path, value, arrays), f"must be a JSON object, found {found}")


@pytest.mark.parametrize("header", [np.array(b'{"format": "tinysparse"}'), np.array(5),
                                    np.array(["{}", "{}"]), np.array(["{}"])])
def test_header_entry_of_the_wrong_dtype(mlp_file, header):
    path, _, arrays = mlp_file
    refusal(write(path, header, arrays), HEADER_KEY, "expected one string")


@pytest.mark.parametrize("text", ["{not json", "[" * 100_000, '{"version": 1' + "0" * 5000 + "}"])
def test_header_that_is_not_json(mlp_file, text):
    path, _, arrays = mlp_file
    refusal(write(path, np.array(text), arrays), "not valid JSON")


def test_no_header(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones(3))
    refusal(path, "not a tinysparse model")


def test_header_without_architecture(mlp_file):
    path, header, arrays = mlp_file
    del header["architecture"]
    refusal(write(path, header, arrays), "no 'architecture'")


def test_unknown_header_entry(mlp_file):
    path, header, arrays = mlp_file
    header["weights_url"] = "http://example.com"
    refusal(write(path, header, arrays), "unknown entry 'weights_url'")


@pytest.mark.parametrize("version", [2, 0, -1, "1", 1.0, True, None])
def test_unsupported_format_version(mlp_file, version):
    path, header, arrays = mlp_file
    header["version"] = version
    refusal(write(path, header, arrays), "unsupported format version", "reads version 1")


def test_other_format(mlp_file):
    path, header, arrays = mlp_file
    header["format"] = "keras"
    refusal(write(path, header, arrays), "not a tinysparse model", "'keras'")


@pytest.mark.parametrize("dtype", ["float16", "complex128", "int64", "object", 32, None])
def test_header_dtype_other_than_float32_or_float64(mlp_file, dtype):
    path, header, arrays = mlp_file
    header["dtype"] = dtype
    refusal(write(path, header, arrays), "dtype must be float32 or float64")


@pytest.mark.parametrize("entry, value", [("config", [1]), ("metadata", "note")])
def test_config_and_metadata_are_objects(mlp_file, entry, value):
    path, header, arrays = mlp_file
    header[entry] = value
    refusal(write(path, header, arrays), f"{entry} must be an object")


# ---------------------------------------------------------------- the architecture
def test_unknown_constructor_argument(mlp_file):
    path, header, arrays = mlp_file
    layer(header, "fc1")["args"]["activation"] = "relu"
    refusal(write(path, header, arrays), "layer 'fc1' (Linear)", "unknown argument 'activation'")


def test_missing_constructor_argument(mlp_file):
    path, header, arrays = mlp_file
    del layer(header, "fc1")["args"]["bias"]
    refusal(write(path, header, arrays), "layer 'fc1' (Linear)", "missing argument 'bias'")


@pytest.mark.parametrize("name, value, expected", [
    ("in_features", "4", "a positive integer"), ("in_features", 0, "a positive integer"),
    ("in_features", -4, "a positive integer"), ("in_features", True, "a positive integer"),
    ("in_features", 4.0, "a positive integer"), ("in_features", None, "a positive integer"),
    ("in_features", [4], "a positive integer"), ("bias", 1, "true or false"),
    ("bias", "true", "true or false")])
def test_argument_of_the_wrong_type(mlp_file, name, value, expected):
    path, header, arrays = mlp_file
    layer(header, "fc1")["args"][name] = value
    refusal(write(path, header, arrays), "layer 'fc1' (Linear)", f"{name} must be {expected}")


@pytest.mark.parametrize("layer_name, args, expected", [
    ("conv1", {"padding": -1}, "padding must be an integer >= 0"),
    ("conv1", {"stride": 0}, "stride must be a positive integer"),
    ("pool1", {"kernel_size": "2"}, "kernel_size must be a positive integer"),
    ("reshape", {"shape": []}, "shape must be a non-empty list of positive integers"),
    ("reshape", {"shape": [1, 28, -28]}, "shape must be a non-empty list"),
    ("act1", {"inplace": True}, "unknown argument 'inplace'; a ReLU takes no arguments")])
def test_arguments_of_other_layers(pruned_file, layer_name, args, expected):
    path, header, arrays = pruned_file
    layer(header, layer_name)["args"].update(args)
    refusal(write(path, header, arrays), f"layer {layer_name!r}", expected)


def test_layer_declared_much_larger_than_its_arrays_allocates_nothing(mlp_file):
    """Linear(1e7, 1e7) would need 400 TB: refused from the shapes alone."""
    path, header, arrays = mlp_file
    layer(header, "fc1")["args"].update(in_features=10**7, out_features=10**7)
    tracemalloc.start()
    try:
        refusal(write(path, header, arrays), "param/fc1.weight has shape (3, 4)",
                "declares fc1.weight of shape (10000000, 10000000)")
        assert tracemalloc.get_traced_memory()[1] < 10 * 2**20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("type_name", ["Dense", "SparseLayer", "Module", 5, None])
def test_module_type_not_in_the_registry(mlp_file, type_name):
    path, header, arrays = mlp_file
    layer(header, "fc1")["type"] = type_name
    refusal(write(path, header, arrays), "layer 'fc1'", "unknown module type")


def test_spec_with_unexpected_keys(mlp_file):
    path, header, arrays = mlp_file
    layer(header, "fc1")["init"] = "he_normal"
    refusal(write(path, header, arrays), "layer 'fc1' (Linear)", "expected the keys")


@pytest.mark.parametrize("name, expected", [
    (1, "must be a non-empty string"), ("", "must be a non-empty string"),
    ("fc.1", "without '.'"), ("eval", "cannot be called 'eval'"),
    ("training", "cannot be called 'training'"), ("snapshots", "cannot be called"),
    ("fc2", "two layers are called 'fc2'")])
def test_layer_names(mlp_file, name, expected):
    path, header, arrays = mlp_file
    header["architecture"]["layers"][1][0] = name  # the first activation's
    refusal(write(path, header, arrays), expected)


def test_layers_that_are_not_pairs(mlp_file):
    path, header, arrays = mlp_file
    header["architecture"]["layers"][1] = ["act1", {"type": "ReLU", "args": {}}, "extra"]
    refusal(write(path, header, arrays), "list of [name, spec] pairs")


def test_architecture_nested_too_deep(mlp_file):
    path, header, arrays = mlp_file
    for _ in range(40):
        header["architecture"] = {"type": "Sequential", "layers": [["inner", header[
            "architecture"]]]}
    refusal(write(path, header, arrays), "nested more than 32 deep")


def test_extra_layer_in_the_header(mlp_file):
    """An altered network is never loaded silently: its weights would be missing."""
    path, header, arrays = mlp_file
    header["architecture"]["layers"].append(
        ["fc3", {"type": "Linear", "args": {"in_features": 2, "out_features": 2,
                                            "bias": True}}])
    refusal(write(path, header, arrays), "param/fc3.weight is missing",
            "layer 'fc3' (Linear) declares fc3.weight of shape (2, 2)")


def test_layer_missing_from_the_header(mlp_file):
    path, header, arrays = mlp_file
    del header["architecture"]["layers"][-2:]  # act1, fc2
    refusal(write(path, header, arrays), "param/fc2.weight", "no state entry 'fc2.weight'")


# ---------------------------------------------------------------- the arrays
def test_missing_weights(mlp_file):
    path, header, arrays = mlp_file
    del arrays["param/fc2.bias"]
    refusal(write(path, header, arrays), "param/fc2.bias is missing")


@pytest.mark.parametrize("key", ["param/fc9.weight", "weights", "snapshot/init"])
def test_array_of_no_declared_entry(mlp_file, key):
    path, header, arrays = mlp_file
    arrays[key] = np.ones(3, dtype=np.float32)
    refusal(write(path, header, arrays), key)


def test_weights_of_the_wrong_shape(mlp_file):
    path, header, arrays = mlp_file
    arrays["param/fc1.weight"] = arrays["param/fc1.weight"].T.copy()
    refusal(write(path, header, arrays), "param/fc1.weight has shape (4, 3)",
            "declares fc1.weight of shape (3, 4)")


@pytest.mark.parametrize("dtype", [np.complex128, np.int64, np.float16, ">f4"])
def test_weights_of_another_dtype(mlp_file, dtype):
    """Complex weights used to be cast with a warning; big-endian ones loaded as they were."""
    path, header, arrays = mlp_file
    arrays["param/fc1.weight"] = arrays["param/fc1.weight"].astype(dtype)
    refusal(write(path, header, arrays), f"param/fc1.weight: dtype {np.dtype(dtype)}",
            "expected float32 or float64")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(mlp_file, value):
    """They used to load, and the model predicted class 0 for everything."""
    path, header, arrays = mlp_file
    arrays["param/fc2.bias"][1] = value
    refusal(write(path, header, arrays), "param/fc2.bias: 1 of 2 values are NaN or infinite")


def test_mask_for_a_layer_that_does_not_exist(mlp_file):
    path, header, arrays = mlp_file
    arrays["mask/fc9.weight"] = np.ones((3, 4), dtype=bool)
    refusal(write(path, header, arrays), "mask/fc9.weight", "no state entry 'fc9.weight'")


def test_mask_of_the_wrong_shape(mlp_file):
    path, header, arrays = mlp_file
    arrays["mask/fc1.weight"] = np.ones((4, 3), dtype=bool)
    refusal(write(path, header, arrays), "mask/fc1.weight has shape (4, 3)")


@pytest.mark.parametrize("keep", [np.full((3, 4), 2, dtype=np.uint8),
                                  np.ones((3, 4), dtype=np.uint8),
                                  np.ones((3, 4), dtype=np.float32)])
def test_mask_that_is_not_booleans(mlp_file, keep):
    path, header, arrays = mlp_file
    arrays["mask/fc1.weight"] = keep
    refusal(write(path, header, arrays), f"mask/fc1.weight: dtype {keep.dtype}",
            "expected bool")


def test_boolean_mask_holding_other_bytes(mlp_file):
    path, header, arrays = mlp_file
    keep = np.ones((3, 4), dtype=bool)
    keep.view(np.uint8)[0, 0] = 2
    arrays["mask/fc1.weight"] = keep
    refusal(write(path, header, arrays), "mask/fc1.weight: a mask holds only 0 and 1")


def test_sparse_layer_without_its_mask(pruned_file):
    path, header, arrays = pruned_file
    del arrays["mask/fc1.weight"]
    refusal(write(path, header, arrays), "mask/fc1.weight is missing",
            "layer 'fc1' (SparseLinear) is built from its mask")


def test_snapshot_of_the_wrong_shape(pruned_file):
    path, header, arrays = pruned_file
    arrays["snapshot/init/fc1.weight"] = arrays["snapshot/init/fc1.weight"][:, :10]
    refusal(write(path, header, arrays), "snapshot/init/fc1.weight has shape (120, 10)")


def test_snapshot_of_no_state_entry(pruned_file):
    path, header, arrays = pruned_file
    arrays["snapshot/init/fc9.weight"] = arrays.pop("snapshot/init/fc1.weight")
    refusal(write(path, header, arrays), "snapshot/init/fc9.weight", "no state entry")


def test_snapshot_that_is_not_finite_or_not_float(pruned_file):
    path, header, arrays = pruned_file
    arrays["snapshot/init/fc3.bias"][0] = np.nan
    refusal(write(path, header, arrays), "snapshot/init/fc3.bias: 1 of 10 values are NaN")
    arrays["snapshot/init/fc3.bias"] = np.arange(10)
    refusal(write(path, header, arrays), "snapshot/init/fc3.bias: dtype int64")


# ---------------------------------------------------------------- good files
def test_pruned_model_with_snapshots_round_trips(pruned_file):
    path, header, arrays = pruned_file
    model = ts.load(path)
    assert model.spec() == header["architecture"]
    state = model.state_dict()
    assert {f"param/{name}" for name in state} == {k for k in arrays if k.startswith("param/")}
    for name, values in state.items():
        np.testing.assert_array_equal(values, arrays[f"param/{name}"])
    for name, mask in model.named_masks():
        np.testing.assert_array_equal(mask.keep, arrays[f"mask/{name}"])
    for name, values in model.snapshots["init"].items():
        np.testing.assert_array_equal(values, arrays[f"snapshot/init/{name}"])


def test_files_written_without_compression_or_optional_entries_load(mlp_file):
    """`np.savez` (stored members, as older tests wrote) and a header without config and
    metadata are still model files."""
    path, header, arrays = mlp_file
    del header["config"], header["metadata"]
    assert ts.load(write(path, header, arrays)).state_dict().keys() == {
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


# ---------------------------------------------------------------- save refuses
def test_save_refuses_a_snapshot_label_with_a_slash(tmp_path):
    """'a/b' used to come back as label 'a' with weights called 'b/fc1.weight'."""
    model = ts.nn.mlp([4, 3, 2])
    model.snapshots = {"round/1": model.state_dict()}
    with pytest.raises(ValueError, match="snapshot label 'round/1'.*without '/'"):
        ts.save(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("label", [1, "", None])
def test_save_refuses_a_label_that_is_not_a_name(tmp_path, label):
    model = ts.nn.mlp([4, 3, 2])
    model.snapshots = {label: model.state_dict()}
    with pytest.raises(ValueError, match=f"snapshot label {label!r}"):
        ts.save(model, tmp_path / "m.npz")


def test_save_refuses_an_object_snapshot(tmp_path):
    """It used to save, and then the file could not be loaded."""
    model = ts.nn.mlp([4, 3, 2])
    model.snapshots = {"init": {"fc2.bias": np.array([None, 1.0])}}
    with pytest.raises(ValueError, match="snapshot/init/fc2.bias: dtype object"):
        ts.save(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_save_refuses_snapshots_that_do_not_fit_the_model(tmp_path):
    model = ts.nn.mlp([4, 3, 2])
    model.snapshots = {"init": {"fc9.weight": np.ones(3)}}
    with pytest.raises(ValueError, match="snapshot/init/fc9.weight"):
        ts.save(model, tmp_path / "m.npz")
    model.snapshots = {"init": {"fc2.bias": np.ones(5)}}
    with pytest.raises(ValueError, match="snapshot/init/fc2.bias has shape"):
        ts.save(model, tmp_path / "m.npz")


def test_save_refuses_non_finite_weights_and_keeps_the_previous_file(tmp_path):
    model = ts.nn.mlp([4, 3, 2])
    path = ts.save(model, tmp_path / "m.npz")
    before = path.read_bytes()
    model.fc2.bias.data[0] = np.nan
    with pytest.raises(ValueError, match=f"cannot save to {path}: param/fc2.bias: 1 of 2"):
        ts.save(model, path)
    assert path.read_bytes() == before


def test_save_asks_a_new_layer_type_to_declare_its_spec(tmp_path):
    """A layer written by a student saves and loads once its type says what its spec
    holds; until then save explains what is missing (load could not check the file)."""

    class Scale(Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.size = size
            self.gain = ts.nn.Parameter(np.ones(size))

        def forward(self, x):
            return x * self.gain

        def constructor_args(self):
            return {"size": self.size}

    model = ts.nn.Sequential(("fc", ts.nn.Linear(3, 2)), ("scale", Scale(2)))
    with pytest.raises(ValueError, match="Scale 'scale': the type Scale does not declare"):
        ts.save(model, tmp_path / "m.npz")
    Scale.spec_arguments = {"size": ts.nn.module.POSITIVE_INT}
    Scale.spec_state_shapes = classmethod(lambda cls, args: {"gain": (args["size"],)})
    model.scale.gain.data[:] = [2.0, 3.0]
    loaded = ts.load(ts.save(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.scale.gain.data, [2.0, 3.0])


# ---------------------------------------------------------------- random corruptions
MUTATIONS = Path(__file__).with_name("model_file_mutations.py")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="limits the address space (RLIMIT_AS) and reads /proc, as on Linux")
def test_mutated_files_load_exactly_or_are_refused(tmp_path):
    """1,000 random corruptions of saved models (see model_file_mutations.py), loaded in
    one child process whose address space is limited: each loads a model that matches its
    file exactly or raises a ModelFileError naming the file; never another exception, and
    never a MemoryError (also not for a valid file too large for the memory left)."""
    env = {**os.environ, "PYTHONPATH": str(Path(ts.__file__).parent.parent)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(MUTATIONS), "--examples", "1000", "--directory", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "1000 examples" in result.stdout, result.stdout
    print(result.stdout, f"{time.perf_counter() - started:.1f} s")
