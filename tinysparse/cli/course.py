"""``tinysparse course``: tools for teaching the course.

``tinysparse course site OUTPUT`` builds the course website (tinysparse.course.site): the
syllabus, every lesson executed with its figures and tables, the references page, and
each figure as PNG and SVG files for slides.
"""

from __future__ import annotations

import argparse
import sys

from tinysparse.cli.common import OneLineParser, UsageError, add_output_arguments, emit


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "course", help="for teachers: build the course website")
    subcommands = parser.add_subparsers(dest="course_command", metavar="COURSE_COMMAND",
                                        parser_class=OneLineParser)
    subcommands.required = True
    add_site_parser(subcommands)


# ---------------------------------------------------------------- course site
def add_site_parser(subcommands) -> None:
    parser = subcommands.add_parser(
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
    parser.add_argument("--lessons", metavar="DIR", default=None,
                        help="the lessons folder (default: the repository's lessons/)")
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
        lessons = site.check_lessons(args.lessons, name="--lessons")
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
        built = build_site(args.output, executed=args.executed, lessons=args.lessons,
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
