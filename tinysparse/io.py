"""Save and load a model as one ``.npz`` file: weights, masks, snapshots, config.

A model file is a zip archive of ``.npy`` arrays, each stored or deflated (what
``np.savez_compressed`` writes), holding exactly these entries:

* ``__tinysparse__`` — one string, a JSON object: ``format`` (``"tinysparse"``),
  ``version`` (1), ``architecture`` (:meth:`Module.spec`), ``dtype`` (``"float32"`` or
  ``"float64"``), and optionally ``config`` (the model's, an object or null) and
  ``metadata`` (an object, see :func:`load_metadata`);
* ``param/<name>`` — one for each entry of ``model.state_dict()`` that the architecture
  declares, e.g. ``param/fc1.weight`` whether fc1 runs the dense or the sparse kernels: of
  the shape the architecture gives it, float32 or float64 (loaded as ``dtype``), finite;
* ``mask/<name>`` — booleans of the shape of the state entry ``<name>``: required for the
  weight of a :class:`~tinysparse.nn.SparseLinear` or :class:`~tinysparse.nn.SparseConv2d`
  (it is built from its mask: it stores only the weights the mask keeps), optional for
  any other entry;
* ``snapshot/<label>/<name>`` — saved copies of weights, found again in
  ``model.snapshots[label][name]`` (e.g. the initial weights θ₀, ``label="init"``, that
  lottery-ticket rewinding needs): ``<label>`` without ``/``, ``<name>`` a state entry,
  of its shape, float32 or float64, finite.

:func:`load` refuses anything else with a :class:`ModelFileError` that names the file and
the entry. It reads the archive's directory and the arrays' headers first, and compares
the shapes they declare with those the architecture declares, before it reads any array
or builds any layer: a small file cannot make it allocate much (no more than the arrays
it holds, which DEFLATE bounds to 1032 times the file's size). :func:`save` makes the
same checks on what it is about to write, so it never writes a file that :func:`load`
would refuse.

The file is written to a temporary name and moved into place, so a crash never leaves
half a model behind.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinysparse.data.storage import atomic_path
from tinysparse.nn.module import Module, build_from_spec, short_repr, spec_state_entries
from tinysparse.sparse.mask import Mask

FORMAT_VERSION = 1
HEADER_KEY = "__tinysparse__"
#: the header's entries: those every file has, and those it may have
HEADER_REQUIRED = ("format", "version", "architecture", "dtype")
HEADER_OPTIONAL = ("config", "metadata")
#: what weights and snapshots may be stored as
WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: the most characters a header may have (a LeNet-5's has 1,500)
MAX_HEADER_CHARS = 2**24
#: DEFLATE's largest expansion, bytes out per byte in: no array of the archive can hold
#: more than this times the bytes it occupies in the file
DEFLATE_MAX_RATIO = 1032
#: the longest message a refusal gives (beyond the path)
MAX_MESSAGE_CHARS = 500

#: what reading a damaged zip archive can raise (besides ValueError)
_ARCHIVE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, struct.error,
                   NotImplementedError, RuntimeError)
#: what NumPy's parser of a damaged .npy header can raise
_NPY_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, tokenize.TokenError)


class ModelFileError(ValueError):
    """The file is missing, corrupt, or not a tinysparse model."""


class ArrayHeader(NamedTuple):
    """What a ``.npy`` header declares: enough to check an array before reading it."""

    shape: tuple[int, ...]
    dtype: np.dtype


def model_path(path: str | os.PathLike) -> Path:
    """Where :func:`save` writes ``path``: with ``.npz`` appended if it lacks the suffix."""
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise ValueError(f"path: expected a file name, got {str(path)!r}")
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


# ---------------------------------------------------------------- save
def header_as_json(header: dict[str, Any]) -> str:
    """A model file's header as JSON; the user's ``metadata`` in it must be serialisable."""
    try:
        return json.dumps(header)
    except TypeError as error:
        raise TypeError(f"metadata: must be JSON-serialisable ({error})") from error


def save(model: Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (weights, masks, ``model.snapshots``, config) to ``path`` (.npz).

    Parameters
    ----------
    model : Module
        Any model built from tinysparse layers, with finite float32 or float64 weights;
        ``model.snapshots``, if any, maps labels (strings without ``/``) to state dicts
        whose entries are entries of the model's state, of their shapes.
    path : str or PathLike
        Destination; ``.npz`` is appended if missing.
    metadata : dict, optional
        JSON-able extra information (e.g. the accuracy it reached), returned by
        :func:`load_metadata`.

    Raises
    ------
    ValueError
        When the model would not make a valid model file (see the module docstring); the
        message names the entry, and nothing is written.
    """
    path = model_path(path)
    header = {
        "format": "tinysparse",
        "version": FORMAT_VERSION,
        "architecture": model.spec(),
        "dtype": str(model.dtype),
        "config": getattr(model, "config", None),
        "metadata": {} if metadata is None else metadata,
    }
    header_json = header_as_json(header)
    try:
        _check_declared(model)
        arrays = _arrays_of(model)
        if len(header_json) > MAX_HEADER_CHARS:
            raise ValueError(f"the header has {len(header_json):,} characters, more than "
                             f"{MAX_HEADER_CHARS:,} (is the metadata that large?)")
        _check_header(header)
        _check_entries(header, {key: ArrayHeader(values.shape, values.dtype)
                                for key, values in arrays.items()})
        _check_values(arrays)
    except ValueError as error:
        raise ValueError(f"cannot save to {path}: {error}") from None
    arrays[HEADER_KEY] = np.array(header_json)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path


def _check_declared(model: Module) -> None:
    """Every layer's type declares what its spec holds (its ``spec_arguments``, and its
    state's shapes through ``spec_state_shapes``), as :func:`load` needs to check a file
    before it builds the model. A new layer type that has weights or arguments must."""
    for _, module in model.named_modules():
        cls, args = type(module), module.constructor_args()
        required = {n for n, kind in cls.spec_arguments.items() if not kind.optional}
        if not required <= set(args) <= set(cls.spec_arguments) or \
                cls.spec_state_shapes(args) != module.local_state_shapes():
            raise ValueError(
                f"{module.describe()}: the type {cls.__name__} does not declare what its "
                f"saved spec holds; give it spec_arguments and spec_state_shapes, as "
                f"tinysparse.nn.Linear has, so that load can check a file before it builds")


def _arrays_of(model: Module) -> dict[str, np.ndarray]:
    """The ``param/``, ``mask/`` and ``snapshot/`` entries of ``model``'s file. The
    weights are written in the model's dtype (the one the file declares)."""
    dtype = model.dtype
    arrays = {f"param/{name}": values.astype(dtype, copy=False)
              for name, values in model.state_dict().items()}
    for name, mask in model.named_masks():
        arrays[f"mask/{name}"] = mask.keep
    snapshots = getattr(model, "snapshots", None) or {}
    if not isinstance(snapshots, Mapping):
        raise ValueError(f"model.snapshots must map labels to state dicts, found "
                         f"{type(snapshots).__name__}")
    for label, snapshot in snapshots.items():
        if not isinstance(label, str) or not label or "/" in label:
            raise ValueError(f"snapshot label {short_repr(label)}: expected a non-empty "
                             f"string without '/' (the file separates label and weight "
                             f"name with '/')")
        if not isinstance(snapshot, Mapping):
            raise ValueError(f"snapshot {label!r}: expected a state dict, found "
                             f"{type(snapshot).__name__}")
        for name, values in snapshot.items():
            try:
                arrays[f"snapshot/{label}/{name}"] = np.asarray(values)
            except ValueError as error:
                raise ValueError(f"snapshot/{label}/{name}: not an array ({error})") from None
    return arrays


# ---------------------------------------------------------------- load
def load(path: str | os.PathLike) -> Module:
    """Load a model saved by :func:`save`; it is callable on a NumPy batch of images.

    Masks are re-attached to their layers (weights where a mask prunes are zero), each
    layer comes back as the kind that was saved (a :class:`~tinysparse.nn.SparseLinear`
    as one), and snapshots are restored to ``model.snapshots``.

    Raises
    ------
    ModelFileError
        When ``path`` is not a valid model file (see the module docstring), naming the
        file and what is wrong; everything is checked before the model is built. Also
        when a valid file holds more than this machine can allocate.
    """
    header, arrays = _read(path)
    try:
        return _build(header, arrays)
    except MemoryError:  # the file is valid, but too large for this machine
        size = sum(values.nbytes for values in arrays.values())
        raise ModelFileError(f"{path}: ran out of memory building the model (its arrays "
                             f"hold {size:,} bytes)") from None


def _build(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Module:
    """The model that a checked header and its arrays describe."""
    masks = {key.removeprefix("mask/"): Mask(keep) for key, keep in arrays.items()
             if key.startswith("mask/")}
    model = build_checked(header["architecture"], header["dtype"],
                          {key.removeprefix("param/"): values for key, values in arrays.items()
                           if key.startswith("param/")}, masks)
    snapshots: dict[str, dict[str, np.ndarray]] = {}
    for key, values in arrays.items():
        if key.startswith("snapshot/"):
            label, _, name = key.removeprefix("snapshot/").partition("/")
            snapshots.setdefault(label, {})[name] = values
    if snapshots:
        model.snapshots = snapshots
    if header.get("config") is not None:
        model.config = header["config"]
    model.eval()
    return model


def build_checked(architecture: dict[str, Any], dtype: str, state: Mapping[str, np.ndarray],
                  masks: Mapping[str, Mask]) -> Module:
    """The model an architecture (:meth:`Module.spec`), its dense state and its masks
    describe, once they are known to fit (as :func:`load` checks a file): layers built
    from their masks get them first, the others after their weights are loaded. The
    compressed format (:mod:`tinysparse.compress`) rebuilds its models here too."""
    model = build_from_spec(architecture, dict(masks)).to(dtype)
    model.load_state_dict(dict(state))
    own_masks = dict(model.named_masks())  # the sparse layers were built with theirs
    for name, mask in masks.items():
        if name not in own_masks:
            module_name, _, param_name = name.rpartition(".")
            model.get_submodule(module_name).set_mask(param_name, mask)
    return model


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The header of a saved model: architecture, dtype, config and user metadata (the
    whole file is checked, as by :func:`load`)."""
    header, _ = _read(path)
    return header


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a model file, checked in this order: the archive's
    directory, the arrays' headers, the JSON header, the arrays the architecture declares
    against those present; only then the arrays themselves, and their values."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    size = None
    try:
        with _open_archive(path) as archive:
            members = _members(archive, path.stat().st_size)
            size = sum(info.file_size for info in members.values())
            declared = {key: _array_header(key, archive, info) for key, info in members.items()}
            header = _read_header(archive, members, declared)
            _check_header(header)
            _check_entries(header, declared)
            arrays = {key: _read_array(key, archive, info) for key, info in members.items()
                      if key != HEADER_KEY}
        _check_values(arrays)
    except MemoryError:  # a valid file can be too large for this machine
        held = "" if size is None else f" (its arrays hold {size:,} bytes)"
        raise ModelFileError(f"{path}: ran out of memory reading it{held}") from None
    except ValueError as error:  # every check raises ValueError, saying what is wrong
        message = str(error)  # which can hold names from the file: keep it short
        message = message if len(message) <= MAX_MESSAGE_CHARS else \
            message[:MAX_MESSAGE_CHARS - 3] + "..."
        raise ModelFileError(f"{path}: {message}") from error
    except OSError as error:
        raise ModelFileError(f"{path}: cannot be read ({error})") from error
    return header, arrays


# ---------------------------------------------------------------- the archive
def _open_archive(path: Path) -> zipfile.ZipFile:
    with open(path, "rb") as f:  # an OSError here: the file cannot be read at all
        start = f.read(6)
    try:
        return zipfile.ZipFile(path)
    except (*_ARCHIVE_ERRORS, ValueError) as error:
        what = ("a single .npy array" if start == b"\x93NUMPY"
                else f"not a zip archive, or a damaged one: {error}")
        raise ValueError(f"not a readable .npz file ({what})") from error


def _members(archive: zipfile.ZipFile, file_size: int) -> dict[str, zipfile.ZipInfo]:
    """Each member of the archive by its key (its name without ``.npy``), once its entry
    in the directory is known to be sane: a ``.npy`` name used once, stored or deflated,
    not encrypted, and sizes that fit in the file. An array can then declare no more
    bytes than DEFLATE can make of what it occupies in the file, and members cannot
    share their bytes (as zip bombs do)."""
    members = {}
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise ValueError(f"unexpected entry {short_repr(name)}: a model file holds only "
                             f".npy arrays")
        key = name.removesuffix(".npy")
        if key in members:
            raise ValueError(f"two entries are called {short_repr(name)}")
        if info.flag_bits & 0x1:
            raise ValueError(f"{key}: encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{key}: compression method {info.compress_type}, expected "
                             f"stored ({zipfile.ZIP_STORED}) or deflated "
                             f"({zipfile.ZIP_DEFLATED})")
        largest = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
                   else DEFLATE_MAX_RATIO * info.compress_size + 1024)
        if info.file_size > largest or info.header_offset + info.compress_size > file_size:
            raise ValueError(f"{key}: declares {info.file_size:,} bytes "
                             f"({info.compress_size:,} compressed), more than the file holds")
        members[key] = info
    if sum(info.compress_size for info in members.values()) > file_size:
        raise ValueError("the entries occupy more bytes than the file has (they overlap)")
    return members


def _array_header(key: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ArrayHeader:
    """The shape and dtype that the ``.npy`` header of a member declares, once they are
    known to describe exactly the bytes the member holds (no array data is read)."""
    try:
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"npy format version {version}, expected (1, 0) or (2, 0)")
            data_size = info.file_size - f.tell()
    except _ARCHIVE_ERRORS as error:
        raise ValueError(f"{key}: damaged ({error})") from error
    except _NPY_HEADER_ERRORS as error:
        raise ValueError(f"{key}: not a readable .npy array ({error})") from error
    shape = tuple(int(n) for n in shape)
    if dtype.hasobject:
        raise ValueError(f"{key}: an array of Python objects ({dtype}), which a model file "
                         f"never holds")
    if min(shape, default=0) < 0 or math.prod(shape) * dtype.itemsize != data_size:
        raise ValueError(f"{key}: declares shape {short_repr(shape, 80)} of {dtype} but "
                         f"holds {data_size:,} bytes of data")
    return ArrayHeader(shape, dtype)


def _read_array(key: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """The array of a member (its header already checked by :func:`_array_header`)."""
    try:
        with archive.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except (*_ARCHIVE_ERRORS, ValueError) as error:
        raise ValueError(f"{key}: damaged ({error})") from error


# ---------------------------------------------------------------- the header
def _read_header(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo],
                 declared: dict[str, ArrayHeader]) -> Any:
    """The JSON value of the ``__tinysparse__`` entry (a string of at most
    ``MAX_HEADER_CHARS`` characters)."""
    if HEADER_KEY not in declared:
        raise ValueError(f"not a tinysparse model (no {HEADER_KEY} entry)")
    shape, dtype = declared[HEADER_KEY]
    if shape != () or dtype.kind != "U" or dtype.byteorder == ">":
        raise ValueError(f"{HEADER_KEY}: expected one string, found an array of {dtype} of "
                         f"shape {short_repr(shape, 80)}")
    if dtype.itemsize // 4 > MAX_HEADER_CHARS:
        raise ValueError(f"{HEADER_KEY}: {dtype.itemsize // 4:,} characters, more than "
                         f"{MAX_HEADER_CHARS:,}")
    text = _read_array(HEADER_KEY, archive, members[HEADER_KEY])
    if np.any(np.frombuffer(text.tobytes(), dtype=np.uint32) > 0x10FFFF):
        raise ValueError(f"{HEADER_KEY}: not text (characters beyond Unicode)")
    try:
        return json.loads(str(text[()]))
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{HEADER_KEY}: not valid JSON ({error})") from error


def _check_header(header: Any) -> None:
    """The header is an object with the entries of the module docstring, each of its kind
    (the architecture is checked with the arrays, by :func:`_check_entries`)."""
    if not isinstance(header, dict):
        raise ValueError(f"the header must be a JSON object, found {short_repr(header)}")
    if header.get("format") != "tinysparse":
        raise ValueError(f"not a tinysparse model (header format "
                         f"{short_repr(header.get('format'))})")
    version = header.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(f"unsupported format version {short_repr(version)} (this "
                         f"tinysparse reads version {FORMAT_VERSION})")
    missing = [key for key in HEADER_REQUIRED if key not in header]
    unknown = sorted(set(header) - {*HEADER_REQUIRED, *HEADER_OPTIONAL})
    if missing or unknown:
        problem = f"no {missing[0]!r}" if missing else f"unknown entry {short_repr(unknown[0])}"
        raise ValueError(f"header: {problem}; expected {', '.join(HEADER_REQUIRED)} and "
                         f"optionally {', '.join(HEADER_OPTIONAL)}")
    if header["dtype"] not in [str(dtype) for dtype in WEIGHT_DTYPES]:
        raise ValueError(f"header: dtype must be float32 or float64, found "
                         f"{short_repr(header['dtype'])}")
    if not isinstance(header.get("config"), (dict, type(None))):
        raise ValueError(f"header: config must be an object or null, found "
                         f"{short_repr(header['config'])}")
    if not isinstance(header.get("metadata", {}), dict):
        raise ValueError(f"header: metadata must be an object, found "
                         f"{short_repr(header['metadata'])}")


# ---------------------------------------------------------------- the arrays
def _check_entries(header: dict[str, Any], arrays: dict[str, ArrayHeader]) -> None:
    """The arrays are exactly those that the architecture declares (see the module
    docstring): every state entry has its ``param/`` array, a sparse layer its mask, and
    every other array belongs to a state entry, with its shape and an allowed dtype."""
    state = spec_state_entries(header["architecture"])
    for name, entry in state.items():
        if f"param/{name}" not in arrays:
            raise ValueError(f"param/{name} is missing: {entry.layer} declares {name} of "
                             f"shape {entry.shape}")
        if entry.needs_mask and f"mask/{name}" not in arrays:
            raise ValueError(f"mask/{name} is missing: {entry.layer} is built from its mask")
    for key, array in arrays.items():
        kind, _, name = key.partition("/")
        if kind == "snapshot":
            label, _, name = name.partition("/")
            if not label or not name:
                raise ValueError(f"{short_repr(key)}: expected snapshot/<label>/<name>")
        if key == HEADER_KEY:
            continue
        if kind not in ("param", "mask", "snapshot"):
            raise ValueError(f"unexpected entry {short_repr(key)}: expected param/, mask/ "
                             f"or snapshot/ entries")
        if name not in state:
            raise ValueError(f"{short_repr(key)}: the architecture has no state entry "
                             f"{short_repr(name)}")
        if array.shape != state[name].shape:
            raise ValueError(f"the arrays do not fit the architecture: {key} has shape "
                             f"{short_repr(array.shape, 80)}, but {state[name].layer} "
                             f"declares {name} of shape {state[name].shape}")
        allowed = [np.dtype(np.bool_)] if kind == "mask" else WEIGHT_DTYPES
        if array.dtype not in allowed:
            raise ValueError(f"{key}: dtype {array.dtype}, expected "
                             f"{' or '.join(map(str, allowed))}")


def _check_values(arrays: dict[str, np.ndarray]) -> None:
    """Weights and snapshots are finite; masks hold only 0 and 1 (a boolean array's bytes
    can hold other values)."""
    for key, values in arrays.items():
        if values.dtype == np.bool_:
            if values.size and values.view(np.uint8).max() > 1:
                raise ValueError(f"{key}: a mask holds only 0 and 1, found the byte "
                                 f"{values.view(np.uint8).max()}")
        elif (not_finite := values.size - np.count_nonzero(np.isfinite(values))):
            raise ValueError(f"{key}: {not_finite:,} of {values.size:,} values are NaN or "
                             f"infinite")
