"""``sd.tl.group_diff``: which gene sets drive nodes differently between groups of cells (panel e)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .._choices import DiffPairs, check_choice
from .._defaults import FDR, MIN_SAMPLE_CELLS
from .._docs import inject_docs
from .._keys import GROUP_DIFF_KEY, IMPACT_KEY
from .._logging import logger
from .._module.config import StreamOptions
from .._results import carrying_modules, claim_uns_key, stored_result
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
    sample_design,
    sample_level_test,
    scaled_difference,
    set_enrichment,
    welch_from_moments,
)
from ._groups import ALL_GROUPS, group_contrasts, group_label, sample_labels
from ._module_impact import group_impact, score_reducer
from ._saliency_pass import saliency_pass, stored_latent

# Tables of one comparison; with group1="all" each is a dict category -> table (set_tests: one long table).
_TABLES = ("impact_group1", "impact_group2", "diff", "scaled_diff", "set_scores", "node_set_tests", "set_tests")


def _mean_change(sums: np.ndarray, n_cells: np.ndarray) -> np.ndarray:
    """Group 1's mean minus group 2's of per-group sums (2 x ...)."""
    return sums[0] / max(int(n_cells[0]), 1) - sums[1] / max(int(n_cells[1]), 1)


@dataclass
class _Pass:
    """What one saliency pass kept, in fine groups (group x sample), and what every comparison reads."""

    per_cell: object  # NodeSetScores or SetMedians over fine groups
    profile: object | None  # AttributionProfile over groups (enrichment), else None
    activity: np.ndarray  # cells x sets
    gene_z: np.ndarray  # fine groups x genes: sums of the activity's gene z-scores
    fine: np.ndarray  # fine group of every cell (-1: not compared)
    n_fine: np.ndarray  # cells streamed per fine group
    n_samples: int  # 1 without a sample key
    sample_key: str | None
    min_sample_cells: int
    score: str
    bins: np.ndarray
    set_columns: list[np.ndarray]
    names: list[str]
    nodes: pd.Index
    dead: np.ndarray
    sets: MatchedSets | None
    tested: np.ndarray | None  # nodes x sets: the pairs the FDR is over (None: every live pair)

    def rows(self, side: list[int]) -> list[int]:
        return [g * self.n_samples + s for g in side for s in range(self.n_samples)]

    def by_sample(self, values: np.ndarray, side: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample means (samples x ...) of fine-group sums over the side's groups, and the cell counts."""
        shape = (-1, self.n_samples, *values.shape[1:])
        sums = values.reshape(shape)[side].sum(axis=0)
        counts = self.n_fine.reshape(-1, self.n_samples)[side].sum(axis=0)
        scale = np.maximum(counts, 1).reshape((-1,) + (1,) * (values.ndim - 1))
        return sums / scale, counts


def _compare(run: _Pass, side1: list[int], side2: list[int]) -> dict:
    """Every table of one comparison (side 1 against side 2, each a list of groups) from the pass's sums."""
    from .._module.reducers import pooled_groups

    rows1, rows2 = run.rows(side1), run.rows(side2)
    n_cells = np.array([run.n_fine[rows1].sum(), run.n_fine[rows2].sum()])
    per_cell = pooled_groups(run.per_cell, [rows1, rows2])
    scores = per_cell if run.profile is None else pooled_groups(run.profile, [side1, side2])
    per_group = group_impact(scores, n_cells, run.bins, run.set_columns)
    impact1 = pd.DataFrame(per_group[0], index=run.nodes, columns=run.names)
    impact2 = pd.DataFrame(per_group[1], index=run.nodes, columns=run.names)
    if run.score == "median":
        diff = impact1 - impact2
    else:
        profiles = scores.profiles()
        shift = binned_zscores(log_ratio(profiles[0], profiles[1]), run.bins)
        diff = pd.DataFrame(set_enrichment(shift, run.set_columns), index=run.nodes, columns=run.names)
        for table in (impact1, impact2, diff):
            table.loc[run.dead] = 0.0  # as in module_impact: no amplified noise from dead nodes
    live = diff.loc[~run.dead]
    set_scores = pd.DataFrame(
        {
            "max_diff": live.max(axis=0),
            "node_max": live.idxmax(axis=0),
            "min_diff": live.min(axis=0),
            "node_min": live.idxmin(axis=0),
        }
    ).sort_values("max_diff", ascending=False)
    counts = {"n_cells1": int(n_cells[0]), "n_cells2": int(n_cells[1])}
    in1, in2 = np.isin(run.fine, rows1), np.isin(run.fine, rows2)
    if run.n_samples == 1:
        test = welch_from_moments(
            per_cell.sums[0], per_cell.squares[0], counts["n_cells1"],
            per_cell.sums[1], per_cell.squares[1], counts["n_cells2"],
        )  # fmt: skip
        samples = None
    else:
        means1, samples1 = run.by_sample(run.per_cell.sums, side1)
        means2, samples2 = run.by_sample(run.per_cell.sums, side2)
        design = sample_design(samples1, samples2, run.min_sample_cells, what=f"{run.sample_key!r} sample")
        test = sample_level_test(means1, means2, design)
        activity_sums = np.zeros((len(run.n_fine), len(run.names)))
        streamed = (run.fine >= 0) & ~np.isnan(run.activity).all(axis=1)
        np.add.at(activity_sums, run.fine[streamed], run.activity[streamed])
        samples = (run.by_sample(activity_sums, side1)[0], run.by_sample(activity_sums, side2)[0], design)
        counts.update(n_samples1=len(design.rows1), n_samples2=len(design.rows2), sample_test=design.test)
    enrichment = run.score == "enrichment"
    node_tests = node_set_tests(
        test,
        run.dead,
        diff,
        replicates="cells" if samples is None else "samples",
        change=_mean_change(per_cell.gene_z, n_cells) if enrichment else None,
        sets=run.sets if enrichment else None,
        tested=run.tested,
    )
    gene_z = np.stack([run.gene_z[rows1].sum(axis=0), run.gene_z[rows2].sum(axis=0)])
    set_tests = activity_tests(
        run.activity[in1 & ~np.isnan(run.activity).all(axis=1)],
        run.activity[in2 & ~np.isnan(run.activity).all(axis=1)],
        run.names,
        change=_mean_change(gene_z, n_cells),
        sets=run.sets,
        samples=samples,
    )
    return {
        "impact_group1": impact1,
        "impact_group2": impact2,
        "diff": diff,
        "scaled_diff": scaled_difference(diff),
        "set_scores": set_scores,
        "node_set_tests": node_tests,
        "set_tests": set_tests,
        "counts": counts,
    }


@inject_docs
def group_diff(
    adata: AnnData,
    groupby: str,
    group1: str | Sequence[str],
    group2: str | Sequence[str] = "rest",
    *,
    sample_key: str | None = None,
    min_sample_cells: int = MIN_SAMPLE_CELLS,
    pairs: DiffPairs = "called",
    impact_key: str = IMPACT_KEY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
    key_added: str = GROUP_DIFF_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Compare the impact of gene sets on nodes between groups of cells (the paper's panel e).

    The impact is computed separately over the cells of ``group1`` and of ``group2``, with the
    gene sets, attribution method, score and model of :func:`scdeconv.tl.module_impact`, always
    on attributions (what each group's cells make the encoder read), whichever profile the whole-data
    impact scored; the paper's overlay (``scaled_impact``) reads the whole-data impact. The
    difference is positive where the set drives the node more strongly in ``group1``. (The paper
    plotted ``rest - group``; the sign here follows the order of the arguments.)
    ``group1="all"`` compares every category of ``groupby`` with the rest of the cells, all from
    one saliency pass (as :func:`scanpy.tl.rank_genes_groups` does for genes).

    - ``score="median"`` (paper): ``impact(group1) - impact(group2)``.
    - ``score="enrichment"``: for each node, the log ratio of each gene's mean |attribution| in
      ``group1`` over ``group2`` is z-scored among expression-matched genes and summed over the
      set (Stouffer): positive where the set's genes gain attribution in ``group1`` more than
      comparable genes do.

    Two tests come with them. ``node_set_tests``: every cell gets a score per (node, set), the
    set enrichment of its own attributions to that node (``score="enrichment"``: expression-bin
    z-scores summed over the set, as for the whole data; ``score="median"``: the set's median
    |saliency|). A pair is called when two tests agree: the two groups' scores differ (a
    self-contained test, Cohen's d as the signed effect), and, for enrichment scores, the set's
    change is larger than that of random gene sets matched on size and expression bins
    (competitive, as module_impact's null). ``pvalue`` is the larger of the two. Why both: a node
    weighs genes differently in different cell states, so the self-contained test alone calls many
    never-perturbed sets when a cell state shifts the attribution of many genes at once (measured
    in ``benchmarks/calibration.log``). The Benjamini-Hochberg FDR is over the pairs that
    ``pairs`` names: by default those the whole-data impact calls (its FDR below 0.05), as the
    paper's panel e shows differences only where the whole-data impact is high. Why: attributions
    follow expression (gradient x input), so a set whose genes are higher in ``group1`` gains
    attribution on every node that reads them at all and, tested on every pair, is called on most
    nodes (``docs/impact_score.md`` shows it on Paul15); among the called pairs it is called on
    the nodes that carry it. The filter (the whole-data impact, from all cells of both groups) is
    not the group difference, which keeps the FDR over the filtered pairs close to its nominal
    level (independent filtering, Bourgon et al. 2010), as ``benchmarks/calibration.log``
    measures. ``pairs="all"`` tests every live pair.

    ``set_tests``: per gene set, the cells' activities (summed over nodes) compared between the
    groups and, as above, against matched random sets' activity changes (competitive); a set is
    called when both reject. Every row says whether the programme is ``"up"`` or ``"down"`` in
    ``group1`` (the sign of the effect).

    **Replicates.** Without ``sample_key`` the self-contained tests treat cells as replicates
    (Welch's t of the per-cell scores from streamed moments; Mann-Whitney of the activities), which
    is right only when all cells come from one sample: cells of one donor share its programme
    activity, so a donor effect reads as a group difference (``benchmarks/calibration.log``
    measures how often). With ``sample_key`` (e.g. ``"donor"``) each sample's cells are averaged
    per group (a pseudobulk of the scores; samples with fewer than ``min_sample_cells`` cells in a
    group are left out of it) and the samples are compared: a paired t-test when every sample has
    cells of both groups (each donor against itself, so its effect cancels), else Welch's t over
    the samples of each group (their own spread and number per group). The competitive part is
    computed from the cells' mean changes in both cases.

    Parameters
    ----------
    adata
        AnnData with a trained model and :func:`scdeconv.tl.module_impact` results.
    groupby
        ``obs`` column holding the groups (categorical or strings).
    group1
        A category, a list of categories pooled into one group, or ``"all"``: each category
        against the rest (to compare a category literally named ``"all"``, pass ``["all"]``).
    group2
        Another category or list, or ``"rest"`` for every cell not in ``group1``.
    sample_key
        ``obs`` column naming each cell's sample (donor, patient, replicate): test across samples
        instead of cells. ``None``: cells are replicates (said in ``params`` and the log).
    min_sample_cells
        Cells a sample needs in a group to enter that group's sample-level test.
    pairs
        Which (node, set) pairs the FDR of ``node_set_tests`` is over: ``"called"`` (default), those
        the whole-data impact calls (FDR < 0.05; with ``null="coexpression"`` also the sets a
        module called on the node is made of; every live pair when the impact has no FDR, as
        with ``score="median"`` or ``n_null=0``); ``"all"``, every live pair.
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
        ``group1``), ``statistic`` (t) and the self-contained two-sided p-value (``pvalue_welch``
        over cells, or ``pvalue_samples`` over samples); for enrichment scores also ``null_z``
        (the set's change standardised by matched random sets' changes) and
        ``pvalue_competitive`` (two-sided); ``pvalue`` (the larger p-value) and ``fdr`` (BH over
        the tested pairs, see ``pairs``; NaN for the others). Dead nodes get effect 0 and NaN
        p-values.
    ``set_tests``
        DataFrame per gene set: per-cell activity (as in ``obsm['scdeconv_activity']``) compared
        between the groups: ``effect`` (over cells the rank-biserial correlation, over samples
        Cohen's d; positive = higher in ``group1``), ``mean_activity1``, ``mean_activity2``,
        ``pvalue_mw`` (two-sided Mann-Whitney, over cells) or ``statistic`` and ``pvalue_samples``
        (over samples), ``null_z`` and ``pvalue_competitive`` (the set's mean activity change
        against matched random sets'), ``pvalue`` (the larger), ``fdr`` (BH over sets) and
        ``direction`` (``"up"``/``"down"`` in ``group1``). Activity is relative within each cell
        (genes compete with expression-matched genes), so a strong programme in one group pushes
        unrelated sets slightly negative there; the competitive part keeps such shifts from being
        called.
    ``contrasts``
        With ``group1="all"``: DataFrame per category, the cells (and samples, and the test) of
        each comparison. The tables above are then dicts category -> table, except ``set_tests``:
        one long table with a ``group`` column (:func:`scdeconv.get.group_diff_df` reads both).
    ``params``
        ``groupby``, ``group1``, ``group2``, ``sample_key`` (``""`` without), ``replicates``
        (``"cells"`` or ``"samples"``), ``min_sample_cells``, ``pairs`` (``"all"`` where the
        impact had no FDR to filter by), ``impact_key``, ``method``,
        ``n_null`` (read from the impact result; ``0`` skips the competitive parts of both tests)
        and, for two groups, ``n_cells1``, ``n_cells2`` and, with samples, ``n_samples1``,
        ``n_samples2`` and ``sample_test`` (``"paired t"`` or ``"Welch"``).

    Examples
    --------
    >>> sd.tl.group_diff(adata, "condition", "stim", "ctrl", sample_key="donor")  # doctest: +SKIP
    >>> sd.get.group_diff_df(adata, level="set").query("fdr < 0.05")  # doctest: +SKIP
    """
    from .._module.reducers import CellActivity, NodeSetScores, Relabelled, SetMedians

    check_choice("pairs", pairs, DiffPairs)
    check_not_backed_copy(adata, copy)
    adata = adata.copy() if copy else adata
    stored = stored_result(adata, impact_key, "impact")
    params = stored["params"]
    model_key = params["model_key"]
    claim_uns_key(adata, key_added, "group_diff", reads=(impact_key, model_key))
    labels, contrasts = group_contrasts(adata, groupby, group1, group2)
    n_groups = max(max(side1 + side2) for _, side1, side2 in contrasts) + 1
    if sample_key is None:
        samples, n_samples = np.zeros(adata.n_obs, dtype=np.int64), 1
    else:
        samples, sample_names = sample_labels(adata, sample_key)
        n_samples = len(sample_names)
    fine = np.where((labels >= 0) & (samples >= 0), labels * n_samples + samples, -1)
    names = list(stored["gene_sets"])
    genes = pd.Index(np.asarray(adata.uns[model_key]["var_names"]).astype(str))
    set_columns = [genes.get_indexer(np.asarray(stored["gene_sets"][n]).astype(str)) for n in names]
    score, n_null = params["score"], int(params["n_null"])
    bins = expression_bins(np.asarray(stored["gene_mean"]), int(params["n_bins"]))
    nodes = stored["impact"].index
    tested, pairs = _tested_pairs(stored, pairs, nodes, names)
    n_fine = n_groups * n_samples
    if score == "median":
        profile, per_cell = None, SetMedians(n_fine, len(nodes), set_columns)
        reducers = [per_cell]
    else:
        weights = None
        if params["node_cells"] == "active":
            # As module_impact(groupby=...): each node's active cells over all cells, averaged per group.
            weights = active_cells(stored_latent(adata, model_key))
        profile = score_reducer(score, n_groups, len(nodes), set_columns, n_genes=len(genes), node_weights=weights)
        per_cell = NodeSetScores(n_fine, len(nodes), bins, set_columns)
        # The gene profiles (nodes x genes) only per group; the small per-cell moments per sample too.
        coarse = np.repeat(np.arange(n_groups), n_samples)
        reducers = [profile if n_samples == 1 else Relabelled(profile, coarse), per_cell]
    activity = CellActivity(adata.n_obs, n_fine, bins, set_columns)
    options = StreamOptions(chunk_size=chunk_size, batch_size=batch_size, device=device, progress=progress)
    n_cells = saliency_pass(
        adata, [*reducers, activity], model_key=model_key, labels=fine, n_groups=n_fine, method=params["method"],
        options=options,
    )  # fmt: skip
    run = _Pass(
        per_cell=per_cell,
        profile=profile,
        activity=activity.activity,
        gene_z=activity.gene_z,
        fine=fine,
        n_fine=n_cells,
        n_samples=n_samples,
        sample_key=sample_key,
        min_sample_cells=int(min_sample_cells),
        score=score,
        bins=bins,
        set_columns=set_columns,
        names=names,
        nodes=nodes,
        dead=stored["node_stats"]["dead"].to_numpy(),
        sets=MatchedSets(set_columns, bins, n_null, int(params["seed"])) if n_null > 0 else None,
        tested=tested,
    )
    results = {name: _compare(run, side1, side2) for name, side1, side2 in contrasts}
    record = {
        "groupby": groupby,
        "group1": group_label(group1),
        "group2": group_label(group2),
        "sample_key": sample_key or "",
        "replicates": "cells" if sample_key is None else "samples",
        "min_sample_cells": int(min_sample_cells),
        "pairs": pairs,
        "impact_key": impact_key,
        "method": params["method"],
        "n_null": n_null,
    }
    if isinstance(group1, str) and group1 == ALL_GROUPS:
        adata.uns[key_added] = _all_groups_result(results, record)
    else:
        (only,) = results.values()
        adata.uns[key_added] = {**{t: only[t] for t in _TABLES}, "params": {**record, **only["counts"]}}
    if sample_key is None:
        logger.info(
            "group_diff treated cells as replicates (no sample_key): with cells from several donors, pass "
            "sample_key=<obs column of donors> so that a donor effect is not read as a group difference."
        )
    else:
        logger.info("group_diff compared the %d samples of adata.obs[%r] (pseudobulks).", n_samples, sample_key)
    logger.info("Added adata.uns[%r]: %s vs %s.", key_added, record["group1"], record["group2"])
    return adata if copy else None


def _tested_pairs(stored: dict, pairs: str, nodes: pd.Index, names: list[str]) -> tuple[np.ndarray | None, str]:
    """The (node, set) pairs whose group differences the FDR is over, and the choice as recorded.

    ``"called"``: the pairs the whole-data impact calls (FDR < ``FDR``), as the paper's panel e
    shows differences only where the whole-data impact is high; with ``null="coexpression"``,
    also a set that a co-expression module called on the node is made of (the module stands for
    a set that cannot stand out from it). An impact without an FDR (``score="median"`` or
    ``n_null=0``) calls nothing, so every live pair is tested.
    """
    if pairs == "called" and "fdr" in stored:
        fdr = pd.DataFrame(stored["fdr"]).reindex(index=nodes, columns=names).to_numpy(dtype=float)
        carried = carrying_modules(stored).reindex(index=nodes, columns=names, fill_value="").to_numpy() != ""
        return (np.nan_to_num(fdr, nan=1.0) < FDR) | carried, "called"
    if pairs == "called":
        logger.info("The impact has no FDR (score='median' or n_null=0): group_diff tests every live (node, set) pair.")
    return None, "all"


def _all_groups_result(results: dict[str, dict], record: dict) -> dict:
    """One entry for every category against the rest: dicts category -> table, set tests in one long table."""
    entry = {t: {name: r[t] for name, r in results.items()} for t in _TABLES if t != "set_tests"}
    long = [r["set_tests"].reset_index().assign(group=name) for name, r in results.items()]
    table = pd.concat(long, ignore_index=True)
    entry["set_tests"] = table[["group", *[c for c in table if c != "group"]]]
    counts = [r["counts"] for r in results.values()]
    entry["contrasts"] = pd.DataFrame(counts, index=pd.Index(list(results), name="group"))
    entry["params"] = record
    return entry
