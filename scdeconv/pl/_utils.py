"""Shared plumbing of the plots: reading results from ``uns`` and the show/save logic."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .._logging import logger

__all__ = ["savefig_or_show"]


def _save_path(save: bool | str | os.PathLike, name: str, fig: Figure) -> Path:
    """Where ``save`` asks a figure to be written, decided as scanpy does (see :func:`savefig_or_show`)."""
    import scanpy as sc

    if isinstance(save, os.PathLike):  # an exact file
        path = Path(save)
        return path if path.suffix else path.with_suffix(f".{sc.settings.file_format_figs}")
    suffix = "" if save is True else str(save)
    if Path(suffix).name != suffix:
        raise ValueError(
            f"save={suffix!r} is a file-name suffix, as in scanpy (written to sc.settings.figdir / "
            f"'{name}<save>'); it cannot hold a folder. Pass a path to write that exact file: "
            f"save=pathlib.Path({suffix!r})."
        )
    stem, dot, ext = suffix.rpartition(".")
    if dot and ext.lower() in fig.canvas.get_supported_filetypes():  # "_dot.png": the extension is png
        suffix = stem
    else:
        ext = str(sc.settings.file_format_figs)
    return Path(sc.settings.figdir) / f"{name}{suffix}{sc.settings.plot_suffix}.{ext}"


def savefig_or_show(
    fig: Figure,
    name: str,
    *,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    owns_figure: bool = True,
    dpi: float | None = None,
) -> Path | None:
    """Save and/or show a finished figure, the one place every ``sd.pl`` function does it.

    Parameters
    ----------
    fig
        The figure to save or show.
    name
        Default file stem when ``save=True``, e.g. ``"impact_heatmap"``.
    show
        Show the figure (``plt.show()``). ``None``: only when matplotlib is in interactive
        mode (:func:`matplotlib.pyplot.isinteractive`, true in IPython/Jupyter sessions).
    save
        As scanpy: ``True`` writes ``sc.settings.figdir / f"{name}{sc.settings.plot_suffix}.{ext}"``
        with ``ext = sc.settings.file_format_figs``; a str is a suffix of that name
        (``"_dot.png"`` -> ``figdir / f"{name}_dot.png"``), whose extension, when matplotlib knows
        it, replaces ``file_format_figs``; a str with a folder in it is refused (ValueError). A
        path (:class:`os.PathLike`, e.g. :class:`pathlib.Path`) is the exact file to write,
        relative to the working directory, ``.{file_format_figs}`` added when it has no
        extension. ``None``/``False``: do not save. Where the figure went is logged (info).
    owns_figure
        Whether the plot created ``fig`` (no ``ax`` given). Only then is a saved, not shown
        figure closed, so plotting in a loop does not accumulate open figures; a figure the
        caller passed in is left open.
    dpi
        Resolution of the saved file; ``None`` uses ``rcParams["savefig.dpi"]``.

    Returns
    -------
    The path written, or ``None`` when nothing was saved.
    """
    if show is None:
        show = plt.isinteractive()
    path = None
    if save:
        path = _save_path(save, name, fig)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        logger.info("Saved figure to %s", path)
    if show:
        plt.show()
    elif path is not None and owns_figure:
        plt.close(fig)
    return path
