"""``tinysparse course``: the course kit for teachers.

``course release DIR`` writes the student edition of the lessons (solutions and hidden
tests removed); ``course grade NOTEBOOK`` grades a student's completed lesson notebook,
a score per exercise and in total. Both use nbgrader (tinysparse.course.grading).
``course site OUTPUT`` builds the course website (tinysparse.course.site): the syllabus,
every lesson executed with its figures and tables, the references page, and each figure
as PNG and SVG files for slides.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tinysparse.cli.common import OneLineParser, UsageError, add_output_arguments, emit
from tinysparse.course import LESSONS
from tinysparse.tables import format_table


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "course", help="the course kit: student editions of the lessons, grading, the "
                       "course website")
    actions = parser.add_subparsers(dest="course_command", metavar="ACTION",
                                    parser_class=OneLineParser)
    actions.required = True
    _add_release_parser(actions)
    _add_grade_parser(actions)
    _add_site_parser(actions)


# --- course release -----------------------------------------------------------------------

def _add_release_parser(actions) -> None:
    parser = actions.add_parser(
        "release", help="write the student edition of the lessons into DIR: solutions "
                        "replaced by '# YOUR CODE HERE', hidden tests removed")
    parser.add_argument("output", metavar="DIR", help="a new or empty directory (or one "
                        "holding a student edition written before, which is replaced)")
    parser.add_argument("--lessons", nargs="+", metavar="LESSON", default=None,
                        help="lesson names or numbers (default: all)")
    _add_lessons_dir_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run_release, check=check_release)


def check_release(args: argparse.Namespace) -> None:
    from tinysparse.course import grading

    _check_lessons_dir(args)
    try:
        args.lesson_names = grading._check_lessons(args.lessons, Path(args.lessons_dir))
        grading._check_output(Path(args.output))
    except (OSError, ValueError) as error:
        raise UsageError(str(error).replace("output:", "DIR:", 1)
                         .replace("lessons:", "--lessons:", 1)) from None


def run_release(args: argparse.Namespace) -> int:
    from tinysparse.course import grading

    written = grading.release(args.output, args.lesson_names, lessons_dir=args.lessons_dir)
    result: dict[str, Any] = {"command": "course release", "output": str(args.output),
                              "lessons": args.lesson_names,
                              "notebooks": [str(path) for path in written]}
    text = (f"student edition of {len(written)} lessons written to {args.output}:\n"
            + "\n".join(f"  {path.name}" for path in written))
    emit(args, result, text)
    return 0


# --- course grade -------------------------------------------------------------------------

def _add_grade_parser(actions) -> None:
    parser = actions.add_parser(
        "grade", help="grade a completed lesson notebook: every exercise's checks, hidden "
                      "tests included, in a fresh kernel")
    parser.add_argument("notebook", metavar="NOTEBOOK", help="the student's notebook "
                        "(its file name names the lesson, e.g. 02_magnitude_pruning.ipynb)")
    parser.add_argument("--lesson", default=None, help="the lesson, when the file name "
                        "does not say it (a name or a number)")
    parser.add_argument("--fast", action="store_true", help="grade in fast mode "
                        "(TINYSPARSE_FAST=1: a few epochs, the fast targets)")
    _add_lessons_dir_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run_grade, check=check_grade)


def check_grade(args: argparse.Namespace) -> None:
    from tinysparse.course import grading

    _check_lessons_dir(args)
    if not Path(args.notebook).is_file():
        raise UsageError(f"NOTEBOOK: {args.notebook} is not a file")
    name = args.lesson if args.lesson is not None else Path(args.notebook).stem
    try:
        grading._check_lessons([name], Path(args.lessons_dir))
    except ValueError as error:
        option = "--lesson" if args.lesson is not None else "NOTEBOOK"
        raise UsageError(f"{option}: {str(error).split(': ', 1)[1]}"
                         + ("" if args.lesson else "; name the lesson with --lesson")) from None


def run_grade(args: argparse.Namespace) -> int:
    from tinysparse.course import grading

    previous = os.environ.get("TINYSPARSE_FAST")
    if args.fast:
        os.environ["TINYSPARSE_FAST"] = "1"
    try:
        report = grading.grade(args.notebook, lesson=args.lesson, lessons_dir=args.lessons_dir)
    finally:
        if args.fast:
            _restore("TINYSPARSE_FAST", previous)
    result = {"command": "course grade", "fast": bool(args.fast), **report.to_json()}
    rows = [[e.exercise, f"{e.score:g}", f"{e.max_score:g}", e.error.splitlines()[0][:60]
             if e.error else ""] for e in report.exercises]
    rows.append(["total", f"{report.score:g}", f"{report.max_score:g}", ""])
    text = (f"{args.notebook}: lesson {report.lesson}"
            f"{' (fast mode)' if args.fast else ''}\n\n"
            + format_table(rows, headers=["exercise", "score", "out of", "first error"]))
    emit(args, result, text)
    return 0


# --- course site ---------------------------------------------------------------------------

def _add_site_parser(actions) -> None:
    parser = actions.add_parser(
        "site", help="build the course website: syllabus, executed lessons, references",
        description="Build the course website into OUTPUT (a static site: open "
                    "OUTPUT/index.html, or serve it with python -m http.server -d OUTPUT). "
                    "Without --executed, every lesson runs first in its default mode "
                    "(about 25 minutes on 2 cores). Every figure is also written as "
                    "OUTPUT/figures/<lesson>/figure-K.png and .svg.")
    parser.add_argument("output", metavar="OUTPUT",
                        help="the site's folder: new, empty, or a site built before "
                             "(replaced once the new one is complete)")
    parser.add_argument("--executed", metavar="DIR", default=None,
                        help="take the executed lesson notebooks from DIR (e.g. the fast "
                             "tests' TINYSPARSE_EXECUTED_DIR) instead of running the lessons")
    _add_lessons_dir_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run_site, check=check_site)


def check_site(args: argparse.Namespace) -> None:
    try:
        from tinysparse.course import site
    except ImportError as error:
        raise UsageError(f"{error.name} is not installed: pip install -e \".[course]\"") \
            from None
    try:
        site.check_output(args.output, name="OUTPUT")
        lessons = site.check_lessons(args.lessons_dir, name="--lessons-dir")
        if args.executed is not None:
            site.check_executed(args.executed, lessons, name="--executed")
    except site.SiteError as error:
        raise UsageError(str(error)) from None


def run_site(args: argparse.Namespace) -> int:
    from tinysparse.course.site import FIGURE_FONT_SIZE, SiteError, build_site

    def progress(lesson: str, seconds: float) -> None:
        if not (args.quiet or args.json):
            print(f"  executed {lesson} in its default mode: {seconds:.0f} s", file=sys.stderr)

    try:
        built = build_site(args.output, executed=args.executed, lessons=args.lessons_dir,
                           on_lesson=progress)
    except SiteError as error:
        print(f"tinysparse course site: error: {error}", file=sys.stderr)
        return 1
    result = {"command": "course site", **built.to_dict(),
              "figure_font_size": FIGURE_FONT_SIZE}
    formats = " and ".join(f.upper() for f in built.figure_formats) or "files"
    text = (f"built {len(built.pages)} pages ({built.mode} mode, executed "
            f"{'from ' + str(built.executed_from) if built.executed_from else 'now'}) and "
            f"{built.figures} figures as {formats} in {built.output}/figures "
            f"({built.seconds:.0f} s)\nopen {built.output}/index.html, or: python -m "
            f"http.server -d {built.output}")
    emit(args, result, text)
    return 0


# --- shared -------------------------------------------------------------------------------

def _add_lessons_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lessons-dir", default=str(LESSONS), metavar="DIR",
                        help="the instructor edition: the lesson notebooks with their "
                             "solutions (default: this repository's lessons/)")


def _check_lessons_dir(args: argparse.Namespace) -> None:
    if not Path(args.lessons_dir).is_dir():
        raise UsageError(f"--lessons-dir: {args.lessons_dir} is not a directory")


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
