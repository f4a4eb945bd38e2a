"""``sd.tl.group_diff``: which gene sets drive nodes differently in two groups of cells (panel e)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY, IMPACT_KEY
from .._logging import logger
from .._module.config import StreamOptions
from .._results import claim_uns_key, stored_result
from .._rows import DEFAULT_CHUNK_SIZE
from .._utils import check_not_backed_copy
from ..scoring import (
    MatchedSets,
    active_cells,
    activity_tests,
    binned_zscores,
    expression_bins,
    log_ratio,
    node_set_tests,
    scaled_difference,
    set_enrichment,
)
from ._groups import as_group_list, two_group_labels
from ._module_impact import group_impact, score_reducer
from ._saliency_pass import saliency_pass, stored_latent


def _label(group: str | Sequence[str]) -> str:
    return "+".join(map(str, as_group_list(group)))


def _mean_change(sums: np.ndarray, n_cells: np.ndarray) -> np.ndarray:
    """Group 1's mean minus group 2's of per-group sums (2 x ...)."""
    return sums[0] / max(int(n_cells[0]), 1) - sums[1] / max(int(n_cells[1]), 1)


@inject_docs
def group_diff(
    adata: AnnData,
    groupby: str,
    group1: str | Sequence[str],
    group2: str | Sequence[str] = "rest",
    *,
    impact_key: str = IMPACT_KEY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
    key_added: str = GROUP_DIFF_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Compare the impact of gene sets on nodes between two groups of cells (the paper's panel e).

    The impact is computed separately over the cells of ``group1`` and of ``group2``, with the
    gene sets, attribution method, score and model of :func:`scdeconv.tl.module_impact`. The
    difference is positive where the set drives the node more strongly in ``group1``. (The paper
    plotted ``rest - group``; the sign here follows the order of the arguments.)

    - ``score="median"`` (paper): ``impact(group1) - impact(group2)``.
    - ``score="enrichment"``: for each node, the log ratio of each gene's mean |attribution| in
      ``group1`` over ``group2`` is z-scored among expression-matched genes and summed over the
      set (Stouffer): positive where the set's genes gain attribution in ``group1`` more than
      comparable genes do.

    Two tests come with them. ``node_set_tests``: every cell gets a score per (node, set), the
    set enrichment of its own attributions to that node (``score="enrichment"``: expression-bin
    z-scores summed over the set, as for the whole data; ``score="median"``: the set's median
    |saliency|). A pair is called when two tests agree: the two groups' scores differ (Welch's
    t-test, Cohen's d as the signed effect), and, for enrichment scores, the set's change is larger
    than that of random gene sets matched on size and expression bins (competitive, as
    module_impact's null). ``pvalue`` is the larger of the two, with a Benjamini-Hochberg FDR over
    all live (node, set) pairs. Welch's test needs only per-group sums and sums of squares, and the
    competitive one only per-gene sums, so both stream over cells in bounded memory and chunks
    combine exactly; with tens of cells per group or more the p-values rest on the central limit
    theorem. Why both: a node weighs genes differently in different cell states, so Welch's test
    alone calls many never-perturbed sets when a cell state shifts the attribution of many genes at
    once (measured in ``benchmarks/calibration.log``).
    ``set_tests``: per gene set, the cells' activities (summed over nodes) compared by a
    Mann-Whitney test and, as above, against matched random sets' activity changes (competitive);
    a set is called when both reject.

    Parameters
    ----------
    adata
        AnnData with a trained model and :func:`scdeconv.tl.module_impact` results.
    groupby
        ``obs`` column holding the groups (categorical or strings).
    group1
        A category, or a list of categories pooled into one group.
    group2
        Another category or list, or ``"rest"`` for every cell not in ``group1``.
    impact_key
        ``uns`` key of the :func:`scdeconv.tl.module_impact` result to reuse.
    {stream}
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_group_diff' | key_added]``:

    ``impact_group1``, ``impact_group2``
        DataFrames nodes x gene sets: the impact over each group's cells.
    ``diff``, ``scaled_diff``
        ``group1 - group2``, and the same divided by its largest absolute value (in [-1, 1]).
    ``set_scores``
        DataFrame per gene set: largest (``max_diff``) and smallest (``min_diff``) difference over
        live nodes, and the nodes where they occur; sorted by ``max_diff``.
    ``node_set_tests``
        Dict of DataFrames nodes x gene sets: ``effect`` (Cohen's d, positive = higher in
        ``group1``), ``statistic`` (Welch's t), ``pvalue_welch`` (two-sided); for enrichment scores
        also ``null_z`` (the set's change standardised by matched random sets' changes) and
        ``pvalue_competitive`` (two-sided); ``pvalue`` (the larger p-value) and ``fdr`` (BH over
        live pairs). Dead nodes get effect 0 and NaN p-values.
    ``set_tests``
        DataFrame per gene set: per-cell activity (as in ``obsm['scdeconv_activity']``) compared
        between the groups: ``effect`` (rank-biserial, positive = higher in ``group1``),
        ``mean_activity1``, ``mean_activity2``, ``pvalue_mw`` (two-sided Mann-Whitney),
        ``null_z`` and ``pvalue_competitive`` (the set's mean activity change against matched
        random sets'), ``pvalue`` (the larger) and ``fdr`` (BH over sets). Activity is relative
        within each cell (genes compete with expression-matched genes), so a strong programme in
        one group pushes unrelated sets slightly negative there; the competitive part keeps such
        shifts from being called.
    ``params``
        ``groupby``, ``group1``, ``group2``, ``impact_key``, ``n_cells1``, ``n_cells2``, ``method``,
        ``n_null`` (read from the impact result; ``0`` skips the competitive parts of both tests).
    """
    from .._module.reducers import CellActivity, NodeSetScores

    check_not_backed_copy(adata, copy)
    adata = adata.copy() if copy else adata
    stored = stored_result(adata, impact_key, "impact")
    params = stored["params"]
    model_key = params["model_key"]
    claim_uns_key(adata, key_added, "group_diff", reads=(impact_key, model_key))
    labels = two_group_labels(adata, groupby, group1, group2)
    names = list(stored["gene_sets"])
    genes = pd.Index(np.asarray(adata.uns[model_key]["var_names"]).astype(str))
    set_columns = [genes.get_indexer(np.asarray(stored["gene_sets"][n]).astype(str)) for n in names]
    score, n_null = params["score"], int(params["n_null"])
    bins = expression_bins(np.asarray(stored["gene_mean"]), int(params["n_bins"]))
    nodes = stored["impact"].index
    weights = None
    if score == "enrichment" and params["node_cells"] == "active":
        # As module_impact(groupby=...): each node's active cells over all cells, averaged per group.
        weights = active_cells(stored_latent(adata, model_key))
    scores = score_reducer(score, 2, len(nodes), set_columns, n_genes=len(genes), node_weights=weights)
    per_cell = NodeSetScores(2, len(nodes), bins, set_columns) if score == "enrichment" else scores
    activity = CellActivity(adata.n_obs, 2, bins, set_columns)
    reducers = [scores, activity] if per_cell is scores else [scores, per_cell, activity]
    options = StreamOptions(chunk_size=chunk_size, batch_size=batch_size, device=device, progress=progress)
    n_cells = saliency_pass(
        adata, reducers, model_key=model_key, labels=labels, n_groups=2, method=params["method"], options=options
    )
    per_group = group_impact(scores, n_cells, bins, set_columns)
    impact1 = pd.DataFrame(per_group[0], index=nodes, columns=names)
    impact2 = pd.DataFrame(per_group[1], index=nodes, columns=names)
    if score == "median":
        diff = impact1 - impact2
    else:
        profiles = scores.profiles()
        shift = binned_zscores(log_ratio(profiles[0], profiles[1]), bins)
        diff = pd.DataFrame(set_enrichment(shift, set_columns), index=nodes, columns=names)
    dead = stored["node_stats"]["dead"].to_numpy()
    if score == "enrichment":
        for table in (impact1, impact2, diff):
            table.loc[dead] = 0.0  # as in module_impact: no amplified noise from dead nodes
    live = diff.loc[~dead]
    set_scores = pd.DataFrame(
        {
            "max_diff": live.max(axis=0),
            "node_max": live.idxmax(axis=0),
            "min_diff": live.min(axis=0),
            "node_min": live.idxmin(axis=0),
        }
    ).sort_values("max_diff", ascending=False)
    sets = MatchedSets(set_columns, bins, n_null, int(params["seed"])) if n_null > 0 else None
    node_tests = node_set_tests(
        per_cell.sums,
        per_cell.squares,
        n_cells,
        dead,
        diff,
        change=_mean_change(per_cell.gene_z, n_cells) if score == "enrichment" else None,
        sets=sets if score == "enrichment" else None,
    )
    set_tests = activity_tests(
        activity.activity[labels == 0],
        activity.activity[labels == 1],
        names,
        change=_mean_change(activity.gene_z, n_cells),
        sets=sets,
    )
    adata.uns[key_added] = {
        "node_set_tests": node_tests,
        "set_tests": set_tests,
        "params": {
            "groupby": groupby,
            "group1": _label(group1),
            "group2": _label(group2),
            "impact_key": impact_key,
            "method": params["method"],
            "n_null": n_null,
            "n_cells1": int(n_cells[0]),
            "n_cells2": int(n_cells[1]),
        },
        "impact_group1": impact1,
        "impact_group2": impact2,
        "diff": diff,
        "scaled_diff": scaled_difference(diff),
        "set_scores": set_scores,
    }
    logger.info("Added adata.uns[%r]: %s vs %s.", key_added, _label(group1), _label(group2))
    return adata if copy else None
