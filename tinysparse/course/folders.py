"""What the course commands share about folders: which files of ``lessons/`` are lessons,
and how a folder they write (a student edition, a site) replaces the one before, whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: a lesson notebook: two digits, an underscore, a name (``02_magnitude_pruning.ipynb``)
LESSON_PATTERN = "[0-9][0-9]_*.ipynb"


def lesson_notebooks(lessons: str | os.PathLike) -> list[Path]:
    """The lesson notebooks ``NN_name.ipynb`` of ``lessons``, in order."""
    return sorted(Path(lessons).glob(LESSON_PATTERN))


@contextlib.contextmanager
def written_whole(output: Path) -> Iterator[Path]:
    """A new folder beside ``output`` for the block to fill; when the block ends without an
    error it replaces ``output`` (absent, empty, or written before) by one rename, and the
    old folder is removed after. On an error it is removed and ``output`` is untouched."""
    output.resolve().parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".building",
                                     dir=output.resolve().parent))
    try:
        yield building
        old = None
        if output.exists():
            old = building.with_name(building.name.replace(".building", ".old"))
            os.rename(output, old)
        try:
            os.rename(building, output)
        except OSError:
            if old is not None:
                os.rename(old, output)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
