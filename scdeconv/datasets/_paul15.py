"""Paul et al. 2015 mouse myeloid progenitors, the paper's own data (bundled)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._data_files import data_path
from .._logging import logger

__all__ = ["paul15"]

BUNDLED_FILE = "paul15.h5ad"
CLUSTER_KEY = "paul15_clusters"

# Coarse lineage of each of the 19 clusters, in the order of the clusters' numbering.
CELL_TYPES = ["Ery", "MEP", "Mk", "GMP", "DC", "Baso", "Mo", "Neu", "Eos", "Lymph"]


def paul15() -> AnnData:
    """Mouse myeloid progenitors of Paul et al. 2015 (MARS-seq), the data of Kinalis et al. 2019.

    2730 cells x 3451 genes of raw UMI counts, as built by :func:`scanpy.datasets.paul15`, read
    from the copy bundled with scdeconv (no download). Only when that file is missing, scanpy's
    loader downloads it.

    Cite: Paul F, Arkin Y, Giladi A, et al. Transcriptional heterogeneity and lineage commitment in
    myeloid progenitors. *Cell* 163:1663-1677 (2015); data GEO GSE72857.

    Returns
    -------
    A new AnnData on every call, with

    ``X``
        Raw counts, int32 CSR.
    ``obs["paul15_clusters"]``
        The 19 clusters of the paper (``1Ery`` .. ``6Ery``, ``7MEP``, ``8Mk``, ``9GMP``,
        ``10GMP``, ``11DC``, ``12Baso``, ``13Baso``, ``14Mo``, ``15Mo``, ``16Neu``, ``17Neu``,
        ``18Eos``, ``19Lymph``).
    ``obs["cell_type"]``
        Their coarse lineage: ``Ery`` (1-6), ``MEP``, ``Mk``, ``GMP`` (9-10), ``DC``, ``Baso``
        (12-13), ``Mo`` (14-15), ``Neu`` (16-17), ``Eos``, ``Lymph`` (categorical, in that order).
    ``uns["iroot"]``
        Index of the root cell scanpy's PAGA tutorial uses.

    Notes
    -----
    Gene symbols are mouse, mostly capitalised (``Gata1``). The paper's sort groups
    (``CMP CD41``, ``Cebpe control``, ...) are not part of these data.

    Examples
    --------
    >>> import scdeconv as sd
    >>> adata = sd.datasets.paul15()
    >>> int((adata.obs["cell_type"] == "Ery").sum())
    1095
    """
    try:
        path = data_path(BUNDLED_FILE)
    except FileNotFoundError:
        adata = _download()
    else:
        adata = ad.read_h5ad(path)
    adata.X = _integer_csr(adata.X)
    adata.obs["cell_type"] = cell_types(adata.obs[CLUSTER_KEY])
    return adata


def cell_types(clusters: pd.Series) -> pd.Categorical:
    """Coarse lineage of Paul15 clusters: the cluster label without its number (``9GMP`` -> ``GMP``)."""
    coarse = clusters.astype(str).str.lstrip("0123456789")
    unknown = sorted(set(coarse) - set(CELL_TYPES))
    if unknown:
        raise ValueError(f"Unexpected Paul15 cluster labels {unknown}; expected e.g. '1Ery', '9GMP', '14Mo'.")
    return pd.Categorical(coarse, categories=CELL_TYPES)


def _download() -> AnnData:
    import scanpy as sc

    logger.warning("Bundled %s not found; downloading Paul15 through scanpy.datasets.paul15().", BUNDLED_FILE)
    try:
        return sc.datasets.paul15()
    except OSError as err:  # URLError and HTTP errors are OSErrors
        raise RuntimeError(
            f"The bundled {BUNDLED_FILE} is missing and downloading Paul15 failed ({err}). "
            "Reinstall scdeconv from a full checkout (it ships data/paul15.h5ad), or connect to the internet."
        ) from err


def _integer_csr(X) -> sp.csr_matrix:
    # scanpy's loader gives float32 with integer values; keep counts as integers, as bundled.
    X = sp.csr_matrix(X)
    if not np.issubdtype(X.dtype, np.integer):
        X = X.astype(np.int32)
    return X
