"""Locate files bundled in ``data/`` (repository checkout or installed wheel)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Return the path of a bundled data file.

    A wheel carries ``data/`` inside the package (``scdeconv/data``); an editable
    install or a source checkout keeps it at the repository root.
    """
    for folder in (_PACKAGE_DIR / "data", _PACKAGE_DIR.parent / "data"):
        candidate = folder / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"Bundled data file {name!r} not found next to the package or in the repository's data/. "
        "Reinstall scdeconv (`pip install -e .` from a full checkout)."
    )
