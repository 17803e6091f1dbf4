"""The course website: the syllabus, every lesson executed (its figures and printed tables
in place) and the references page, built into a static site by mkdocs + mkdocs-jupyter.

``build_site(output)`` executes the lessons in their default mode first (about 25 minutes
on 2 cores); ``build_site(output, executed=DIR)`` takes notebooks executed already, such as
the ones the fast-mode tests save when ``$TINYSPARSE_EXECUTED_DIR`` is set (CI does). The
notebooks in ``lessons/`` are only read: they stay without outputs.

Every figure of every lesson is also written as its own file,
``<output>/figures/<lesson>/figure-K.png`` and ``.svg`` (K counts the lesson's figures
from 1; the fast-mode tests draw no SVG, so a site built from them has PNG files only),
for slides: the lessons run with matplotlib's default text at
:data:`FIGURE_FONT_SIZE` points instead of 10 (text a lesson sizes itself, such as a
``legend(fontsize=8)``, keeps its size).

The site is built in a temporary folder beside ``output`` and moved into place when
complete. ``output`` may be new, empty, or a site this module built (it holds
:data:`MARKER`); any other folder is refused.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysparse.course import LESSONS
from tinysparse.course.folders import LESSON_PATTERN, lesson_notebooks, written_whole
from tinysparse.data.storage import atomic_path, try_writing_in

#: matplotlib's default font size (points) while the lessons run for the site: slide-sized
#: text (matplotlib's own default is 10); titles and labels scale with it
FIGURE_FONT_SIZE = 14

#: the matplotlib backend of the executions: draws every figure a cell shows as an output
#: (``Agg`` would draw nothing), without a display
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def kernel_config(svg: bool) -> str:
    """The kernel's configuration (an IPython config file): each figure as PNG, and SVG if
    ``svg``, with matplotlib's default text at FIGURE_FONT_SIZE points."""
    formats = ["png", "svg"] if svg else ["png"]
    return (f"c.InlineBackend.figure_formats = {formats!r}\n"
            f"c.InlineBackend.rc = {{'font.size': {FIGURE_FONT_SIZE}}}\n")


#: the file that marks a folder as a site this module built (also a summary of the build)
MARKER = ".tinysparse-site.json"

#: the seconds one cell may run: a default-mode cell may train for a long time on 2 cores
CELL_TIMEOUT = {"fast": 600, "default": 3 * 3600}

SYLLABUS, REFERENCES = "README.md", "REFERENCES.md"
SITE_NAME = "tinysparse: a course on neural-network compression"


class SiteError(RuntimeError):
    """The site cannot be built: the message names the argument or the lesson at fault."""


@dataclass
class Site:
    """What :func:`build_site` built: the folder, its pages (file names), how many figures
    it exported and in which formats (``png``, ``svg``), where the executed lessons came
    from (``None``: executed for the site), their mode (``fast``, ``default``, ``mixed``,
    or ``unknown`` for notebooks executed by another tool) and the build's wall time."""

    output: Path
    pages: list[str]
    figures: int
    figure_formats: list[str]
    executed_from: Path | None
    mode: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "pages": self.pages, "figures": self.figures,
                "figure_formats": self.figure_formats,
                "executed_from": None if self.executed_from is None else str(self.executed_from),
                "mode": self.mode, "seconds": round(self.seconds, 1)}


# ---------------------------------------------------------------- executing the lessons
def execute_notebook(path: str | os.PathLike, fast: bool, timeout: int | None = None,
                     env: dict[str, str] | None = None, svg: bool = True):
    """Run a lesson notebook top to bottom in a fresh kernel, in its own folder, and
    return it with its outputs (an ``nbformat`` notebook).

    Parameters
    ----------
    path : the ``.ipynb`` file; it is only read.
    fast : run it with ``TINYSPARSE_FAST=1`` (a few epochs) or in its default mode.
    timeout : seconds one cell may take (default :data:`CELL_TIMEOUT` of the mode).
    env : the kernel's environment (default this process's); the mode's variable and the
        inline backend are set in a copy.
    svg : also draw each figure as SVG (the fast-mode tests leave it out: drawing every
        figure twice makes them about a third slower).

    Every figure a cell shows becomes a PNG output (and an SVG one), drawn with default
    text of :data:`FIGURE_FONT_SIZE` points. The notebook's metadata records the mode, the
    font size and the formats under ``tinysparse``. A cell that raises raises nbclient's
    ``CellExecutionError``.
    """
    import nbclient
    import nbformat

    path = Path(path)
    mode = "fast" if fast else "default"
    notebook = nbformat.read(path, as_version=4)
    kernel_env = dict(os.environ if env is None else env, MPLBACKEND=INLINE_BACKEND)
    if fast:
        kernel_env["TINYSPARSE_FAST"] = "1"
    else:
        kernel_env.pop("TINYSPARSE_FAST", None)
    with tempfile.TemporaryDirectory(prefix="tinysparse-kernel-") as folder:
        config = Path(folder) / "kernel_config.py"
        config.write_text(kernel_config(svg))
        client = nbclient.NotebookClient(
            notebook, timeout=CELL_TIMEOUT[mode] if timeout is None else timeout,
            kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
            extra_arguments=[f"--config={config}"])
        client.execute(env=kernel_env)
    notebook.metadata["tinysparse"] = {"mode": mode, "figure_font_size": FIGURE_FONT_SIZE,
                                       "figure_formats": ["png", "svg"] if svg else ["png"]}
    return notebook


def save_executed(notebook, folder: str | os.PathLike, name: str) -> Path:
    """Write an executed notebook as ``folder/name``, atomically (a reader never sees half
    a file); returns the path."""
    import nbformat

    destination = Path(folder) / name
    with atomic_path(destination) as temporary:
        nbformat.write(notebook, temporary)
    return destination


# ---------------------------------------------------------------- checking the arguments
def check_output(output: str | os.PathLike, name: str = "output") -> Path:
    """``output`` may become the site: new, an empty folder, or a site built before
    (holding :data:`MARKER`), in a place that can be written. ``name`` is the argument's
    name in the error (``OUTPUT`` on the command line)."""
    output = Path(output)
    if str(output) in ("", ".", "..") or output.name in ("", ".", ".."):
        raise SiteError(f"{name}: expected the name of a folder for the site, got "
                        f"{str(output)!r}")
    if output.exists() and not output.is_dir():
        raise SiteError(f"{name}: {output} is a file; expected a folder for the site "
                        f"(new, empty, or a site built before)")
    if output.is_dir() and any(output.iterdir()) and not (output / MARKER).is_file():
        raise SiteError(f"{name}: {output} holds other files and is not a site this command "
                        f"built (no {MARKER}); choose a new or empty folder")
    parent = output.resolve().parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SiteError(f"{name}: {existing} is a file, where a folder should be")
    try:
        try_writing_in(existing, output.name)
    except OSError as error:
        raise SiteError(f"{name}: cannot write in {existing} ({error.strerror or error})") \
            from None
    return output


def check_lessons(lessons: str | os.PathLike | None, name: str = "lessons") -> Path:
    """The lessons folder (default :data:`tinysparse.course.LESSONS`, the repository's):
    its notebooks, the syllabus and the references page."""
    folder = LESSONS if lessons is None else Path(lessons)
    hint = ("" if folder != LESSONS else
            " (the lessons ship with the repository: clone it and `pip install -e .`, or "
            "give the folder)")
    if not folder.is_dir():
        raise SiteError(f"{name}: {folder} is not a folder{hint}")
    missing = [n for n in (SYLLABUS, REFERENCES) if not (folder / n).is_file()]
    if not lesson_notebooks(folder):
        missing.append(LESSON_PATTERN)
    if missing:
        raise SiteError(f"{name}: {folder} lacks {', '.join(missing)}; expected the "
                        f"repository's lessons/ folder{hint}")
    return folder


def check_executed(executed: str | os.PathLike, lessons: Path, name: str = "executed"
                   ) -> Path:
    """``executed`` holds an executed notebook (with outputs) of every lesson, made from
    the lesson as it is now (the same code cells)."""
    import nbformat

    folder = Path(executed)
    if not folder.is_dir():
        raise SiteError(f"{name}: {folder} is not a folder; expected one holding executed "
                        f"lesson notebooks")
    names = [p.name for p in lesson_notebooks(lessons)]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise SiteError(f"{name}: {folder} lacks the executed notebooks of {missing} (run "
                        f"the fast tests with TINYSPARSE_EXECUTED_DIR={folder}, or leave "
                        f"out {name} to execute the lessons now)")
    for lesson in names:
        try:
            ran = nbformat.read(folder / lesson, as_version=4)
        except Exception as error:  # nbformat raises several kinds on a broken file
            raise SiteError(f"{name}: {folder / lesson} is not a readable notebook "
                            f"({error})") from None
        if not any(cell.get("outputs") for cell in ran.cells):
            raise SiteError(f"{name}: {folder / lesson} has no outputs: not an executed "
                            f"notebook")
        if _code(ran) != _code(nbformat.read(lessons / lesson, as_version=4)):
            raise SiteError(f"{name}: {folder / lesson} was executed from another version "
                            f"of {lessons / lesson} (its code cells differ): execute again")
    return folder


def _code(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


# ---------------------------------------------------------------- figures and links
def export_figures(notebook, folder: Path) -> list[Path]:
    """Write every figure of an executed notebook as ``folder/figure-K.png`` (and ``.svg``
    where the output holds one), K from 1 in the order of the outputs; returns the files."""
    written = []
    for k, output in enumerate(_figure_outputs(notebook), start=1):
        folder.mkdir(parents=True, exist_ok=True)
        data = output["data"]
        if "image/png" in data:
            written.append(folder / f"figure-{k}.png")
            written[-1].write_bytes(base64.b64decode(_text(data["image/png"])))
        if "image/svg+xml" in data:
            written.append(folder / f"figure-{k}.svg")
            written[-1].write_text(_text(data["image/svg+xml"]))
    return written


def _figure_outputs(notebook) -> Iterable[dict]:
    for cell in notebook.cells:
        yield from filter(_is_figure, cell.get("outputs", []))


def _is_figure(output: dict) -> bool:
    return bool({"image/png", "image/svg+xml"} & set(output.get("data", {})))


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def github_anchor(heading: str, separator: str = "-") -> str:
    """A heading's anchor as GitHub makes it (lower case, punctuation dropped, each space
    a hyphen): the lessons link ``REFERENCES.md#<anchor>`` that way, so the site's
    headings take the same ids (the ``toc`` extension's ``slugify``)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", separator)


_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def rewrite_links(text: str, pages: dict[str, str]) -> str:
    """Markdown links to the lessons' files become links to their pages: ``pages`` maps a
    file name (``02_magnitude_pruning.ipynb``) to its target on the site; a relative link
    to a file outside the site (``../DEVELOPERS.md``) keeps only its text, in code font.
    Web links are kept."""

    def replace(match: re.Match) -> str:
        label, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            return match.group(0)
        if target in pages:
            return f"[{label}]({pages[target]}{anchor})"
        return label if label.startswith("`") else f"`{label}`"

    return _LINK.sub(replace, text)


# ---------------------------------------------------------------- the pages
def lesson_page(notebook, lesson: str, html_pages: dict[str, str]):
    """The notebook as the site shows it: links to the other pages, a note when it ran in
    fast mode, and under each figure links to its PNG and SVG files (the page itself shows
    the PNG; the SVG, which would make the page heavy, is dropped from it)."""
    page = copy.deepcopy(notebook)
    for cell in page.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, html_pages)
    k = 0
    for cell in page.cells:
        outputs = []
        for output in cell.get("outputs", []):
            outputs.append(output)
            if _is_figure(output):
                k += 1
                formats = [f for f, kind in (("png", "image/png"), ("svg", "image/svg+xml"))
                           if kind in output["data"]]
                if "image/png" in output["data"]:
                    output["data"].pop("image/svg+xml", None)
                outputs.append(_figure_links(lesson, k, formats))
        if cell.cell_type == "code":
            cell.outputs = outputs
    if page.metadata.get("tinysparse", {}).get("mode") == "fast":
        _add_under_title(page, FAST_MODE_NOTE)
    return page


FAST_MODE_NOTE = (
    "> **Fast mode.** This page shows a run with `TINYSPARSE_FAST=1` (a few epochs per "
    "experiment): its numbers and figures are not the ones the text describes. "
    "`tinysparse course site OUTPUT` builds the site in the default mode.")


def _add_under_title(page, text: str) -> None:
    """Put a Markdown paragraph right under the page's title (its first line, when the
    first cell opens with a ``# title``), else first."""
    import nbformat

    first = page.cells[0] if page.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{text}\n\n{rest}"
    else:
        page.cells.insert(0, nbformat.v4.new_markdown_cell(text))


def _figure_links(lesson: str, k: int, formats: list[str]) -> dict:
    import nbformat

    base = f"figures/{lesson}/figure-{k}"
    links = " · ".join(f'<a href="{base}.{f}">{f.upper()}</a>' for f in formats)
    return nbformat.v4.new_output("display_data", data={
        "text/html": f'<p class="figure-files">Figure {k}: {links} (default text '
                     f'{FIGURE_FONT_SIZE} pt)</p>',
        "text/plain": f"Figure {k}: " + ", ".join(f"{base}.{f}" for f in formats)})


def mkdocs_config(docs: Path, site: Path, lessons: list[str]) -> str:
    """The mkdocs.yml of the build (YAML; JSON strings are YAML strings)."""
    nav = "\n".join(f"      - {json.dumps(name + '.ipynb')}" for name in lessons)
    return f"""\
site_name: {json.dumps(SITE_NAME)}
docs_dir: {json.dumps(str(docs))}
site_dir: {json.dumps(str(site))}
use_directory_urls: false
theme:
  name: material
  font: false
nav:
  - Syllabus: index.md
  - Lessons:
{nav}
  - References: {REFERENCES}
plugins:
  - search
  - offline
  - mkdocs-jupyter:
      include: ["*.ipynb"]
      execute: false
      include_source: true
      cache: false
      custom_mathjax_url: {json.dumps(MATHJAX_URL)}
markdown_extensions:
  - tables
  - toc:
      permalink: true
      slugify: !!python/name:{__name__}.github_anchor
"""


def write_docs(docs: Path, lessons: Path, executed: dict[str, Any]) -> list[Path]:
    """The pages mkdocs builds from, in ``docs``: ``index.md`` (the syllabus), each lesson
    notebook, ``REFERENCES.md``, and the figures' files; returns the figure files."""
    import nbformat

    names = list(executed)
    md_pages = {**{f"{n}.ipynb": f"{n}.ipynb" for n in names}, SYLLABUS: "index.md",
                REFERENCES: REFERENCES}
    html_pages = {**{f"{n}.ipynb": f"{n}.html" for n in names}, SYLLABUS: "index.html",
                  REFERENCES: REFERENCES.replace(".md", ".html")}
    docs.mkdir(parents=True)
    (docs / "index.md").write_text(rewrite_links((lessons / SYLLABUS).read_text(), md_pages))
    (docs / REFERENCES).write_text(rewrite_links((lessons / REFERENCES).read_text(),
                                                 md_pages))
    copy_mathjax(docs / MATHJAX_FOLDER)
    figures = []
    for name, notebook in executed.items():
        figures += export_figures(notebook, docs / "figures" / name)
        nbformat.write(lesson_page(notebook, name, html_pages), docs / f"{name}.ipynb")
    return figures


#: the lessons' formulas are typeset by a copy of MathJax inside the site, so the pages
#: work offline: the MathJax 2.7 that Jupyter Server ships (package jupyter-server-mathjax)
MATHJAX_FOLDER = "mathjax"
MATHJAX_URL = f"{MATHJAX_FOLDER}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def copy_mathjax(destination: Path) -> None:
    """Copy MathJax's files into ``destination`` (every page sits at the site's top level,
    so the relative :data:`MATHJAX_URL` finds them)."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (source / "MathJax.js").is_file():
        raise SiteError(f"MathJax is missing from {source}: reinstall jupyter-server-mathjax")
    shutil.copytree(source, destination)


def run_mkdocs(config: Path) -> None:
    """``mkdocs build --strict`` (a broken link fails the build); its log in the error."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(config)], capture_output=True, text=True)
    if done.returncode != 0:
        log = (done.stderr or done.stdout).strip().splitlines()[-20:]
        raise SiteError("mkdocs could not build the site:\n" + "\n".join(log))


# ---------------------------------------------------------------- the whole build
def build_site(output: str | os.PathLike, executed: str | os.PathLike | None = None,
               lessons: str | os.PathLike | None = None,
               on_lesson: Callable[[str, float], None] | None = None) -> Site:
    """Build the course website into the folder ``output``.

    Parameters
    ----------
    output : the site's folder: new, empty, or a site built before (replaced whole, once
        the new one is complete).
    executed : a folder of executed lesson notebooks (same names as the lessons'); by
        default the lessons are executed now, in their default mode (about 25 minutes).
    lessons : the lessons folder (default: the repository's ``lessons/``).
    on_lesson : called with each lesson's name and seconds after it executes.

    Returns
    -------
    Site : the folder, its pages, the number of figures exported, the mode, the time.
    """
    started = time.perf_counter()
    output = check_output(output)
    lessons = check_lessons(lessons)
    executed_from = None if executed is None else check_executed(executed, lessons)
    notebooks = _executed_notebooks(lessons, executed_from, on_lesson)
    modes = {nb.metadata.get("tinysparse", {}).get("mode", "unknown")
             for nb in notebooks.values()}
    mode = modes.pop() if len(modes) == 1 else "mixed"

    with written_whole(output) as building:
        with tempfile.TemporaryDirectory(prefix="tinysparse-site-") as work:
            docs = Path(work) / "docs"
            figures = write_docs(docs, lessons, notebooks)
            config = Path(work) / "mkdocs.yml"
            config.write_text(mkdocs_config(docs, building, list(notebooks)))
            run_mkdocs(config)
        pages = ["index.html", *(f"{n}.html" for n in notebooks),
                 REFERENCES.replace(".md", ".html")]
        absent = [p for p in pages if not (building / p).is_file()]
        if absent:
            raise SiteError(f"mkdocs built no {absent}")
        site = Site(output, pages, len({(f.parent.name, f.stem) for f in figures}),
                    sorted({f.suffix[1:] for f in figures}), executed_from, mode,
                    time.perf_counter() - started)
        (building / MARKER).write_text(json.dumps(
            {"built_by": "tinysparse course site", **site.to_dict()}, indent=2) + "\n")
    return site


def _executed_notebooks(lessons: Path, executed: Path | None,
                        on_lesson: Callable[[str, float], None] | None) -> dict[str, Any]:
    """The executed notebook of every lesson, by name: read from ``executed``, or run now
    in the default mode."""
    import nbclient
    import nbformat

    notebooks = {}
    for path in lesson_notebooks(lessons):
        if executed is not None:
            notebooks[path.stem] = nbformat.read(executed / path.name, as_version=4)
            continue
        started = time.perf_counter()
        try:
            notebooks[path.stem] = execute_notebook(path, fast=False)
        except nbclient.exceptions.CellExecutionError as error:
            raise SiteError(f"{path.name}: a cell raised {error.ename}: {error.evalue}") \
                from None
        if on_lesson is not None:
            on_lesson(path.stem, time.perf_counter() - started)
    return notebooks
