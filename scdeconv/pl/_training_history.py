"""``sd.pl.training_history``: training and validation loss per epoch."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from .._docs import inject_docs
from .._keys import MODEL_KEY
from .._results import stored_result
from ._utils import savefig_or_show

__all__ = ["training_history"]


@inject_docs
def training_history(
    adata: AnnData,
    *,
    key: str = MODEL_KEY,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    log: bool = False,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes:
    """Training and validation loss against epoch, with the epoch kept by early stopping.

    Parameters
    ----------
    {result:model}
    {figure}
    log
        Logarithmic y axis. The recorded losses are full negative log-likelihoods (``log(x!)``
        included) or squared errors, so they are never negative.
    {ax_show_save}

    Returns
    -------
    The Axes, with lines labelled "train" and "validation" (when recorded) and a dashed
    vertical line at ``adata.uns[key]["params"]["best_epoch"]`` (when recorded).

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` or its ``"history"`` is missing: run
        ``sd.tl.train_autoencoder(adata)`` first.

    Examples
    --------
    >>> import scdeconv as sd
    >>> sd.pl.training_history(adata, log=True)  # doctest: +SKIP
    """
    model = stored_result(adata, key, "model")
    if "history" not in model:
        raise KeyError(f"Did not find adata.uns[{key!r}]['history']. Run `sd.tl.train_autoencoder(adata)` first.")
    history = pd.DataFrame(model["history"])
    params = dict(model.get("params", {}))
    epoch = history["epoch"] if "epoch" in history else pd.Series(range(len(history)))

    owns_figure = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or (5.0, 3.5), layout="constrained")
    for column, label in (("train_loss", "train"), ("val_loss", "validation")):
        if column in history and history[column].notna().any():
            ax.plot(epoch, history[column], marker="." if len(history) < 30 else None, label=label)
    best = params.get("best_epoch")
    if best is not None:
        ax.axvline(int(best), color="grey", linestyle="--", linewidth=1, label=f"best epoch ({int(best)})")
    if log:
        ax.set_yscale("log")
    likelihood = params.get("likelihood")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({likelihood})" if likelihood else "loss")
    ax.set_title("training history" if title is None else title)
    ax.legend(frameon=False)
    savefig_or_show(ax.figure, "training_history", show=show, save=save, owns_figure=owns_figure)
    return ax
