from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import inject_docs
from .._keys import MODEL_KEY, NODE_GENES_KEY, node_names
from .._logging import logger
from .._model_store import stored_model
from .._rows import DEFAULT_CHUNK_SIZE
from .._utils import check_not_backed_copy, claim_uns_key
from ..scoring import binned_zscores, expression_bins
from ._saliency_pass import saliency_group_sums


def attribution_zscores(
    adata: AnnData,
    *,
    model_key: str,
    method: str,
    n_bins: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> np.ndarray:
    """Nodes x genes: each gene's mean |attribution| over cells, z-scored within expression bins."""
    n_genes = len(stored_model(adata, model_key)["var_names"])
    sums = saliency_group_sums(
        adata,
        model_key=model_key,
        set_columns=[np.arange(n_genes)],
        labels=np.zeros(adata.n_obs, dtype=np.int64),
        n_groups=1,
        method=method,
        score="enrichment",
        chunk_size=chunk_size,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    return binned_zscores(sums.mean("attribution")[0], expression_bins(sums.gene_mean, n_bins))


@inject_docs
def node_genes(
    adata: AnnData,
    *,
    n_top: int = 20,
    method: str = "grad_x_input",
    n_bins: int = 10,
    model_key: str = MODEL_KEY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
    key_added: str = NODE_GENES_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Rank the genes that drive each node, as ``sc.tl.rank_genes_groups`` ranks marker genes.

    Each gene's mean |attribution| over cells is z-scored among genes of similar mean expression
    (the per-gene part of ``score="enrichment"`` in :func:`scdeconv.tl.module_impact`), so a
    gene ranks high because it drives the node, not because it is highly expressed. This is how
    to find modules outside the known gene sets.

    Parameters
    ----------
    adata
        The AnnData the model was trained on.
    n_top
        Genes kept per node.
    method
        Attribution, as in :func:`scdeconv.tl.module_impact`.
    n_bins
        Expression bins for the z-scores.
    model_key
        ``uns`` key of the model.
    chunk_size, batch_size, device, progress
        As in :func:`scdeconv.tl.module_impact`.
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_node_genes' | key_added]``:
    ``names`` and ``scores`` (DataFrames, ``n_top`` rows x nodes, best first) and ``params``.
    """
    check_not_backed_copy(adata, copy)
    adata = adata.copy() if copy else adata
    entry = stored_model(adata, model_key)
    claim_uns_key(adata, key_added, "node_genes", reads=(model_key,))
    genes = np.asarray(entry["var_names"]).astype(str)
    if n_top < 1:
        raise ValueError(f"n_top must be at least 1, not {n_top}.")
    z = attribution_zscores(
        adata,
        model_key=model_key,
        method=method,
        n_bins=n_bins,
        chunk_size=chunk_size,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    n_top = min(n_top, len(genes))
    order = np.argsort(-z, axis=1, kind="stable")[:, :n_top]
    nodes = node_names(z.shape[0])
    adata.uns[key_added] = {
        "params": {"n_top": int(n_top), "method": method, "n_bins": int(n_bins), "model_key": model_key},
        "names": pd.DataFrame(genes[order].T, columns=nodes),
        "scores": pd.DataFrame(np.take_along_axis(z, order, axis=1).T, columns=nodes),
    }
    logger.info("Added adata.uns[%r]: top %d genes of %d nodes.", key_added, n_top, len(nodes))
    return adata if copy else None
