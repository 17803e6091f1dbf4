"""Every lesson notebook runs top to bottom (in fast mode), is committed without outputs,
and equals its paired percent-format source (``lessons/NN_name.py``, see
``lessons/jupytext.toml``).

``python -m pytest -m full`` also runs every lesson in its default (full) mode, where the
checks behind ``if not FAST:`` run, and records each lesson's wall time (see
``full_mode_times`` in conftest.py). The default run and CI leave those tests out.
"""

import os
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from tinysparse.course.site import (  # noqa: E402  (after the skips: needs nbclient)
    CELL_TIMEOUT,
    execute_notebook,
    save_executed,
)

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("*.ipynb"))


def test_there_are_lessons():
    assert NOTEBOOKS, f"no notebooks found in {LESSONS}"


def _cells(notebook) -> list[tuple[str, str, dict]]:
    """Each cell's type, source and nbgrader marks (the exercises' grading, see
    tinysparse/course/grading.py): all three must survive the round trip."""
    return [(cell.cell_type, cell.source, cell.metadata.get("nbgrader", {}))
            for cell in notebook.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_and_its_python_source_are_in_sync(path):
    jupytext = pytest.importorskip("jupytext")
    source = path.with_suffix(".py")
    assert source.exists(), f"{path.name} has no paired {source.name}: jupytext --sync {path}"
    notebook = nbformat.read(path, as_version=4)
    text = jupytext.read(source, fmt="py:percent")
    assert _cells(text) == _cells(notebook), (
        f"{path.name} and {source.name} differ: edit one, then "
        f"`jupytext --sync lessons/{path.name}` (the newer file wins)")


def test_every_lesson_source_has_a_notebook():
    orphans = [p.name for p in LESSONS.glob("[0-9]*.py") if not p.with_suffix(".ipynb").exists()]
    assert not orphans, f"lesson sources without a notebook: {orphans} (jupytext --sync)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}, cell {index}: clear the outputs before committing "
                f"(jupyter nbconvert --clear-output --inplace {path.name})")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_fast_mode(path):
    """Also draws every figure (as PNG; the course website's SVG files are left out, to
    keep the run short). With ``$TINYSPARSE_EXECUTED_DIR`` set, the executed notebook is
    saved there: CI builds the course website from these (``tinysparse course site
    --executed``), running no lesson twice."""
    notebook = execute_notebook(path, fast=True, timeout=CELL_TIMEOUT["fast"], svg=False)
    if os.environ.get("TINYSPARSE_EXECUTED_DIR"):
        save_executed(notebook, os.environ["TINYSPARSE_EXECUTED_DIR"], path.name)


@pytest.mark.full
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_full_mode(path, full_mode_times):
    """The lesson as a reader runs it (TINYSPARSE_FAST unset): its ``if not FAST:``
    checks of the papers' claims run too. Only with ``-m full``; the time is recorded.
    A cell may train for a long time on 2 cores (``CELL_TIMEOUT["default"]``); figures
    are drawn as PNG, as a reader's Jupyter draws them."""
    start, passed = time.perf_counter(), False
    try:
        execute_notebook(path, fast=False, timeout=CELL_TIMEOUT["default"], svg=False)
        passed = True
    finally:
        full_mode_times(path.stem, time.perf_counter() - start, passed)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_to_the_references_page_finds_its_paper():
    references = LESSONS / "REFERENCES.md"
    anchors = {_anchor(line.lstrip("#")) for line in references.read_text().splitlines()
               if line.startswith("#")}
    linked = {}
    for source in sorted(LESSONS.glob("[0-9]*.py")) + [references]:
        for anchor in re.findall(r"REFERENCES\.md#([\w\-]+)|\]\(#([\w\-]+)\)",
                                 source.read_text()):
            linked.setdefault("".join(anchor), []).append(source.name)
    assert linked, "no lesson links to REFERENCES.md"
    broken = {anchor: files for anchor, files in linked.items() if anchor not in anchors}
    assert not broken, f"links to headings that do not exist: {broken}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_lesson_that_cites_a_paper_links_it(path):
    text = path.with_suffix(".py").read_text()
    if re.search(r"et al\.|[A-Z][a-z]+ & [A-Z][a-z]+", text):
        assert "REFERENCES.md#" in text, f"{path.name} cites papers but links none"
