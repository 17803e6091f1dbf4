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


def _execute(path: Path, timeout: int) -> None:
    """Run the notebook top to bottom in a fresh kernel (``timeout`` seconds per cell),
    in the lessons' folder, with this process's environment."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(LESSONS)}},
    )
    client.execute(env=dict(os.environ))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_fast_mode(path, monkeypatch):
    monkeypatch.setenv("TINYSPARSE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _execute(path, timeout=600)


#: a cell of a lesson in full mode may train for a long time on 2 cores
FULL_MODE_CELL_TIMEOUT = 3 * 3600


@pytest.mark.full
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_full_mode(path, monkeypatch, full_mode_times):
    """The lesson as a reader runs it (TINYSPARSE_FAST unset): its ``if not FAST:``
    checks of the papers' claims run too. Only with ``-m full``; the time is recorded."""
    monkeypatch.delenv("TINYSPARSE_FAST", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    start, passed = time.perf_counter(), False
    try:
        _execute(path, timeout=FULL_MODE_CELL_TIMEOUT)
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
