"""The course kit's student editions and grading (tinysparse.course.grading, nbgrader).

For every lesson with graded exercises: the student edition holds no solution and no
hidden test; grading the instructor edition gives full marks; grading the untouched student
edition gives zero on every exercise; removing one answer loses exactly that exercise's
points. Grading runs the lesson in fast mode (TINYSPARSE_FAST=1), as CI does.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")

from tinysparse.course import LESSONS, grading  # noqa: E402

GRADED = [name for name in grading.lesson_names()
          if grading.graded_cells(nbformat.read(LESSONS / f"{name}.ipynb", as_version=4))]
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


@pytest.fixture(autouse=True)
def _fast_mode(monkeypatch):
    monkeypatch.setenv("TINYSPARSE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def student_edition(tmp_path_factory):
    """The student edition of every graded lesson, written once for the module."""
    output = tmp_path_factory.mktemp("edition") / "student"
    grading.release(output, GRADED)
    return output


def _solution_regions(source: str, begin: str, end: str) -> list[str]:
    return re.findall(rf"### {begin}\n(.*?)### {end}", source, flags=re.S)


def _points(notebook) -> dict[str, float]:
    return dict(grading.graded_cells(notebook))


def test_every_lesson_has_graded_exercises_and_a_design_task():
    assert GRADED == grading.lesson_names(), "a lesson without graded exercises"
    for name in GRADED:
        ids = _points(nbformat.read(LESSONS / f"{name}.ipynb", as_version=4))
        assert "design-task-check" in ids, f"{name}: no design task"
        assert any(i.startswith("exercise-") for i in ids), f"{name}: no graded exercise"


@pytest.mark.parametrize("name", GRADED)
def test_every_solution_cell_is_followed_by_its_graded_check(name):
    notebook = nbformat.read(LESSONS / f"{name}.ipynb", as_version=4)
    meta = [cell.metadata.get("nbgrader", {}) for cell in notebook.cells]
    solutions = [m["grade_id"] for m in meta if m.get("solution")]
    checks = [m["grade_id"] for m in meta if m.get("grade")]
    assert [f"{s}-check" for s in solutions] == checks, (solutions, checks)
    for cell, m in zip(notebook.cells, meta):
        if m.get("solution"):
            assert "### BEGIN SOLUTION" in cell.source, (name, m["grade_id"])
        elif cell.cell_type == "markdown" or not m:
            assert not any(marker in cell.source for marker in MARKERS), (
                f"{name}: a marker outside an exercise's cells (nbgrader reads every cell)")


@pytest.mark.parametrize("name", GRADED)
def test_no_graded_cell_ends_in_a_value(name):
    """nbgrader reads a graded cell's displayed value as partial credit (more than the
    cell's points stops the grading): a check ends in an assignment, an assert, a print or
    a call to a function of the cell that returns nothing."""
    notebook = nbformat.read(LESSONS / f"{name}.ipynb", as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            tree = ast.parse(cell.source)
            returns_a_value = {node.name for node in ast.walk(tree)
                               if isinstance(node, ast.FunctionDef) and any(
                                   isinstance(r, ast.Return) and r.value is not None
                                   for r in ast.walk(node))}
            last = tree.body[-1]
            called = (getattr(last.value.func, "id", None)
                      if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                      else None)
            shows_a_value = isinstance(last, ast.Expr) and (
                not isinstance(last.value, ast.Call) or called in returns_a_value)
            assert not shows_a_value, f"{name}, {meta['grade_id']}: ends in an expression"


@pytest.mark.parametrize("name", GRADED)
def test_release_removes_every_solution_and_hidden_test(name, student_edition):
    instructor = nbformat.read(LESSONS / f"{name}.ipynb", as_version=4)
    instructor_text = "\n".join(cell.source for cell in instructor.cells)
    student = nbformat.read(student_edition / f"{name}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    student_lines = {line.strip() for line in text.splitlines()}
    for marker in MARKERS:
        assert marker not in text, marker
    for begin, end in (("BEGIN SOLUTION", "END SOLUTION"),
                       ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")):
        for region in _solution_regions(instructor_text, begin, end):
            lines = [line.strip() for line in region.splitlines() if line.strip()]
            assert lines, f"{name}: an empty {begin} region"
            assert not all(line in student_lines for line in lines), (
                f"{name}: the student edition still holds the {begin} region {lines[:3]}")
    for cell in student.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            assert "# YOUR CODE HERE" in cell.source
    assert (student_edition / "README.md").exists()  # the syllabus travels with it


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED)
def test_instructor_edition_gets_full_marks(name):
    report = grading.grade(LESSONS / f"{name}.ipynb")
    lost = [(e.exercise, e.error) for e in report.exercises if e.score != e.max_score]
    assert not lost, lost
    assert report.score == report.max_score > 0


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED)
def test_untouched_student_edition_gets_zero_on_every_exercise(name, student_edition):
    report = grading.grade(student_edition / f"{name}.ipynb")
    scored = [(e.exercise, e.score) for e in report.exercises if e.score != 0]
    assert not scored, scored
    assert all(e.error for e in report.exercises)


def _remove_answer(notebook, grade_id: str):
    """``notebook`` with the answer of ``grade_id`` replaced by the student edition's stub."""
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION",
                                 r"\1# YOUR CODE HERE\n\1raise NotImplementedError()",
                                 cell.source, flags=re.S)
            return notebook
    raise AssertionError(f"no cell {grade_id}")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("name", GRADED)
def test_one_removed_answer_loses_exactly_that_exercise(name, tmp_path):
    """The first exercise's answer removed: its points go, every other exercise keeps its
    full marks (exercises do not lean on each other's answers)."""
    instructor = nbformat.read(LESSONS / f"{name}.ipynb", as_version=4)
    target = next(cell.metadata.nbgrader["grade_id"] for cell in instructor.cells
                  if cell.metadata.get("nbgrader", {}).get("solution"))
    completed = tmp_path / f"{name}.ipynb"
    nbformat.write(_remove_answer(instructor, target), completed)
    report = grading.grade(completed)
    scores = {e.exercise: (e.score, e.max_score) for e in report.exercises}
    assert scores.pop(f"{target}-check")[0] == 0
    assert all(score == most for score, most in scores.values()), scores


WRONG_ANSWERS = {
    # passes the visible check on the lesson's pruned model (every layer has a mask) and
    # fails the hidden one: an unpruned model's weights count too
    ("02_magnitude_pruning", "exercise-2"): (
        "    masks = dict(model.named_masks())\n"
        "    return (sum(m.kept for m in masks.values()), sum(m.size for m in masks.values()))\n"),
    # answers with the library function the exercise asks the student to write
    ("02_magnitude_pruning", "exercise-1"): (
        "    scores = {n: np.abs(w) for n, w in weights.items()}\n"
        "    masks = ts.prune.select_masks(scores, sparsity, scope='global')\n"
        "    return ts.prune.threshold(scores, masks), {n: m.keep for n, m in masks.items()}\n"),
}


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize(("name", "grade_id"), list(WRONG_ANSWERS),
                         ids=[f"{n[:2]}-{g}" for n, g in WRONG_ANSWERS])
def test_a_wrong_answer_that_passes_the_visible_checks_loses_its_points(name, grade_id,
                                                                         tmp_path):
    instructor = nbformat.read(LESSONS / f"{name}.ipynb", as_version=4)
    for cell in instructor.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION\n?",
                                 WRONG_ANSWERS[name, grade_id], cell.source, flags=re.S)
    completed = tmp_path / f"{name}.ipynb"
    nbformat.write(instructor, completed)
    report = grading.grade(completed)
    scores = {e.exercise: e for e in report.exercises}
    assert scores.pop(f"{grade_id}-check").score == 0
    assert all(e.score == e.max_score for e in scores.values()), scores


# --- arguments and the command line --------------------------------------------------------

def test_release_refuses_a_directory_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="output: .* not empty"):
        grading.release(tmp_path, GRADED[:1])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_release_replaces_an_edition_written_before(tmp_path):
    output = tmp_path / "edition"
    grading.release(output, GRADED[:1])
    (output / f"{GRADED[0]}.ipynb").write_text("stale")
    written = grading.release(output, GRADED[:1])
    assert nbformat.read(written[0], as_version=4).cells
    assert not list(tmp_path.glob(".edition.*")), "temporary folders left behind"


def test_unknown_lessons_and_bad_notebooks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lessons: '99' is not a lesson"):
        grading.release(tmp_path / "out", ["99"])
    with pytest.raises(TypeError, match="lessons: expected a list"):
        grading.release(tmp_path / "out", "02")
    with pytest.raises(FileNotFoundError, match="notebook: .* is not a file"):
        grading.grade(tmp_path / "missing.ipynb")
    not_json = tmp_path / f"{GRADED[0]}.ipynb"
    not_json.write_text("not a notebook")
    with pytest.raises(ValueError, match="notebook: .* is not a Jupyter notebook"):
        grading.grade(not_json)
    other = tmp_path / "mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), other)
    with pytest.raises(ValueError, match="notebook: 'mine' is not a lesson"):
        grading.grade(other)
    with pytest.raises(ValueError, match="lacks the graded cells"):
        grading.grade(other, lesson=GRADED[0])
    assert not (tmp_path / "out").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from tinysparse.cli import main; "
                           "raise SystemExit(main())", *args],
                          capture_output=True, text=True, timeout=900)


def test_cli_release_and_its_json(tmp_path):
    done = _cli("course", "release", str(tmp_path / "ed"), "--lessons", GRADED[0][:2], "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["lessons"] == [GRADED[0]]
    assert [Path(p).name for p in result["notebooks"]] == [f"{GRADED[0]}.ipynb"]
    assert Path(result["notebooks"][0]).exists()


def test_cli_errors_name_the_argument(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for args, expected in [
        (("course", "release", str(tmp_path / "full")), "DIR: "),
        (("course", "release", str(tmp_path / "ed"), "--lessons", "42"), "--lessons: '42'"),
        (("course", "release", str(tmp_path / "ed"), "--lessons-dir", str(tmp_path / "no")),
         "--lessons-dir: "),
        (("course", "grade", str(tmp_path / "missing.ipynb")), "NOTEBOOK: "),
        (("course", "grade", str(tmp_path / "full" / "x")), "NOTEBOOK: "),
    ]:
        done = _cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"tinysparse course: error: {expected}" in done.stderr, (args, done.stderr)


@pytest.mark.notebook
@pytest.mark.slow
def test_cli_grade_prints_a_score_per_exercise(tmp_path, student_edition):
    done = _cli("course", "grade", str(student_edition / f"{GRADED[0]}.ipynb"), "--fast",
                "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = _points(nbformat.read(LESSONS / f"{GRADED[0]}.ipynb", as_version=4))
    assert [e["exercise"] for e in result["exercises"]] == list(expected)
    assert [e["max_score"] for e in result["exercises"]] == list(expected.values())
    assert result["score"] == 0 and result["max_score"] == sum(expected.values())
    assert result["fast"] is True and result["lesson"] == GRADED[0]
