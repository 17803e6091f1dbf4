"""Random corruptions of saved models: each loads exactly, or is refused with a ModelFileError.

Run as a child process by ``tests/test_model_files.py``::

    python tests/model_file_mutations.py --examples 1000 --directory DIR [--seed N]

It first limits its own address space (``RLIMIT_AS``, :data:`ADDRESS_SPACE`), so that a
file that makes :func:`tinysparse.load` allocate what the file merely declares fails with
a ``MemoryError`` instead of passing unnoticed. Then it saves four models (a small dense
MLP, a pruned MLP with SparseLinear layers and a snapshot, a LeNet-5 with masked dense and
sparse convolutions and a masked bias, a float64 MLP with two snapshots and metadata) and
lets Hypothesis corrupt them: byte flips and truncations of the file; edits of the header
(values anywhere in it, shapes, names, types, huge declared sizes, extra and missing
entries, extra layers); edits of the arrays (shapes, dtypes, values, extra, missing and
renamed entries, ``.npy`` headers that declare another shape than they hold); stored or
deflated members, duplicated and foreign members. Every file is loaded, and either

* loads a model whose architecture is the header's and whose state is the file's, entry
  for entry (names, shapes, dtypes, values, masks of 0/1, snapshots, config), or
* raises :class:`~tinysparse.io.ModelFileError` whose message starts with the file's path.

Anything else (another exception, a MemoryError, a model that differs from its file)
fails, and Hypothesis prints the smallest example it finds. Last, a valid 1 MB file that
holds 256 MiB of zeros is loaded with less address space left than that: refused with a
ModelFileError too ("ran out of memory"), not a MemoryError.
"""

from __future__ import annotations

import os
import resource

#: the address space the child may use. Measured (Linux x86-64, Python 3.11, NumPy 2.4,
#: OpenBLAS, one thread): importing tinysparse and Hypothesis and running 1,000 to 4,000
#: examples peaks at 150-190 MB of address space (VmPeak, printed at the end). 1 GiB
#: leaves several times that for other platforms' libraries, and fails any allocation of
#: more than ~0.8 GiB: over 4,000 times the largest array the files here hold (0.2 MB),
#: and nothing near what a declared 10**7 x 10**7 layer would need.
ADDRESS_SPACE = 2**30

if __name__ == "__main__":  # before anything else is imported: imports count too
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "NUMBA_NUM_THREADS"):
        os.environ[variable] = "1"  # one thread: each thread reserves address space
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (
        ADDRESS_SPACE if hard == resource.RLIM_INFINITY else min(ADDRESS_SPACE, hard), hard))

# ruff: noqa: E402  (the imports below come after the limit on purpose)
import argparse
import copy
import json
import sys
import time
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import hypothesis
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinysparse as ts
from tinysparse.io import HEADER_KEY, ModelFileError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    run(args.examples, args.directory, args.seed)


def run(examples: int, directory: str, seed: int | None) -> None:
    started = time.perf_counter()
    directory = Path(directory)
    bases = saved_models(directory)
    target = directory / "mutated.npz"
    outcomes: Counter[str] = Counter()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(st.data())
    def mutated_file_loads_exactly_or_is_refused(data):
        base = data.draw(st.sampled_from(sorted(bases)), label="model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about duplicate names
            mutate_and_write(data, bases[base], target)
        try:
            outcome = load_and_check(target)
        except MemoryError:  # leave the handler first: its frames hold what was allocated
            outcome = None
        if outcome is None:
            raise AssertionError(f"loading {target} ran out of the address space it has "
                                 f"({ADDRESS_SPACE / 2**30:.1f} GiB)")
        outcomes[outcome] += 1

    if seed is not None:
        mutated_file_loads_exactly_or_is_refused = hypothesis.seed(seed)(
            mutated_file_loads_exactly_or_is_refused)
    mutated_file_loads_exactly_or_is_refused()
    total = sum(outcomes.values())
    loaded = outcomes.pop("loaded", 0)
    print(f"{total} examples in {time.perf_counter() - started:.1f} s: {loaded} loaded, "
          f"{total - loaded} refused; peak address space {peak_address_space()}")
    for reason, count in outcomes.most_common(12):
        print(f"  {count:4d} refused: {reason}")
    assert total >= examples, "Hypothesis ran fewer examples than asked"
    assert loaded >= total // 50, "too few mutated files load: the test would prove little"
    print(a_file_too_large_for_memory_is_refused(directory))


def a_file_too_large_for_memory_is_refused(directory: Path) -> str:
    """A valid file whose arrays need more memory than the process can still get (zeros,
    so the file is small) is refused with a ModelFileError, not a MemoryError."""
    path, rows = directory / "large.npz", 2**13  # 256 MiB of float32
    header = {"format": "tinysparse", "version": 1, "dtype": "float32", "architecture": {
        "type": "Linear", "args": {"in_features": rows, "out_features": rows, "bias": False}}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        write_member(archive, f"{HEADER_KEY}.npy", np.array(json.dumps(header)))
        with archive.open("param/weight.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (rows, rows)})
            for _ in range(rows * rows * 4 // 2**20):
                f.write(bytes(2**20))
    with open("/proc/self/status") as status:
        in_use = next(int(line.split()[1]) * 1024 for line in status
                      if line.startswith("VmSize"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (in_use + 2**27, hard))  # 128 MiB more
    try:
        ts.load(path)
    except ModelFileError as error:
        message = str(error)
    else:
        raise AssertionError(f"{path} loaded in less memory than its arrays need")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert message.startswith(f"{path}: ran out of memory"), message
    return f"a valid {path.stat().st_size:,}-byte file needing 256 MiB: refused ({message})"


def peak_address_space() -> str:
    with open("/proc/self/status") as f:
        peak = next((line.split(":")[1].strip() for line in f if line.startswith("VmPeak")),
                    "unknown")
    return peak


# ---------------------------------------------------------------- the models
class Base:
    """A saved model as its parts: the header (JSON), the arrays, and the file's bytes."""

    def __init__(self, path):
        self.data = path.read_bytes()
        with np.load(path) as archive:
            self.arrays = dict(archive)
        self.header = json.loads(str(self.arrays.pop(HEADER_KEY)))


def saved_models(directory) -> dict[str, Base]:
    dense = ts.nn.mlp([12, 8, 6, 4], seed=0)

    pruned = ts.nn.mlp([784, 64, 32, 10], seed=1)
    ts.prune.snapshot(pruned)
    ts.prune.prune(pruned, 0.95)

    lenet5 = ts.nn.lenet5(seed=2)
    rng = np.random.default_rng(0)
    shapes = lenet5.state_shapes()
    ts.prune.apply_masks(lenet5, {name: rng.random(shapes[name]) < density for name, density
                                  in [("conv1.weight", 0.5), ("conv2.weight", 0.1),
                                      ("fc1.weight", 0.05), ("fc1.bias", 0.5),
                                      ("fc3.weight", 0.5)]})
    layer_types = {type(m).__name__ for m in lenet5.modules()}
    assert {"Conv2d", "SparseConv2d", "SparseLinear", "Linear"} <= layer_types, layer_types

    snapshots = ts.nn.mlp([6, 5, 3], seed=3).double()
    ts.prune.snapshot(snapshots, "init")
    snapshots.fc1.weight.data += 1.0
    ts.prune.snapshot(snapshots, "late")

    models = {"dense": (dense, None), "pruned": (pruned, None), "lenet5": (lenet5, None),
              "snapshots": (snapshots, {"note": "float64", "accuracy": 0.5})}
    return {name: Base(ts.save(model, directory / f"{name}.npz", metadata=metadata))
            for name, (model, metadata) in models.items()}


# ---------------------------------------------------------------- corruptions
def interesting_values():
    """JSON values to put anywhere in a header."""
    sizes = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 28, 84, 120, 400, 784, 2**15,
                             10**7, 10**12, 2**31, 2**63, 10**100, -1, -784])
    text = st.sampled_from(["", "Linear", "SparseLinear", "Conv2d", "SparseConv2d",
                            "Sequential", "ReLU", "Reshape", "MaxPool2d", "SparseLayer",
                            "Module", "fc1", "fc1.weight", "eval", "a/b", "float16",
                            "float32", "float64", "complex128", "tinysparse", "weight"])
    scalars = st.one_of(sizes, text, st.booleans(), st.none(),
                        st.sampled_from([0.5, 1.0, 1e7, 1e12, float("nan"), float("inf")]),
                        st.text(max_size=8))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["type", "args", "layers", "bias", "shape",
                                         "in_features", "out_features", "kernel_size",
                                         "mask", "x"]), inner, max_size=3)), max_leaves=6)


def layer_specs():
    """Whole layer specs to insert into an architecture: plausible and huge ones."""
    size = st.sampled_from([1, 3, 4, 6, 8, 10, 64, 784, 10**7, 10**12])
    linear = st.builds(lambda t, i, o, b: {"type": t, "args": {"in_features": i,
                                                                "out_features": o,
                                                                "bias": b}},
                       st.sampled_from(["Linear", "SparseLinear"]), size, size, st.booleans())
    conv = st.builds(lambda t, i, o, k: {"type": t, "args": {
        "in_channels": i, "out_channels": o, "kernel_size": k, "stride": 1, "padding": 0,
        "bias": True}}, st.sampled_from(["Conv2d", "SparseConv2d"]), size, size, size)
    simple = st.sampled_from([{"type": "ReLU", "args": {}}, {"type": "Flatten", "args": {}},
                              {"type": "Reshape", "args": {"shape": [1, 28, 28]}},
                              {"type": "MaxPool2d", "args": {"kernel_size": 2, "stride": 2}}])
    return st.one_of(linear, conv, simple, st.builds(
        lambda name, spec: {"type": "Sequential", "layers": [[name, spec]]},
        st.sampled_from(["fc1", "inner", "fc9"]), st.one_of(linear, simple)))


def paths_in(value, path=()):
    """Every (path, node) of a JSON value; a path is a tuple of keys and indices."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_in(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_in(child, (*path, index))


def node_at(value, path):
    for step in path:
        value = value[step]
    return value


def edit_header(data, header):
    """One edit of the JSON header; returns the new header (a deep copy)."""
    header = copy.deepcopy(header)
    nodes = list(paths_in(header))
    containers = [(path, node) for path, node in nodes if isinstance(node, (dict, list))]
    edit = data.draw(st.sampled_from(["replace", "delete", "add", "resize", "retype",
                                      "add layer", "drop layer", "rename layer",
                                      "swap layers", "root"]), label="header edit")
    layer_lists = [(path, node) for path, node in nodes
                   if path and path[-1] == "layers" and isinstance(node, list)]
    sized = [(path, node) for path, node in nodes if isinstance(node, dict)
             and isinstance(node.get("args"), dict) and node["args"]]
    if edit == "root" or len(nodes) == 1:
        return data.draw(interesting_values(), label="header")
    if edit == "replace" or (edit in ("resize", "retype") and not sized):
        path, _ = data.draw(st.sampled_from(nodes[1:]), label="replaced")
        node_at(header, path[:-1])[path[-1]] = data.draw(interesting_values(), label="value")
    elif edit == "delete":
        path, _ = data.draw(st.sampled_from(nodes[1:]), label="deleted")
        del node_at(header, path[:-1])[path[-1]]
    elif edit == "add":
        path, node = data.draw(st.sampled_from(containers), label="added to")
        value = data.draw(interesting_values(), label="value")
        if isinstance(node, dict):
            node[data.draw(st.sampled_from(["extra", "args", "type", "bias", "layers",
                                            "in_features", "padding"]))] = value
        else:
            node.insert(data.draw(st.integers(0, len(node))), value)
    elif edit == "resize":
        _, spec = data.draw(st.sampled_from(sized), label="resized")
        name = data.draw(st.sampled_from(sorted(spec["args"])), label="argument")
        old = spec["args"][name]
        spec["args"][name] = data.draw(st.sampled_from(
            [10**7, 10**12, 2**15, 0, -1, True, 1.5, "8", None]
            + ([old + 1, old - 1, old * 2] if type(old) is int else [])
            + ([old + [1], old[:-1], [10**7] * len(old)] if type(old) is list else [])),
            label="size")
    elif edit == "retype":
        _, spec = data.draw(st.sampled_from(sized), label="retyped")
        twins = {"Linear": "SparseLinear", "SparseLinear": "Linear", "Conv2d": "SparseConv2d",
                 "SparseConv2d": "Conv2d", "ReLU": "Tanh", "MaxPool2d": "Reshape"}
        twin = twins.get(spec["type"], "Linear") if isinstance(spec.get("type"), str) \
            else "Linear"
        spec["type"] = data.draw(st.sampled_from(
            [twin, "Conv2d", "Linear", "Sequential", "Dense"]))
    elif layer_lists:
        _, layers = data.draw(st.sampled_from(layer_lists), label="in")
        if edit == "add layer":
            name = data.draw(st.sampled_from(["fc9", "extra", "fc1", "conv1", "eval", "0",
                                              "a.b"]), label="name")
            layers.insert(data.draw(st.integers(0, len(layers))),
                          [name, data.draw(layer_specs(), label="spec")])
        elif edit == "drop layer" and layers:
            del layers[data.draw(st.integers(0, len(layers) - 1))]
        elif edit == "rename layer" and layers and isinstance(layers[0], list):
            pair = layers[data.draw(st.integers(0, len(layers) - 1))]
            if isinstance(pair, list) and pair:
                pair[0] = data.draw(st.sampled_from(["renamed", "fc1", "fc2", "act1", 3, ""]))
        elif edit == "swap layers" and len(layers) >= 2:
            i, j = data.draw(st.lists(st.integers(0, len(layers) - 1), min_size=2,
                                      max_size=2, unique=True))
            layers[i], layers[j] = layers[j], layers[i]
    return header


def edit_arrays(data, arrays, state_names):
    """One edit of the arrays (a new dict; arrays are copied before they change)."""
    arrays = dict(arrays)
    keys = sorted(key for key, values in arrays.items() if isinstance(values, np.ndarray))
    edit = data.draw(st.sampled_from(["delete", "add", "rename", "shape", "dtype", "values",
                                      "npy header", "mask"]), label="array edit")
    other_keys = st.sampled_from(
        [f"{kind}/{name}" for kind in ("param", "mask", "snapshot/init", "snapshot/x")
         for name in state_names]
        + ["param/fc9.weight", "mask/fc9.weight", "snapshot/init", "snapshot//fc1.weight",
           "junk", "param/", "__tinysparse__", "mask/fc1.weight/x"])
    if not keys:
        edit = "add"
    if edit == "add":
        source = arrays[data.draw(st.sampled_from(keys))] if keys else np.ones(3)
        arrays[data.draw(other_keys, label="added")] = data.draw(st.sampled_from(
            [source, np.ones(source.shape, dtype=bool), np.zeros(source.shape, np.float32),
             np.ones(3)]))
        return arrays
    if edit == "mask":  # a new mask for an entry that has weights: a valid file
        weights = sorted(key for key in keys if key.startswith("param/"))
        if weights:
            key = data.draw(st.sampled_from(weights), label="masked")
            density = data.draw(st.sampled_from([0.0, 0.05, 0.5, 1.0]), label="density")
            keep = np.random.default_rng(0).random(arrays[key].shape) < density
            arrays["mask/" + key.removeprefix("param/")] = keep
        return arrays
    if edit in ("delete", "rename"):
        key = data.draw(st.sampled_from(sorted(arrays)), label="array")
        values = arrays.pop(key)
        if edit == "rename":
            arrays[data.draw(other_keys, label="renamed to")] = values
        return arrays
    key = data.draw(st.sampled_from(keys), label="array")
    values = arrays[key]
    if edit == "shape":
        change = data.draw(st.sampled_from(["T", "ravel", "axis", "cut", "pad", "empty",
                                            "scalar"]), label="shape")
        arrays[key] = {
            "T": lambda v: v.T.copy(), "ravel": np.ravel, "axis": lambda v: v[None],
            "cut": lambda v: v[:-1] if v.ndim else v, "empty": lambda v: v[:0] if v.ndim else v,
            "pad": lambda v: np.concatenate([v, v[:1]]) if v.ndim else v,
            "scalar": lambda v: np.asarray(v.ravel()[0] if v.size else 0, dtype=v.dtype),
        }[change](values)
    elif edit == "dtype":
        dtype = data.draw(st.sampled_from(["float16", "float32", "float64", "complex64",
                                           "complex128", "int8", "int64", "uint8", "bool",
                                           ">f4", ">f8", "<U3", "object"]), label="dtype")
        try:
            arrays[key] = values.astype(dtype)
        except ValueError:  # text that is not a number, after an earlier edit
            pass
    elif edit == "values" and values.size:
        values = values.copy()
        index = data.draw(st.integers(0, values.size - 1), label="index")
        if values.dtype == np.bool_:
            values.view(np.uint8).reshape(-1)[index] = data.draw(st.integers(0, 255))
        elif values.dtype.kind == "f":
            values.reshape(-1)[index] = data.draw(st.sampled_from(
                [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, 1.0]))
        arrays[key] = values
    elif edit == "npy header":
        arrays[key] = npy_with_header(data, values)
    return arrays


def npy_with_header(data, values) -> bytes:
    """The bytes of a .npy file holding ``values``' data under a header that may declare
    another shape, dtype or order (e.g. 10**7 x 10**7), and may hold more or less data."""
    shape = data.draw(st.sampled_from([values.shape, (10**7, 10**7), (10**12,), (2**62, 4),
                                       (), (0,), (-1,), values.shape[::-1],
                                       (values.size + 1,)]), label="declared shape")
    descr = data.draw(st.sampled_from([values.dtype.str, "<f4", "<f8", "|b1", "<c16", "|O",
                                       "<U4", "|V8", "[('a', '<f4')]"]), label="descr")
    fortran = data.draw(st.booleans(), label="fortran_order")
    header = f"{{'descr': {descr if descr.startswith('[') else repr(descr)}, " \
             f"'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    if data.draw(st.sampled_from([False] * 3 + [True]), label="garble the header"):
        at = data.draw(st.integers(0, len(header)), label="at")
        header = header[:at] + data.draw(st.sampled_from(
            ["{", "(", "[1]", "{[1]: 2}", "'", "\\", "\n ", "#", "), ", "1" * 5000, "(" * 300,
             "None", "{1, [2]}"]), label="inserted") + header[at:]
    header += " " * (-(len(header) + 11) % 64) + "\n"
    body = values.tobytes() if values.dtype != object else b"\0" * 8
    body = body[:data.draw(st.integers(0, len(body)), label="kept bytes")] \
        if data.draw(st.booleans(), label="cut data") else body
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + body


def mutate_and_write(data, base, path) -> None:
    """Write to ``path`` a corruption of ``base``: edits of the header and of the arrays,
    written stored or deflated, then maybe flipped bytes or a truncation of the file."""
    header, arrays = base.header, base.arrays
    state_names = sorted(key.partition("/")[2] for key in arrays if key.startswith("param/"))
    structural = data.draw(st.integers(0, 3), label="edits")
    for _ in range(structural):
        if data.draw(st.booleans(), label="header or arrays"):
            header = edit_header(data, header)
        else:
            arrays = edit_arrays(data, arrays, state_names)
    if structural == 0:
        content = base.data
    else:
        entries = {HEADER_KEY: np.array(json.dumps(header)), **arrays}
        if data.draw(st.sampled_from([False] * 9 + [True]), label="header entry edit"):
            entries[HEADER_KEY] = data.draw(st.sampled_from(
                [np.array(json.dumps(header).encode()), np.array([json.dumps(header)]),
                 np.array(7), np.array("{" * 5000), np.array(json.dumps(header)[:-1])]))
        compression = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
                                label="compression")
        extra = data.draw(st.sampled_from([None] * 17 + ["duplicate", "foreign", "folder"]),
                          label="extra member")
        with zipfile.ZipFile(path, "w", compression) as archive:
            for key, value in entries.items():
                write_member(archive, f"{key}.npy", value)
            if extra == "duplicate":
                key = data.draw(st.sampled_from(sorted(entries)), label="duplicated")
                write_member(archive, f"{key}.npy", entries[key])
            elif extra == "foreign":
                archive.writestr("README.txt", "hello")
            elif extra == "folder":
                archive.writestr("param/", b"")
        content = path.read_bytes()
    damage = data.draw(st.sampled_from(["none"] * 6 + ["flip", "truncate"]), label="damage")
    if damage == "flip":
        content = bytearray(content)
        for index in data.draw(st.lists(st.integers(0, len(content) - 1), min_size=1,
                                        max_size=4), label="flipped"):
            content[index] ^= data.draw(st.integers(1, 255))
        content = bytes(content)
    elif damage == "truncate":
        content = content[:data.draw(st.integers(0, len(content) - 1), label="length")]
    path.write_bytes(content)


def write_member(archive, name, value) -> None:
    if isinstance(value, bytes):
        archive.writestr(name, value)
    else:
        with archive.open(name, "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=True)


# ---------------------------------------------------------------- the property
def load_and_check(path) -> str:
    """Load ``path``: "loaded" when the model matches its file exactly, else the start of
    the ModelFileError's message (which must name the file). Anything else is raised."""
    try:
        model = ts.load(path)
    except ModelFileError as error:
        message = str(error)
        assert message.startswith(f"{path}: "), message
        return classify(message[len(f"{path}: "):])
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    header = json.loads(str(arrays.pop(HEADER_KEY)))
    dtype = np.dtype(header["dtype"])
    assert model.spec() == header["architecture"]
    config = getattr(model, "config", None)  # compared as JSON: it may hold NaN
    assert json.dumps(config, sort_keys=True) == json.dumps(header.get("config"), sort_keys=True)

    def entries(kind):
        return {key.removeprefix(kind): values for key, values in arrays.items()
                if key.startswith(kind)}

    params, masks = entries("param/"), entries("mask/")
    state, own_masks = model.state_dict(), dict(model.named_masks())
    assert state.keys() == params.keys(), (sorted(state), sorted(params))
    assert own_masks.keys() == masks.keys(), (sorted(own_masks), sorted(masks))
    assert sum(v.size for v in state.values()) == sum(v.size for v in params.values())
    for name, keep in masks.items():
        assert keep.dtype == np.bool_ and keep.view(np.uint8).max(initial=0) <= 1
        assert np.array_equal(own_masks[name].keep, keep)
    for name, values in state.items():
        assert values.shape == params[name].shape and values.dtype == dtype, name
        expected = params[name].astype(dtype)
        if name in masks:
            expected = expected * masks[name]
        assert np.all(np.isfinite(values)) and np.array_equal(values, expected), name
    snapshots: dict[str, dict[str, np.ndarray]] = {}
    for key, values in entries("snapshot/").items():
        label, _, name = key.partition("/")
        snapshots.setdefault(label, {})[name] = values
    loaded_snapshots = getattr(model, "snapshots", {})
    assert loaded_snapshots.keys() == snapshots.keys()
    for label, snapshot in snapshots.items():
        assert loaded_snapshots[label].keys() == snapshot.keys()
        for name, values in snapshot.items():
            assert values.shape == state[name].shape and np.all(np.isfinite(values))
            assert np.array_equal(loaded_snapshots[label][name], values)
    return "loaded"


def classify(message: str) -> str:
    """A refusal's kind, for the summary: its message without the details."""
    for words in ("not a readable .npz file", "the arrays do not fit", "is missing",
                  "has no state entry", "not a readable .npy array", "damaged",
                  "values are NaN", "a mask holds only", "must be", "unknown",
                  "expected one string", "not valid JSON", "dtype", "declares",
                  "unsupported format version", "missing argument", "unexpected entry",
                  "expected the keys", "two ", "cannot be called", "not a tinysparse"):
        if words in message:
            return words
    return message[:60]


if __name__ == "__main__":
    sys.exit(main())
