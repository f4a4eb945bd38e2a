"""Sphinx configuration of the scdeconv documentation (offline build: no intersphinx fetch)."""

from __future__ import annotations

import re
import shutil
import sys
import warnings
from datetime import date
from pathlib import Path

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
html_theme_options = {"sidebar_hide_name": False}

_ABS = re.compile(r"(?<![`\\|])\|([A-Za-z_][\w .]*?)\|(?![`|_])")


def _escape_absolute_values(app, what, name, obj, options, lines):
    """Docstrings write ``mean |attribution|`` for absolute values; reST would read a substitution."""
    for i, line in enumerate(lines):
        parts = line.split("``")  # even parts lie outside inline literals
        lines[i] = "``".join(_ABS.sub(r"\\|\1\\|", p) if k % 2 == 0 else p for k, p in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", _escape_absolute_values)
