"""The API reference lists every public function (the docs build itself runs in CI: `make -C docs html`)."""

from __future__ import annotations

import re
from pathlib import Path

import scdeconv as sd

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"


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
