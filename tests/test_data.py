"""Datasets: the MNIST downloader against a local server, IDX parsing, mnist-5k, batching."""

import gzip
import hashlib
import http.server
import os
import re
import subprocess
import threading

import numpy as np
import pytest

from tinysparse.data import (
    DataError,
    batches,
    load_dataset,
    mnist,
    mnist_5k,
    parse_idx,
    read_idx,
    spirals,
    train_validation_split,
    xor,
)
from tinysparse.data.idx import idx_bytes

# ---------------------------------------------------------------- a local mirror


def small_mnist_files():
    """Four small gzip IDX files with MNIST's names, and their MD5s."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 20, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 8, dtype=np.uint8),
    }
    blobs = {name: gzip.compress(idx_bytes(a)) for name, a in arrays.items()}
    md5s = {name: hashlib.md5(blob).hexdigest() for name, blob in blobs.items()}
    return arrays, blobs, md5s


class Mirror:
    """An HTTP server on 127.0.0.1 serving ``files`` under /good/; /bad/ always fails."""

    def __init__(self, files):
        self.requests = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/good/") and name in files:
                    body = files[name]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    arrays, blobs, md5s = small_mnist_files()
    server = Mirror(blobs)
    server.arrays, server.md5s = arrays, md5s
    yield server
    server.close()


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_download_success_parses_and_caches(mirror, tmp_path):
    data = mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s,
                 progress=True)
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (8, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and data.x_train.max() <= 1.0
    np.testing.assert_array_equal(
        data.x_train[:, 0], mirror.arrays["train-images-idx3-ubyte.gz"] / np.float32(255))
    np.testing.assert_array_equal(data.y_test, mirror.arrays["t10k-labels-idx1-ubyte.gz"])
    assert leftovers(tmp_path) == sorted(mirror.md5s)  # no temporary files left
    # a second load uses the cache: no mirror at all is needed
    requests = len(mirror.requests)
    again = mnist(root=tmp_path, mirrors=[], files=mirror.md5s)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    assert len(mirror.requests) == requests


def test_a_failing_mirror_is_skipped(mirror, tmp_path):
    data = mnist(root=tmp_path, mirrors=[mirror.url + "/bad/", mirror.url + "/good/"],
                 files=mirror.md5s, progress=False)
    assert len(data.y_train) == 20
    assert any(r.startswith("/bad/") for r in mirror.requests)


def test_checksum_mismatch_leaves_no_file_behind(mirror, tmp_path):
    wrong = {name: "0" * 32 for name in mirror.md5s}
    with pytest.raises(DataError, match="checksum mismatch"):
        mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=wrong, progress=False)
    assert leftovers(tmp_path) == []


def test_corrupt_cached_file_is_downloaded_again(mirror, tmp_path):
    mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    cached = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    cached.write_bytes(b"garbage")
    data = mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s,
                 progress=False)
    np.testing.assert_array_equal(data.y_test, mirror.arrays["t10k-labels-idx1-ubyte.gz"])


def test_offline_without_cache_says_what_to_do(tmp_path):
    closed_port = "http://127.0.0.1:9/"
    with pytest.raises(DataError) as error:
        mnist(root=tmp_path, mirrors=[closed_port], progress=False)
    message = str(error.value)
    assert "could not be downloaded" in message
    assert str(tmp_path / "mnist") in message
    assert "TINYSPARSE_DATA" in message and "mnist-5k" in message
    assert leftovers(tmp_path) == []


def test_no_download_with_empty_cache(tmp_path):
    with pytest.raises(DataError, match="downloading is turned off"):
        mnist(root=tmp_path, download_missing=False)


LABELS = "t10k-labels-idx1-ubyte.gz"
CORRUPTIONS = {  # what a cached file holds -> what the error must say it is
    "garbage": (lambda good: b"garbage", "not a gzip file"),
    "uncompressed": (gzip.decompress, "not gzip-compressed: an uncompressed IDX file"),
    "truncated": (lambda good: good[:-10], "damaged gzip file"),
    "wrong IDX magic": (lambda good: gzip.compress(b"\x01\x02\x08\x01" + bytes(8)),
                        "something else than IDX data .*first two bytes must be zero"),
    "another IDX file": (lambda good: gzip.compress(idx_bytes(np.zeros(5, np.uint8))),
                         r"a readable IDX file of shape \(5,\), but not this one"),
}


@pytest.mark.parametrize("download_missing", [True, False], ids=["offline", "no-download"])
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_bad_cached_file_is_named_with_the_check_it_failed(mirror, tmp_path, corruption,
                                                             download_missing):
    mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    cached = tmp_path / "mnist" / LABELS
    corrupt, description = CORRUPTIONS[corruption]
    cached.write_bytes(corrupt(cached.read_bytes()))
    bad = cached.read_bytes()
    with pytest.raises(DataError) as error:
        mnist(root=tmp_path, mirrors=["http://127.0.0.1:9/"], files=mirror.md5s,
              progress=False, download_missing=download_missing)
    message = str(error.value)
    assert f"{cached} fails its check" in message
    assert f"expected {mirror.md5s[LABELS]}" in message  # the MD5 mismatch
    assert re.search(description, message), message
    assert "Delete it" in message and f"copy a good {LABELS} over it" in message
    assert "not in the cache" not in message
    assert cached.read_bytes() == bad  # left for the user to look at


def test_a_file_that_passed_its_md5_but_is_no_idx_says_what_to_do(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x01\x02\x08\x01"))
    with pytest.raises(DataError, match="first two bytes.*delete it to download it again"):
        read_idx(path)
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8)))[:-12])
    with pytest.raises(DataError, match="cannot read the file.*copy a good one over it"):
        read_idx(path)


# ---------------------------------------------------------------- caches that cannot be written


@pytest.fixture
def read_only():
    """``read_only(folder)``: no file can be created in ``folder`` any more (chmod 555, or
    chattr +i where root ignores modes) until the test ends."""
    undo = []

    def make_read_only(folder):
        os.chmod(folder, 0o555)
        undo.append(lambda: os.chmod(folder, 0o755))
        if os.access(folder, os.W_OK):  # root
            if subprocess.run(["chattr", "+i", folder], capture_output=True).returncode != 0:
                pytest.skip("cannot make a folder read-only here (root, and no chattr +i)")
            undo.append(lambda: subprocess.run(["chattr", "-i", folder], check=True))
        return folder

    yield make_read_only
    for step in reversed(undo):
        step()


@pytest.fixture(params=["a file", "a file above it"])
def data_dir_that_is_a_file(request, tmp_path, monkeypatch):
    """$TINYSPARSE_DATA pointing at a file, or at a folder below a file."""
    file = tmp_path / "not-a-folder"
    file.write_text("")
    monkeypatch.setenv("TINYSPARSE_DATA", str(file if request.param == "a file" else
                                              file / "data"))
    return file


def test_mnist_into_a_data_dir_that_is_a_file(mirror, data_dir_that_is_a_file):
    with pytest.raises(DataError) as error:
        mnist(mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    message = str(error.value)
    assert f"{data_dir_that_is_a_file} is a file, where a folder should be" in message
    assert "$TINYSPARSE_DATA" in message
    assert mirror.requests == []  # refused before downloading


def test_mnist_5k_with_a_data_dir_that_is_a_file(data_dir_that_is_a_file):
    with pytest.raises(DataError) as error:
        mnist_5k()
    assert f"{data_dir_that_is_a_file} is a file, where a folder should be" in str(error.value)
    assert "$TINYSPARSE_DATA" in str(error.value)


@pytest.mark.parametrize("where", ["read-only folder", "/proc"])
def test_mnist_into_a_folder_that_cannot_be_written(mirror, tmp_path, read_only, where):
    if where == "/proc" and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    root = read_only(tmp_path) if where == "read-only folder" else "/proc/tinysparse-test"
    with pytest.raises(DataError) as error:
        mnist(root=root, mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    message = str(error.value)
    assert f"{root}/mnist/" in message and "cannot write in" in message
    assert "writable" in message and "$TINYSPARSE_DATA" in message
    assert mirror.requests == []


def test_a_bad_cached_file_in_a_read_only_folder(mirror, tmp_path, read_only):
    mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    (tmp_path / "mnist" / LABELS).write_bytes(b"garbage")
    read_only(tmp_path / "mnist")
    with pytest.raises(DataError) as error:
        mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    message = str(error.value)
    assert f"{tmp_path / 'mnist' / LABELS} fails its check: it is not a gzip file" in message
    assert f"cannot write in {tmp_path / 'mnist'}" in message


def test_mnist_from_a_read_only_folder_that_holds_it(mirror, tmp_path, read_only):
    mnist(root=tmp_path, mirrors=[mirror.url + "/good/"], files=mirror.md5s, progress=False)
    read_only(tmp_path / "mnist")  # reading needs no writing
    data = mnist(root=tmp_path, mirrors=[], files=mirror.md5s, progress=False)
    assert len(data.y_train) == 20


@pytest.mark.parametrize("corrupt_cache", [False, True], ids=["no cache", "corrupt cache"])
def test_mnist_5k_in_a_read_only_folder_works_and_says_it_cannot_cache(
        tmp_path, read_only, mnist5k, corrupt_cache):
    if corrupt_cache:
        (tmp_path / "mnist-5k.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(RuntimeWarning, match="mnist-5k.npz: cannot write.*parsed again"):
        data = mnist_5k(root=read_only(tmp_path))
    np.testing.assert_array_equal(data.x_test, mnist5k.x_test)


# ---------------------------------------------------------------- IDX


def test_idx_round_trip():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(a)), a)


@pytest.mark.parametrize("raw,message", [
    (b"\x00", "only 1 bytes"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "first two bytes"),
    (b"\x00\x00\x42\x01" + b"\x00\x00\x00\x01" + b"\x05", "unknown IDX type"),
    (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02", "ends"),
    (b"\x00\x00\x08\x01" + b"\x00\x00\x00\x05" + b"\x01\x02", "truncated or corrupt"),
])
def test_malformed_idx_fails_clearly(raw, message):
    with pytest.raises(DataError, match=message):
        parse_idx(raw, "test.idx")


# ---------------------------------------------------------------- mnist-5k


def test_mnist_5k_is_a_fixed_stratified_split(mnist5k):
    assert mnist5k.x_train.shape == (4000, 1, 28, 28)
    assert mnist5k.x_test.shape == (1000, 1, 28, 28)
    assert np.array_equal(np.bincount(mnist5k.y_train), np.full(10, 400))
    assert np.array_equal(np.bincount(mnist5k.y_test), np.full(10, 100))
    assert 0.0 <= mnist5k.x_train.min() and mnist5k.x_train.max() <= 1.0
    again = load_dataset("mnist-5k")  # from the cache this time
    np.testing.assert_array_equal(again.x_test, mnist5k.x_test)
    train_rows = {row.tobytes() for row in mnist5k.x_train}
    assert not any(row.tobytes() in train_rows for row in mnist5k.x_test[:200])


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mnist-5k"):
        load_dataset("cifar")


# ---------------------------------------------------------------- synthetic and batches


def test_synthetic_sets():
    d = xor()
    assert d.x_train.shape == (4, 2) and list(d.y_train) == [0, 1, 1, 0]
    s = spirals(n_per_class=50, seed=1)
    assert len(s.x_train) + len(s.x_test) == 100
    np.testing.assert_array_equal(spirals(n_per_class=50, seed=1).x_train, s.x_train)
    t = load_dataset("teacher", n=100, inputs=3)
    np.testing.assert_allclose(t.y_train, t.x_train @ t.info["teacher_weight"].T, atol=0.5)


def test_batches_cover_everything_once_in_a_seeded_order():
    x, y = np.arange(10)[:, None], np.arange(10)
    first = [yb for _, yb in batches(x, y, 3, rng=5)]
    second = [yb for _, yb in batches(x, y, 3, rng=5)]
    assert [list(b) for b in first] == [list(b) for b in second]
    assert sorted(np.concatenate(first)) == list(range(10))
    assert [len(b) for b in first] == [3, 3, 3, 1]
    assert [len(b) for _, b in batches(x, y, 3, drop_last=True)] == [3, 3, 3]
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(x, y, 0))


def test_validation_split():
    x, y = np.arange(100)[:, None], np.arange(100)
    (xt, yt), (xv, yv) = train_validation_split(x, y, 0.2, seed=0)
    assert len(yv) == 20 and len(yt) == 80 and not set(yv) & set(yt)
    with pytest.raises(ValueError, match="fraction"):
        train_validation_split(x, y, 1.5)
