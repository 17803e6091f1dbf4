"""The course website (``tinysparse course site``, tinysparse.course.site).

The default run builds a site from a small lessons folder of two synthetic lessons,
executed here (a kernel each: a few seconds), and checks its pages, links, figure files
and the errors for bad arguments, without a browser.

``python -m pytest -m site tests/test_site.py`` opens a built site in headless Chromium
(``$TINYSPARSE_SITE``: CI builds it from the fast-mode executions of the lessons, see
``.ci/run``): the index, and lesson 02's page with its title, a figure and the table of
Han et al.'s figures beside ours. Only with ``-m site`` (see conftest.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("mkdocs_jupyter")

from tinysparse.cli import main  # noqa: E402
from tinysparse.course import site  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SYLLABUS = """\
# A syllabus

Start with [the first lesson](00_first.ipynb), then [the second](01_second.ipynb#a-section);
the papers are on [the references page](REFERENCES.md), the tests in
[DEVELOPERS.md](../DEVELOPERS.md), the code [on the web](https://example.org/x).
"""

REFERENCES = """\
# References

## Learning both weights — Han et al. 2015

A paper.
"""

LESSON_CODE = """\
import matplotlib
import matplotlib.pyplot as plt
from tinysparse.tables import format_table
print(format_table([["error", "1.64%", "2.0%"]], headers=["", "Paper (quoted)", "ours"]))
plt.plot([0, 1], [1, 0])
plt.title("a line")
plt.show()
print("font size", matplotlib.rcParams["font.size"])
"""


def lesson(title: str):
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(
            f"# {title}\n\nSee [Han et al. 2015](REFERENCES.md#learning-both-weights--han-"
            f"et-al-2015) and [lesson 00](00_first.ipynb).\n\n## A section"),
        nbformat.v4.new_code_cell(LESSON_CODE)])


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A lessons folder of two lessons and a folder of their executions (fast mode). The
    two lessons have the same code, so one execution serves both (one kernel start)."""
    root = tmp_path_factory.mktemp("course")
    lessons, executed = root / "lessons", root / "executed"
    lessons.mkdir()
    (lessons / "README.md").write_text(SYLLABUS)
    (lessons / "REFERENCES.md").write_text(REFERENCES)
    for name, title in (("00_first", "Lesson 00 — First"), ("01_second", "Lesson 01 — Second")):
        nbformat.write(lesson(title), lessons / f"{name}.ipynb")
    ran = site.execute_notebook(lessons / "00_first.ipynb", fast=True)
    site.save_executed(ran, executed, "00_first.ipynb")
    ran.cells[0] = lesson("Lesson 01 — Second").cells[0]
    site.save_executed(ran, executed, "01_second.ipynb")
    return lessons, executed


class Built:
    """The site the command line built, and what it printed (``--json``)."""

    def __init__(self, output: Path, printed: dict):
        self.output, self.printed = output, printed
        self.pages, self.figures, self.mode = printed["pages"], printed["figures"], \
            printed["mode"]


@pytest.fixture(scope="module")
def built(course, tmp_path_factory) -> Built:
    """The site of the two lessons, built by ``tinysparse course site --json`` (mkdocs
    takes several seconds: the tests share this build)."""
    lessons, executed = course
    output = tmp_path_factory.mktemp("built") / "site"
    done = subprocess.run(
        [sys.executable, "-m", "tinysparse", "course", "site", str(output), "--executed",
         str(executed), "--lessons-dir", str(lessons), "--json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return Built(output, json.loads(done.stdout))


def outputs_of(notebook) -> list[dict]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


# ---------------------------------------------------------------- executing a lesson
def test_execution_draws_each_figure_as_png_and_svg_with_slide_sized_text(course):
    lessons, executed = course
    ran = nbformat.read(executed / "00_first.ipynb", as_version=4)
    figures = [o for o in outputs_of(ran) if "image/png" in o.get("data", {})]
    assert len(figures) == 1 and "image/svg+xml" in figures[0]["data"]
    printed = "".join(o.get("text", "") for o in outputs_of(ran))
    assert f"font size {float(site.FIGURE_FONT_SIZE)}" in printed
    assert ran.metadata["tinysparse"] == {"mode": "fast",
                                          "figure_font_size": site.FIGURE_FONT_SIZE,
                                          "figure_formats": ["png", "svg"]}
    untouched = nbformat.read(lessons / "00_first.ipynb", as_version=4)
    assert not outputs_of(untouched)  # the lesson itself is only read


def test_a_png_only_execution_gets_png_files_and_links_only(tmp_path):
    """The fast-mode tests draw PNG only (CI's site): no SVG file, no link to one."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(8)).decode()
    ran = lesson("Lesson 00 — First")
    ran.cells[1].outputs = [nbformat.v4.new_output(
        "display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    written = site.export_figures(ran, tmp_path / "00_first")
    assert [f.name for f in written] == ["figure-1.png"]
    assert written[0].read_bytes() == base64.b64decode(png)
    page = site.lesson_page(ran, "00_first", {"00_first.ipynb": "00_first.html"})
    links = page.cells[1].outputs[1]["data"]["text/html"]
    assert 'href="figures/00_first/figure-1.png"' in links and ".svg" not in links
    assert page.cells[1].outputs[0]["data"]["image/png"] == png
    assert not ran.cells[1].outputs[1:]  # the executed notebook itself is not changed


# ---------------------------------------------------------------- the built site
def test_site_has_the_syllabus_each_lesson_and_the_references(built):
    assert built.pages == ["index.html", "00_first.html", "01_second.html", "REFERENCES.html"]
    for page in built.pages:
        assert (built.output / page).is_file(), page
    assert built.mode == "fast" and built.figures == 2
    marker = json.loads((built.output / site.MARKER).read_text())
    assert marker["pages"] == built.pages and marker["mode"] == "fast"
    assert marker["built_by"] == "tinysparse course site"


def test_every_figure_is_exported_as_png_and_svg(built):
    for name in ("00_first", "01_second"):
        png = built.output / "figures" / name / "figure-1.png"
        svg = built.output / "figures" / name / "figure-1.svg"
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert "<svg" in svg.read_text()
    assert not (built.output / "figures" / "00_first" / "figure-2.png").exists()


def test_links_lead_to_the_site_pages_and_headings(built):
    index = (built.output / "index.html").read_text()
    assert 'href="00_first.html"' in index and 'href="01_second.html#a-section"' in index
    assert 'href="REFERENCES.html"' in index and 'href="https://example.org/x"' in index
    assert "../DEVELOPERS.md" not in index and "<code>DEVELOPERS.md</code>" in index
    page = (built.output / "00_first.html").read_text()
    anchor = "learning-both-weights--han-et-al-2015"  # GitHub's anchor, as the lessons link
    assert f'href="REFERENCES.html#{anchor}"' in page and 'href="00_first.html"' in page
    assert f'id="{anchor}"' in (built.output / "REFERENCES.html").read_text()


def test_lesson_page_shows_title_table_figure_and_the_fast_mode_note(built):
    page = (built.output / "01_second.html").read_text()
    assert re.search(r"<title>Lesson 01 — Second", page)
    assert "Paper (quoted)" in page and "1.64%" in page
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page)
    assert 'href="figures/01_second/figure-1.svg"' in page
    assert '<div class="jp-RenderedSVG' not in page  # the page shows the PNG; SVG: a file
    h1 = page.index("<h1")
    above_note = page[h1:page.index("TINYSPARSE_FAST=1", h1)]  # the fast-mode note ...
    assert "Lesson 01 — Second" in above_note and "Han et al." not in above_note  # ... first


def test_formulas_are_typeset_by_a_mathjax_inside_the_site(built):
    page = (built.output / "00_first.html").read_text()
    sources = re.findall(r'<script[^>]+src="([^"]*MathJax\.js[^"]*)"', page)
    assert sources == [site.MATHJAX_URL], sources  # no CDN: the pages work offline
    assert (built.output / sources[0].split("?")[0]).is_file()
    config = sources[0].split("config=")[1].split(",")[0]
    assert (built.output / site.MATHJAX_FOLDER / "config" / f"{config}.js").is_file()


def test_a_site_is_replaced_whole_and_other_folders_are_refused(course, built, tmp_path):
    lessons, executed = course
    output = tmp_path / "site"
    shutil.copytree(built.output, output)
    (output / "stale.html").write_text("from an older build")
    again = site.build_site(output, executed=executed, lessons=lessons)
    assert not (output / "stale.html").exists() and (output / "index.html").is_file()
    assert again.pages == built.pages
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no temporary folder left

    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(site.SiteError, match=r"output: .*notes holds other files"):
        site.build_site(other, executed=executed, lessons=lessons)
    assert (other / "mine.txt").read_text() == "keep me"


def test_bad_arguments_get_errors_naming_them(course, tmp_path):
    lessons, executed = course
    file = tmp_path / "file.html"
    file.write_text("x")
    with pytest.raises(site.SiteError, match=r"^output: .*file.html is a file"):
        site.build_site(file, executed=executed, lessons=lessons)
    with pytest.raises(site.SiteError, match=r"^executed: .* is not a folder"):
        site.build_site(tmp_path / "s", executed=tmp_path / "none", lessons=lessons)
    with pytest.raises(site.SiteError, match=r"^lessons: .* lacks README.md"):
        site.build_site(tmp_path / "s", executed=executed, lessons=tmp_path)

    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(executed / "00_first.ipynb", partial)
    with pytest.raises(site.SiteError, match=r"^executed: .* lacks .*01_second.ipynb"):
        site.build_site(tmp_path / "s", executed=partial, lessons=lessons)
    shutil.copy(lessons / "01_second.ipynb", partial)  # not executed
    with pytest.raises(site.SiteError, match=r"01_second.ipynb has no outputs"):
        site.build_site(tmp_path / "s", executed=partial, lessons=lessons)

    stale = tmp_path / "stale"
    stale.mkdir()
    for name in ("00_first.ipynb", "01_second.ipynb"):
        ran = nbformat.read(executed / name, as_version=4)
        ran.cells[1].source += "\nprint('an older version')"
        nbformat.write(ran, stale / name)
    with pytest.raises(site.SiteError, match=r"executed from another version"):
        site.build_site(tmp_path / "s", executed=stale, lessons=lessons)
    assert not (tmp_path / "s").exists()


def test_command_line_errors_name_the_argument(course, tmp_path, capsys):
    lessons, executed = course
    file = tmp_path / "file.html"
    file.write_text("x")
    lessons_option = ["--lessons-dir", str(lessons)]
    for argv, expected in (
            ([str(file), "--executed", str(executed), *lessons_option], "OUTPUT: "),
            ([str(tmp_path / "s"), "--executed", str(tmp_path / "none"), *lessons_option],
             "--executed: "),
            ([str(tmp_path / "s"), "--lessons-dir", str(tmp_path)], "--lessons-dir: ")):
        with pytest.raises(SystemExit) as exit_info:
            main(["course", "site", *argv])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and expected in err, err
        assert len(err.strip().splitlines()) == 1


def test_command_line_reports_json(course, built):
    lessons, executed = course
    assert built.printed["command"] == "course site"
    assert built.printed["output"] == str(built.output)
    assert built.printed["executed_from"] == str(executed)
    assert built.printed["figure_font_size"] == site.FIGURE_FONT_SIZE
    assert built.printed["figure_formats"] == ["png", "svg"]
    assert built.printed["seconds"] > 0


# ---------------------------------------------------------------- in a browser (-m site)
class _Dom(HTMLParser):
    """The title, the images' sources, the links and the text of a page."""

    def __init__(self):
        super().__init__()
        self.title, self.images, self.links, self.text = "", [], [], []
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_title = tag == "title"
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)


def chromium_html(page: Path, wait_ms: int = 0) -> str:
    """The page's DOM after headless Chromium loaded it (its scripts ran; ``wait_ms`` of
    virtual time more for the ones that run after loading, such as MathJax)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
    wait = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", *wait, "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def chromium_dom(page: Path) -> _Dom:
    """The page's DOM after headless Chromium loaded it, parsed."""
    dom = _Dom()
    dom.feed(chromium_html(page))
    return dom


@pytest.fixture(scope="module")
def built_site() -> Path:
    given = os.environ.get("TINYSPARSE_SITE")
    if not given:
        pytest.fail("set TINYSPARSE_SITE to a site built by `tinysparse course site` "
                    "(.ci/run does)")
    return Path(given)


@pytest.mark.site
def test_browser_opens_the_index(built_site):
    dom = chromium_dom(built_site / "index.html")
    assert site.SITE_NAME in dom.title
    assert "Syllabus" in "".join(dom.text)
    for page in ("00_autograd.html", "02_magnitude_pruning.html", "REFERENCES.html"):
        assert page in dom.links, page


@pytest.mark.site
def test_browser_opens_a_lesson_with_its_figure_and_the_paper_vs_ours_table(built_site):
    dom = chromium_dom(built_site / "02_magnitude_pruning.html")
    assert dom.title.startswith("Lesson 02 — Magnitude pruning")
    pngs = [src for src in dom.images if src.startswith("data:image/png;base64,")]
    assert pngs, f"no PNG figure on the page: {[src[:30] for src in dom.images[:5]]}"
    assert base64.b64decode(pngs[0].split(",", 1)[1]).startswith(b"\x89PNG")
    text = "".join(dom.text)
    table = text[text.index("Han et al. 2015 (quoted)"):][:2000]
    assert "pruned + retrained error" in table and "1.59%" in table and "ours:" in table
    figure_files = [link for link in dom.links if link.startswith("figures/")]
    assert figure_files and all((built_site / link).is_file() for link in figure_files)


@pytest.mark.site
def test_browser_typesets_the_formulas_with_the_sites_own_mathjax(built_site):
    html = chromium_html(built_site / "02_magnitude_pruning.html", wait_ms=20_000)
    assert 'id="MathJax-Element-1"' in html, "no formula was typeset"
    assert "mathjax/MathJax.js" in html  # the site's copy ...
    assert not re.search(r'src="https?://[^"]*mathjax', html, flags=re.I)  # ... not a CDN's
