from __future__ import annotations

from collections import Counter

import pandas as pd
from anndata import AnnData

from .._keys import ACTIVITY_KEY, HALLMARK_PREFIX
from .._results import stored_obsm


def short_names(names: pd.Index) -> list[str]:
    """Gene-set names without the ``HALLMARK_`` prefix, where that leaves a unique name.

    A name whose short form is another set's name, or the short form of another set too, stays
    as it is, so the short names are as unique as the full ones.
    """
    stripped = [name.removeprefix(HALLMARK_PREFIX) for name in names]
    counts, full = Counter(stripped), set(names)
    return [
        short if short == name or (counts[short] == 1 and short not in full) else name
        for name, short in zip(names, stripped, strict=True)
    ]


def activity(adata: AnnData, key: str = ACTIVITY_KEY, *, strip_prefix: bool = False) -> AnnData:
    """Per-cell gene-set activity as an AnnData (cells x gene sets), decoupler's pattern.

    ``X`` holds ``adata.obsm[key]`` (written by :func:`scdeconv.tl.module_impact`); ``obs`` and
    ``obsm`` are copied, so that scanpy's plots and tools work on it directly (``sc.pl.umap``,
    ``sc.pl.embedding``, ``sc.tl.rank_genes_groups``, ``sc.pl.dotplot``).

    Both names of a set work in scanpy. ``var["gene_set"]`` holds the full names and
    ``var["short_name"]`` the names without the ``HALLMARK_`` prefix, whatever ``strip_prefix``
    is, and scanpy's ``gene_symbols`` argument picks the other column:

    - default (full names): ``sc.pl.umap(act, color="HALLMARK_HEME_METABOLISM")`` or
      ``sc.pl.umap(act, color="HEME_METABOLISM", gene_symbols="short_name")``;
    - ``act = sd.get.activity(adata, strip_prefix=True)``: ``sc.pl.umap(act, color="HEME_METABOLISM")``
      or ``sc.pl.umap(act, color="HALLMARK_HEME_METABOLISM", gene_symbols="gene_set")``.

    A short name is used only where it is unique: a set whose short name would clash with another
    set's name keeps its full name. Sets without the prefix (your own) keep their names.

    Parameters
    ----------
    adata
        AnnData with ``adata.obsm[key]`` from :func:`scdeconv.tl.module_impact`.
    key
        ``obsm`` key of the activity table.
    strip_prefix
        Name the gene sets without their ``HALLMARK_`` prefix (``HEME_METABOLISM``), as the
        labels of ``sd.pl`` show them. ``False`` (default) keeps the full names, the ones
        ``obsm[key]``, :func:`scdeconv.get.impact_df` and every ``uns`` table of scdeconv use, so
        that those tables index this AnnData as they are (``act[:, table["gene_set"]]``).

    Parameters
    ----------
    adata
        Annotated data matrix with the per-cell activity of :func:`scdeconv.tl.module_impact`.
    key
        Key of the activity in ``adata.obsm`` (``activity_key`` of ``module_impact``).

    Returns
    -------
    A new AnnData; ``var_names`` are the gene-set names, full or (``strip_prefix=True``) short;
    ``var`` has the columns ``gene_set`` (full names) and ``short_name``.

    Examples
    --------
    >>> act = sd.get.activity(adata, strip_prefix=True)  # doctest: +SKIP
    >>> sc.pl.umap(act, color=["HEME_METABOLISM", "cell_type"])  # doctest: +SKIP
    """
    table = stored_obsm(adata, key, "activity")
    full = pd.Index([str(c) for c in table.columns])
    short = short_names(full)
    var = pd.DataFrame({"gene_set": full, "short_name": short}, index=pd.Index(short if strip_prefix else full))
    act = AnnData(X=table.to_numpy().copy(), obs=adata.obs.copy(), var=var)
    for name, value in adata.obsm.items():
        if name != key:
            act.obsm[name] = value.copy()
    return act
