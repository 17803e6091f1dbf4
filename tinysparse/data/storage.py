"""Where datasets are cached, and how files are written so that none is ever half-written."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
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
    A new file gets the mode ``open()`` would give it (``0o666`` less the umask: the kernel
    applies the umask when it creates the file, so the process-wide umask is never read or
    changed); a file that replaces another keeps that file's mode, so a shared cache stays
    readable by everyone who could read it before.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(destination)
    try:
        yield temporary
        _keep_mode(destination, temporary)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _create_temporary(destination: Path) -> Path:
    """Create an empty temporary file ``.<name>.<8 characters>.part`` beside ``destination``.

    Its mode: ``0o666`` for a new file, or the mode of the file it replaces plus owner
    read/write (to write it; :func:`_keep_mode` sets the exact mode at the end); the umask
    applies to either, so it is never readable by more people than the final file.
    """
    try:
        mode = stat.S_IMODE(os.stat(destination).st_mode) & 0o777 | 0o600
    except FileNotFoundError:
        mode = 0o666
    for _ in range(100):
        temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        except FileExistsError:
            continue
        return temporary
    raise FileExistsError(f"{destination}: found no free temporary name beside it")


def _keep_mode(destination: Path, temporary: Path) -> None:
    """Give ``temporary`` the mode of the file it is about to replace, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(destination).st_mode)
    except FileNotFoundError:
        return
    with contextlib.suppress(OSError):  # a file system without Unix modes
        os.chmod(temporary, mode)


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
