"""``sd.pl.reconstruction``: how well the autoencoder reconstructs held-out cells."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes

from .._docs import inject_docs
from .._keys import MODEL_KEY
from .._results import stored_result
from ._utils import savefig_or_show

__all__ = ["reconstruction"]


@inject_docs
def reconstruction(
    adata: AnnData,
    *,
    key: str = MODEL_KEY,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    bins: int = 40,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes:
    """Distributions of reconstruction quality on the held-out validation cells.

    Histograms of the per-gene correlation (over cells) and per-cell correlation (over genes)
    between observed and reconstructed log1p-normalised expression, and of the per-gene Poisson
    deviance explained, with their medians in the legend: the link between input and decoded
    data that the representation rests on.

    Parameters
    ----------
    adata
        Annotated data matrix with ``adata.uns[key]["reconstruction"]`` from
        :func:`scdeconv.tl.train_autoencoder`.
    key
        Key of the model in ``adata.uns``.
    {figure}
    bins
        Histogram bins over [-0.2, 1].
    {ax_show_save}

    Returns
    -------
    The Axes, with one labelled step histogram per quantity.
    """
    model = stored_result(adata, key, "model")
    if "reconstruction" not in model:
        raise KeyError(f"adata.uns[{key!r}] has no 'reconstruction'. Run `sd.tl.train_autoencoder(adata)` again.")
    quality = model["reconstruction"]
    series = {
        "gene correlation": quality["genes"]["correlation"],
        "gene deviance explained": quality["genes"]["deviance_explained"],
        "cell correlation": quality["cells"]["correlation"],
    }
    owns_figure = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or (5, 3.5), layout="constrained")
    edges = np.linspace(-0.2, 1.0, bins + 1)
    for label, values in series.items():
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        ax.hist(np.clip(values, -0.2, 1.0), bins=edges, histtype="step", density=True,
                label=f"{label} (median {np.median(values):.2f})")  # fmt: skip
    ax.set_xlabel("value on held-out cells")
    ax.set_ylabel("density")
    ax.legend(fontsize="small", frameon=False)
    ax.set_title("reconstruction of held-out cells" if title is None else title)
    savefig_or_show(ax.figure, "reconstruction", show=show, save=save, owns_figure=owns_figure)
    return ax
