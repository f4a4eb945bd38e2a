"""``sd.pl.embedding_comparison``: UMAP of the input next to UMAP of the representation (a, c)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from scipy import sparse

from .._docs import inject_docs
from .._keys import LATENT_KEY, model_key_for
from .._logging import logger
from .._results import stored_obsm
from .._utils import get_matrix
from ._utils import savefig_or_show

__all__ = ["embedding_comparison"]


def looks_like_counts(x: Any, n_check: int = 1000) -> bool:
    """Whether the first ``n_check`` rows of ``x`` are non-negative integers (raw counts)."""
    head = x[:n_check]
    values = head.data if sparse.issparse(head) else np.asarray(head)
    values = np.asarray(values, dtype=float)
    return bool(np.all(values >= 0) and np.all(values == np.round(values)))


def _input_matrix(adata: AnnData, key: str, layer: str | None) -> tuple[Any, str | None]:
    """The autoencoder's input as a fresh float32 matrix (never the user's own), and its layer.

    Genes and layer default to those recorded with the model in ``adata.uns[model_key_for(key)]``.
    """
    model = adata.uns.get(model_key_for(key), {})
    if layer is None:
        layer = dict(model.get("params", {})).get("layer")
        layer = None if layer == "X" else layer  # train_autoencoder records X as "X" (h5ad has no None)
    genes = pd.Index(np.asarray(model.get("var_names", []), dtype=str))
    genes = genes[genes.isin(adata.var_names)]
    x = get_matrix(adata, layer)
    if len(genes) == 0 or len(genes) == adata.n_vars:
        return x.astype(np.float32), layer  # astype copies: the user's matrix is never modified
    return x[:, adata.var_names.get_indexer(genes)].astype(np.float32), layer


def _umap(
    tmp: AnnData,
    *,
    use_rep: str,
    n_neighbors: int,
    seed: int,
    neighbors_kwargs: Mapping[str, Any] | None = None,
    umap_kwargs: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """UMAP coordinates of ``tmp`` (modified in place) from a kNN graph on ``obsm[use_rep]``."""
    import scanpy as sc

    n_neighbors = min(n_neighbors, tmp.n_obs - 1)
    sc.pp.neighbors(tmp, use_rep=use_rep, n_neighbors=n_neighbors, random_state=seed, **dict(neighbors_kwargs or {}))
    sc.tl.umap(tmp, random_state=seed, **dict(umap_kwargs or {}))
    return np.asarray(tmp.obsm["X_umap"])


def input_umap(
    adata: AnnData, *, key: str, layer: str | None, n_pcs: int, n_neighbors: int, seed: int, **kwargs
) -> np.ndarray:
    """UMAP of the input, computed on a copy: counts are normalised and log1p'd, then PCA."""
    import scanpy as sc

    x, layer = _input_matrix(adata, key, layer)
    tmp = AnnData(X=x, obs=pd.DataFrame(index=adata.obs_names.copy()))
    if looks_like_counts(tmp.X):
        sc.pp.normalize_total(tmp)
        sc.pp.log1p(tmp)
    n_comps = max(1, min(n_pcs, tmp.n_obs - 1, tmp.n_vars - 1))
    sc.pp.pca(tmp, n_comps=n_comps, random_state=seed)
    return _umap(tmp, use_rep="X_pca", n_neighbors=n_neighbors, seed=seed, **kwargs)


def representation_umap(adata: AnnData, *, key: str, n_neighbors: int, seed: int, **kwargs) -> np.ndarray:
    """UMAP of ``adata.obsm[key]``, computed on a scratch AnnData."""
    rep = np.asarray(adata.obsm[key], dtype=np.float32)
    tmp = AnnData(obs=pd.DataFrame(index=adata.obs_names.copy()), obsm={"X_rep": rep})
    return _umap(tmp, use_rep="X_rep", n_neighbors=n_neighbors, seed=seed, **kwargs)


def _plotting_adata(adata: AnnData, bases: Mapping[str, np.ndarray], colors: Sequence[str | None]) -> AnnData:
    """A lightweight AnnData for ``sc.pl.embedding`` that shares X but owns obs and uns.

    ``sc.pl.embedding`` may turn string columns of ``obs`` into categoricals and write
    ``uns["<column>_colors"]``; doing that here leaves the user's object untouched.
    """
    uns = {k: np.array(v, copy=True) for k, v in adata.uns.items() if k.endswith("_colors")}
    view = AnnData(X=adata.X, obs=adata.obs.copy(), var=adata.var.copy(), obsm=dict(bases), uns=uns)
    wants_genes = any(c is not None and c not in adata.obs.columns for c in colors)
    if adata.raw is not None and wants_genes:
        view.raw = AnnData(X=adata.raw.X, var=adata.raw.var.copy(), obs=pd.DataFrame(index=adata.obs_names.copy()))
    return view


@inject_docs
def embedding_comparison(
    adata: AnnData,
    *,
    color: str | Sequence[str] | None = None,
    key: str = LATENT_KEY,
    layer: str | None = None,
    basis_input: str = "X_umap_input",
    basis_rep: str | None = None,
    n_neighbors: int = 15,
    n_pcs: int = 50,
    recompute: bool = False,
    seed: int = 0,
    neighbors_kwargs: Mapping[str, Any] | None = None,
    umap_kwargs: Mapping[str, Any] | None = None,
    embedding_kwargs: Mapping[str, Any] | None = None,
    figsize: tuple[float, float] | None = None,
    ax: Sequence[Axes] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> list[Axes]:
    """UMAP of the input next to UMAP of the representation (the paper's panels a and c).

    The input UMAP is computed on a copy of the autoencoder's input: the model's genes
    (``adata.uns["scdeconv"]["var_names"]`` when present) from ``adata.X`` or ``layer``; raw
    counts (non-negative integers) are normalised (``sc.pp.normalize_total``) and log1p'd, then
    reduced by PCA (``n_pcs`` components or fewer), a kNN graph (``n_neighbors``) and UMAP.
    The representation UMAP uses a kNN graph on ``adata.obsm[key]``. Both are cached in
    ``obsm`` and reused by later calls unless ``recompute=True``; nothing else of ``adata``
    changes (``obs``, ``X``, ``uns`` and existing ``obsp`` graphs are untouched).

    Parameters
    ----------
    adata
        Annotated data matrix with the representation in ``adata.obsm[key]``.
    color
        ``obs`` column(s) or gene(s) to colour by; one row of two panels per entry.
    key
        ``obsm`` key of the representation, from :func:`scdeconv.tl.train_autoencoder`.
    layer
        Layer with the input counts; default the layer recorded with the model, else ``X``.
    basis_input
        ``obsm`` key where the input UMAP is cached.
    basis_rep
        ``obsm`` key where the representation UMAP is cached; default
        ``"X_umap_" + key`` without its ``X_`` prefix (``"X_umap_scdeconv"``).
    n_neighbors
        Neighbours of the kNN graphs behind both UMAPs.
    n_pcs
        Principal components of the input (at most ``n_obs - 1`` and ``n_vars - 1``).
    recompute
        Recompute both UMAPs even if cached (do this after retraining or changing parameters:
        a cached UMAP is reused whatever the parameters were).
    seed
        Random state of PCA, neighbours and UMAP.
    neighbors_kwargs
        Further arguments of :func:`scanpy.pp.neighbors` for both kNN graphs (e.g.
        ``transformer="sklearn"``).
    umap_kwargs
        Further arguments of :func:`scanpy.tl.umap` for both UMAPs (e.g. ``maxiter=200``, fewer
        optimisation epochs than the default for small data).
    embedding_kwargs
        Further arguments of :func:`scanpy.pl.embedding` (e.g. ``legend_loc``, ``size``).
    figsize
        Figure size when a new figure is made; default 4 inches per panel.
    ax
        ``2 * n_colors`` Axes to draw into, row by row (input, representation, ...).
    {show_save}

    Returns
    -------
    A list of Axes, ``[input, representation]`` for each colour in order (titled
    ``"input"`` / ``"representation"``, with the colour key when given).
    Writes, when missing or ``recompute=True``:

    ``adata.obsm[basis_input]`` (default ``"X_umap_input"``)
        UMAP coordinates of the input, cells x 2.
    ``adata.obsm[basis_rep]`` (default ``"X_umap_scdeconv"``)
        UMAP coordinates of the representation, cells x 2.

    Raises
    ------
    KeyError
        If ``adata.obsm[key]`` is missing: run ``sd.tl.train_autoencoder(adata)`` first.
    ValueError
        If ``ax`` does not hold two Axes per colour.

    Examples
    --------
    >>> import scdeconv as sd
    >>> sd.pl.embedding_comparison(adata, color="cell_type")  # doctest: +SKIP
    """
    import scanpy as sc

    stored_obsm(adata, key, "representation")
    if basis_rep is None:
        basis_rep = f"X_umap_{key.removeprefix('X_')}"
    colors: list[str | None] = [color] if color is None or isinstance(color, str) else list(color)
    if not colors:
        colors = [None]

    if ax is not None and len(np.ravel(np.asarray(ax, dtype=object))) != 2 * len(colors):
        raise ValueError(f"`ax` must hold {2 * len(colors)} Axes (two per colour), got {np.size(ax)}.")

    def cached(basis: str) -> bool:
        return not recompute and basis in adata.obsm and np.shape(adata.obsm[basis]) == (adata.n_obs, 2)

    settings = dict(n_neighbors=n_neighbors, seed=seed, neighbors_kwargs=neighbors_kwargs, umap_kwargs=umap_kwargs)
    if not cached(basis_input):
        adata.obsm[basis_input] = input_umap(adata, key=key, layer=layer, n_pcs=n_pcs, **settings)
        logger.info("added adata.obsm[%r] (UMAP of the input)", basis_input)
    if not cached(basis_rep):
        adata.obsm[basis_rep] = representation_umap(adata, key=key, **settings)
        logger.info("added adata.obsm[%r] (UMAP of the representation)", basis_rep)

    owns_figure = ax is None
    if ax is None:
        size = figsize or (8.5, 4.0 * len(colors))
        _, grid = plt.subplots(len(colors), 2, figsize=size, squeeze=False, layout="constrained")
        axes = list(grid.ravel())
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
    view = _plotting_adata(adata, {basis_input: adata.obsm[basis_input], basis_rep: adata.obsm[basis_rep]}, colors)
    kwargs = dict(embedding_kwargs or {})
    for i, c in enumerate(colors):
        for j, (basis, name) in enumerate(((basis_input, "input"), (basis_rep, "representation"))):
            panel = axes[2 * i + j]
            sc.pl.embedding(view, basis=basis, color=c, ax=panel, show=False, **kwargs)
            panel.set_title(name if c is None else f"{name}: {c}")
            panel.set_xlabel("UMAP1")
            panel.set_ylabel("UMAP2")
    savefig_or_show(axes[0].figure, "embedding_comparison", show=show, save=save, owns_figure=owns_figure)
    return axes
