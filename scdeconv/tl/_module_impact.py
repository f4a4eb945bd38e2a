"""``sd.tl.module_impact``: which gene sets drive each node, with a null model and per-cell activity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._choices import Method, NodeCells, NullModelKind, Profile, Score, check_choice
from .._defaults import MODULE_CELLS, N_BINS, N_MODULES, N_NULL
from .._docs import inject_docs
from .._keys import ACTIVITY_KEY, IMPACT_KEY, MODEL_KEY, node_names
from .._logging import logger
from .._model_store import stored_model
from .._module.config import StreamOptions
from .._results import claim_obsm_key, claim_uns_key
from .._rows import DEFAULT_CHUNK_SIZE
from .._utils import check_not_backed_copy
from ..genesets import describe_gene_sets, resolve_gene_sets
from ..scoring import (
    MatchedSets,
    active_cells,
    binned_zscores,
    coexpression_modules,
    expression_bins,
    impact_significance,
    module_significance,
    node_statistics,
    profile_enrichment,
)
from ._groups import group_labels
from ._saliency_pass import gene_means, saliency_pass, stored_latent


def score_reducer(
    score: str,
    n_groups: int,
    n_nodes: int,
    set_columns: list[np.ndarray],
    *,
    n_genes: int,
    node_weights=None,
    profile: str = "attribution",
):
    """What a saliency pass keeps for ``score``: per-cell set medians, or gene profiles (weighted per node).

    The gene profile is the mean |attribution| (``profile="attribution"``) or, with
    ``profile="expression"``, the expression shift of each node's active cells (``node_weights``).
    """
    from .._module.reducers import AttributionProfile, ExpressionShift, SetMedians

    if score == "median":
        return SetMedians(n_groups, n_nodes, set_columns)
    if profile == "expression":
        return ExpressionShift(n_groups, n_nodes, n_genes, node_weights)
    return AttributionProfile(n_groups, n_nodes, n_genes, node_weights=node_weights)


def set_directions(shift, bins: np.ndarray, set_columns: list[np.ndarray], names: list[str], dead: np.ndarray):
    """Nodes x sets ``"up"``/``"down"``: the sign of the set's expression shift in each node's active cells.

    ``shift`` is an :class:`~scdeconv._module.reducers.ExpressionShift` fed by the pass; dead nodes get ``""``.
    """
    signed = profile_enrichment(shift.pooled(), bins, set_columns)
    direction = np.where(signed >= 0, "up", "down").astype(object)
    direction[dead] = ""
    return pd.DataFrame(direction, index=node_names(len(dead)), columns=names)


def pooled_zscores(scores, bins: np.ndarray) -> np.ndarray | None:
    """Nodes x genes binned z-scores of the all-cell profile (what the enrichment impact sums), else None."""
    from .._module.reducers import SetMedians

    if isinstance(scores, SetMedians):  # no gene profile
        return None
    return binned_zscores(scores.pooled(), bins)


def group_impact(
    scores, n_cells: np.ndarray, bins: np.ndarray, set_columns: list[np.ndarray], *, pooled: bool = False
) -> np.ndarray:
    """Impact per group (groups, nodes, sets), or of all groups together (``pooled``: 1, nodes, sets)."""
    from .._module.reducers import SetMedians

    if isinstance(scores, SetMedians):  # means over cells of the per-cell medians
        sums = scores.sums.sum(axis=0, keepdims=True) if pooled else scores.sums
        counts = np.atleast_1d(n_cells.sum()) if pooled else n_cells
        return sums / np.maximum(counts, 1)[:, None, None]
    profiles = scores.pooled()[None] if pooled else scores.profiles()
    return np.stack([profile_enrichment(p, bins, set_columns) for p in profiles])


def module_sample(labels: np.ndarray, seed: int) -> np.ndarray:
    """Rows of the cells whose expression the co-expression modules come from: a random half of the scored cells.

    At most ``MODULE_CELLS`` of them, drawn with ``seed``; the other half is never looked at.
    """
    scored = np.flatnonzero(np.asarray(labels) >= 0)
    n_sample = min(MODULE_CELLS, max(len(scored) // 2, min(len(scored), 2)))
    return np.sort(np.random.default_rng(seed).choice(scored, n_sample, replace=False))


@inject_docs
def module_impact(
    adata: AnnData,
    *,
    gene_sets="hallmark",
    method: Method = "grad_x_input",
    score: Score = "enrichment",
    profile: Profile = "expression",
    groupby: str | None = None,
    species: str | None = None,
    min_size: int = 3,
    n_bins: int = N_BINS,
    n_null: int = N_NULL,
    null: NullModelKind = "coexpression",
    n_modules: int = N_MODULES,
    node_cells: NodeCells = "active",
    seed: int = 0,
    activity_key: str | None = ACTIVITY_KEY,
    model_key: str = MODEL_KEY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
    key_added: str = IMPACT_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Score how strongly each gene set drives each node of the representation.

    Every cell's attribution of node *j* to each input gene is computed exactly (batched, never
    holding cells x nodes x genes). Two scores turn a per-gene profile of each node into a nodes
    x sets table:

    ``score="enrichment"`` (default)
        For node *j*, each gene's profile value is z-scored among genes of similar mean
        expression (``n_bins`` equal-count bins); the set's score is the Stouffer sum
        ``sum(z[S]) / sqrt(|S|)``. Positive: the set's genes stand out on the node more than
        expression-matched genes do; around 0: no more than chance; it is comparable across
        nodes and sets of different sizes. The profile (``profile``) is either

        - ``"expression"`` (default): how far each gene's mean expression (the encoder input) in
          the node's active cells (its top quarter by activation) sits from its mean over all
          cells, in standard deviations (the ranking of :func:`scdeconv.tl.node_genes`): which
          genes *move with* the node. A negative score says the set is lower in the node's
          active cells (``direction`` ``"down"``). It recovers planted programmes better than
          the attribution profile on every difficulty level of the recovery benchmark.
        - ``"attribution"``: each gene's mean |attribution| over the node's active cells
          (``node_cells="active"``; or over all cells): which genes the encoder *reads* to set
          the node, the paper's kind of evidence. With gradient x input attributions (the
          default ``method``), a set also scores where its genes are highly expressed.
    ``score="median"`` (the paper, Kinalis et al. 2019, with ``method="guided"``)
        For each cell, the median |saliency| over the set's genes, averaged over cells. A pure
        magnitude: it mostly follows each node's overall gain and is interpretable only after
        the per-set min-max scaling of :func:`scdeconv.pl.impact_heatmap`.

    **What the enrichment score means.** A score of 3 for (node, set) says: the set's genes
    drive this node about three standard errors more than random genes of the same expression
    levels would. Its significance comes from a null model: ``n_null`` random gene sets with the
    set's size and expression-bin composition are scored on the same node, giving ``null_z``, a
    one-sided ``pvalue`` (normal tail of the null), an empirical p-value and a Benjamini-Hochberg
    ``fdr`` over all live (node, set) pairs. With ``null="coexpression"`` (default) a second set
    of random sets matches the set on co-expression: each gene of the set is replaced by a random
    gene of its co-expression module (``n_modules`` modules of the model's genes, clustered from
    the expression of a random half of the cells). A set is called only where both nulls reject:
    its genes rise more than genes of their expression levels and more than genes that move like
    them (``null_z`` is the smaller of the two). Real gene sets carry co-expression: a null that
    treats genes as exchangeable calls any set drawn from a module that a node encodes, whatever
    its genes are.
    A programme that is a whole module is then tested as one unit, the module against random genes
    of its genes' expression levels, and named by the gene sets it is made of (``module_sets``).
    ``null="expression"`` matches the set's expression bins only (genes exchangeable, as in GSEA's
    gene permutation; the null of scdeconv 0.1). The false calls of each on real data, and the
    calls each keeps, are measured in ``benchmarks/decoys.py``.

    How well each score and setting recovers planted programmes is measured in
    ``benchmarks/RESULTS.md`` (and the documentation page built from it).

    Parameters
    ----------
    adata
        The AnnData the model was trained on (same genes; cells may differ).
    gene_sets
        ``"hallmark"`` (bundled MSigDB Hallmark, in the data's species), a GMT path, a dict
        set -> genes, or a decoupler-style table with ``source``/``target`` columns.
        Matched case-insensitively to the model's genes.
    method
        Attribution: ``"grad_x_input"`` (default), ``"guided"`` (paper's guided backpropagation),
        ``"gradient"`` or ``"integrated_gradients"``. Absolute values are used.
    score
        ``"enrichment"`` (default) or ``"median"`` (paper).
    profile
        Gene profile the enrichment scores: ``"expression"`` (default; the expression shift of
        each node's active cells, needs ``node_cells="active"``) or ``"attribution"`` (mean
        |attribution|, the paper's kind of evidence). Both share the null model, computed on the
        chosen profile; ``score="median"`` has no profile and records ``"attribution"``.
    groupby
        Also score each category of this ``obs`` column separately.
    species
        ``"human"`` or ``"mouse"``; detected from the gene symbols when ``None``. Human gene sets
        are translated to mouse by one-to-one orthologs.
    min_size
        Gene sets with fewer genes in the model are dropped.
    n_bins
        Expression bins for ``score="enrichment"``, its null model and the per-cell activity.
    n_null
        Random matched gene sets per (node, set) for the null model
        (``score="enrichment"`` only; ``0`` skips it).
    null
        What the random gene sets match besides the set's size: ``"coexpression"`` (default), the
        set's count of genes per co-expression module (:func:`scdeconv.scoring.coexpression_modules`;
        the conditional re-tests use the same modules); ``"expression"``, its count of genes per
        expression bin. Either way the set's score is the same; only its null distribution changes.
    n_modules
        Co-expression modules for ``null="coexpression"`` (k-means of the genes' loadings on the
        first principal components of the expression of a random half of the cells, at most
        2000 cells, drawn with ``seed``).
    node_cells
        Cells each node's profile describes (``score="enrichment"``):
        ``"active"`` (default), the quarter of cells where the node's activation is highest, so a
        program active in few cells is not diluted by the rest; ``"all"``, every cell.
    seed
        Seeds the random gene sets.
    activity_key
        ``obsm`` key for the per-cell activity of each gene set; ``None`` skips it.
    model_key
        ``uns`` key of the model written by :func:`scdeconv.tl.train_autoencoder`.
    {stream}
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_impact' | key_added]``:

    ``impact``
        DataFrame nodes (``node_0 ...``) x gene sets.
    ``node_stats``
        DataFrame per node: ``activation_std``, ``n_active`` (cells that fire it), ``max_impact``,
        ``status`` (``"dead"``: activation nearly constant over cells; ``"rare"``: fired by fewer
        cells than :func:`scdeconv.scoring.min_active_cells`; else ``"live"``) and ``dead``
        (not live). Nodes that are not live get no statistics and, with ``score="enrichment"``,
        an impact of 0.
    ``gene_set_sizes``
        DataFrame per gene set: ``n_given`` (genes as given), ``n_genes`` (after ortholog
        translation, if any) and ``n_present`` (matched case-insensitively among the model's
        genes); sets with fewer than ``min_size`` present are listed but not scored.
    ``gene_sets``
        Set name -> the model genes that were scored (reused by :func:`scdeconv.tl.group_diff`).
    ``gene_mean``
        Mean encoder input of each model gene (defines the expression bins).
    ``direction``
        DataFrame nodes x gene sets, ``"up"`` or ``"down"``: whether the set's genes are higher or
        lower in the node's active cells than in all cells (sign of the set's enrichment of the
        expression shift, whatever ``profile`` and ``score``); ``""`` for dead nodes.
    ``null_z``, ``pvalue``, ``pvalue_empirical``, ``fdr``
        DataFrames nodes x gene sets from the null model (``score="enrichment"``, ``n_null > 0``);
        NaN for dead nodes.
    ``gene_modules``
        With ``null="coexpression"``: the co-expression module of each model gene (integers).
    ``module_impact``, ``module_null_z``, ``module_fdr``, ``module_sets``
        With ``null="coexpression"``: each co-expression module scored on each node as one unit
        (nodes x modules ``module_0 ...``; tested against expression-matched random genes, since
        the coexpression null cannot test a module against itself), and per module its
        ``n_genes`` and the given sets over-represented among its genes (``all_sets``; ``sets``,
        the first three, its label; ``top_set``, ``top_share``;
        :func:`scdeconv.scoring.module_significance`). A set inside a module a
        node carries is not called under this null; the module is, named by its sets.
    ``set_stats``
        DataFrame per gene set: ``best_node``, its ``null_z``, ``pvalue`` and ``fdr`` for "some
        node encodes this set" (Sidak over nodes, BH over sets) and ``pvalue_empirical``
        (max-statistic over nodes); best first.
    ``impact_by_group``
        With ``groupby``: category -> DataFrame nodes x gene sets (with ``node_cells="active"``,
        over the category's cells among each node's active cells; 0 where a node is active in
        none of them).
    ``params``
        The arguments (``activity_key`` is ``""`` when skipped) and ``species``, ``model_key``,
        ``n_cells``.

    and ``adata.obsm['scdeconv_activity' | activity_key]``: DataFrame cells x gene sets, the
    per-cell activity (see :doc:`/impact_score`, "Per-cell activity"; NaN for cells not scored);
    :func:`scdeconv.get.activity` returns it as an AnnData.

    Examples
    --------
    >>> sd.tl.module_impact(adata)
    >>> adata.uns["scdeconv_impact"]["impact"].loc["node_0", "HALLMARK_HEME_METABOLISM"]
    """
    check_choice("method", method, Method)
    check_choice("score", score, Score)
    check_choice("node_cells", node_cells, NodeCells)
    check_choice("profile", profile, Profile)
    check_choice("null", null, NullModelKind)
    integral = isinstance(n_modules, int | np.integer) and not isinstance(n_modules, bool)
    if not (integral and n_modules >= 2):
        raise ValueError(f"n_modules must be an integer of at least 2, not {n_modules!r}.")
    if score == "median":
        profile = "attribution"  # the paper's per-cell medians of |attribution|: no gene profile to choose
    elif profile == "expression" and node_cells != "active":
        raise ValueError(
            "profile='expression' compares each node's active cells with all cells, so it needs "
            "node_cells='active'; pass profile='attribution' to average attributions over all cells."
        )
    check_not_backed_copy(adata, copy)
    adata = adata.copy() if copy else adata
    entry = stored_model(adata, model_key)
    claim_uns_key(adata, key_added, "impact", reads=(model_key,))
    if activity_key is not None:
        ours = isinstance(adata.obsm.get(activity_key), pd.DataFrame)
        claim_obsm_key(adata, activity_key, ours=ours, what="per-cell gene-set activity")
    genes = np.asarray(entry["var_names"]).astype(str)
    indices, sizes, species = resolve_gene_sets(gene_sets, genes, species=species, min_size=min_size)
    names = list(indices)
    set_columns = [indices[n] for n in names]
    if groupby is None:
        labels, categories = np.zeros(adata.n_obs, dtype=np.int64), ["all"]
    else:
        labels, categories = group_labels(adata, groupby)
    options = StreamOptions(chunk_size=chunk_size, batch_size=batch_size, device=device, progress=progress)
    gene_mean = gene_means(adata, model_key, options)
    bins = expression_bins(gene_mean, n_bins)
    n_nodes, n_groups = int(entry["params"]["n_latent"]), len(categories)
    latent = stored_latent(adata, model_key)
    active = active_cells(latent)
    weights = active if score == "enrichment" and node_cells == "active" else None
    scores = score_reducer(
        score, n_groups, n_nodes, set_columns, n_genes=len(genes), node_weights=weights, profile=profile
    )
    from .._module.reducers import CellActivity, ExpressionShift, InputSample

    # The direction of every (node, set) needs the expression shift; no attributions, so it adds
    # no Jacobian work and leaves the attribution scores exactly as they were.
    shift = scores if isinstance(scores, ExpressionShift) else ExpressionShift(n_groups, n_nodes, len(genes), active)
    activity = CellActivity(adata.n_obs, n_groups, bins, set_columns) if activity_key is not None else None
    sample = None
    if null == "coexpression" and score == "enrichment" and n_null > 0:
        sample = InputSample(module_sample(labels, seed), len(genes))
    n_cells = saliency_pass(
        adata,
        [r for r in (scores, activity, shift if shift is not scores else None, sample) if r is not None],
        model_key=model_key,
        labels=labels,
        n_groups=n_groups,
        method=method,
        options=options,
    )
    nodes = node_names(n_nodes)
    pooled = pooled_zscores(scores, bins)
    impact = pd.DataFrame(group_impact(scores, n_cells, bins, set_columns, pooled=True)[0], index=nodes, columns=names)
    stats = node_statistics(latent, impact)
    dead = stats["dead"].to_numpy()
    if score == "enrichment":
        # A dead node's attributions are numerically tiny; z-scoring would blow their noise up.
        impact.loc[dead] = 0.0
        stats["max_impact"] = impact.max(axis=1)
    result = {
        "params": {
            "gene_sets": describe_gene_sets(gene_sets),
            "method": method,
            "score": score,
            "profile": profile,
            "groupby": groupby or "",
            "species": species,
            "min_size": int(min_size),
            "n_bins": int(n_bins),
            "n_null": int(n_null) if score == "enrichment" else 0,
            "null": null,
            "n_modules": int(n_modules),
            "node_cells": node_cells if score == "enrichment" else "all",
            "seed": int(seed),
            "activity_key": activity_key or "",
            "model_key": model_key,
            "n_cells": int(n_cells.sum()),
        },
        "impact": impact,
        "node_stats": stats,
        "gene_set_sizes": sizes,
        "gene_sets": {n: genes[indices[n]] for n in names},
        "gene_mean": gene_mean,
        "direction": set_directions(shift, bins, set_columns, names, dead),
    }
    if score == "enrichment" and n_null > 0:
        modules = None
        if sample is not None:
            modules = coexpression_modules(sample.rows, n_modules, seed=seed)
            result["gene_modules"] = modules
        design = MatchedSets(set_columns, bins, n_null, seed, modules)
        result.update(impact_significance(pooled, impact, dead, design))
        if modules is not None:
            result.update(module_significance(pooled, modules, dead, design, names, impact.index))
    if activity is not None:
        adata.obsm[activity_key] = pd.DataFrame(activity.activity, index=adata.obs_names, columns=names)
    if groupby is not None:
        per_group = group_impact(scores, n_cells, bins, set_columns)
        if score == "enrichment":
            per_group[:, dead] = 0.0
        result["impact_by_group"] = {
            str(c): pd.DataFrame(per_group[i], index=nodes, columns=names) for i, c in enumerate(categories)
        }
    adata.uns[key_added] = result
    if activity is not None:
        logger.info("Added adata.obsm[%r]: per-cell activity of %d gene sets.", activity_key, len(names))
    counts = stats["status"].value_counts()
    logger.info(
        "Added adata.uns[%r]: %d nodes x %d gene sets (%d dead and %d rare nodes, never reported).",
        key_added,
        len(nodes),
        len(names),
        counts.get("dead", 0),
        counts.get("rare", 0),
    )
    return adata if copy else None
