"""Sphinx configuration of the scdeconv documentation (offline build: no intersphinx fetch)."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
import warnings
from datetime import date
from pathlib import Path

from docutils import nodes
from sphinx.util.fileutil import copy_asset
from sphinx.writers.html5 import HTML5Translator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scdeconv  # noqa: E402

# The tutorials live in the repository's tutorials/ (run there by nbmake); Sphinx reads only
# its source folder, so copy them in (docs/tutorials/ is generated and git-ignored).
_TUTORIALS = Path(__file__).resolve().parent / "tutorials"
_TUTORIALS.mkdir(exist_ok=True)
for _notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
    _target = _TUTORIALS / _notebook.name
    if not _target.exists() or _target.read_bytes() != _notebook.read_bytes():
        shutil.copyfile(_notebook, _target)

# sphinx-autodoc-typehints 3.x calls an API Sphinx 9 deprecates: a Python warning, not a docs problem.
warnings.filterwarnings("ignore", message=".*set_application.*is deprecated", module="sphinx_autodoc_typehints")
warnings.filterwarnings("ignore", message=".*set_application.*is deprecated")

project = "scdeconv"
author = "scdeconv developers"
copyright = f"{date.today().year}, {author}"
version = release = scdeconv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
    "myst_nb",
]

# .rst first: autosummary writes its generated pages with the first suffix.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# Tutorials are stored executed (nbmake runs them in CI); the docs only render them.
nb_execution_mode = "off"
nb_merge_streams = True
# Markdown that a cell displays (the bring-your-own-data report) is parsed as MyST, so its pipe
# tables become tables (the default, CommonMark, has no tables).
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: numpydoc docstrings through napoleon, one page per function.
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_use_param = True
napoleon_custom_sections = [("Params", "Parameters")]
typehints_defaults = "braces"
always_document_param_types = False
# Nothing is fetched from the network: cross-references to scanpy/anndata/numpy stay plain text.
nitpicky = False
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

html_theme = "furo"
html_title = f"scdeconv {release}"
html_static_path = ["_static"]
html_css_files = ["scdeconv.css"]
html_theme_options = {"sidebar_hide_name": False}

# Math: MathJax 3, served from the site itself (nothing from a CDN, so equations render offline).
# The copy comes from the PyPI package sphinx-mathjax-offline (in the `docs` extra); only the
# parts a page can load are copied into _static/mathjax/ (see _copy_mathjax below).
mathjax_path = "mathjax/tex-chtml.js"
_MATHJAX_PARTS = ["tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre"]


def _mathjax_source() -> Path:
    try:
        files = importlib.metadata.files("sphinx-mathjax-offline") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "tex-chtml.js" and entry.parent.name == "mathjax":
            return Path(entry.locate()).parent
    raise RuntimeError(
        "The docs render math with a local copy of MathJax from the PyPI package sphinx-mathjax-offline, "
        'which is not installed: pip install -e ".[docs]"'
    )


def _copy_mathjax(app):
    if app.builder.format != "html":
        return
    source, target = _mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        if (source / part).is_dir():
            copy_asset(source / part, target / part, force=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / part, target / part)


_ABS = re.compile(r"(?<![`\\|])\|([A-Za-z_][\w .]*?)\|(?![`|_])")


def _escape_absolute_values(app, what, name, obj, options, lines):
    """Docstrings write ``mean |attribution|`` for absolute values; reST would read a substitution."""
    for i, line in enumerate(lines):
        parts = line.split("``")  # even parts lie outside inline literals
        lines[i] = "``".join(_ABS.sub(r"\\|\1\\|", p) if k % 2 == 0 else p for k, p in enumerate(parts))


# Returns sections. Our docstrings write them as free text (reST: paragraphs, definition lists of
# the slots written), the type coming from the annotation. Napoleon reads the first line as the
# return type (or `name : type`): that cut ``Cite ... Cell Systems 1:417`` at its colon, made a
# bullet of each slot and left double backticks literal. So a Returns section is set aside before
# napoleon runs (a placeholder goes through as a generic section) and goes in whole as the
# `:returns:` field after it, with the annotation's `:rtype:` below. A section written the
# numpydoc way (a `type` or `name : type` line directly followed by its indented description)
# is left to napoleon.
_UNDERLINE = re.compile(r"^[=\-`:'\"~^_*+#<>]{2,}\s*$")
_RETURNS_PLACEHOLDER = "Returns (free text)"
napoleon_custom_sections.append(_RETURNS_PLACEHOLDER)
_returns_text: dict[str, list[str]] = {}


def _is_section_header(lines, i):
    return (
        i + 1 < len(lines)
        and bool(lines[i].strip())
        and not lines[i].startswith((" ", "\t"))
        and bool(_UNDERLINE.match(lines[i + 1]))
    )


def _set_aside_returns(app, what, name, obj, options, lines):
    start = next((i for i in range(len(lines)) if lines[i].strip() == "Returns" and _is_section_header(lines, i)), None)
    if start is None:
        return
    end = start + 2
    while end < len(lines) and not _is_section_header(lines, end):
        end += 1
    body = lines[start + 2 : end]
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    if not body or (len(body) > 1 and body[1].startswith((" ", "\t"))):
        return  # empty, or numpydoc `type` / `name : type` entries: napoleon's
    _returns_text[name] = body
    lines[start:end] = [_RETURNS_PLACEHOLDER, "-" * len(_RETURNS_PLACEHOLDER), name, ""]


def _put_back_returns(app, what, name, obj, options, lines):
    body = _returns_text.pop(name, None)
    rubric = f".. rubric:: {_RETURNS_PLACEHOLDER}"
    if body is None or rubric not in lines:
        return
    _escape_absolute_values(app, what, name, obj, options, body)  # it ran while the text was aside
    start = lines.index(rubric)
    end = lines.index(name, start) + 1
    field = [":returns:", *[f"    {line}" if line.strip() else "" for line in body], ""]
    rtype = next((k for k, line in enumerate(lines) if line.startswith(":rtype:")), None)
    if rtype is not None:  # sphinx-autodoc-typehints put it after the parameters: show it after Returns
        field.insert(-1, lines[rtype])
        lines[rtype] = ""
    if start > 0 and lines[start - 1].strip():
        field.insert(0, "")
    lines[start:end] = field


# Figures. A wide figure squeezed into the text column shrinks its labels to a few pixels. Each
# raster image is shown at its own size when it fits, shrunk to the column down to
# _MIN_IMAGE_SCALE of that size, and no further: a wider one scrolls sideways inside its own
# box (docs/_static/scdeconv.css), never the page, and a click opens it full size (Sphinx links
# every sized image to its file).
_MIN_IMAGE_SCALE = 0.8


def _size_images(app, doctree, docname):
    from sphinx.util.images import get_image_size

    for node in doctree.findall(nodes.image):
        if any(key in node for key in ("width", "height", "scale")):
            continue  # the page asks for a size: keep it
        uri = node.get("candidates", {}).get("*", node["uri"])
        if "://" in uri or uri.startswith("data:"):
            continue
        size = get_image_size(Path(app.srcdir) / uri)
        if not size or not size[0]:
            continue
        node["width"] = f"{size[0]}px"
        node["classes"].append("scdeconv-sized")
        node["scdeconv_min_width"] = round(size[0] * _MIN_IMAGE_SCALE)


def _is_block(node):
    return isinstance(node, (nodes.Body, nodes.Structural)) and not isinstance(node, nodes.Inline)


def _unnest_paragraphs(app, doctree, docname):
    """A multi-paragraph `:returns:` comes out of Sphinx's field handling as a paragraph holding
    paragraphs and lists (``<p><p>``, invalid HTML); keep the blocks, wrap loose text in its own."""
    for para in list(doctree.findall(nodes.paragraph)):
        if not any(_is_block(child) for child in para.children):
            continue
        blocks, loose = [], []
        for child in list(para.children):
            if _is_block(child):
                if any(c.astext().strip() for c in loose):
                    blocks.append(nodes.paragraph("", "", *loose))
                blocks.append(child)
                loose = []
            else:
                loose.append(child)
        if any(c.astext().strip() for c in loose):
            blocks.append(nodes.paragraph("", "", *loose))
        para.replace_self(blocks)


_FIELD_ORDER = {"Parameters": 0, "Returns": 1, "Return type": 2}


def _order_fields(app, doctree, docname):
    """Parameters, Returns, Return type, then the rest (Raises, ...): where a method documents no
    parameter, the types autodoc adds for them would otherwise come below the return type."""
    for field_list in doctree.findall(nodes.field_list):
        fields = [child for child in field_list.children if isinstance(child, nodes.field)]
        if len(fields) != len(field_list.children):
            continue
        ordered = sorted(fields, key=lambda f: _FIELD_ORDER.get(f[0].astext().strip(), len(_FIELD_ORDER)))
        if ordered != fields:
            field_list.children = []
            field_list.extend(ordered)


class _HTMLTranslator(HTML5Translator):
    def image_size(self, node):
        atts = super().image_size(node)
        if "scdeconv_min_width" in node:
            extra = f"max-width: 100%; min-width: {node['scdeconv_min_width']}px; height: auto;"
            atts["style"] = f"{atts.get('style', '')} {extra}".strip()
        return atts


def setup(app):
    app.connect("autodoc-process-docstring", _set_aside_returns, priority=400)  # before napoleon
    app.connect("autodoc-process-docstring", _escape_absolute_values)
    app.connect("autodoc-process-docstring", _put_back_returns, priority=600)  # after sphinx-autodoc-typehints
    app.connect("builder-inited", _copy_mathjax)
    app.connect("doctree-resolved", _size_images)
    app.connect("doctree-resolved", _unnest_paragraphs)
    app.connect("doctree-resolved", _order_fields)
    for builder in ("html", "dirhtml", "singlehtml"):
        app.set_translator(builder, _HTMLTranslator, override=True)
