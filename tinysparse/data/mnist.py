"""MNIST: the real 60,000/10,000 digits, downloaded once, verified, cached.

Files are looked for in ``<data dir>/mnist/`` (see :func:`~tinysparse.data.storage.data_dir`).
A missing file is downloaded from each mirror in turn, streamed into a temporary file
next to its destination with a progress bar, checked against its known MD5, and only then
moved into place: an interrupted or corrupted download never leaves a file behind. A cached
file with the wrong MD5 is downloaded again; when that is not possible, the error says
which file failed which check and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tinysparse.data.dataset import Dataset
from tinysparse.data.idx import parse_idx, read_idx
from tinysparse.data.storage import (
    DataError,
    atomic_path,
    check_cache_writable,
    data_dir,
    unwritable_cache_error,
)

#: The four gzip files and their MD5 checksums (the ones torchvision checks too).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: Public mirrors, tried in order. ``$TINYSPARSE_MNIST_MIRRORS`` (comma-separated) overrides.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str, destination: str | os.PathLike, md5: str, progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``destination`` through a temporary file; verify its MD5 first.

    Raises
    ------
    DataError
        On a network error or a checksum mismatch (``destination`` is then left untouched),
        or when ``destination`` cannot be written (the message says what is in the way).
    """
    destination = Path(destination)
    try:
        with atomic_path(destination) as temporary:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with open(temporary, "wb") as out, tqdm(
                        total=total, unit="B", unit_scale=True, desc=destination.name,
                        disable=not progress, leave=False,
                    ) as bar:
                        while chunk := response.read(1 << 16):
                            out.write(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise DataError(f"{url}: download failed ({error})") from error
            actual = md5sum(temporary)
            if actual != md5:
                raise DataError(f"{url}: checksum mismatch (MD5 {actual}, expected {md5})")
    except OSError as error:  # the temporary file could not be created or moved into place
        raise unwritable_cache_error(destination, error) from error
    return destination


def check_cached_file(path: str | os.PathLike, md5: str) -> str | None:
    """What is wrong with the cached file ``path``, or ``None`` when its MD5 is ``md5``.

    Beyond the checksum, say what the file is, to tell a truncated download from an
    uncompressed copy or another file altogether: not gzip, a damaged gzip stream, gzip
    without IDX data (a wrong magic number), or a readable IDX file of the wrong content.
    """
    actual = md5sum(path)
    if actual == md5:
        return None
    checksum = f"MD5 {actual}, expected {md5}"
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":  # the gzip magic number
        try:
            shape = parse_idx(raw).shape
        except DataError:
            return f"not a gzip file (its first bytes are {raw[:4]!r}; {checksum})"
        return (f"not gzip-compressed: an uncompressed IDX file of shape {shape} "
                f"({checksum}); the cache holds the .gz files as downloaded")
    try:
        raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        return f"a damaged gzip file, truncated or corrupt ({error}; {checksum})"
    try:
        shape = parse_idx(raw, "its contents").shape
    except DataError as error:
        return f"a gzip file of something else than IDX data ({error}; {checksum})"
    return f"a readable IDX file of shape {shape}, but not this one ({checksum})"


def mirrors_from_environment() -> tuple[str, ...]:
    """The mirror list, overridable with ``$TINYSPARSE_MNIST_MIRRORS`` (comma-separated)."""
    override = os.environ.get("TINYSPARSE_MNIST_MIRRORS")
    if override:
        return tuple(m.strip() for m in override.split(",") if m.strip())
    return MNIST_MIRRORS


def fetch_mnist(
    root: str | os.PathLike | None = None,
    download_missing: bool = True,
    mirrors: Sequence[str] | None = None,
    files: Mapping[str, str] = MNIST_FILES,
    progress: bool = True,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Make sure the MNIST files are in the cache; return their paths by file name.

    A cached file with the wrong checksum is downloaded again; if that is not possible,
    the error says which file failed which check (:func:`check_cached_file`) and what to do.
    """
    folder = data_dir(root) / "mnist"
    mirrors = tuple(mirrors) if mirrors is not None else mirrors_from_environment()
    paths: dict[str, Path] = {}
    for name, md5 in files.items():
        path = folder / name
        cached = path.is_file()
        problem = check_cached_file(path, md5) if cached else None
        if cached and problem is None:
            paths[name] = path
            continue
        if not download_missing:
            reason = "downloading is turned off"
            raise DataError(_bad_file_message(path, problem, md5, reason) if problem
                            else _missing_message(folder, files, reason))
        try:
            check_cache_writable(path)
        except DataError as error:
            if problem:
                raise DataError(_bad_file_message(path, problem, md5, str(error))) from None
            raise
        errors = []
        for mirror in mirrors:
            try:
                paths[name] = download(mirror.rstrip("/") + "/" + name, path, md5, progress,
                                       timeout)
                break
            except DataError as error:
                errors.append(str(error))
        else:
            reason = "; ".join(errors) or "no mirrors"
            raise DataError(_bad_file_message(path, problem, md5, reason) if problem
                            else _missing_message(folder, files, reason))
    return paths


def _bad_file_message(path: Path, problem: str, md5: str, reason: str) -> str:
    return (
        f"MNIST: the cached file {path} fails its check: it is {problem}. It could not be "
        f"downloaded again: {reason}. Delete it (it is then downloaded when you are "
        f"online), or copy a good {path.name} over it (a good copy has MD5 {md5}); or use "
        f"the offline dataset: --dataset mnist-5k."
    )


def _missing_message(folder: Path, files: Mapping[str, str], reason: str) -> str:
    return (
        f"MNIST is not in the cache ({folder}) and could not be downloaded: {reason}. "
        f"Either connect to the internet and run again; or copy the files "
        f"{', '.join(files)} into {folder} (or point $TINYSPARSE_DATA at a folder whose "
        f"mnist/ subfolder holds them); or use the offline dataset: --dataset mnist-5k."
    )


def mnist(
    root: str | os.PathLike | None = None, download_missing: bool = True,
    progress: bool = True, mirrors: Sequence[str] | None = None,
    files: Mapping[str, str] = MNIST_FILES,
) -> Dataset:
    """The full MNIST dataset: 60,000 training and 10,000 test digits.

    Images are float32 in [0, 1] of shape (N, 1, 28, 28); labels are int64. ``files``
    maps the four standard file names to their MD5s (tests pass their own).
    """
    paths = fetch_mnist(root, download_missing, mirrors, files=files, progress=progress)
    arrays = {name: read_idx(path) for name, path in paths.items()}

    def images(name: str) -> np.ndarray:
        raw = arrays[name]
        if raw.ndim != 3 or raw.shape[1:] != (28, 28):
            raise DataError(f"{paths[name]}: expected images of 28x28, got shape {raw.shape}")
        return (raw.astype(np.float32) / 255.0)[:, None, :, :]

    x_train = images("train-images-idx3-ubyte.gz")
    x_test = images("t10k-images-idx3-ubyte.gz")
    y_train = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    y_test = arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    for x, y, part in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise DataError(f"MNIST {part}: {len(x)} images but {len(y)} labels")
    return Dataset("mnist", x_train, y_train, x_test, y_test, num_classes=10,
                   description="MNIST, 60,000 train / 10,000 test digits (LeCun et al.)")
