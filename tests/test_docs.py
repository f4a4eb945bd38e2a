"""The docs' content: the API reference lists every public function, and the quick start runs as printed.

The built site itself is checked in test_docs_html.py (the build runs in CI: `make -C docs html`).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import scdeconv as sd

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
QUICKSTART = API_PAGE.parent / "quickstart.md"


def test_api_reference_lists_every_public_function():
    listed = set(re.findall(r"^   ([\w.]+)$", API_PAGE.read_text(), flags=re.MULTILINE))
    public = {f"{name}.{item}" for name in ("pp", "tl", "pl", "get", "datasets") for item in getattr(sd, name).__all__}
    public |= {f"genesets.{item}" for item in sd.genesets.__all__ if item != "read_gmt"}
    public |= {"read_gmt", "Autoencoder"}
    assert public - listed == set(), "add these to docs/api.md"
    assert listed - public == set(), "docs/api.md lists names that are not public"


def test_docs_pages_exist_for_every_tutorial():
    docs = API_PAGE.parent
    index = (docs / "index.md").read_text()
    for notebook in (docs.parent / "tutorials").glob("*.ipynb"):
        assert f"tutorials/{notebook.stem}" in index, f"add {notebook.name} to the docs' tutorials toctree"


def _python_blocks(markdown: str) -> list[tuple[int, str]]:
    """The ```python blocks of a markdown page, with the line each one starts on."""
    return [
        (markdown[: m.start(1)].count("\n"), m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)
    ]


@pytest.mark.slow
def test_quickstart_runs_as_printed(tmp_path, monkeypatch):
    """Every python block of docs/quickstart.md, in order, verbatim (about two minutes on 2 cores)."""
    blocks = _python_blocks(QUICKSTART.read_text())
    assert blocks, "docs/quickstart.md has no python block"
    monkeypatch.chdir(tmp_path)  # anything a step writes lands here
    namespace: dict = {"__name__": "__quickstart__"}
    for start, code in blocks:
        # padded so that a traceback names the line of docs/quickstart.md
        exec(compile("\n" * start + code, str(QUICKSTART), "exec"), namespace)
    plt.close("all")
    adata = namespace["adata"]
    assert {"X_scdeconv", "X_umap", "scdeconv_activity"} <= set(adata.obsm)
    assert {"scdeconv", "scdeconv_impact", "scdeconv_group_diff"} <= set(adata.uns)


def test_readme_and_docs_figures_are_the_ones_make_figures_writes():
    # Every image README.md and docs/index.md show is redrawn by docs/make_figures.py (no stale
    # copies), and each one it copies is a figure the pipeline draws.
    import importlib.util

    from scdeconv._pipeline import FIGURES as PIPELINE_FIGURES

    root = API_PAGE.parent.parent
    spec = importlib.util.spec_from_file_location("make_figures", root / "docs" / "make_figures.py")
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    shown = set(re.findall(r"docs/_static/([\w.]+\.png)", (root / "README.md").read_text()))
    shown |= set(re.findall(r"_static/([\w.]+\.png)", (root / "docs" / "index.md").read_text()))
    assert shown and shown <= set(make_figures.FIGURES)
    assert all((root / "docs" / "_static" / name).is_file() for name in make_figures.FIGURES)
    copied = {source for source in make_figures.FIGURES.values() if source is not None}
    assert copied <= set(PIPELINE_FIGURES.values())
