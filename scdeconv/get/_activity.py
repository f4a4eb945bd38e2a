from __future__ import annotations

from anndata import AnnData

from .._keys import ACTIVITY_KEY


def activity(adata: AnnData, key: str = ACTIVITY_KEY) -> AnnData:
    """Per-cell gene-set activity as an AnnData (cells x gene sets), decoupler's pattern.

    ``X`` holds ``adata.obsm[key]`` (written by :func:`scdeconv.tl.module_impact`); ``obs`` and
    ``obsm`` are copied, so that ``sc.pl.umap(act, color="HALLMARK_HEME_METABOLISM")`` and
    ``sc.tl.rank_genes_groups(act, "cell_type")`` work directly.

    Parameters
    ----------
    adata
        Annotated data matrix with the per-cell activity of :func:`scdeconv.tl.module_impact`.
    key
        Key of the activity in ``adata.obsm`` (``activity_key`` of ``module_impact``).

    Returns
    -------
    A new AnnData; ``var_names`` are the gene-set names.
    """
    if key not in adata.obsm:
        raise KeyError(f"Did not find adata.obsm[{key!r}]. Run `sd.tl.module_impact(adata)` first.")
    table = adata.obsm[key]
    act = AnnData(X=table.to_numpy().copy(), obs=adata.obs.copy())
    act.var_names = list(table.columns)
    for name, value in adata.obsm.items():
        if name != key:
            act.obsm[name] = value.copy()
    return act
