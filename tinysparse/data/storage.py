"""Where datasets are cached, and how files are written so that none is ever half-written."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; leftovers of killed runs are then not removed
    fcntl = None


class DataError(RuntimeError):
    """A dataset is missing, corrupt or cannot be downloaded; the message says what to do."""


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``root``, else ``$TINYSPARSE_DATA``, else ``~/.cache/tinysparse``."""
    if root is None:
        root = os.environ.get("TINYSPARSE_DATA") or Path.home() / ".cache" / "tinysparse"
    return Path(root).expanduser()


def check_cache_writable(path: str | os.PathLike) -> Path:
    """Make the folder of the cache file ``path`` and check that a file can be written in it
    (before a download); raise :class:`DataError` (:func:`unwritable_cache_error`) if not."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try_writing_in(path.parent, path.name)
    except OSError as error:
        raise unwritable_cache_error(path, error) from None
    return path


def try_writing_in(folder: Path, name: str) -> None:
    """Create and remove a temporary file beside ``name`` in ``folder``: the one sure test
    that a file can be written there (permissions, read-only mounts, immutable folders,
    full disks). Raises the OSError that writing would raise."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".check")
    os.close(fd)
    os.unlink(probe)


def unwritable_cache_error(path: str | os.PathLike, error: OSError | None = None) -> DataError:
    """The error for a cache file that cannot be written at ``path`` (``error`` is why): it
    names the file, what is in the way (a file where a folder should be, or a folder that
    cannot be written to) and what to do."""
    path = Path(path)
    file = file_in_the_way(path)
    if file is not None:
        problem = f"{file} is a file, where a folder should be"
        fix = "move that file away"
    else:
        folder = _nearest_existing(path.parent)
        reason = (error.strerror or str(error)) if error is not None else "not writable"
        problem = f"cannot write in {folder} ({reason})"
        fix = f"make {folder} writable"
    return DataError(
        f"{path}: cannot write this file of the data cache: {problem}. Either {fix}, or "
        f"point $TINYSPARSE_DATA (or the root argument) at a folder you can write to."
    )


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The file standing where a folder above ``path`` should be (``$TINYSPARSE_DATA`` set
    to a file, say), or ``None``."""
    folder = _nearest_existing(Path(path).parent)
    return None if folder.is_dir() else folder


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; move it into place only on success.

    If the block raises, the temporary file is deleted and ``destination`` is untouched.
    Also:

    * **Modes.** A new file gets the mode ``open()`` would give it (``0o666`` less the
      umask: the kernel applies the umask when it creates the file, so the process-wide
      umask is never read or changed); a file that replaces another keeps that file's
      mode, so a shared cache stays readable by everyone who could read it before.
    * **SIGTERM** (``kill``, a job scheduler, a container stopping) cleans up like Ctrl-C
      while the block runs in the main thread; see :func:`sigterm_cleans_up`.
    * **Leftovers** of the same destination, temporary files that no running process
      holds (a run killed by SIGKILL or a power cut), are removed.
    """
    destination = Path(destination)
    with sigterm_cleans_up():
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            temporary, lock = _create_temporary(destination)
        except OSError as error:  # name the destination, not the hidden temporary file
            file = file_in_the_way(destination)
            problem = (f"{file} is a file, where a folder should be" if file is not None
                       else f"cannot write in {destination.parent} ({error.strerror or error})")
            raise OSError(error.errno, f"{destination}: {problem}") from None
        try:
            _remove_leftovers(destination, keep=temporary)
            yield temporary
            _keep_mode(destination, temporary)
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)
            if lock is not None:
                os.close(lock)


def _temporary_name_pattern(destination: Path) -> re.Pattern:
    """``.<name>.<8 characters>.part``: the names :func:`atomic_path` gives (and
    ``tempfile.mkstemp`` gave before, so the leftovers of older versions are found too)."""
    return re.compile(rf"\.{re.escape(destination.name)}\.[a-z0-9_]{{8}}\.part")


def _create_temporary(destination: Path) -> tuple[Path, int | None]:
    """Create an empty temporary file beside ``destination``; return it and a descriptor
    holding an exclusive ``flock`` on it: while that stays open, other processes know the
    file is being written and is no leftover (``None`` where there are no locks).

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
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        if fcntl is None:
            os.close(fd)  # Windows cannot replace a file that is still open
            return temporary, None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another save took it for a leftover and removes it
            os.close(fd)
            continue
        except OSError:
            pass  # a file system without locks: then no one can remove it either
        if _names(temporary, fd):  # not removed as a leftover before we locked it
            return temporary, fd
        os.close(fd)
    raise FileExistsError(f"{destination}: found no free temporary name beside it")


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def _remove_leftovers(destination: Path, keep: Path) -> None:
    """Remove the temporary files of ``destination`` that no process holds locked: left by
    runs that were killed before they could clean up. Best effort: what cannot be checked
    or removed stays."""
    if fcntl is None:
        return
    pattern = _temporary_name_pattern(destination)
    with contextlib.suppress(OSError), os.scandir(destination.parent) as entries:
        leftovers = [Path(entry.path) for entry in entries
                     if pattern.fullmatch(entry.name) and entry.name != keep.name]
    for path in leftovers:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a save writes it
            if _names(path, fd):
                path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)


def _keep_mode(destination: Path, temporary: Path) -> None:
    """Give ``temporary`` the mode of the file it is about to replace, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(destination).st_mode)
    except FileNotFoundError:
        return
    with contextlib.suppress(OSError):  # a file system without Unix modes
        os.chmod(temporary, mode)


class _Terminated(SystemExit):
    """Raised by the SIGTERM handler of :func:`sigterm_cleans_up` to unwind the block."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(128 + signum)


@contextlib.contextmanager
def sigterm_cleans_up() -> Iterator[None]:
    """While the block runs, SIGTERM unwinds it like Ctrl-C (``finally`` clauses and
    ``with`` exits run, so temporary files are removed); then the process ends by SIGTERM,
    as it would have without this.

    Only when SIGTERM would end the process at once (its handler is the default,
    ``SIG_DFL``), and only in the main thread (the only one that may set signal handlers;
    in other threads the block runs unchanged). A handler of your own, or ``SIG_IGN``,
    stays in place: it already decides what SIGTERM does. The previous handler is put back
    when the block ends.

    The signal is delivered again (rather than ending with ``SystemExit(143)``) so that
    the process ends exactly as a SIGTERM at any other moment ends it: a parent sees it
    killed by SIGTERM (``returncode == -15``), and no code runs that would only run when
    the signal came mid-save. If the signal does not end the process (PID 1 in a
    container ignores it), the ``SystemExit`` goes on: exit status 143 = 128 + SIGTERM.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_writable(destination: str | os.PathLike) -> Path:
    """Check that a file can be written at ``destination`` (before hours of work that end
    in writing it): create and remove a temporary file in the directory it would go to, or
    in its nearest existing ancestor. Raises OSError naming ``destination``."""
    destination = Path(destination)
    if destination.is_dir():
        raise IsADirectoryError(f"{destination}: is a directory, not a file name")
    existing = _nearest_existing(destination.parent)
    if not existing.is_dir():
        raise NotADirectoryError(f"{destination}: {existing} is a file, where a folder "
                                 f"should be")
    try:
        try_writing_in(existing, destination.name)
    except OSError as error:
        raise OSError(error.errno, f"{destination}: cannot write in {existing} "
                                   f"({error.strerror or error})") from None
    return destination
