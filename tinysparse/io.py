"""Save and load a model as one ``.npz`` file: weights, masks, snapshots, config.

Layout of the archive (plain arrays; loaded with ``allow_pickle=False``):

* ``__tinysparse__`` — a JSON string: format version, the architecture
  (:meth:`Module.spec`), the dtype, the model's ``config`` if it has one, user metadata;
* ``param/<name>`` — every weight as a dense array (``model.state_dict()``), e.g.
  ``param/fc1.weight``, whether fc1 runs the dense or the sparse kernels;
* ``mask/<name>`` — every mask as booleans;
* ``snapshot/<label>/<name>`` — saved copies of the weights, e.g. the initial weights θ₀
  (``label="init"``) that lottery-ticket rewinding needs; found again in
  ``model.snapshots[label][name]``.

The file is written to a temporary name and moved into place, so a crash never leaves
half a model behind.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tinysparse.data.storage import atomic_path
from tinysparse.nn.module import Module, build_from_spec
from tinysparse.sparse.mask import Mask

FORMAT_VERSION = 1
HEADER_KEY = "__tinysparse__"


class ModelFileError(ValueError):
    """The file is missing, corrupt, or not a tinysparse model."""


def model_path(path: str | os.PathLike) -> Path:
    """Where :func:`save` writes ``path``: with ``.npz`` appended if it lacks the suffix."""
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise ValueError(f"path: expected a file name, got {str(path)!r}")
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def save(model: Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (weights, masks, ``model.snapshots``, config) to ``path`` (.npz).

    Parameters
    ----------
    model : Module
        Any model built from tinysparse layers.
    path : str or PathLike
        Destination; ``.npz`` is appended if missing.
    metadata : dict, optional
        JSON-able extra information (e.g. the accuracy it reached), returned by
        :func:`load_metadata`.
    """
    path = model_path(path)
    header = {
        "format": "tinysparse",
        "version": FORMAT_VERSION,
        "architecture": model.spec(),
        "dtype": str(model.dtype),
        "config": getattr(model, "config", None),
        "metadata": metadata or {},
    }
    try:
        header_json = json.dumps(header)
    except TypeError as error:
        raise TypeError(f"metadata: must be JSON-serialisable ({error})") from error
    arrays: dict[str, np.ndarray] = {HEADER_KEY: np.array(header_json)}
    for name, values in model.state_dict().items():
        arrays[f"param/{name}"] = values
    for name, mask in model.named_masks():
        arrays[f"mask/{name}"] = mask.keep
    for label, snapshot in getattr(model, "snapshots", {}).items():
        for name, values in snapshot.items():
            arrays[f"snapshot/{label}/{name}"] = np.asarray(values)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path


def _read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ModelFileError(f"{path}: not a readable .npz file ({error})") from error
    if HEADER_KEY not in arrays:
        raise ModelFileError(f"{path}: not a tinysparse model (no {HEADER_KEY} entry)")
    try:
        header = json.loads(str(arrays.pop(HEADER_KEY)))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: corrupt model header ({error})") from error
    if header.get("format") != "tinysparse" or header.get("version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: unsupported model format {header.get('format')!r} version "
            f"{header.get('version')!r} (this tinysparse reads version {FORMAT_VERSION})"
        )
    return header, arrays


def load(path: str | os.PathLike) -> Module:
    """Load a model saved by :func:`save`; it is callable on a NumPy batch of images.

    Masks are re-attached to their layers, each layer comes back as the kind that was
    saved (a :class:`~tinysparse.nn.SparseLinear` as one), and snapshots are restored to
    ``model.snapshots``.
    """
    header, arrays = _read(path)
    masks = {key[len("mask/"):]: Mask(keep) for key, keep in arrays.items()
             if key.startswith("mask/")}
    try:
        model = build_from_spec(header["architecture"], masks).to(header["dtype"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: the saved architecture cannot be built ({error})") \
            from error
    if header.get("config") is not None:
        model.config = header["config"]
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    try:
        model.load_state_dict(params)
    except (KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: weights do not fit the saved architecture ({error})") \
            from error
    own_masks = dict(model.named_masks())  # the sparse layers were built with theirs
    for name, mask in masks.items():
        if name not in own_masks:
            module_name, _, param_name = name.rpartition(".")
            model.get_submodule(module_name).set_mask(param_name, mask)
    snapshots: dict[str, dict[str, np.ndarray]] = {}
    for key, values in arrays.items():
        if key.startswith("snapshot/"):
            label, _, name = key[len("snapshot/"):].partition("/")
            snapshots.setdefault(label, {})[name] = values
    if snapshots:
        model.snapshots = snapshots
    model.eval()
    return model


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The header of a saved model: architecture, dtype, config and user metadata."""
    header, _ = _read(path)
    return header
