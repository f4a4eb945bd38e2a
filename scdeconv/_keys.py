"""Default result keys, one place for every module that reads or writes them."""

from __future__ import annotations

LATENT_KEY = "X_scdeconv"  # adata.obsm: the representation layer, cells x nodes
MODEL_KEY = "scdeconv"  # adata.uns: params, var_names, weights, history
IMPACT_KEY = "scdeconv_impact"  # adata.uns: nodes x gene-set impact tables
GROUP_DIFF_KEY = "scdeconv_group_diff"  # adata.uns: two-group comparison
ACTIVITY_KEY = "scdeconv_activity"  # adata.obsm: per-cell activity of each gene set, cells x sets
STABILITY_KEY = "scdeconv_stability"  # adata.uns: node stability across seeds
GSEA_KEY = "scdeconv_gsea"  # adata.uns: preranked GSEA of each node's gene ranking
NODE_GENES_KEY = "scdeconv_node_genes"  # adata.uns: ranked genes per node
NODES_KEY = "scdeconv_nodes"  # adata.uns: one record per node (annotate_nodes)
SELECTED_KEY = "scdeconv_selected"  # adata.var: genes chosen by select_genes (and its uns record)
HALLMARK_PREFIX = "HALLMARK_"  # dropped from gene-set labels by sd.pl (strip_prefix) and sd.get.activity


def node_names(n_nodes: int) -> list[str]:
    """Labels of the representation nodes, the same everywhere: ``node_0 ... node_{n-1}``."""
    return [f"node_{i}" for i in range(n_nodes)]


def model_key_for(latent_key: str) -> str:
    """The ``uns`` key of a model whose representation is in ``obsm[latent_key]``.

    ``"X_scdeconv"`` -> ``"scdeconv"``: the scanpy habit of an ``X_`` prefix for embeddings.
    """
    return latent_key[2:] if latent_key.startswith("X_") and len(latent_key) > 2 else f"{latent_key}_model"
