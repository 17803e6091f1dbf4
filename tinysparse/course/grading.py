"""Student editions and grading of the lessons, with nbgrader.

A lesson marks its exercises the nbgrader way (see DEVELOPERS.md, "Exercises and
grading"): the cell a student fills in is a *solution* cell whose answer sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION``; the cell after it is a *grade* cell worth
``points``, with checks the student sees and, between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``, checks they do not. Both are cell metadata (``nbgrader={...}``
in the header of the percent-format source), so they survive a jupytext round trip.

nbgrader works on a *course directory* (``source/``, ``release/``, ``submitted/``,
``autograded/`` and a gradebook database). :func:`release` and :func:`grade` build one in
a temporary folder for each call, so a teacher needs neither the directory nor a server:

* ``release`` runs ``nbgrader generate_assignment``: solutions become
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` and hidden tests disappear;
* ``grade`` runs ``nbgrader autograde`` on a completed notebook: the grade cells are
  put back as the instructor wrote them (hidden tests included), the notebook runs top
  to bottom in a fresh kernel, and a grade cell scores its points when it raises no error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import nbformat

from tinysparse.course import LESSONS
from tinysparse.course.folders import lesson_notebooks, written_whole

#: seconds a cell may run while grading (a lesson in default mode trains for minutes)
CELL_TIMEOUT = 3 * 3600

#: the one student nbgrader's course directory holds while a notebook is graded
STUDENT = "student"


@dataclasses.dataclass(frozen=True)
class ExerciseScore:
    """Points scored on one graded cell (an exercise's checks or a design task's)."""

    exercise: str
    score: float
    max_score: float
    #: the error the cell raised (``"AssertionError: ..."``), empty when it passed
    error: str = ""


@dataclasses.dataclass(frozen=True)
class GradeReport:
    """What :func:`grade` found: the lesson, a score per exercise, the total."""

    lesson: str
    notebook: str
    exercises: tuple[ExerciseScore, ...]

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> float:
        return sum(e.max_score for e in self.exercises)

    def to_json(self) -> dict:
        return {"lesson": self.lesson, "notebook": self.notebook,
                "exercises": [dataclasses.asdict(e) for e in self.exercises],
                "score": self.score, "max_score": self.max_score}


def lesson_names(lessons_dir: Path = LESSONS) -> list[str]:
    """The lessons in ``lessons_dir``, by number: ``["00_autograd", ...]``."""
    return [path.stem for path in lesson_notebooks(lessons_dir)]


def graded_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """``(grade_id, points)`` of every graded cell of ``notebook``, in order."""
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cells.append((meta["grade_id"], float(meta["points"])))
    return cells


def release(output: str | os.PathLike, lessons: Iterable[str] | None = None,
            lessons_dir: str | os.PathLike = LESSONS) -> list[Path]:
    """Write the student edition of ``lessons`` (all by default) into ``output``.

    Each notebook keeps its text, its visible checks and its cell metadata; solutions are
    replaced by ``# YOUR CODE HERE`` and hidden tests are removed. The syllabus and the
    references page are copied beside them. ``output`` is written whole or not at all
    (filled beside it, then renamed into place); an existing ``output`` must be
    empty or a student edition written before.

    Returns
    -------
    list of Path
        The student notebooks written.
    """
    lessons_dir = Path(lessons_dir)
    names = _check_lessons(lessons, lessons_dir)
    output = _check_output(Path(output))
    with tempfile.TemporaryDirectory(prefix="tinysparse-release-") as work, \
            _scripts_on_path(), written_whole(output) as staged:
        course = _course_directory(Path(work), names, lessons_dir)
        for name in names:
            _run(course.generate_assignment(name, force=True, create=True), "release", name)
            student = Path(work) / "course" / "release" / name / f"{name}.ipynb"
            _check_released(student, lessons_dir / f"{name}.ipynb")
            shutil.copy2(student, staged / f"{name}.ipynb")
        for page in ("README.md", "REFERENCES.md"):
            if (lessons_dir / page).exists():
                shutil.copy2(lessons_dir / page, staged / page)
        (staged / _EDITION_MARK).write_text("tinysparse student edition\n")
    return [output / f"{name}.ipynb" for name in names]


def grade(notebook: str | os.PathLike, lesson: str | None = None,
          lessons_dir: str | os.PathLike = LESSONS,
          timeout: int = CELL_TIMEOUT) -> GradeReport:
    """Grade a student's completed ``notebook`` against its lesson's instructor edition.

    The lesson is ``notebook``'s file name (``02_magnitude_pruning.ipynb``) unless
    ``lesson`` names it. The notebook runs top to bottom in a fresh kernel, with this
    process's environment (``TINYSPARSE_FAST=1`` grades the fast mode), after nbgrader has
    put every grade cell back as the instructor wrote it, hidden tests included.

    Returns
    -------
    GradeReport
        The score of every graded cell, in the notebook's order, and the total.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook: {notebook} is not a file")
    lessons_dir = Path(lessons_dir)
    name = lesson if lesson is not None else notebook.stem
    (name,) = _check_lessons([name], lessons_dir, argument="lesson" if lesson else "notebook")
    try:
        submitted = nbformat.read(notebook, as_version=4)
    except Exception as error:  # nbformat raises several kinds for a file that is not JSON
        raise ValueError(f"notebook: {notebook} is not a Jupyter notebook ({error})") from None
    instructor = nbformat.read(lessons_dir / f"{name}.ipynb", as_version=4)
    expected = [grade_id for grade_id, _ in graded_cells(instructor)]
    missing = [g for g in expected if g not in {g for g, _ in graded_cells(submitted)}]
    if missing:
        raise ValueError(f"notebook: {notebook} lacks the graded cells {missing} of lesson "
                         f"{name}: grade the student edition of that lesson, completed")
    with tempfile.TemporaryDirectory(prefix="tinysparse-grade-") as work, _scripts_on_path():
        course = _course_directory(Path(work), [name], lessons_dir, timeout=timeout)
        _run(course.generate_assignment(name, force=True, create=True), "grade", name)
        submission = Path(work) / "course" / "submitted" / STUDENT / name
        submission.mkdir(parents=True)
        nbformat.write(submitted, submission / f"{name}.ipynb")
        _run(course.autograde(name, STUDENT, force=True, create=True), "grade", name)
        scores = _scores(Path(work) / "course", name)
        graded = nbformat.read(Path(work) / "course" / "autograded" / STUDENT / name
                               / f"{name}.ipynb", as_version=4)
    errors = _cell_errors(graded)
    ordered = tuple(dataclasses.replace(scores[g], error=errors.get(g, "")) for g in expected)
    return GradeReport(lesson=name, notebook=str(notebook), exercises=ordered)


# --- nbgrader's course directory --------------------------------------------------------

_EDITION_MARK = ".tinysparse-student-edition"


def _course_directory(work: Path, names: list[str], lessons_dir: Path,
                      timeout: int = CELL_TIMEOUT):
    """An nbgrader API over a fresh course directory whose ``source/`` holds ``names``."""
    from nbgrader.apps import NbGraderAPI  # heavy (Jupyter server); only when grading
    from traitlets.config import Config

    root = work / "course"
    for name in names:
        (root / "source" / name).mkdir(parents=True)
        shutil.copy2(lessons_dir / f"{name}.ipynb", root / "source" / name / f"{name}.ipynb")
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    config.CourseDirectory.db_assignments = [{"name": name} for name in names]
    config.CourseDirectory.db_students = [{"id": STUDENT}]
    config.Execute.timeout = timeout
    config.Execute.interrupt_on_timeout = True
    # the course's copies are ours; nbgrader would otherwise make them read-only
    config.BaseConverter.permissions = 644  # nbgrader reads the digits as octal
    return NbGraderAPI(config=config)


@contextlib.contextmanager
def _scripts_on_path() -> Iterator[None]:
    """nbgrader runs its database migrations with the ``alembic`` script, found on PATH:
    put this Python's scripts folder first, as an activated virtual environment would.
    (Its gradebook also warns about SQLAlchemy sessions it manages itself: not ours.)"""
    previous = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), previous])
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not in session.*")
            yield
    finally:
        os.environ["PATH"] = previous


def _run(result: dict, step: str, name: str) -> None:
    if not result.get("success"):
        details = "\n".join(part for part in (result.get("log"), result.get("error")) if part)
        raise RuntimeError(f"nbgrader failed to {step} lesson {name}:\n{details}")


def _scores(root: Path, name: str) -> dict[str, ExerciseScore]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(name, name, STUDENT)
        return {g.name: ExerciseScore(exercise=g.name, score=float(g.score),
                                      max_score=float(g.max_score))
                for g in submission.grades}


def _cell_errors(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """``grade_id -> "Name: message"`` of every graded cell that raised."""
    errors = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        for output in cell.get("outputs", []):
            if grade_id and output.get("output_type") == "error":
                errors[grade_id] = f"{output['ename']}: {output['evalue']}"[:500]
    return errors


def _check_released(student: Path, instructor: Path) -> None:
    """Refuse an edition that still holds a solution or a hidden test."""
    text = student.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        if marker in text:
            raise RuntimeError(f"{student.name}: the student edition still holds "
                               f"'### {marker}' (see {instructor})")


# --- arguments ---------------------------------------------------------------------------

def _check_lessons(lessons: Iterable[str] | None, lessons_dir: Path,
                   argument: str = "lessons") -> list[str]:
    available = lesson_names(lessons_dir)
    if not available:
        raise FileNotFoundError(f"lessons_dir: no lesson notebooks in {lessons_dir}")
    if lessons is None:
        return available
    if isinstance(lessons, str):
        raise TypeError(f"{argument}: expected a list of lesson names, got the string "
                        f"{lessons!r}")
    names = []
    for lesson in lessons:
        matches = [n for n in available if n == lesson or n[:2] == str(lesson).zfill(2)]
        if len(matches) != 1:
            raise ValueError(f"{argument}: {lesson!r} is not a lesson; expected one of "
                             f"{available} (or its number)")
        names.append(matches[0])
    return names


def _check_output(output: Path) -> Path:
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"output: {output} exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / _EDITION_MARK).exists():
        raise FileExistsError(f"output: {output} is not empty and holds no student edition "
                              "written before; choose a new or empty directory")
    if not output.parent.exists():
        raise FileNotFoundError(f"output: the folder {output.parent} does not exist")
    return output
