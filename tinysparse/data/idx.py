"""Read the IDX format of the MNIST files (LeCun's format, optionally gzip-compressed).

Header: two zero bytes, a type code (0x08 = unsigned byte, ...), the number of dimensions,
then each dimension as a big-endian 32-bit integer; the values follow, big-endian.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from tinysparse.data.storage import DataError

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an IDX file into an array; malformed input raises DataError."""
    if len(raw) < 4:
        raise DataError(f"{source}: not an IDX file (only {len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{source}: not an IDX file (the first two bytes must be zero)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise DataError(f"{source}: unknown IDX type code 0x{type_code:02x}")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{source}: IDX header promises {ndim} dimensions but the file ends")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise DataError(
            f"{source}: IDX header says shape {shape} ({expected} bytes of data) but the "
            f"file holds {len(raw) - header_size} bytes after the header (truncated or corrupt)"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` files are decompressed)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read the file ({error}); delete it to download it "
                        f"again, or copy a good one over it") from error
    try:
        return parse_idx(raw, str(path))
    except DataError as error:
        raise DataError(f"{error}; delete it to download it again, or copy a good one over it") \
            from None


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX (the inverse of :func:`parse_idx`; tests use it)."""
    codes = {dtype: code for code, dtype in IDX_TYPES.items()}
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = codes.get(big_endian)
    if code is None:
        raise ValueError(f"idx_bytes: dtype {array.dtype} has no IDX type code")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(big_endian).tobytes()
