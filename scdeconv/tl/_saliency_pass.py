"""The AnnData side of a saliency pass: the model and its counts out of ``adata``, reducers through the driver.

Shared by :func:`module_impact`, :func:`group_diff`, :func:`node_genes` and :func:`stability`: the
model is rebuilt from ``uns``, the counts are taken in the model's gene order (streamed from disk
for a backed AnnData), and :func:`scdeconv._module.saliency.stream_attributions` feeds the
reducers each tool declares.
"""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from .._model_store import load_model, stored_model
from .._rows import ChunkedRows
from .._utils import check_counts, columns_of, count_matrix


def model_counts(adata: AnnData, model_key: str, chunk_size: int | None = None):
    """The raw counts the model was trained on, columns in the model's gene order, and its gene list.

    For a backed AnnData the counts stay on disk and are read ``chunk_size`` cells at a time.
    """
    entry = stored_model(adata, model_key)
    layer = entry["params"]["layer"]
    layer = None if layer == "X" else layer
    genes = np.asarray(entry["var_names"]).astype(str)
    columns = columns_of(adata.var_names, genes, what=f"the model in adata.uns[{model_key!r}]")
    counts = count_matrix(adata, layer, columns, chunk_size=chunk_size)
    if not isinstance(counts, ChunkedRows):  # on disk the values were checked when training
        check_counts(counts, layer=layer)
    return counts, genes


def stored_latent(adata: AnnData, model_key: str) -> np.ndarray:
    """The stored representation, or a fresh forward pass when it is missing or stale."""
    entry = stored_model(adata, model_key)
    n_nodes = int(entry["params"]["n_latent"])
    latent_key = entry["params"].get("latent_key", "")
    if latent_key in adata.obsm and adata.obsm[latent_key].shape == (adata.n_obs, n_nodes):
        return np.asarray(adata.obsm[latent_key])
    from .._module.inference import embed

    return embed(load_model(adata, model_key)[0], model_counts(adata, model_key)[0])


def gene_means(adata: AnnData, model_key: str, options) -> np.ndarray:
    """Mean encoder input of each model gene over all cells (what the expression bins are cut from)."""
    from .._module.inference import input_means
    from .._module.training import resolve_device

    module, _ = load_model(adata, model_key)
    counts, _ = model_counts(adata, model_key, options.chunk_size)
    batch_size = counts.chunk_size if isinstance(counts, ChunkedRows) else 1024
    return input_means(module, counts, batch_size=batch_size, device=resolve_device(options.device))


def saliency_pass(
    adata: AnnData, reducers: list, *, model_key: str, labels: np.ndarray, n_groups: int, method: str, options
) -> np.ndarray:
    """Stream every labelled cell's attributions into ``reducers``; return the number of cells per group.

    Cells without counts are left out (and counted nowhere).

    Parameters
    ----------
    reducers
        Reducers of :mod:`scdeconv._module.reducers`, filled in place.
    labels
        Group index of every cell in ``0 .. n_groups-1``; cells labelled ``-1`` are skipped.
    method
        Attribution method.
    options
        A :class:`~scdeconv._module.saliency.StreamOptions`.
    """
    from .._module.saliency import stream_attributions

    module, _ = load_model(adata, model_key)
    counts, _ = model_counts(adata, model_key, options.chunk_size)
    fed = stream_attributions(module, counts, reducers, labels=np.asarray(labels), method=method, options=options)
    return np.pad(fed, (0, n_groups - len(fed)))
