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


def check_writable(destination: str | os.PathLike) -> Path:
    """Check that a file can be written at ``destination`` (before hours of work that end
    in writing it): create and remove a temporary file in the directory it would go to, or
    in its nearest existing ancestor. Raises OSError naming ``destination``."""
    destination = Path(destination)
    if destination.is_dir():
        raise IsADirectoryError(f"{destination}: is a directory, not a file name")
    existing = destination.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{destination}: {existing} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=f".{destination.name}.",
                                     suffix=".check")
    except OSError as error:
        raise OSError(f"{destination}: cannot write in {existing} "
                      f"({error.strerror or error})") from None
    os.close(fd)
    os.unlink(probe)
    return destination
