"""Helpers shared by the lesson generators: markdown and code cells, and writing a notebook.

The notebooks are the deliverables; the ``build_*.py`` scripts are how they are written.
Edit the cells there and run ``python lessons/_build/build_NN.py`` to rewrite a notebook
(without outputs). Cell ids are fixed so that regenerating gives a clean diff.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LESSONS = Path(__file__).resolve().parent.parent


def md(text: str) -> tuple[str, str]:
    return "markdown", text.strip("\n")


def code(text: str) -> tuple[str, str]:
    return "code", text.strip("\n")


def write_notebook(name: str, cells: list[tuple[str, str]]) -> Path:
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    stem = name.split("_")[0]
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
        cell.id = f"l{stem}-{index:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    path = LESSONS / name
    nbformat.write(notebook, path)
    return path
