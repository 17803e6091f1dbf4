"""Plain-text tables for the command line and the lessons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(value: Any, precision: int) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{precision}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(
    rows: Sequence[Sequence[Any]] | Sequence[dict[str, Any]],
    headers: Sequence[str] | None = None,
    precision: int = 4,
) -> str:
    """Align ``rows`` under ``headers``; numbers right-aligned, text left-aligned.

    Rows may be sequences (then ``headers`` names the columns) or dicts (then ``headers``
    picks and orders the keys; by default the first row's keys).
    """
    if rows and isinstance(rows[0], dict):
        headers = list(headers or rows[0].keys())
        rows = [[row.get(h) for h in headers] for row in rows]
    headers = list(headers or [])
    cells = [[_cell(v, precision) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) and not isinstance(row[i], bool)
            for row in rows if row[i] is not None)
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(r) for r in cells])
