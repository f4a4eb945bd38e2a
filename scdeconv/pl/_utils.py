"""Shared plumbing of the plots: reading results from ``uns`` and the show/save logic."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .._logging import logger

__all__ = ["savefig_or_show"]


def _save_path(save: bool | str | os.PathLike, name: str) -> Path:
    """Where ``save`` asks a figure to be written (see :func:`savefig_or_show`)."""
    import scanpy as sc

    ext = str(sc.settings.file_format_figs)
    if save is True:
        return Path(sc.settings.figdir) / f"{name}{sc.settings.plot_suffix}.{ext}"
    path = Path(save)
    return path if path.suffix else path.with_suffix(f".{ext}")


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
        ``True``: write ``sc.settings.figdir / f"{name}{sc.settings.plot_suffix}.{ext}"`` with
        ``ext = sc.settings.file_format_figs``. A str or path: write to that file (relative to
        the working directory; when it has no extension ``file_format_figs`` is appended).
        ``None``/``False``: do not save.
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
        path = _save_path(save, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        logger.info("saved figure to %s", path)
    if show:
        plt.show()
    elif path is not None and owns_figure:
        plt.close(fig)
    return path
