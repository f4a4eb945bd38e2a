"""Wu et al. 2020 human tumour-infiltrating T cells, 200 cells (bundled)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._data_files import data_path

__all__ = ["wu2020_tcells"]

BUNDLED_FILE = "wu2020_200_tcells.h5ad"
CLUSTER_KEY = "cluster_orig"


def wu2020_tcells() -> AnnData:
    """200 human T cells from tumours, adjacent tissue and blood (Wu et al. 2020), bundled.

    Raw UMI counts of 30,727 genes (10x Genomics, gene symbols as ``var_names``), a subsample
    that scirpy ships as test data. The authors' clusters are in ``obs["cluster_orig"]``: their
    prefix names the lineage (``4.x`` CD4+, ``8.x`` CD8+, ``3.1-MT`` mitochondrial-high cells of
    either), the suffix the state (``Teff``, ``Tem``, ``Trm``, ``Treg``, ...).

    Cite: Wu TD, Madireddi S, de Almeida PE, et al. Peripheral T cell expansion predicts tumour
    infiltration and clinical response. *Nature* 579:274-278 (2020). The subsample comes from
    the scirpy 0.22.5 test data (BSD-3).

    Returns
    -------
    A new AnnData on every call, with

    ``X``
        Raw counts, int32 CSR.
    ``obs["cluster_orig"]``
        The authors' 16 T-cell clusters (categorical), plus ``patient``, ``sample``, ``source``
        and scirpy's immune-receptor columns.
    ``obs["lineage"]``
        ``"CD4"``, ``"CD8"`` or ``"other"`` (``3.1-MT``), from the cluster prefix (categorical).
    ``obsm["X_umap_orig"]``
        The authors' UMAP coordinates.

    Examples
    --------
    >>> import scdeconv as sd
    >>> adata = sd.datasets.wu2020_tcells()
    >>> adata.obs["lineage"].value_counts()["CD8"]
    91
    """
    adata = ad.read_h5ad(data_path(BUNDLED_FILE))
    X = sp.csr_matrix(adata.X)
    if not np.issubdtype(X.dtype, np.integer):
        X = X.astype(np.int32)
    adata.X = X
    adata.obs["lineage"] = lineages(adata.obs[CLUSTER_KEY])
    return adata


def lineages(clusters: pd.Series) -> pd.Categorical:
    """T-cell lineage from Wu et al.'s cluster names: ``8.1-Teff`` -> ``CD8``, ``4.6a-Treg`` -> ``CD4``."""
    prefix = clusters.astype(str).str.split(".", n=1).str[0]
    lineage = prefix.map({"4": "CD4", "8": "CD8"}).fillna("other")
    return pd.Categorical(lineage, categories=["CD4", "CD8", "other"])
