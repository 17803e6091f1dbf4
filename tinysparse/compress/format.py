"""The compressed model file: relative indices, codebook indices, Huffman coding, a checksum.

:func:`save_compressed` writes a weight-shared model (:func:`~tinysparse.compress.
share_weights`) as Deep Compression stores one (Han, Mao & Dally 2016): per layer, the
codebook, and two parallel streams of one entry per kept weight (plus padding entries) —
the b-bit codebook index and the g-bit relative position (:mod:`.relative_index`) — each
Huffman-coded (:mod:`.huffman`). :func:`load_compressed` restores exactly the quantised
model: the same weights bit for bit, the same masks, the same layer types.

Layout (integers little-endian)::

    offset  bytes  what
    0       4      magic  b"TSCZ"
    4       1      format version (1)
    5       4      CRC-32 of every byte from offset 9 to the end of the file
    9       4      H, the length of the header
    13      H      header: UTF-8 JSON (below), deflated by zlib
    13 + H  ...    one section per layer, in the header's order

The header is metadata, not weights; deflating it (zlib, level 9) takes LeNet-5's from
about 1,700 bytes to about 500 (:func:`read_header` gives it back as a dict). It holds
``format`` ("tinysparse-compressed"), ``version``, ``architecture`` (the
:meth:`~tinysparse.nn.Module.spec` of the *ordinary* model: Linear, SparseLinear, ...),
``dtype``, ``config`` and ``layers``: for each shared layer its ``name``, ``bits`` (b),
``gap_bits`` (g; null for a layer without a mask, whose every weight is stored in flat
order and needs no positions), ``kept`` (weights), ``entries`` (kept + padding),
``bias_mask`` (whether the bias has one), and the byte lengths of its Huffman streams,
``index_bytes`` and ``gap_bytes``.

A layer's section::

    codebook     2^b values (the model's dtype; entry 0 is zero)
    bias         one value per output (if the layer has a bias)
    bias mask    np.packbits of it (if it has one)
    index code   the Huffman code of the codebook indices, then index_bytes of code words
    gap code     the Huffman code of the gap fields, then gap_bytes of code words (if g)

A Huffman code is stored canonically (as JPEG stores its tables): one byte L, the longest
code length; L counts (LEB128 varints: how many symbols have each length 1 ... L); then the
symbols in canonical order, one byte each when the alphabet has at most 256 symbols,
else two.

The file is written to a temporary name beside the destination, read back and decoded,
compared with the model bit for bit, and only then moved into place. Reading checks the
magic, the version and the checksum before anything else, then every length and index
against the architecture: a damaged file gives a :class:`CompressedFileError` naming the
file, never a wrong model.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysparse.compress import huffman
from tinysparse.compress.huffman import CanonicalCode
from tinysparse.compress.relative_index import decode_positions, encode_positions
from tinysparse.compress.sharing import (
    MAX_BITS,
    MIN_BITS,
    SHARED_TWINS,
    SharedLayer,
    check_bits,
    shared_layers,
    unshare,
)
from tinysparse.data.storage import atomic_path
from tinysparse.io import ModelFileError, build_checked
from tinysparse.nn.module import Module, clone, replace_layers, short_repr, spec_state_entries
from tinysparse.nn.sparse_layers import SparseLayer
from tinysparse.sparse.mask import Mask

MAGIC = b"TSCZ"
FORMAT_NAME = "tinysparse-compressed"
FORMAT_VERSION = 1
PRELUDE = struct.Struct("<4sBII")  # magic, version, CRC-32, header length
#: Han et al.'s widths of the relative index: fully connected layers, convolutions
DEFAULT_FC_GAP_BITS, DEFAULT_CONV_GAP_BITS = 5, 8
#: the largest header a file may declare, deflated and inflated
MAX_HEADER_BYTES = 2**24
#: bytes of a float32, the unit of the dense and CSR baselines
FLOAT32_BYTES = INT32_BYTES = 4


class CompressedFileError(ModelFileError):
    """A compressed model file is missing, damaged, or not one."""


# ---------------------------------------------------------------- the size of each stage
@dataclass
class LayerSizes:
    """The bytes one layer takes at each stage (the CLI's table row).

    ``dense``: every weight and bias in float32. ``csr``: the kept weights (float32), their
    column indices (int32) and one row pointer per row plus one (int32), and the bias; a
    layer without a mask is stored dense. ``quantised``: the b-bit codebook indices and
    g-bit gaps of every entry (padding included), each stream packed into whole bytes, the
    codebook and the bias (in the model's dtype). ``huffman``: the layer's section of the
    file, as written.
    """

    name: str
    kind: str  # "fc" or "conv"
    shape: tuple[int, ...]
    weights: int
    kept: int
    bits: int
    gap_bits: int | None
    padding: int
    dense: int
    csr: int
    quantised: int
    huffman: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape),
                "weights": self.weights, "kept": self.kept, "bits": self.bits,
                "gap_bits": self.gap_bits, "padding_entries": self.padding,
                "bytes": {"dense": self.dense, "csr": self.csr, "quantised": self.quantised,
                          "huffman": self.huffman},
                "compression": self.dense / self.huffman}


@dataclass
class CompressionReport:
    """The sizes of every layer, the header's, and the totals. ``total["huffman"]`` is
    the size of the file (header included); the other stages count the layers only."""

    layers: list[LayerSizes]
    header: int
    path: str | None = None
    total: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.total = {stage: sum(getattr(layer, stage) for layer in self.layers)
                      for stage in ("dense", "csr", "quantised", "huffman")}
        self.total["huffman"] += self.header

    @property
    def compression(self) -> float:
        """Dense float32 bytes over the file's bytes."""
        return self.total["dense"] / self.total["huffman"]

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [layer.to_dict() for layer in self.layers],
                "bytes": {**self.total, "header": self.header},
                "compression": self.compression,
                "compression_by_stage": {stage: self.total["dense"] / self.total[stage]
                                         for stage in ("csr", "quantised", "huffman")}}


# ---------------------------------------------------------------- writing
def encode(model: Module, fc_gap_bits: int = DEFAULT_FC_GAP_BITS,
           conv_gap_bits: int = DEFAULT_CONV_GAP_BITS) -> tuple[bytes, CompressionReport]:
    """The compressed file of a weight-shared model, in memory, and its sizes.

    Parameters
    ----------
    model : Module
        Every Linear/Conv2d shared (:func:`~tinysparse.compress.share_weights`).
    fc_gap_bits, conv_gap_bits : int in [1, 16]
        Width of the relative index of fully connected layers and of convolutions
        (Han et al.: 5 and 8).

    Raises
    ------
    ValueError
        A layer that is not shared, gap bits outside [1, 16].
    """
    gap_widths = {"fc": check_bits(fc_gap_bits, "fc_gap_bits"),
                  "conv": check_bits(conv_gap_bits, "conv_gap_bits")}
    layers = shared_layers(model)
    for _, module in model.named_modules():
        if not isinstance(module, SharedLayer) and module._parameters:
            shareable = " (share its weights first: tinysparse.compress.share_weights)" \
                if type(module) in SHARED_TWINS else ""
            raise ValueError(f"{module.describe()} is not weight-shared{shareable}; the "
                             f"compressed format stores shared layers only")
    if not layers:
        raise ValueError("the model has no weight-shared layer to compress")
    plain = unshare(clone(model))
    header: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                              "architecture": plain.spec(), "dtype": str(model.dtype),
                              "config": getattr(model, "config", None), "layers": []}
    sections, sizes = [], []
    for name, layer in layers:
        kind = "conv" if len(layer.weight_shape) == 4 else "fc"
        gap_bits = None if layer.mask is None else gap_widths[kind]
        section, record, layer_sizes = _encode_layer(name, kind, layer, gap_bits)
        header["layers"].append(record)
        sections.append(section)
        sizes.append(layer_sizes)
    header_bytes = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    rest = struct.pack("<I", len(header_bytes)) + header_bytes + b"".join(sections)
    data = struct.pack("<4sBI", MAGIC, FORMAT_VERSION, zlib.crc32(rest)) + rest
    report = CompressionReport(sizes, header=PRELUDE.size + len(header_bytes))
    assert report.total["huffman"] == len(data)
    return data, report


def _encode_layer(name: str, kind: str, layer: SharedLayer, gap_bits: int | None
                  ) -> tuple[bytes, dict[str, Any], LayerSizes]:
    """A layer's section, its header record and its sizes."""
    dtype = layer.codebook.dtype
    if gap_bits is None:  # no mask: every weight, in flat order
        codes, gaps, padding = layer.assignments, None, 0
    else:
        relative = encode_positions(layer.positions, layer.assignments, gap_bits)
        codes, gaps, padding = relative.codes, relative.gaps, relative.padding
    index_code = huffman.build_code(codes)
    index_stream, _ = huffman.encode(codes, index_code)
    parts = [layer.codebook.data.astype(dtype.newbyteorder("<")).tobytes()]
    bias_mask = layer.bias is not None and "bias" in layer._masks
    if layer.bias is not None:
        parts.append(layer.bias.data.astype(dtype.newbyteorder("<")).tobytes())
    if bias_mask:
        parts.append(np.packbits(layer._masks["bias"].keep).tobytes())
    parts += [_code_table(index_code, layer.bits), index_stream]
    record = {"name": name, "bits": layer.bits, "gap_bits": gap_bits, "kept": layer.kept,
              "entries": int(codes.size), "bias_mask": bias_mask,
              "index_bytes": len(index_stream), "gap_bytes": 0}
    if gaps is not None:
        gap_code = huffman.build_code(gaps)
        gap_stream, _ = huffman.encode(gaps, gap_code)
        parts += [_code_table(gap_code, gap_bits), gap_stream]
        record["gap_bytes"] = len(gap_stream)
    section = b"".join(parts)
    weights = math.prod(layer.weight_shape)
    biases = layer.bias.size if layer.bias is not None else 0
    rows = layer.weight_shape[0]
    float_bytes = dtype.itemsize
    sizes = LayerSizes(
        name=name, kind=kind, shape=layer.weight_shape, weights=weights, kept=layer.kept,
        bits=layer.bits, gap_bits=gap_bits, padding=padding,
        dense=FLOAT32_BYTES * (weights + biases),
        csr=(FLOAT32_BYTES * weights if gap_bits is None else
             (FLOAT32_BYTES + INT32_BYTES) * layer.kept + INT32_BYTES * (rows + 1))
        + FLOAT32_BYTES * biases,
        quantised=math.ceil(codes.size * layer.bits / 8)
        + (0 if gap_bits is None else math.ceil(codes.size * gap_bits / 8))
        + float_bytes * (2**layer.bits + biases) + (math.ceil(biases / 8) if bias_mask else 0),
        huffman=len(section))
    return section, record, sizes


def _code_table(code: CanonicalCode, alphabet_bits: int) -> bytes:
    """A canonical Huffman code as stored: L, L varint counts, the symbols."""
    if code.max_length > 255:
        raise ValueError(f"a Huffman code of {code.max_length} bits; at most 255 fit")
    counts = b"".join(_varint(count) for count in code.counts)
    width = "<u1" if alphabet_bits <= 8 else "<u2"
    return bytes([code.max_length]) + counts + np.asarray(code.symbols, dtype=width).tobytes()


def _varint(value: int) -> bytes:
    """LEB128: seven bits per byte, least significant first, the high bit set on all
    bytes but the last."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def save_compressed(model: Module, path: str | os.PathLike,
                    fc_gap_bits: int = DEFAULT_FC_GAP_BITS,
                    conv_gap_bits: int = DEFAULT_CONV_GAP_BITS) -> CompressionReport:
    """Write a weight-shared model to ``path`` in the compressed format (see the module
    docstring) and return the bytes of every stage.

    The file goes to a temporary name beside ``path``; it is read back, decoded and
    compared with ``model`` (codebooks, indices, masks, biases, architecture: bit for
    bit) before it is moved into place. On any failure ``path`` is left as it was.

    Raises
    ------
    ValueError
        The model is not (entirely) weight-shared, or gap bits outside [1, 16].
    OSError
        The file cannot be written.
    """
    data, report = encode(model, fc_gap_bits, conv_gap_bits)
    path = Path(path)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(data)
        if os.path.getsize(temporary) != len(data):
            raise OSError(f"{path}: wrote {os.path.getsize(temporary):,} bytes of "
                          f"{len(data):,}; nothing was saved")
        _check_same(model, load_compressed(temporary, shared=True), path)
    report.path = str(path)
    return report


def _check_same(model: Module, decoded: Module, path: Path) -> None:
    """The decoded model is the model: same shared layers (codebooks, indices, masks,
    biases, bit for bit) and the same architecture once both are ordinary."""
    problems = []
    theirs = dict(shared_layers(decoded))
    for name, layer in shared_layers(model):
        other = theirs.get(name)
        same = (other is not None
                and layer.codebook.data.tobytes() == other.codebook.data.tobytes()
                and np.array_equal(layer.assignments, other.assignments)
                and layer.mask == other.mask and layer.sparse_kernels == other.sparse_kernels
                and (layer.bias is None) == (other.bias is None)
                and (layer.bias is None or layer.bias.data.tobytes() == other.bias.data.tobytes())
                and layer._masks.get("bias") == other._masks.get("bias"))
        if not same:
            problems.append(name)
    if problems or unshare(clone(model)).spec() != unshare(clone(decoded)).spec():
        raise OSError(f"{path}: the file written does not decode to the model "
                      f"({', '.join(problems) or 'architecture'} differ); nothing was saved")


# ---------------------------------------------------------------- reading
def load_compressed(path: str | os.PathLike, shared: bool = False) -> Module:
    """The model stored by :func:`save_compressed`, in evaluation mode.

    Parameters
    ----------
    path : str or PathLike
    shared : bool
        False (default): ordinary layers (Linear, SparseLinear, ...) holding the quantised
        weights, with their masks: a model like any other (``ts.save`` it, prune it ...).
        True: the weight-shared layers themselves (codebooks and indices), e.g. to go on
        fine-tuning the centroids.

    Raises
    ------
    CompressedFileError
        Naming the file and what is wrong: not found, not a compressed model (wrong
        magic), another version, damaged (checksum), or contents that do not fit the
        architecture they declare.
    """
    path = Path(path)
    if not path.exists():
        raise CompressedFileError(f"{path}: no such compressed model file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CompressedFileError(f"{path}: cannot be read ({error})") from error
    try:
        model = _decode(data)
    except CompressedFileError as error:
        raise CompressedFileError(f"{path}: {error}") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        message = str(error) if len(str(error)) < 500 else str(error)[:497] + "..."
        raise CompressedFileError(f"{path}: {message}") from error
    except MemoryError:
        raise CompressedFileError(f"{path}: ran out of memory decoding it") from None
    return model if shared else unshare(model)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The header of a compressed model file, inflated: architecture, dtype, config and
    each layer's record (after the same checks of magic, version and checksum as
    :func:`load_compressed`)."""
    path = Path(path)
    try:
        return _checked_header(path.read_bytes())
    except FileNotFoundError:
        raise CompressedFileError(f"{path}: no such compressed model file") from None
    except (OSError, ValueError) as error:
        raise CompressedFileError(f"{path}: {error}") from None


def _checked_header(data: bytes) -> dict[str, Any]:
    """The header of the file ``data``, once its start and checksum are right."""
    if len(data) < PRELUDE.size:
        start = data[:4]
        if start != MAGIC[:len(start)]:
            raise CompressedFileError(_not_ours(data))
        raise CompressedFileError(f"damaged: {len(data)} bytes, shorter than the "
                                  f"{PRELUDE.size}-byte start of every compressed model")
    magic, version, checksum, header_length = PRELUDE.unpack_from(data)
    if magic != MAGIC:
        raise CompressedFileError(_not_ours(data))
    if version != FORMAT_VERSION:
        raise CompressedFileError(f"format version {version}; this tinysparse reads "
                                  f"version {FORMAT_VERSION}")
    if zlib.crc32(data[9:]) != checksum:
        raise CompressedFileError("damaged: the checksum does not match (the file was "
                                  "truncated or changed after it was written)")
    if header_length > min(MAX_HEADER_BYTES, len(data) - PRELUDE.size):
        raise ValueError(f"the header declares {header_length:,} bytes, more than the file "
                         f"holds")
    return _read_header(data[PRELUDE.size:PRELUDE.size + header_length])


def _decode(data: bytes) -> Module:
    """The shared model in ``data`` (errors without the file name; the caller adds it)."""
    header = _checked_header(data)
    state = spec_state_entries(header["architecture"])
    reader = _Reader(data, PRELUDE.size + PRELUDE.unpack_from(data)[3])
    plain_masks, decoded = {}, {}
    for record in header["layers"]:
        layer = _decode_layer(record, state, reader, np.dtype(header["dtype"]))
        decoded[record["name"]] = layer
        if layer["mask"] is not None:
            plain_masks[_entry(record["name"], "weight")] = layer["mask"]
    if reader.position != len(data):
        raise ValueError(f"{len(data) - reader.position:,} bytes after the last layer")
    covered = {_entry(name, entry) for name, layer in decoded.items()
               for entry in ("weight", "bias") if entry == "weight" or layer["bias"] is not None}
    if covered != set(state):
        missing = sorted(set(state) - covered)
        raise ValueError(f"the layers stored do not cover the architecture's weights "
                         f"(missing {short_repr(missing[:3], 80)})")
    return _build(header, decoded, plain_masks, state)


def _not_ours(data: bytes) -> str:
    start = bytes(data[:4])
    hint = (" (a zip archive: a .npz model? load it with tinysparse.load)"
            if start.startswith(b"PK") else "")
    return (f"not a tinysparse compressed model (it starts with {start!r}, expected "
            f"{MAGIC!r}){hint}")


def _read_header(raw: bytes) -> dict[str, Any]:
    """The JSON header (inflated), checked entry by entry."""
    inflate = zlib.decompressobj()
    try:
        text = inflate.decompress(raw, MAX_HEADER_BYTES)
    except zlib.error as error:
        raise ValueError(f"the header cannot be inflated ({error})") from None
    if inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
        raise ValueError(f"the header is not one deflated stream of at most "
                         f"{MAX_HEADER_BYTES:,} bytes")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ValueError(f"the header is not valid JSON ({error})") from None
    expected = {"format", "version", "architecture", "dtype", "config", "layers"}
    if not isinstance(header, dict) or set(header) != expected:
        raise ValueError(f"the header must be an object with the entries "
                         f"{sorted(expected)}")
    if header["format"] != FORMAT_NAME or header["version"] != FORMAT_VERSION:
        raise ValueError(f"the header names format {short_repr(header['format'])} version "
                         f"{short_repr(header['version'])}")
    if header["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, found "
                         f"{short_repr(header['dtype'])}")
    if not isinstance(header["config"], dict | None):
        raise ValueError("config must be an object or null")
    if not isinstance(header["layers"], list) or not header["layers"]:
        raise ValueError("layers must be a non-empty list")
    keys = {"name", "bits", "gap_bits", "kept", "entries", "bias_mask", "index_bytes",
            "gap_bytes"}
    names = set()
    for record in header["layers"]:
        if not isinstance(record, dict) or set(record) != keys:
            raise ValueError(f"each layer record holds {sorted(keys)}")
        if not isinstance(record["name"], str) or record["name"] in names:
            raise ValueError(f"layer name {short_repr(record['name'])}: not a string, or "
                             f"given twice")
        names.add(record["name"])
        for key in ("kept", "entries", "index_bytes", "gap_bytes"):
            if type(record[key]) is not int or record[key] < 0:
                raise ValueError(f"layer {record['name']!r}: {key} must be an integer >= 0")
        for key in ("bits", "gap_bits"):
            value = record[key]
            if not (key == "gap_bits" and value is None) and \
                    (type(value) is not int or not MIN_BITS <= value <= MAX_BITS):
                raise ValueError(f"layer {record['name']!r}: {key} must be an integer in "
                                 f"[{MIN_BITS}, {MAX_BITS}]")
        if type(record["bias_mask"]) is not bool:
            raise ValueError(f"layer {record['name']!r}: bias_mask must be true or false")
    return header


class _Reader:
    """Reads a file's bytes in order; running out is an error that says so."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position

    def read(self, count: int, what: str) -> bytes:
        if count < 0 or self.position + count > len(self.data):
            raise ValueError(f"{what}: expected {count:,} bytes at offset {self.position:,}, "
                             f"the file ends first")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk

    def varint(self, what: str) -> int:
        value = 0
        for shift in range(0, 35, 7):
            byte = self.read(1, what)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise ValueError(f"{what}: a number longer than 5 bytes")

    def code(self, alphabet_bits: int, what: str) -> CanonicalCode:
        max_length = self.read(1, what)[0]
        counts = tuple(self.varint(what) for _ in range(max_length))
        if sum(counts) > 2**alphabet_bits:
            raise ValueError(f"{what}: {sum(counts)} symbols, more than the alphabet's "
                             f"{2**alphabet_bits}")
        width = "<u1" if alphabet_bits <= 8 else "<u2"
        raw = self.read(sum(counts) * np.dtype(width).itemsize, what)
        code = CanonicalCode(counts, tuple(np.frombuffer(raw, dtype=width).tolist()))
        try:
            huffman.check_code(code, 2**alphabet_bits)
        except ValueError as error:
            raise ValueError(f"{what}: {error}") from None
        return code


def _decode_layer(record: dict[str, Any], state: dict[str, Any], reader: _Reader,
                  dtype: np.dtype) -> dict[str, Any]:
    """One layer's arrays: codebook, assignments, mask, bias and bias mask, checked."""
    name = record["name"]
    where = f"layer {name!r}"
    if _entry(name, "weight") not in state:
        raise ValueError(f"{where}: the architecture has no weight {_entry(name, 'weight')}")
    shape = state[_entry(name, "weight")].shape
    if len(shape) not in (2, 4):
        raise ValueError(f"{where}: a weight of shape {shape} is neither fc nor conv")
    size, rows = math.prod(shape), shape[0]
    has_bias = _entry(name, "bias") in state
    bits, gap_bits = record["bits"], record["gap_bits"]
    little = dtype.newbyteorder("<")
    codebook = np.frombuffer(reader.read(2**bits * dtype.itemsize, f"{where} codebook"),
                             dtype=little).astype(dtype)
    if codebook[0] != 0 or not np.all(np.isfinite(codebook)):
        raise ValueError(f"{where}: the codebook's entry 0 must be zero and every entry "
                         f"finite")
    bias = bias_mask = None
    if has_bias:
        bias = np.frombuffer(reader.read(rows * dtype.itemsize, f"{where} bias"),
                             dtype=little).astype(dtype)
        if not np.all(np.isfinite(bias)):
            raise ValueError(f"{where}: the bias holds NaN or infinite values")
        if record["bias_mask"]:
            packed = np.frombuffer(reader.read(math.ceil(rows / 8), f"{where} bias mask"),
                                   dtype=np.uint8)
            bits_ = np.unpackbits(packed)
            if np.any(bits_[rows:]):
                raise ValueError(f"{where}: the bias mask's padding bits are not zero")
            bias_mask = Mask(bits_[:rows].astype(bool))
    elif record["bias_mask"]:
        raise ValueError(f"{where}: a bias mask for a layer without a bias")
    entries = record["entries"]
    if entries > size:
        raise ValueError(f"{where}: {entries:,} entries for a weight of {size:,}")
    index_code = reader.code(bits, f"{where} index code")
    codes = huffman.decode(reader.read(record["index_bytes"], f"{where} indices"),
                           index_code, entries)
    if gap_bits is None:  # no mask: every weight in flat order, none pruned
        if entries != size or np.any(codes == 0):
            raise ValueError(f"{where}: a layer without a mask stores all its {size:,} "
                             f"weights, each with an index >= 1")
        positions, assignments, mask = np.arange(size), codes, None
        if record["gap_bytes"]:
            raise ValueError(f"{where}: gap bytes for a layer without a mask")
    else:
        gap_code = reader.code(gap_bits, f"{where} gap code")
        gaps = huffman.decode(reader.read(record["gap_bytes"], f"{where} gaps"), gap_code,
                              entries)
        positions, assignments = decode_positions(gaps, codes, gap_bits, size)
        keep = np.zeros(size, dtype=bool)
        keep[positions] = True
        mask = Mask(keep.reshape(shape))
    if assignments.size != record["kept"]:
        raise ValueError(f"{where}: {assignments.size:,} kept weights decoded, the header "
                         f"says {record['kept']:,}")
    return {"codebook": codebook, "assignments": assignments, "positions": positions,
            "mask": mask, "bias": bias, "bias_mask": bias_mask}


def _build(header: dict[str, Any], decoded: dict[str, dict[str, Any]],
           plain_masks: dict[str, Mask], state_entries: dict[str, Any]) -> Module:
    """The shared model: the ordinary one the architecture describes (built as
    ``tinysparse.load`` builds one, which checks that everything fits), its layers then
    replaced by their shared twins."""
    state, masks = {}, dict(plain_masks)
    for name, layer in decoded.items():
        shape = state_entries[_entry(name, "weight")].shape
        index = np.zeros(math.prod(shape), dtype=np.int64)
        index[layer["positions"]] = layer["assignments"]
        state[_entry(name, "weight")] = layer["codebook"][index].reshape(shape)
        if layer["bias"] is not None:
            state[_entry(name, "bias")] = layer["bias"]
        if layer["bias_mask"] is not None:
            masks[_entry(name, "bias")] = layer["bias_mask"]
    model = build_checked(header["architecture"], header["dtype"], state, masks)
    names = {}
    for name in decoded:
        plain = model.get_submodule(name)
        if type(plain) not in SHARED_TWINS:
            raise ValueError(f"layer {name!r} is a {type(plain).__name__}; the compressed "
                             f"format stores {', '.join(t.__name__ for t in SHARED_TWINS)}")
        names[id(plain)] = name

    def twin(plain: Module) -> Module | None:
        if id(plain) not in names:
            return None
        name = names[id(plain)]
        layer, args = decoded[name], plain.constructor_args()
        if "weight_noise" in args:
            raise ValueError(f"layer {name!r}: a weight noise in the architecture (a shared "
                             f"layer has none)")
        shared = SHARED_TWINS[type(plain)](
            **args, codebook=layer["codebook"], assignments=layer["assignments"],
            mask=layer["mask"], sparse_kernels=isinstance(plain, SparseLayer),
            dtype=header["dtype"])
        if shared.bias is not None:
            shared.bias.data = layer["bias"].copy()
            if layer["bias_mask"] is not None:
                shared.set_mask("bias", layer["bias_mask"])
        object.__setattr__(shared, "name", plain.name)
        return shared

    model = replace_layers(model, twin)
    for _, module in model.named_modules():
        if module._parameters and not isinstance(module, SharedLayer):
            raise ValueError(f"{module.describe()} has weights but no layer record")
    if header["config"] is not None:
        model.config = header["config"]
    model.eval()
    return model


def _entry(layer_name: str, entry: str) -> str:
    """The state entry ``entry`` of the layer called ``layer_name`` ("" for the model)."""
    return f"{layer_name}.{entry}" if layer_name else entry
