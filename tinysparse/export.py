"""A bridge to PyTorch: a model's weights and masks in a ``.safetensors`` file.

`safetensors <https://huggingface.co/docs/safetensors>`_ is a plain file of named arrays
that NumPy, PyTorch and most other frameworks read. :func:`export_safetensors` names the
arrays as a PyTorch model pruned with ``torch.nn.utils.prune`` names its state dict, so
that the equivalent PyTorch ``nn.Sequential`` (the same child names: ``fc1``, ``act1``,
...; see the README, "From tinysparse to PyTorch") loads the file with
``load_state_dict``:

* a masked weight ``<layer>.weight`` is written as ``<layer>.weight_orig`` (the dense
  weights, zeros where pruned) and ``<layer>.weight_mask`` (1 kept, 0 pruned, in the
  weights' dtype, as PyTorch's buffer is); a masked bias likewise;
* every other state entry under its own name: ``<layer>.weight``, ``<layer>.bias``.

The names are those of ``model.state_dict()``, which names weights densely whether a layer
runs on the dense or the sparse kernels. The file's metadata holds ``format: pt`` (the
names follow PyTorch's conventions) and ``tinysparse``: a JSON object with the dense
architecture (:meth:`~tinysparse.nn.Module.spec`), the dtype and the model's config, so
that :func:`import_safetensors` can rebuild the model without a template.

:func:`import_safetensors` reads such a file back, with or without ``_orig``/``_mask``
pairs (a file PyTorch wrote with ``safetensors.torch.save_file(model.state_dict(), path)``
has none for the layers it did not prune), and applies the masks with
:func:`tinysparse.prune.apply_masks`, so pruned layers take the sparse kernels as after
pruning.

tinysparse never imports torch: this module uses ``safetensors.numpy`` only, an optional
extra (``pip install "tinysparse[torch-bridge]"``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tinysparse.data.storage import atomic_path
from tinysparse.io import ModelFileError, header_as_json
from tinysparse.nn.module import Module, build_from_spec, short_repr, spec_state_entries
from tinysparse.nn.sparse_layers import as_dense
from tinysparse.prune.masks import apply_masks, check_no_empty_layer, remove_masks
from tinysparse.sparse.mask import Mask

#: the metadata key that holds tinysparse's own header (a JSON string)
METADATA_KEY = "tinysparse"
FORMAT_VERSION = 1
#: the suffixes ``torch.nn.utils.prune`` gives a pruned parameter's two state entries
ORIG_SUFFIX, MASK_SUFFIX = "_orig", "_mask"
#: what a weight may be stored as in a file we read (it is cast to the model's dtype)
READABLE_WEIGHT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
#: the longest message an error gives about names read from a file
MAX_MESSAGE_CHARS = 500


def _safetensors_numpy() -> Any:
    """``safetensors.numpy``, or an ImportError that says how to install it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            "the PyTorch bridge needs the optional package safetensors: "
            "pip install 'tinysparse[torch-bridge]' (or pip install 'safetensors>=0.4')"
        ) from None
    return safetensors.numpy


def safetensors_path(path: str | os.PathLike) -> Path:
    """Where :func:`export_safetensors` writes ``path``: ``.safetensors`` appended if it
    lacks the suffix."""
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise ValueError(f"path: expected a file name, got {str(path)!r}")
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


# ---------------------------------------------------------------- export
def export_safetensors(model: Module, path: str | os.PathLike,
                       metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and masks to ``path`` with PyTorch's pruning names.

    For the LeNet-300-100 of :func:`tinysparse.nn.lenet300` pruned with
    :func:`tinysparse.prune.prune` the file holds ``fc1.weight_orig``, ``fc1.weight_mask``,
    ``fc1.bias``, ... ``fc3.bias``: what ``state_dict()`` gives for the PyTorch model with
    the same child names after ``prune.identity(model.fc1, "weight")`` (or
    ``prune.custom_from_mask``) on each pruned layer. PyTorch computes
    ``weight = weight_orig * weight_mask``, which is tinysparse's masked weight.

    Parameters
    ----------
    model : Module
        Any tinysparse model (dense, masked or on the sparse kernels).
    path : str or PathLike
        Destination; ``.safetensors`` is appended if missing. Written to a temporary
        file and moved into place, so a crash never leaves half a file.
    metadata : dict, optional
        JSON-able extra information, kept in the tinysparse header (``"metadata"``).

    Returns
    -------
    Path
        Where the file was written.

    Raises
    ------
    ImportError
        When safetensors is not installed (the ``torch-bridge`` extra).
    ValueError
        When a weight is not finite, or a state entry's name collides with another's
        ``_orig``/``_mask`` name; nothing is written.
    """
    st = _safetensors_numpy()
    path = safetensors_path(path)
    dtype = model.dtype
    state = model.state_dict()
    masks = dict(model.named_masks())
    tensors: dict[str, np.ndarray] = {}
    for name, values in state.items():
        names = ([f"{name}{ORIG_SUFFIX}", f"{name}{MASK_SUFFIX}"] if name in masks else [name])
        taken = [n for n in names if n in tensors or (n != name and n in state)]
        if taken:
            raise ValueError(f"cannot export to {path}: the state entry {name} would be "
                             f"written as {taken[0]}, which another entry already is")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"cannot export to {path}: {name} holds NaN or infinite values")
        values = np.ascontiguousarray(values, dtype=dtype)
        if name in masks:
            tensors[names[0]] = values
            tensors[names[1]] = masks[name].keep.astype(dtype)
        else:
            tensors[name] = values
    header = {
        "version": FORMAT_VERSION,
        "architecture": as_dense(model).spec(),
        "dtype": str(dtype),
        "config": getattr(model, "config", None),
        "metadata": {} if metadata is None else metadata,
    }
    with atomic_path(path) as temporary:
        st.save_file(tensors, temporary,
                     metadata={"format": "pt", METADATA_KEY: header_as_json(header)})
    return path


# ---------------------------------------------------------------- import
def import_safetensors(path: str | os.PathLike, model: Module | None = None) -> Module:
    """Read a ``.safetensors`` file of weights (and masks) into a tinysparse model.

    The file may come from :func:`export_safetensors` or from PyTorch
    (``safetensors.torch.save_file(torch_model.state_dict(), path)``): each state entry
    ``<name>`` of the model is read from ``<name>``, or, for a weight PyTorch pruned, from
    ``<name>_orig`` and ``<name>_mask``; the model's weight is then
    ``<name>_orig ⊙ <name>_mask`` and its mask ``<name>_mask`` (applied with
    :func:`tinysparse.prune.apply_masks`: a layer pruned enough moves to the sparse
    kernels, as after pruning). Weights stored as float16/32/64 are cast to the model's
    dtype.

    Parameters
    ----------
    path : str or PathLike
        The file.
    model : Module, optional
        A tinysparse model of the file's architecture, e.g. ``tinysparse.nn.lenet300()``
        for a PyTorch LeNet-300-100: loaded in place (its earlier masks are dropped,
        the file's applied) and returned. Without it the model is rebuilt from the
        tinysparse header that :func:`export_safetensors` writes (a file PyTorch wrote
        has none: pass ``model`` then).

    Returns
    -------
    Module
        The model, in evaluation mode.

    Raises
    ------
    ImportError
        When safetensors is not installed (the ``torch-bridge`` extra).
    ModelFileError
        When ``path`` is missing or not a safetensors file, lacks an entry the model
        needs, holds one it has not, or an entry of the wrong shape or kind; the message
        names the file and the entry. Everything is checked before the model changes.
    """
    _safetensors_numpy()
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such safetensors file")
    try:
        with safe_open(path, framework="np") as f:
            file_metadata = f.metadata() or {}
            keys = list(f.keys())
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in keys}
            dtypes = {key: f.get_slice(key).get_dtype() for key in keys}
            header = _read_header(file_metadata) if model is None else None
            if model is None and header is None:
                raise ValueError(
                    "it holds no tinysparse header (PyTorch wrote it?): pass the model to "
                    "load it into, e.g. import_safetensors(path, model=tinysparse.nn.lenet300())")
            expected = (model.state_shapes() if model is not None else
                        {name: entry.shape for name, entry
                         in spec_state_entries(header["architecture"]).items()})
            sources = _match_entries(expected, shapes, dtypes)
            arrays = {key: _read_tensor(f, key) for key in keys}
        state, masks = _state_and_masks(sources, arrays)
        check_no_empty_layer(masks)
    except ValueError as error:
        message = str(error)
        message = message if len(message) <= MAX_MESSAGE_CHARS else \
            message[:MAX_MESSAGE_CHARS - 3] + "..."
        raise ModelFileError(f"{path}: {message}") from None
    except OSError as error:
        raise ModelFileError(f"{path}: cannot be read ({error})") from None
    except SafetensorError as error:  # the file is not a safetensors file, or damaged
        raise ModelFileError(f"{path}: not a readable safetensors file ({error})") from None
    if model is None:
        model = build_from_spec(header["architecture"]).to(header["dtype"])
        if header.get("config") is not None:
            model.config = header["config"]
    else:
        remove_masks(model)
    model.load_state_dict(state)
    apply_masks(model, masks)
    model.eval()
    return model


def _read_header(metadata: dict[str, str]) -> dict[str, Any] | None:
    """The tinysparse header of a file's metadata, checked; None when there is none."""
    if METADATA_KEY not in metadata:
        return None
    try:
        header = json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError) as error:
        raise ValueError(f"metadata {METADATA_KEY!r}: not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("version") != FORMAT_VERSION:
        raise ValueError(f"metadata {METADATA_KEY!r}: expected an object with version "
                         f"{FORMAT_VERSION}, found {short_repr(header)}")
    if header.get("dtype") not in ("float32", "float64"):
        raise ValueError(f"metadata {METADATA_KEY!r}: dtype must be float32 or float64, "
                         f"found {short_repr(header.get('dtype'))}")
    if not isinstance(header.get("config"), (dict, type(None))):
        raise ValueError(f"metadata {METADATA_KEY!r}: config must be an object or null")
    try:
        entries = spec_state_entries(header.get("architecture"))
    except ValueError as error:
        raise ValueError(f"metadata {METADATA_KEY!r}: {error}") from None
    if any(entry.needs_mask for entry in entries.values()):
        raise ValueError(f"metadata {METADATA_KEY!r}: expected a dense architecture (the "
                         f"masks are in the arrays), found a layer built from its mask")
    return header


def _match_entries(expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]],
                   dtypes: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """For each state entry the model expects, the file's entries it is read from:
    ``(name,)`` or ``(name_orig, name_mask)``; checks names, shapes and kinds first."""
    sources: dict[str, tuple[str, ...]] = {}
    for name, shape in expected.items():
        orig, mask = f"{name}{ORIG_SUFFIX}", f"{name}{MASK_SUFFIX}"
        present = [key for key in (name, orig, mask) if key in shapes]
        if present == [name]:
            sources[name] = (name,)
        elif present == [orig, mask]:
            sources[name] = (orig, mask)
        elif not present:
            raise ValueError(f"no entry {name} (nor {orig} and {mask}): the model has "
                             f"{name} of shape {shape}")
        elif name in present:
            raise ValueError(f"both {name} and {' and '.join(present[1:])}: a weight is "
                             f"stored either whole or as {orig} and {mask}, not both")
        else:
            missing = mask if orig in present else orig
            raise ValueError(f"{present[0]} without {missing}: a pruned weight needs both")
        for key in sources[name]:
            if shapes[key] != shape:
                raise ValueError(f"{key} has shape {short_repr(shapes[key], 80)}, but the "
                                 f"model's {name} has shape {shape}")
            kind = np.dtype(_numpy_dtype(key, dtypes[key]))
            allowed = READABLE_WEIGHT_DTYPES + ((np.dtype(np.bool_), np.dtype(np.uint8))
                                                if key.endswith(MASK_SUFFIX) else ())
            if kind not in allowed:
                raise ValueError(f"{key}: dtype {dtypes[key]}, expected one of "
                                 f"{', '.join(map(str, allowed))}")
    used = {key for keys in sources.values() for key in keys}
    unexpected = sorted(set(shapes) - used)
    if unexpected:
        raise ValueError(f"unexpected entry {short_repr(unexpected[0], 80)}: the model has "
                         f"no state entry of that name (it has {short_repr(list(expected))})")
    return sources


#: safetensors' dtype names and NumPy's
_DTYPES = {"F16": "float16", "F32": "float32", "F64": "float64", "BOOL": "bool",
           "U8": "uint8"}


def _numpy_dtype(key: str, name: str) -> str:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"{key}: dtype {name}, which tinysparse does not read (it reads "
                         f"{', '.join(_DTYPES)})") from None


def _read_tensor(f: Any, key: str) -> np.ndarray:
    return np.asarray(f.get_tensor(key))


def _state_and_masks(sources: dict[str, tuple[str, ...]], arrays: dict[str, np.ndarray]
                     ) -> tuple[dict[str, np.ndarray], dict[str, Mask]]:
    """The dense state and the masks that the matched entries hold, once the weights are
    finite and the masks hold only 0 and 1."""
    state, masks = {}, {}
    for name, keys in sources.items():
        values = arrays[keys[0]]
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{keys[0]}: holds NaN or infinite values")
        if len(keys) == 2:
            keep = arrays[keys[1]]
            if not np.all((keep == 0) | (keep == 1)):
                raise ValueError(f"{keys[1]}: a mask holds only 0 and 1")
            keep = keep.astype(bool)
            masks[name] = Mask(keep)
            values = np.where(keep, values, 0)
        state[name] = values
    return state, masks
