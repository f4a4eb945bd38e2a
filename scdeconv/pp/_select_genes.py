from __future__ import annotations

import numpy as np
from anndata import AnnData

from .._choices import GeneMode, check_choice
from .._keys import SELECTED_KEY
from .._logging import logger
from .._results import claim_uns_key, result_kind
from .._rows import is_on_disk, row_blocks
from .._utils import check_counts, check_not_backed_copy, check_var_names, count_matrix, get_matrix
from ..genesets import describe_gene_sets, resolve_gene_sets


def _max_per_gene(matrix) -> np.ndarray:
    """Largest count of each gene; streamed chunk by chunk when the matrix is on disk."""
    best = np.full(matrix.shape[1], -np.inf)
    for block in row_blocks(matrix):
        top = block.max(axis=0).todense() if hasattr(block, "todense") else block.max(axis=0)
        best = np.maximum(best, np.asarray(top, dtype=np.float64).ravel())
    return best


def _highly_variable(adata: AnnData, matrix, keep: np.ndarray, n_top_genes: int) -> np.ndarray:
    """Highly variable genes among ``keep``, from a log-normalised copy (the user's data is untouched)."""
    import scanpy as sc

    view = AnnData(matrix[:, np.flatnonzero(keep)].astype(np.float32))
    view.var_names = adata.var_names[keep]
    sc.pp.normalize_total(view, target_sum=1e4)
    sc.pp.log1p(view)
    sc.pp.highly_variable_genes(view, n_top_genes=min(n_top_genes, view.n_vars), flavor="seurat")
    hvg = np.zeros(adata.n_vars, dtype=bool)
    hvg[np.flatnonzero(keep)[view.var["highly_variable"].to_numpy()]] = True
    return hvg


def _subset_genes_in_place(adata: AnnData, keep: np.ndarray) -> None:
    """Keep only the genes ``keep`` in ``adata`` itself, as ``sc.pp.filter_genes(inplace=True)`` does.

    anndata has no public in-place subset; scanpy's own filters call this method, and where it is
    missing the error says how to subset instead.
    """
    subset = getattr(adata, "_inplace_subset_var", None)
    if subset is None:
        raise RuntimeError(
            "This anndata version cannot subset genes in place. Call select_genes with subset=False, then "
            "`adata = adata[:, adata.var['scdeconv_selected']].copy()`."
        )
    subset(keep)


def select_genes(
    adata: AnnData,
    *,
    gene_sets="hallmark",
    min_count: int = 3,
    mode: GeneMode = "geneset",
    layer: str | None = None,
    species: str | None = None,
    n_top_genes: int = 2000,
    key_added: str = SELECTED_KEY,
    subset: bool = False,
    copy: bool = False,
) -> AnnData | None:
    """Choose the genes the autoencoder is trained on (the paper's filter, and two wider modes).

    A gene is kept when some cell has at least ``min_count`` counts of it (the paper: a count
    > 2 in at least one cell), and then, by ``mode``:

    - ``"geneset"``: only genes in some gene set (the paper's choice; default);
    - ``"hvg"``: the union of gene-set genes and ``n_top_genes`` highly variable genes, so that
      programs outside known sets can be found;
    - ``"all"``: every gene passing the count filter.

    Parameters
    ----------
    adata
        Raw counts in ``X`` or ``layer``.
    gene_sets
        As in :func:`scdeconv.tl.module_impact`; matched case-insensitively.
    min_count
        Smallest maximum count over cells for a gene to be kept.
    mode
        ``"geneset"``, ``"hvg"`` or ``"all"``.
    layer
        Layer with raw counts (``None``: ``X``).
    species
        ``"human"`` or ``"mouse"``; detected from the symbols when ``None``.
    n_top_genes
        Highly variable genes added in ``mode="hvg"``.
    key_added
        Boolean ``var`` column marking the genes; :func:`scdeconv.tl.train_autoencoder` uses it.
    subset
        Subset ``adata`` to the selected genes in place instead of marking them.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.var['scdeconv_selected' | key_added]``
    (or subsets the genes when ``subset=True``) and ``adata.uns['scdeconv_selected' | key_added]``
    with ``params`` and ``n_genes``.
    """
    check_choice("mode", mode, GeneMode)
    check_not_backed_copy(adata, copy)
    if mode == "hvg" and is_on_disk(get_matrix(adata, layer)):
        raise ValueError("mode='hvg' needs the counts in memory. Use mode='geneset' or 'all' on a backed AnnData.")
    adata = adata.copy() if copy else adata
    check_var_names(adata.var_names)
    if key_added in adata.var and result_kind(adata.uns.get(key_added)) != "gene_selection":
        logger.warning(
            "Overwriting adata.var[%r], which was not written by select_genes. Pass another key_added to keep it.",
            key_added,
        )
    claim_uns_key(adata, key_added, "gene_selection")
    matrix = count_matrix(adata, layer, np.arange(adata.n_vars))  # on disk: read in chunks
    check_counts(matrix, layer=layer)
    keep = _max_per_gene(matrix) >= min_count
    if not keep.any():
        raise ValueError(f"No gene reaches a count of {min_count} in any cell. Lower min_count, or check the layer.")
    in_sets = np.zeros(adata.n_vars, dtype=bool)
    if mode != "all":
        indices, _, species = resolve_gene_sets(
            gene_sets, adata.var_names.to_numpy(dtype=str), species=species, min_size=1
        )
        in_sets[np.concatenate(list(indices.values()))] = True
    if mode == "geneset":
        selected = keep & in_sets
    elif mode == "hvg":
        selected = keep & (in_sets | _highly_variable(adata, matrix, keep, n_top_genes))
    else:
        selected = keep
    if not selected.any():
        raise ValueError("No gene passes both the count filter and gene-set membership. Try mode='hvg' or 'all'.")
    params = {
        "gene_sets": describe_gene_sets(gene_sets),
        "min_count": int(min_count),
        "mode": mode,
        "layer": layer or "X",
        "species": species or "",
        "n_top_genes": int(n_top_genes),
    }
    if subset:
        _subset_genes_in_place(adata, selected)
        adata.var[key_added] = True
    else:
        adata.var[key_added] = selected
    adata.uns[key_added] = {"params": params, "n_genes": int(selected.sum())}
    logger.info(
        "Selected %d of %d genes (mode=%r); added adata.var[%r].", selected.sum(), len(selected), mode, key_added
    )
    return adata if copy else None
