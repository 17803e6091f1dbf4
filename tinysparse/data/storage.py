"""Where datasets are cached, and how files are written so that none is ever half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class DataError(RuntimeError):
    """A dataset is missing, corrupt or cannot be downloaded; the message says what to do."""


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``root``, else ``$TINYSPARSE_DATA``, else ``~/.cache/tinysparse``."""
    if root is None:
        root = os.environ.get("TINYSPARSE_DATA") or Path.home() / ".cache" / "tinysparse"
    return Path(root).expanduser()


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; move it into place only on success.

    If the block raises, the temporary file is deleted and ``destination`` is untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    os.close(fd)
    temporary = Path(temporary)
    try:
        yield temporary
        os.replace(temporary, destination)
    finally:
        if temporary.exists():
            temporary.unlink()
