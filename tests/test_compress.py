"""Deep Compression's last stages: k-means weight sharing, centroid fine-tuning, the
relative index with padding, Huffman coding and the compressed file."""

import itertools
import os

import numpy as np
import pytest

import tinysparse as ts
from tinysparse import compress
from tinysparse.compress import huffman
from tinysparse.compress.format import PRELUDE, CompressedFileError
from tinysparse.compress.kmeans import initial_centroids, kmeans_1d, nearest_centroid
from tinysparse.compress.relative_index import decode_positions, encode_positions
from tinysparse.compress.sharing import SharedConv2d, SharedLinear


# ---------------------------------------------------------------- Huffman coding
def optimal_cost_by_brute_force(counts):
    """The least Σ count_i · length_i over every prefix code: all length vectors with
    lengths 1 ... n − 1 that satisfy Kraft's inequality Σ 2^−length ≤ 1 (any such vector
    has a prefix code, and an optimal code never needs a length above n − 1)."""
    n = len(counts)
    lengths = np.array(list(itertools.product(range(1, n), repeat=n)))
    feasible = (2.0 ** -lengths).sum(axis=1) <= 1.0
    return int((lengths[feasible] @ np.asarray(counts)).min())


@pytest.mark.parametrize("seed", range(40))
def test_huffman_code_lengths_are_optimal_on_small_alphabets(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    counts = rng.integers(1, 60, n) if seed % 2 else rng.geometric(0.3, n) * 3
    lengths = huffman.code_lengths(dict(enumerate(counts.tolist())))
    cost = sum(counts[s] * length for s, length in lengths.items())
    assert cost == optimal_cost_by_brute_force(counts)
    assert sum(2.0 ** -length for length in lengths.values()) == 1.0  # a full tree


def test_huffman_hand_example_and_edge_cases():
    assert huffman.code_lengths({0: 5, 1: 2, 2: 1, 3: 1}) == {0: 1, 1: 2, 2: 3, 3: 3}
    assert huffman.code_lengths({7: 4}) == {7: 1}  # a lone symbol still needs a bit
    assert huffman.code_lengths({3: 0, 4: 2}) == {4: 1}  # absent symbols get no code
    assert huffman.code_lengths({}) == {}


def test_canonical_codes_are_prefix_free_and_follow_the_rule():
    code = huffman.canonical_code({0: 1, 1: 2, 2: 3, 3: 3})
    assert code.counts == (1, 1, 2) and code.symbols == (0, 1, 2, 3)
    assert code.codewords() == {0: (0b0, 1), 1: (0b10, 2), 2: (0b110, 3), 3: (0b111, 3)}
    words = [format(c, f"0{n}b") for c, n in huffman.build_code(
        np.random.default_rng(0).geometric(0.2, 500)).codewords().values()]
    assert not any(a != b and b.startswith(a) for a in words for b in words)


@pytest.mark.parametrize("seed", range(5))
def test_huffman_encode_decode_round_trip(seed):
    rng = np.random.default_rng(seed)
    stream = rng.geometric(0.25, int(rng.integers(1, 3000))) - 1
    code = huffman.build_code(stream)
    data, bits = huffman.encode(stream, code)
    assert len(data) == -(-bits // 8) and bits == huffman.coded_bits(stream, code)
    np.testing.assert_array_equal(huffman.decode(data, code, stream.size), stream)


def test_huffman_decoding_refuses_what_it_cannot_have_written():
    stream = np.array([0, 0, 1, 2, 0, 3, 3, 0])
    code = huffman.build_code(stream)
    data, _ = huffman.encode(stream, code)
    with pytest.raises(ValueError, match="ran out"):
        huffman.decode(data[:1], code, stream.size)
    with pytest.raises(ValueError, match="left after"):
        huffman.decode(data + b"\x00", code, stream.size)
    lone = huffman.canonical_code({5: 1})  # code "0" only: a "1" bit is no code word
    with pytest.raises(ValueError, match="no code word"):
        huffman.decode(b"\x80", lone, 1)


def test_fixed_width_packing():
    values = np.random.default_rng(1).integers(0, 32, 101)
    packed = huffman.pack_fixed(values, 5)
    assert len(packed) == -(-101 * 5 // 8)
    np.testing.assert_array_equal(huffman.unpack_fixed(packed, 5, 101), values)
    with pytest.raises(ValueError, match="fit in 5 bits"):
        huffman.pack_fixed([32], 5)


# ---------------------------------------------------------------- relative index
def test_relative_index_hand_example_with_padding():
    relative = encode_positions(np.array([0, 1, 10]), np.array([3, 1, 2]), gap_bits=2)
    assert relative.gaps.tolist() == [0, 0, 3, 3, 0]  # fillers at positions 5 and 9
    assert relative.codes.tolist() == [3, 1, 0, 0, 2]
    assert relative.padding == 2
    positions, codes = decode_positions(relative.gaps, relative.codes, 2, 11)
    assert positions.tolist() == [0, 1, 10] and codes.tolist() == [3, 1, 2]


@pytest.mark.parametrize("gap_bits", [1, 2, 3, 5, 8])
def test_relative_index_round_trip_and_padding_count(gap_bits):
    rng = np.random.default_rng(gap_bits)
    keep = rng.random(5000) < 0.03  # gaps of ~33 on average: overflow at up to 5 bits
    positions = np.flatnonzero(keep)
    codes = rng.integers(1, 32, positions.size)
    relative = encode_positions(positions, codes, gap_bits)
    differences = np.diff(positions, prepend=-1)
    assert relative.padding == int(((differences - 1) // 2**gap_bits).sum())
    assert (relative.padding > 0) == (differences.max() > 2**gap_bits)
    assert relative.gaps.max() < 2**gap_bits
    decoded = decode_positions(relative.gaps, relative.codes, gap_bits, keep.size)
    np.testing.assert_array_equal(decoded[0], positions)
    np.testing.assert_array_equal(decoded[1], codes)


def test_relative_index_refuses_entries_beyond_the_weight_and_bad_padding():
    with pytest.raises(ValueError, match="beyond"):
        decode_positions(np.array([3, 3]), np.array([1, 1]), 2, 6)
    with pytest.raises(ValueError, match="padding entry"):
        decode_positions(np.array([1, 0]), np.array([0, 1]), 2, 6)


# ---------------------------------------------------------------- k-means
def test_kmeans_linear_initialisation_hand_computed():
    # linear init between min −1 and max 1: centroids −1, 0, 1; the values split 2/2/2;
    # the means are −0.9, 0.15, 0.95; nothing moves after that (one update)
    result = kmeans_1d([-1.0, -0.8, 0.1, 0.2, 0.9, 1.0], 3)
    np.testing.assert_allclose(result.centroids, [-0.9, 0.15, 0.95])
    assert result.assignments.tolist() == [0, 0, 1, 1, 2, 2]
    assert result.converged and result.iterations == 1


def test_kmeans_hand_computed_case_where_a_value_changes_cluster():
    # values 0, 2, 3, 4, 12 and 3 centroids; linear init 0, 6, 12 (midpoints 3, 9):
    #   {0, 2, 3} {4} {12}  (3 lies on a midpoint: it goes to the lower centroid)
    #   -> centroids 5/3, 4, 12 (midpoints 2.83, 8): 3 moves over: {0, 2} {3, 4} {12}
    #   -> centroids 1, 3.5, 12 (midpoints 2.25, 7.75): nothing moves -> converged
    result = kmeans_1d([0.0, 2.0, 3.0, 4.0, 12.0], 3)
    np.testing.assert_allclose(result.centroids, [1.0, 3.5, 12.0])
    assert result.assignments.tolist() == [0, 0, 1, 1, 2]
    assert result.converged and result.iterations == 2


def test_kmeans_initialisations_empty_clusters_and_one_centroid():
    values = np.array([-2.0, -1.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(initial_centroids(values, 3, "linear"), [-2.0, 0.5, 3.0])
    np.testing.assert_allclose(initial_centroids(values, 1, "density"), [0.0])
    random = initial_centroids(values, 3, "random", seed=0)
    assert set(random) <= set(values) and len(set(random)) == 3
    # two values, four centroids: the two in the middle get nothing and stay put
    result = kmeans_1d([0.0, 3.0], 4)
    np.testing.assert_allclose(result.centroids, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(kmeans_1d([1.0, 2.0, 6.0], 1).centroids, [3.0])
    assert nearest_centroid(np.array([1.5]), np.array([2.0, 1.0])).tolist() == [1]  # tie: lower
    with pytest.raises(ValueError, match="init"):
        kmeans_1d([1.0], 2, init="forgy")


# ---------------------------------------------------------------- weight-shared layers
def pruned(build, sparsity=0.9, seed=0, overrides=None):
    model = build(seed=seed)
    ts.prune.prune(model, sparsity, overrides=overrides or {})
    return model


@pytest.mark.parametrize("sparse_kernels", [False, True])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_centroid_gradient_is_the_sum_of_its_weights_gradients(kind, sparse_kernels, float64):
    rng = np.random.default_rng(0)
    if kind == "linear":
        layer, x = ts.nn.Linear(12, 7, rng=0), rng.standard_normal((5, 12))
    else:
        layer, x = ts.nn.Conv2d(3, 4, 3, padding=1, rng=0), rng.standard_normal((2, 3, 6, 6))
    layer.set_mask("weight", rng.random(layer.weight.shape) < (0.15 if sparse_kernels else 0.6))
    layer.bias.data = rng.standard_normal(layer.bias.shape)
    if sparse_kernels:
        layer = ts.nn.to_sparse(layer)
    shared = (SharedLinear if kind == "linear" else SharedConv2d).from_layer(layer, bits=3)
    assert shared.sparse_kernels == sparse_kernels
    upstream = rng.standard_normal(shared(x).shape)
    (shared(x) * upstream).sum().backward()
    # the same quantised weights in an ordinary masked layer: dL/dW, summed by hand
    dense = (ts.nn.Linear(12, 7) if kind == "linear" else ts.nn.Conv2d(3, 4, 3, padding=1))
    dense.weight.data = shared.dense_weight()
    dense.bias.data = shared.bias.data.copy()
    dense.set_mask("weight", shared.mask)
    (dense(x) * upstream).sum().backward()
    expected = [dense.weight.grad[shared.mask.keep & (shared.index == k)].sum()
                for k in range(8)]
    np.testing.assert_allclose(shared.codebook.grad, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shared.centroid_gradients(dense.weight.grad), expected,
                               rtol=1e-10, atol=1e-12)
    assert shared.codebook.grad[0] == 0  # the zero entry: pruned weights send nothing
    np.testing.assert_allclose(shared.bias.grad, dense.bias.grad, rtol=1e-12)


def test_sharing_quantises_the_kept_weights_and_keeps_the_masks():
    model = pruned(ts.nn.lenet5, 0.9, overrides={"conv1.weight": 0.3})
    before = model.state_dict()
    masks = dict(model.named_masks())
    compress.share_weights(model, bits=4)
    assert dict(model.named_masks()) == masks
    for name, layer in compress.shared_layers(model):
        weight = model.state_dict()[f"{name}.weight"]
        keep = masks[f"{name}.weight"].keep
        assert np.all(weight[~keep] == 0)
        assert len(np.unique(weight[keep])) <= 15  # 2^4 − 1 centroids
        # every kept weight went to its nearest centroid
        centroids = layer.codebook.data[1:]
        nearest = np.abs(before[f"{name}.weight"][keep][:, None] - centroids).min(axis=1)
        np.testing.assert_allclose(np.abs(before[f"{name}.weight"][keep] - weight[keep]),
                                   nearest, rtol=1e-5, atol=1e-7)
    kinds = {name: layer.sparse_kernels for name, layer in compress.shared_layers(model)}
    assert kinds == {"conv1": False, "conv2": True, "fc1": True, "fc2": True, "fc3": True}


def test_fine_tuning_moves_centroids_and_never_regrows_a_weight(mnist5k):
    model = pruned(ts.nn.lenet300, 0.95, overrides={"fc3.weight": 0.5})  # sparse and dense
    masks = dict(model.named_masks())
    compress.share_weights(model, bits=3)
    codebooks = {name: layer.codebook.data.copy() for name, layer in
                 compress.shared_layers(model)}
    assignments = {name: layer.assignments.copy() for name, layer in
                   compress.shared_layers(model)}
    ts.fit(model, mnist5k, epochs=1, max_steps=20, lr=1e-2, quiet=True,
           optimizer=ts.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3))
    state = model.state_dict()
    for name, layer in compress.shared_layers(model):
        assert not np.array_equal(layer.codebook.data, codebooks[name])  # it trained
        assert layer.codebook.data[0] == 0  # exactly
        np.testing.assert_array_equal(layer.assignments, assignments[name])
        assert np.all(state[f"{name}.weight"][~masks[f"{name}.weight"].keep] == 0)
    plain = compress.unshare(model)
    assert dict(plain.named_masks()) == masks
    assert {type(m).__name__ for _, m in plain.named_modules()} >= {"SparseLinear", "Linear"}
    for name, values in state.items():
        np.testing.assert_array_equal(plain.state_dict()[name], values)


def test_fit_can_restore_the_best_centroids(mnist5k):
    model = pruned(ts.nn.lenet300, 0.9)
    compress.share_weights(model, bits=2)
    ts.fit(model, mnist5k, epochs=2, max_steps=30, validation_split=0.2, restore_best=True,
           quiet=True)
    for _, layer in compress.shared_layers(model):
        assert len(np.unique(layer.dense_weight()[layer.mask.keep])) <= 3


def test_loading_a_weight_that_does_not_share_values_is_refused():
    model = compress.share_weights(pruned(ts.nn.lenet300, 0.9), bits=2)
    state = model.state_dict()
    model.load_state_dict(state)  # its own weights: fine
    state["fc2.weight"][model.fc2.mask.keep] += np.arange(model.fc2.kept) * 1e-3
    with pytest.raises(ValueError, match="does not share values"):
        model.load_state_dict(state)


@pytest.mark.parametrize("bits", [0, 17, -1, True, 2.5, "5"])
def test_bits_outside_1_to_16_are_refused(bits):
    model = pruned(ts.nn.lenet300, 0.9)
    with pytest.raises(ValueError, match=r"bits: expected an integer in \[1, 16\]"):
        compress.share_weights(model, bits=bits)
    assert not compress.shared_layers(model)  # nothing changed


def test_bits_per_layer_and_the_extremes():
    model = pruned(ts.nn.lenet300, 0.9)
    compress.share_weights(model, bits={"fc1": 1, "fc2": 16, "fc3": 5})
    assert [layer.codebook.size for _, layer in compress.shared_layers(model)] == [2, 2**16, 32]
    assert len(np.unique(model.fc1.dense_weight()[model.fc1.mask.keep])) == 1  # one centroid
    with pytest.raises(ValueError, match="missing"):
        compress.share_weights(pruned(ts.nn.lenet300, 0.9), bits={"fc1": 5})


def test_what_weight_sharing_refuses():
    with pytest.raises(ValueError, match="has parameters of its own"):
        compress.share_weights(ts.nn.to_variational(ts.nn.lenet300(seed=0)))
    model = ts.nn.lenet300(seed=0, dropconnect=0.5)
    with pytest.raises(ValueError, match="weight noise"):
        compress.share_weights(model)
    shared = compress.share_weights(pruned(ts.nn.lenet300, 0.9))
    with pytest.raises(ValueError, match="already shared"):
        compress.share_weights(shared)
    with pytest.raises(TypeError, match="save_compressed"):
        ts.save(shared, "/nonexistent/never.npz")
    with pytest.raises(AttributeError, match="codebook"):
        _ = shared.fc1.weight


# ---------------------------------------------------------------- the compressed file
def assert_same_model(decoded, expected):
    assert type(decoded) is type(expected)
    assert decoded.spec() == expected.spec()
    assert dict(decoded.named_masks()) == dict(expected.named_masks())
    theirs = decoded.state_dict()
    for name, values in expected.state_dict().items():
        assert theirs[name].dtype == values.dtype
        assert theirs[name].tobytes() == values.tobytes(), name  # bit for bit


@pytest.mark.parametrize("build,overrides,gap_bits", [
    (ts.nn.lenet300, {}, (5, 8)),
    (ts.nn.lenet300, {"fc3.weight": 0.5}, (2, 8)),  # many padding entries; fc3 masked dense
    (ts.nn.lenet5, {"conv1.weight": 0.34}, (5, 8)),  # conv1 dense path, the rest sparse
    (ts.nn.lenet5, {}, (1, 2)),  # padding almost everywhere
])
def test_encode_decode_is_lossless(build, overrides, gap_bits, tmp_path):
    model = compress.share_weights(pruned(build, 0.92, overrides=overrides), bits=5)
    report = compress.save_compressed(model, tmp_path / "m.tsz", *gap_bits)
    assert report.path == str(tmp_path / "m.tsz")
    shared = compress.load_compressed(tmp_path / "m.tsz", shared=True)
    for (name, mine), (other_name, theirs) in zip(compress.shared_layers(model),
                                                  compress.shared_layers(shared)):
        assert name == other_name
        assert mine.codebook.data.tobytes() == theirs.codebook.data.tobytes()
        np.testing.assert_array_equal(mine.assignments, theirs.assignments)
        assert mine.mask == theirs.mask and mine.sparse_kernels == theirs.sparse_kernels
    decoded = compress.load_compressed(tmp_path / "m.tsz")
    assert_same_model(decoded, compress.unshare(ts.nn.clone(model)))
    assert decoded.config == model.config and not decoded.training
    x = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(decoded.predict_proba(x), model.predict_proba(x))
    if gap_bits[0] <= 2:
        assert all(layer.padding > 0 for layer in report.layers if layer.gap_bits)


def test_reported_sizes_are_the_bytes_written(tmp_path):
    model = compress.share_weights(pruned(ts.nn.lenet5, 0.9), bits=5)
    report = compress.save_compressed(model, tmp_path / "m.tsz")
    size = os.path.getsize(tmp_path / "m.tsz")
    assert report.total["huffman"] == size
    assert sum(layer.huffman for layer in report.layers) + report.header == size
    result = report.to_dict()
    assert result["bytes"]["huffman"] == size and result["compression"] == pytest.approx(
        4 * 61706 / size)
    assert report.total["dense"] == 4 * 61706
    # the quantised stage: the two fixed-width streams exactly as packed, codebook, bias
    for layer, (_, shared) in zip(report.layers, compress.shared_layers(model)):
        relative = encode_positions(shared.positions, shared.assignments, layer.gap_bits)
        streams = (len(huffman.pack_fixed(relative.codes, 5))
                   + len(huffman.pack_fixed(relative.gaps, layer.gap_bits)))
        assert layer.quantised == streams + 4 * (32 + shared.bias.size)
        assert layer.csr == 8 * shared.kept + 4 * (layer.shape[0] + 1) + 4 * shared.bias.size
        assert layer.gap_bits == (8 if layer.kind == "conv" else 5)
        assert layer.padding == relative.padding


def test_a_dense_model_is_stored_without_positions(tmp_path):
    # Defined behaviour: a layer without a mask stores every weight's index in flat order
    # (no relative index, no CSR stage to gain); it comes back without a mask.
    model = compress.share_weights(ts.nn.lenet300(seed=0), bits=4)
    report = compress.save_compressed(model, tmp_path / "dense.tsz")
    decoded = compress.load_compressed(tmp_path / "dense.tsz")
    assert dict(decoded.named_masks()) == {}
    assert_same_model(decoded, compress.unshare(ts.nn.clone(model)))
    for layer in report.layers:
        assert layer.gap_bits is None and layer.padding == 0 and layer.kept == layer.weights
        assert layer.csr == layer.dense
    assert report.total["quantised"] < report.total["dense"] / 7  # 4 bits instead of 32


def test_bias_masks_and_float64_survive(tmp_path, float64):
    model = pruned(ts.nn.lenet300, 0.9)
    model.fc2.set_mask("bias", np.arange(100) % 3 != 0)
    compress.share_weights(model, bits=6)
    compress.save_compressed(model, tmp_path / "m.tsz")
    decoded = compress.load_compressed(tmp_path / "m.tsz")
    assert decoded.dtype == np.float64
    assert_same_model(decoded, compress.unshare(ts.nn.clone(model)))


def test_only_shared_models_are_compressed(tmp_path):
    with pytest.raises(ValueError, match="share its weights first"):
        compress.save_compressed(pruned(ts.nn.lenet300, 0.9), tmp_path / "m.tsz")
    model = compress.share_weights(pruned(ts.nn.lenet300, 0.9))
    with pytest.raises(ValueError, match=r"fc_gap_bits: expected an integer in \[1, 16\]"):
        compress.save_compressed(model, tmp_path / "m.tsz", fc_gap_bits=0)
    assert not (tmp_path / "m.tsz").exists()


@pytest.fixture(scope="module")
def compressed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("compressed") / "lenet5.tsz"
    compress.save_compressed(compress.share_weights(pruned(ts.nn.lenet5, 0.9), bits=5), path)
    return path


def corrupt(path, tmp_path, change):
    data = bytearray(path.read_bytes())
    bad = tmp_path / "bad.tsz"
    bad.write_bytes(change(data))
    return bad


@pytest.mark.parametrize("change,message", [
    (lambda d: d[:len(d) // 2], "checksum does not match"),  # truncated
    (lambda d: d[:-1], "checksum does not match"),
    (lambda d: d[:7], "shorter than"),
    (lambda d: b"", "shorter than"),
    (lambda d: d[:30] + bytes([d[30] ^ 0x04]) + d[31:], "checksum does not match"),  # header
    (lambda d: d[:-40] + bytes([d[-40] ^ 0x01]) + d[-39:], "checksum does not match"),
    (lambda d: d + b"\x00", "checksum does not match"),
    (lambda d: b"TSCX" + d[4:], "not a tinysparse compressed model"),
    (lambda d: b"PK\x03\x04" + d[4:], "a .npz model"),
    (lambda d: d[:4] + b"\x07" + d[5:], "format version 7"),
])
def test_a_corrupt_file_gives_a_clear_error_naming_it(compressed_file, tmp_path, change,
                                                      message):
    bad = corrupt(compressed_file, tmp_path, change)
    with pytest.raises(CompressedFileError, match=message) as error:
        compress.load_compressed(bad)
    assert str(bad) in str(error.value)
    assert isinstance(error.value, ts.io.ModelFileError)


def test_every_flipped_byte_is_caught(compressed_file, tmp_path):
    data = compressed_file.read_bytes()
    rng = np.random.default_rng(0)
    for offset in rng.choice(len(data), 60, replace=False):
        bad = corrupt(compressed_file, tmp_path,
                      lambda d, o=offset: d[:o] + bytes([d[o] ^ (1 << int(o % 8))]) + d[o + 1:])
        with pytest.raises(CompressedFileError):
            compress.load_compressed(bad)


def test_a_consistent_but_wrong_file_is_refused_after_its_checksum(compressed_file, tmp_path):
    # someone edits the header and recomputes the checksum: the checks behind it refuse
    import json
    import struct
    import zlib

    data = compressed_file.read_bytes()
    _, version, _, length = PRELUDE.unpack_from(data)
    header = json.loads(zlib.decompress(data[PRELUDE.size:PRELUDE.size + length]))
    assert header == compress.read_header(compressed_file)
    header["layers"][0]["kept"] += 1
    raw = zlib.compress(json.dumps(header).encode())
    rest = struct.pack("<I", len(raw)) + raw + data[PRELUDE.size + length:]
    bad = tmp_path / "edited.tsz"
    bad.write_bytes(struct.pack("<4sBI", b"TSCZ", version, zlib.crc32(rest)) + rest)
    with pytest.raises(CompressedFileError, match="kept weights decoded"):
        compress.load_compressed(bad)


def test_missing_files_and_npz_models(tmp_path):
    with pytest.raises(CompressedFileError, match="no such compressed model file"):
        compress.load_compressed(tmp_path / "nothing.tsz")
    ts.save(ts.nn.lenet300(seed=0), tmp_path / "m.npz")
    with pytest.raises(CompressedFileError, match="tinysparse.load"):
        compress.load_compressed(tmp_path / "m.npz")


def test_a_failed_save_leaves_the_destination_alone(tmp_path, monkeypatch):
    model = compress.share_weights(pruned(ts.nn.lenet300, 0.9))
    destination = tmp_path / "m.tsz"
    destination.write_bytes(b"old")
    import tinysparse.compress.format as fmt

    monkeypatch.setattr(fmt, "_check_same", lambda *a: (_ for _ in ()).throw(OSError("no")))
    with pytest.raises(OSError):
        compress.save_compressed(model, destination)
    assert destination.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tsz"]  # no temporary left


def test_an_encoder_bug_is_caught_by_decoding_before_the_move(tmp_path, monkeypatch):
    # a file that is self-consistent (its checksum fits) but holds the wrong model
    import tinysparse.compress.format as fmt

    real = fmt.encode_positions

    def off_by_one(positions, codes, gap_bits):
        relative = real(positions, codes, gap_bits)
        wrong = relative.codes.copy()
        wrong[-1] = 1 if wrong[-1] != 1 else 2
        return relative._replace(codes=wrong)

    monkeypatch.setattr(fmt, "encode_positions", off_by_one)
    model = compress.share_weights(pruned(ts.nn.lenet300, 0.9))
    with pytest.raises(OSError, match="does not decode to the model"):
        compress.save_compressed(model, tmp_path / "m.tsz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- soft weight-sharing
def test_mixture_prior_density_against_a_direct_computation(float64):
    from tinysparse.compress.soft_sharing import MixturePrior

    prior = MixturePrior(4, pi_zero=0.9, low=-1.0, high=1.0)
    prior.means.data += [0.1, -0.2, 0.05]
    prior.log_precisions.data += [0.3, -0.1, 0.2, 0.0]
    prior.mixing_logits.data += [0.5, -1.0, 0.0]
    w = np.random.default_rng(0).standard_normal(9)
    mu = np.concatenate([[0.0], prior.means.data])
    precision = np.exp(prior.log_precisions.data)
    rest = np.exp(prior.mixing_logits.data)
    pi = np.concatenate([[0.9], 0.1 * rest / rest.sum()])
    density = (pi * np.sqrt(precision / (2 * np.pi))
               * np.exp(-precision / 2 * (w[:, None] - mu) ** 2)).sum(axis=1)
    np.testing.assert_allclose(prior.neg_log_prob(ts.Tensor(w)).item(), -np.log(density).sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(np.exp(prior.log_mixing().data), pi, rtol=1e-12)
    assert prior.all_means().data[0] == 0


def test_mixture_prior_gradients_by_finite_differences():
    from tinysparse.autograd import log_softmax, mixture_neg_log_prob
    from tinysparse.compress.soft_sharing import MixturePrior, _with_fixed_first

    def prior_loss(w, means, gamma, rhos):  # the prior of MixturePrior, every input free
        log_mixing = _with_fixed_first(log_softmax(rhos) + np.log(0.05), np.log(0.95))
        return mixture_neg_log_prob(w, _with_fixed_first(means, 0.0), gamma, log_mixing)

    rng = np.random.default_rng(3)
    assert ts.gradcheck(prior_loss, [rng.normal(0, 0.5, 11), np.array([-0.6, 0.2, 0.7]),
                                     rng.normal(1.0, 0.3, 4), rng.normal(0, 0.5, 3)])
    with ts.autograd.default_dtype("float64"):
        prior = MixturePrior(3)
    assert ts.gradcheck(lambda g: (1 - np.array([5e3, 250, 250])) * g
                        + np.array([2.0, 0.1, 0.1]) * g.exp(),
                        [prior.log_precisions.data.copy()])


def test_merging_identical_components_and_the_zero_spike():
    from tinysparse.compress.soft_sharing import MixturePrior

    prior = MixturePrior(5, pi_zero=0.9, low=-0.5, high=0.5)  # means −0.5, −1/6, 1/6, 0.5
    prior.means.data[:] = [-0.5, 0.3, 0.3, 1e-9]  # two equal; one at (almost) zero
    means, gamma, log_pi = prior.merged()
    assert sorted(means.tolist()) == pytest.approx([-0.5, 0.0, 0.3])
    assert 0.0 in means.tolist()
    np.testing.assert_allclose(np.exp(log_pi).sum(), 1.0)
    # the merged pair carries both proportions: 2 × 0.1 / 4
    np.testing.assert_allclose(np.exp(log_pi[np.argmin(np.abs(means - 0.3))]), 0.05)


def test_quantising_to_the_prior_prunes_the_zero_component_and_compresses(tmp_path):
    from tinysparse.compress.soft_sharing import MixturePrior, quantise_to_prior

    prior = MixturePrior(4, pi_zero=0.9, low=-0.5, high=0.5)  # the middle mean 0 merges
    prior.log_precisions.data[:] = np.log(1 / 0.01**2)
    model = ts.nn.mlp([6, 4, 3], seed=0, flatten=False)
    rng = np.random.default_rng(0)
    for layer in (model.fc1, model.fc2):
        target = rng.choice([-0.5, 0.0, 0.5], size=layer.weight.shape)
        layer.weight.data = (target + rng.normal(0, 0.004, target.shape)).astype(np.float32)
    model.fc2.set_mask("weight", np.array([[1, 1, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1]]))
    expected = {name: np.round(model.state_dict()[f"{name}.weight"] * 2) / 2
                for name in ("fc1", "fc2")}
    quantise_to_prior(model, prior)
    for name, layer in compress.shared_layers(model):
        np.testing.assert_array_equal(layer.dense_weight(), expected[name].astype(np.float32))
        np.testing.assert_array_equal(layer.mask.keep, expected[name] != 0)  # zero: pruned
        assert layer.bits == 2  # the zero and two means
    assert not model.fc2.mask.keep[1, 2] and not model.fc2.mask.keep[2, 0]  # stays pruned
    compress.save_compressed(model, tmp_path / "soft.tsz")
    assert_same_model(compress.load_compressed(tmp_path / "soft.tsz"),
                      compress.unshare(ts.nn.clone(model)))


def test_soft_weight_sharing_trains_the_prior_with_the_weights(mnist5k):
    model = pruned(ts.nn.lenet300, 0.5)  # pruned weights stay out of the prior and pruned
    masks = dict(model.named_masks())
    run = compress.soft_weight_sharing(model, mnist5k, epochs=1, max_steps=3, quiet=True)
    prior = run.prior
    assert run.history.steps == 3
    assert prior.all_means().data[0] == 0
    np.testing.assert_allclose(np.exp(prior.log_mixing().data[0]), 0.99, rtol=1e-6)
    # every precision grew from 1/0.25² (the hyper-priors pull them up), the proportions moved
    assert np.all(prior.log_precisions.data > -2 * np.log(0.25) + 5e-3)
    assert np.ptp(prior.mixing_logits.data) > 0
    assert dict(model.named_masks()) == masks
    compress.quantise_to_prior(model, prior)
    for name, layer in compress.shared_layers(model):
        assert not np.any(layer.mask.keep & ~masks[f"{name}.weight"].keep)  # nothing regrew


def test_soft_weight_sharing_is_deterministic_given_the_seed(mnist5k):
    runs = []
    for _ in range(2):
        model = ts.nn.lenet300(seed=1)
        run = compress.soft_weight_sharing(model, mnist5k, epochs=1, max_steps=4, seed=5,
                                           quiet=True)
        runs.append((model.state_dict(), run.prior.state_dict()))
    for first, second in zip(*runs):
        assert first.keys() == second.keys()
        for name in first:
            np.testing.assert_array_equal(first[name], second[name])
    other = ts.nn.lenet300(seed=1)  # another batch order gives other weights
    compress.soft_weight_sharing(other, mnist5k, epochs=1, max_steps=4, seed=6, quiet=True)
    assert not np.array_equal(other.state_dict()["fc1.weight"], runs[0][0]["fc1.weight"])


def test_the_zero_component_stays_at_zero_with_its_proportion(mnist5k):
    model = ts.nn.lenet300(seed=0)
    run = compress.soft_weight_sharing(model, mnist5k, epochs=1, max_steps=6, pi_zero=0.95,
                                       quiet=True)
    prior = run.prior
    assert prior.all_means().data[0] == 0.0  # exactly: it is a constant, not a parameter
    assert prior.means.shape == (15,) and prior.mixing_logits.shape == (15,)
    np.testing.assert_allclose(np.exp(prior.log_mixing().data[0]), 0.95, rtol=1e-6)
    np.testing.assert_allclose(np.exp(prior.log_mixing().data).sum(), 1.0, rtol=1e-5)
    # the zero component's precision is learned all the same
    assert prior.log_precisions.data[0] != -2 * np.log(0.25)


@pytest.mark.parametrize("threshold", [1e-10, 0.5, 5.0])
def test_quantising_leaves_at_most_one_value_per_merged_component(mnist5k, threshold):
    model = ts.nn.lenet300(seed=2)
    run = compress.soft_weight_sharing(model, mnist5k, epochs=1, max_steps=3, quiet=True)
    prior = run.prior
    prior.means.data[3] = prior.means.data[4]  # two components with one mean and width
    prior.log_precisions.data[4] = prior.log_precisions.data[5]
    merged_means, _, _ = prior.merged(threshold)
    assert merged_means.size <= prior.components - 1  # at least the equal pair merged
    compress.quantise_to_prior(model, prior, merge_threshold=threshold)
    values = np.unique(np.concatenate([layer.dense_weight().ravel()
                                       for _, layer in compress.shared_layers(model)]))
    assert values.size <= merged_means.size
    assert set(values.tolist()) <= set(merged_means.astype(np.float32).tolist())
