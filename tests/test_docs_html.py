"""The built documentation site, read as a browser gets it: no raw LaTeX, markdown or reST left in the
text, math served from the site itself, nothing fetched from the network, API Returns readable.

The site is built into a temporary folder (about 30 s on 2 cores) unless ``docs/_build/html`` is
newer than every file it is built from, as in CI right after ``make -C docs html``; then that build
is read. Without the ``docs`` extra (sphinx, furo, myst-nb, ...) the tests are skipped.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATED = {"_build", "generated", "tutorials"}  # written by the build itself (docs/conf.py, autosummary)

pytestmark = pytest.mark.slow

# Where MathJax looks for TeX (sphinx.ext.mathjax + myst: elements of these classes); everything else
# is prose, and TeX there stays raw on the page.
MATH_CLASSES = {"math", "tex2jax_process", "mathjax_process"}
CODE_TAGS = {"pre", "code", "script", "style", "textarea", "kbd", "samp"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
RAW_IN_PROSE = {
    "raw LaTeX": re.compile(r"\\(?:[A-Za-z]{2,}|[()\[\]])|\$\$|\$[^$\s][^$]*[\\_^][^$]*\$"),
    "a pipe table": re.compile(r"\|\s*:?(?:-{3,}|[\u2013\u2014]+)\s*:?\|"),  # `|---|`, or `|—|` after smartquotes
    "literal double backticks": re.compile(r"``"),
    "literal ** (unparsed bold)": re.compile(r"\*\*"),
}
# A Python string that should have been raw eats the backslash: "\frac" -> form feed + "rac",
# "\text" -> tab + "ext", "\rho" -> carriage return + "ho". What is left in the math says so.
EATEN_BACKSLASH = re.compile(r"(?<![\\A-Za-z])(?:rac|ext|imes|heta|ight|abla|ewline|ho|eta)(?![A-Za-z])")


def _missing_docs_tools() -> list[str]:
    modules = ("sphinx", "furo", "myst_nb", "sphinx_autodoc_typehints")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    try:
        importlib.metadata.distribution("sphinx-mathjax-offline")
    except importlib.metadata.PackageNotFoundError:
        missing.append("sphinx-mathjax-offline")
    return missing


def _fresh_build() -> Path | None:
    html = DOCS / "_build" / "html"
    stamp = html / ".buildinfo"
    if not stamp.is_file():
        return None
    sources = [p for p in DOCS.rglob("*") if p.is_file() and p.relative_to(DOCS).parts[0] not in GENERATED]
    sources += [*(ROOT / "tutorials").glob("*.ipynb"), *(ROOT / "scdeconv").rglob("*.py"), ROOT / "pyproject.toml"]
    built = stamp.stat().st_mtime
    return html if all(p.stat().st_mtime < built for p in sources) else None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(f"the docs tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    fresh = _fresh_build()
    if fresh is not None:
        return fresh
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q"]
    result = subprocess.run(
        [*command, "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, f"the docs build failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return out / "html"


class _Page(HTMLParser):
    """Splits a page's text into prose, math and code, and collects what the page loads."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.prose: list[str] = []
        self.math: list[str] = []
        self.loads: list[str] = []  # src of scripts and images, href of stylesheets
        self.images: list[dict[str, str]] = []
        self.return_types: list[str] = []
        self._after_return_type = False  # between the "Return type" <dt> and its <dd>
        self._in_return_type = False

    def _kind(self) -> str | None:
        return next((kind for _, kind in reversed(self.stack) if kind), None)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag in ("script", "img") and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and "stylesheet" in attrs.get("rel", ""):
            self.loads.append(attrs.get("href", ""))
        if tag == "img":
            self.images.append(attrs)
        if tag == "dd" and self._after_return_type:
            self._after_return_type, self._in_return_type = False, True
            self.return_types.append("")
        if tag in VOID_TAGS:
            return
        classes = set(attrs.get("class", "").split())
        kind = "math" if classes & MATH_CLASSES else "code" if tag in CODE_TAGS else None
        self.stack.append((tag, kind))

    def handle_endtag(self, tag):
        if tag == "dd" and self._in_return_type:
            self._in_return_type = False
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == tag:
                del self.stack[k:]
                break

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "dt" and data.strip() == "Return type":
            self._after_return_type = True
        if self._in_return_type:
            self.return_types[-1] += data
        kind = self._kind()
        (self.math if kind == "math" else self.prose if kind is None else []).append(data)


def _pages(site: Path) -> dict[str, _Page]:
    pages = {}
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site).as_posix()
        if rel.startswith(("_modules/", "_sources/", "_static/")) or rel in ("genindex.html", "search.html"):
            continue
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        page.path = path
        pages[rel] = page
    return pages


@pytest.fixture(scope="module")
def pages(site) -> dict[str, _Page]:
    pages = _pages(site)
    assert {"index.html", "quickstart.html", "impact_score.html", "generated/scdeconv.tl.module_impact.html"} <= set(
        pages
    )
    assert any(rel.startswith("tutorials/") for rel in pages)
    return pages


def _snippet(text: str, match: re.Match) -> str:
    return " ".join(text[max(0, match.start() - 40) : match.end() + 40].split())


def test_no_control_characters_in_pages(site):
    bad = {}
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        found = CONTROL.search(text)
        if found:
            bad[path.relative_to(site).as_posix()] = repr(text[found.start() - 40 : found.end() + 40])
    assert not bad, f"control characters in the built pages (a Python string that needed r'...'?): {bad}"


def test_no_raw_latex_markdown_or_rest_in_prose(pages):
    problems = []
    for rel, page in pages.items():
        text = "".join(page.prose)
        for what, pattern in RAW_IN_PROSE.items():
            problems += [f"{rel}: {what}: ...{_snippet(text, m)}..." for m in pattern.finditer(text)]
    assert not problems, "raw markup shown as text:\n" + "\n".join(problems[:40])


def test_math_is_tex_with_no_eaten_backslashes(pages):
    math = {rel: page.math for rel, page in pages.items() if page.math}
    assert "impact_score.html" in math and len(math["impact_score.html"]) > 50
    problems = [
        f"{rel}: {' '.join(expr.split())[:120]}"
        for rel, exprs in math.items()
        for expr in exprs
        if EATEN_BACKSLASH.search(expr)
    ]
    assert not problems, "TeX with a lost backslash:\n" + "\n".join(problems)


def test_math_renderer_is_served_by_the_site_and_nothing_is_fetched(pages, site):
    for rel, page in pages.items():
        remote = [u for u in page.loads if re.match(r"^(?:[a-z]+:)?//", u)]
        assert not remote, f"{rel} loads from the network: {remote}"
        if page.math:
            mathjax = [u for u in page.loads if u.split("?")[0].endswith("mathjax/tex-chtml.js")]
            assert mathjax, f"{rel} has math but no local MathJax"
            assert (page.path.parent / mathjax[0].split("?")[0]).resolve().is_file()
    fonts = site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), "MathJax's fonts were not copied"


def test_api_return_types_are_types(pages):
    api = {rel: page for rel, page in pages.items() if rel.startswith("generated/")}
    assert len(api) > 20
    seen = 0
    for rel, page in api.items():
        for rtype in page.return_types:
            rtype = " ".join(rtype.split())
            seen += 1
            assert re.fullmatch(r"[\w.\[\], |~()'\"-]+", rtype) and len(rtype) < 100, f"{rel}: return type {rtype!r}"
    assert seen > 20


def test_wide_figures_keep_their_size_and_scroll_in_their_box(pages):
    """conf.py gives every raster image its own width, shrinkable to 80% and no further."""
    checked = 0
    for rel, page in pages.items():
        for img in page.images:
            if not img.get("src", "").split("?")[0].endswith((".png", ".jpg", ".jpeg")) or "_static/" in img["src"]:
                continue
            style = img.get("style", "")
            width = re.search(r"(?<![-\w])width:\s*(\d+)px", style)
            minimum = re.search(r"min-width:\s*(\d+)px", style)
            assert width and minimum and "max-width: 100%" in style, f"{rel}: {img['src']} has style {style!r}"
            assert int(minimum.group(1)) >= 0.79 * int(width.group(1))
            checked += 1
    assert checked > 10
    assert any("scdeconv.css" in u for u in pages["index.html"].loads)
