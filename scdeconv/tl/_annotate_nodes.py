"""``sd.tl.annotate_nodes``: one record per node: its gene set or a novel-programme flag, where it is active."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._defaults import ACTIVE_LIFT, FDR, REDUNDANT_CORRELATION
from .._docs import inject_docs
from .._keys import IMPACT_KEY, NODE_GENES_KEY, NODES_KEY, STABILITY_KEY
from .._logging import logger
from .._results import claim_uns_key, stored_result, strongest_modules
from ..scoring import active_cells, group_lift, redundant_nodes
from ._groups import group_labels
from ._saliency_pass import stored_latent


def _joined(values) -> str:
    return "; ".join(map(str, values))


def _set_columns(impact: dict, nodes: pd.Index, live: np.ndarray, fdr: float, n_sets: int) -> pd.DataFrame:
    """Per node: its best set by null z, that pair's FDR (and direction, if module_impact gives it), its calls."""
    if "fdr" not in impact:
        raise KeyError(
            "annotate_nodes needs the null model of module_impact (its 'fdr'). Rerun "
            "`sd.tl.module_impact(adata, score='enrichment', n_null=1000)`."
        )
    # Conditional FDRs when module_impact gives them: a set called only through a stronger set's genes is not called.
    null_z, fdrs = impact["null_z"], impact.get("fdr_conditional", impact["fdr"])
    direction = impact.get("direction")  # per (node, set) "up"/"down", when module_impact reports it
    rows = []
    for i, node in enumerate(nodes):
        if not live[i]:
            row = {"best_set": "", "best_fdr": np.nan, "best_null_z": np.nan, "called_sets": "", "n_called": 0}
            rows.append(row if direction is None else row | {"direction": ""})  # strings throughout: h5ad-safe
            continue
        z = null_z.loc[node].sort_values(ascending=False)
        called = [s for s in z.index if fdrs.loc[node, s] < fdr]
        best = z.index[0]
        row = {
            "best_set": best,
            "best_fdr": float(fdrs.loc[node, best]),
            "best_null_z": float(z.iloc[0]),
            "called_sets": _joined(called[:n_sets]),
            "n_called": len(called),
        }
        if direction is not None:
            row["direction"] = str(direction.loc[node, best])
        rows.append(row)
    return pd.DataFrame(rows, index=nodes)


def _module_columns(impact: dict, nodes: pd.Index, live: np.ndarray, fdr: float) -> pd.DataFrame | None:
    """Per node: its strongest co-expression module called at ``fdr``, that pair's FDR and the module's sets.

    None when module_impact scored no modules (``null="expression"``).
    """
    if "module_null_z" not in impact:
        return None
    fdrs, labels = impact["module_fdr"], impact["module_sets"]
    rows = []
    for i, (node, best) in enumerate(strongest_modules(impact, fdr=fdr).reindex(nodes).fillna("").items()):
        if not (live[i] and best):
            rows.append({"module": "", "module_fdr": np.nan, "module_sets": ""})
            continue
        row = {"module": best, "module_fdr": float(fdrs.loc[node, best]), "module_sets": labels.loc[best, "sets"]}
        rows.append(row)
    return pd.DataFrame(rows, index=nodes)


@inject_docs
def annotate_nodes(
    adata: AnnData,
    *,
    groupby: str | None = None,
    fdr: float = FDR,
    n_sets: int = 3,
    n_genes: int = 10,
    redundant_correlation: float = REDUNDANT_CORRELATION,
    active_lift: float = ACTIVE_LIFT,
    impact_key: str = IMPACT_KEY,
    node_genes_key: str = NODE_GENES_KEY,
    stability_key: str = STABILITY_KEY,
    key_added: str = NODES_KEY,
    copy: bool = False,
) -> AnnData | None:
    """One record per node: the programme it encodes (a gene set, or novel), where it is active, how stable.

    Reads what earlier steps wrote, and needs no new pass over the cells:

    - :func:`scdeconv.tl.module_impact` (with its null model): the node's status (live, dead,
      rare), its best gene set by null z with that pair's FDR, and the sets called at ``fdr``
      (the conditional FDR ``fdr_conditional``, which does not call a set only for the genes it
      shares with a stronger called set).
      With ``null="coexpression"``, also the node's strongest co-expression module called at
      ``fdr`` and the given sets that module is made of: a set inside a module the node carries
      is not called under that null, and the module stands for it.
      A live node with no set called, and no called module made of given sets, is flagged
      ``novel``: it varies over cells and drives genes, but no given gene set explains it; its
      top genes say what it might be.
    - the representation: a live node whose activation correlates (``|r| >=
      redundant_correlation`` over cells) with a node of larger impact is ``redundant`` (it
      repeats that node).
    - :func:`scdeconv.tl.node_genes`, when run: the node's top genes.
    - :func:`scdeconv.tl.stability`, when run: the node's stability over seeds.
    - ``groupby``: the categories where the node is active: those whose share of the node's
      active cells (its top quarter by activation) is at least ``active_lift`` times their share of
      all cells.

    Parameters
    ----------
    adata
        AnnData with a trained model and :func:`scdeconv.tl.module_impact` results.
    groupby
        ``obs`` column of clusters or cell types to say where each node is active; ``None`` skips it.
    fdr
        FDR at which a (node, set) pair is called.
    n_sets
        Called sets listed per node (best first).
    n_genes
        Top genes listed per node (from :func:`scdeconv.tl.node_genes`).
    redundant_correlation
        Correlation of activations over cells above which the weaker of two live nodes is redundant.
    active_lift
        Enrichment of a category among a node's active cells for the node to count as active there.
    impact_key, node_genes_key, stability_key
        ``uns`` keys of the results read (the last two are optional).
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_nodes' | key_added]``:

    ``node_table``
        DataFrame per node (``node_0 ...``): ``status`` (``"live"``, ``"dead"``, ``"rare"`` as in
        ``node_stats``, or ``"redundant"``), ``annotation`` (the best set when some set is called;
        else ``"module_7: SET_A; SET_B"`` when a called co-expression module is made of given
        sets; ``"novel programme"`` for a live node with neither; else ``""``), ``novel`` (bool),
        ``best_set``, ``best_fdr``, ``best_null_z``, ``direction`` (only when module_impact reports
        the direction of each pair), ``called_sets`` (up to ``n_sets``, ``"; "``-joined) and
        ``n_called``; with ``null="coexpression"``, ``module``, ``module_fdr`` and
        ``module_sets`` (the node's strongest called module, or ``""``); ``redundant_with`` (the
        node it repeats, or ``""``), ``n_active`` (cells that fire it), ``top_genes`` (with
        node_genes), ``stability`` (with stability) and, with ``groupby``, ``active_in``
        (categories, strongest first), ``top_group`` and ``top_lift``.
    ``params``
        The arguments, and which optional results were found (``node_genes_key`` and
        ``stability_key`` are ``""`` when absent).

    Examples
    --------
    >>> sd.tl.annotate_nodes(adata, groupby="paul15_clusters")  # doctest: +SKIP
    >>> sd.get.nodes_df(adata).query("novel")  # doctest: +SKIP
    """
    if not 0 < fdr <= 1:
        raise ValueError(f"fdr must be in (0, 1], not {fdr}.")
    adata = adata.copy() if copy else adata
    impact = stored_result(adata, impact_key, "impact")
    model_key = impact["params"]["model_key"]
    claim_uns_key(adata, key_added, "node_table", reads=(impact_key, model_key, node_genes_key, stability_key))
    stats = impact["node_stats"]
    nodes = stats.index
    live = ~stats["dead"].to_numpy()
    table = _set_columns(impact, nodes, live, fdr, n_sets)
    latent = stored_latent(adata, model_key)
    twins = redundant_nodes(latent, live, stats["max_impact"].to_numpy(), redundant_correlation)
    status = stats["status"].astype(str).to_numpy().copy()
    status[twins >= 0] = "redundant"
    has_set = table["n_called"].to_numpy() > 0
    annotation = np.where(has_set, table["best_set"].to_numpy(), "").astype(object)
    modules = _module_columns(impact, nodes, live, fdr)
    if modules is not None:
        named = live & ~has_set & (modules["module_sets"].to_numpy() != "")
        labels = [f"{m}: {sets}" for m, sets in zip(modules["module"], modules["module_sets"], strict=True)]
        annotation = np.where(named, labels, annotation)
        table = table.join(modules)
        has_set = has_set | named
    novel = live & ~has_set
    annotation = np.where(novel, "novel programme", annotation).astype(str)
    table.insert(0, "status", status)
    table.insert(1, "annotation", annotation)
    table.insert(2, "novel", novel)
    table["redundant_with"] = [str(nodes[t]) if t >= 0 else "" for t in twins]
    table["n_active"] = stats["n_active"].to_numpy()
    found = {"node_genes_key": "", "stability_key": ""}
    if node_genes_key in adata.uns:
        names = stored_result(adata, node_genes_key, "node_genes")["names"]
        top = [_joined(names[n].head(n_genes)) if n in names else "" for n in nodes]
        table["top_genes"] = np.where(live, top, "")
        found["node_genes_key"] = node_genes_key
    else:
        logger.info("No node_genes result in adata.uns[%r]; run `sd.tl.node_genes(adata)` for genes.", node_genes_key)
    if stability_key in adata.uns:
        stability = stored_result(adata, stability_key, "stability")["nodes"]["stability"]
        table["stability"] = stability.reindex(nodes).to_numpy()
        found["stability_key"] = stability_key
    if groupby is not None:
        labels, categories = group_labels(adata, groupby)
        lift = group_lift(active_cells(latent), labels, len(categories))
        order = np.argsort(-lift, axis=1, kind="stable")
        table["active_in"] = [
            _joined(categories[k] for k in order[i] if lift[i, k] >= active_lift) if live[i] else ""
            for i in range(len(nodes))
        ]
        table["top_group"] = [categories[order[i, 0]] for i in range(len(nodes))]
        table["top_lift"] = lift[np.arange(len(nodes)), order[:, 0]]
    adata.uns[key_added] = {
        "node_table": table,
        "params": {
            "groupby": groupby or "",
            "fdr": float(fdr),
            "n_sets": int(n_sets),
            "n_genes": int(n_genes),
            "redundant_correlation": float(redundant_correlation),
            "active_lift": float(active_lift),
            "impact_key": impact_key,
            **found,
        },
    }
    counts = pd.Series(status).value_counts().to_dict()
    logger.info(
        "Added adata.uns[%r]: %d nodes (%s), %d novel programmes.", key_added, len(nodes), counts, int(novel.sum())
    )
    return adata if copy else None
