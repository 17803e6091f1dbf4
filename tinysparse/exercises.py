"""Helpers for the lessons' self-checking exercises."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def switched_off(owner: Any, *names: str) -> Iterator[None]:
    """While the block runs, ``owner.<name>`` raises for each name (``owner`` a module or a
    class): an exercise's checks then test the student's code, not the library function
    that would answer the exercise. Everything is put back afterwards, even after an error.
    """
    saved = {name: owner.__dict__[name] for name in names}  # as stored: staticmethods too

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"write it yourself: {', '.join(names)} are switched off here")

    for name in names:
        setattr(owner, name, refuse)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(owner, name, value)
