"""A short markdown report of a pipeline run: what each node encodes, what separates the groups."""

from __future__ import annotations

from anndata import AnnData

from ._defaults import PANEL_D_THRESHOLD, PANEL_E_THRESHOLD
from ._keys import GROUP_DIFF_KEY, IMPACT_KEY, MODEL_KEY, NODE_GENES_KEY, NODES_KEY
from .get import group_diff_df, impact_df, nodes_df
from .scoring import visible_nodes

SCORE_TEXT = {
    "median": "per-cell median over each set's genes, mean over cells (the paper's score)",
    "enrichment": "expression-matched enrichment of each set's genes per node (Stouffer z)",
}


def _short(name: str) -> str:
    return name.removeprefix("HALLMARK_")


def node_table(
    adata: AnnData, *, key: str = IMPACT_KEY, n_sets: int = 3, threshold: float = PANEL_D_THRESHOLD
) -> list[str]:
    """Markdown rows: each node shown in the heatmap, with its top gene sets by scaled impact."""
    table = impact_df(adata, key)
    # Enrichment z-scores compare across nodes as they are; the paper's median only after scaling.
    order = ["impact", "scaled"] if adata.uns[key]["params"]["score"] == "enrichment" else ["scaled", "impact"]
    wide = table.pivot(index="node", columns="gene_set", values="scaled")
    shown = visible_nodes(wide, threshold)
    rows = ["| node | top gene sets (impact, scaled; rank of this node for the set) |", "|---|---|"]
    for node in sorted(shown, key=lambda n: int(n.split("_")[-1])):
        top = table[table["node"] == node].nlargest(n_sets, order)
        cells = ", ".join(f"{_short(r.gene_set)} ({r.impact:.3g}, {r.scaled:.2f}; #{r.rank})" for r in top.itertuples())
        rows.append(f"| {node} | {cells} |")
    return rows


def node_records(adata: AnnData, *, key: str = NODES_KEY) -> list[str]:
    """Markdown rows: one per live node (``sd.tl.annotate_nodes``): its gene set or novel flag, where active, genes."""
    if key not in adata.uns:
        return []
    table = nodes_df(adata, key, include_dead=False)
    counts = nodes_df(adata, key)["status"].value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    rows = [f"Nodes: {summary}; {int(table['novel'].sum())} novel programmes (live, no gene set called).", ""]
    rows += ["| node | programme | FDR | active in | top genes |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        name = _short(r.annotation) if r.status == "live" else f"redundant with {r.redundant_with}"
        fdr = f"{r.best_fdr:.2g}" if not r.novel else ""
        rows.append(f"| {r.node} | {name} | {fdr} | {getattr(r, 'active_in', '')} | {getattr(r, 'top_genes', '')} |")
    return rows


def encoded_sets(adata: AnnData, *, key: str = IMPACT_KEY, fdr: float = 0.05, n_genes: int = 6) -> list[str]:
    """Markdown rows: gene sets that some node encodes at the given FDR (null model), best first.

    With ``sd.tl.node_genes`` results, each row also lists the best node's top ``n_genes`` genes.
    """
    stats = adata.uns[key].get("set_stats")
    if stats is None:
        return ["(no null model: run `module_impact` with `score='enrichment'`)"]
    called = stats[stats["fdr"] < fdr]
    names = adata.uns[NODE_GENES_KEY]["names"] if NODE_GENES_KEY in adata.uns else None
    rows = [f"{len(called)} of {len(stats)} gene sets at FDR < {fdr} (best node, Sidak-corrected over nodes).", ""]
    if names is None:
        rows += ["| gene set | best node | null z | FDR |", "|---|---|---|---|"]
        rows += [f"| {_short(name)} | {r.best_node} | {r.null_z:.2f} | {r.fdr:.3g} |" for name, r in called.iterrows()]
        return rows
    rows += ["| gene set | best node | null z | FDR | the node's top genes |", "|---|---|---|---|---|"]
    for name, r in called.iterrows():
        genes = ", ".join(map(str, names[r.best_node].head(n_genes))) if r.best_node in names else ""
        rows.append(f"| {_short(name)} | {r.best_node} | {r.null_z:.2f} | {r.fdr:.3g} | {genes} |")
    return rows


def difference_table(adata: AnnData, *, key: str = GROUP_DIFF_KEY, n_rows: int = 10) -> list[str]:
    """Markdown rows: the largest group differences among the (node, set) pairs panel e shows."""
    table = group_diff_df(adata, key)
    rows = ["| node | gene set | scaled impact | difference (scaled) |", "|---|---|---|---|"]
    for r in table.head(n_rows).itertuples():
        rows.append(
            f"| {r.node} | {_short(r.gene_set)} | {r.scaled_impact:.2f} | {r.diff:+.4f} ({r.scaled_diff:+.2f}) |"
        )
    return rows


def tested_sets(adata: AnnData, *, key: str = GROUP_DIFF_KEY, n_rows: int = 10, fdr: float = 0.05) -> list[str]:
    """Markdown rows: gene sets whose per-cell activity differs between the groups, largest effects first."""
    tests = adata.uns[key]["set_tests"]
    called = tests[tests["fdr"] < fdr]
    called = called.reindex(called["effect"].abs().sort_values(ascending=False).index).head(n_rows)
    rows = [
        f"{int((tests['fdr'] < fdr).sum())} of {len(tests)} gene sets differ in per-cell activity at FDR < {fdr} "
        + (
            "(two-sided Mann-Whitney over cells, and a larger change than matched random gene sets; effect = "
            "rank-biserial, positive = higher in the first group)."
            if adata.uns[key]["params"].get("replicates", "cells") == "cells"
            else f"(a {adata.uns[key]['params']['sample_test']} test over the samples of "
            f"`{adata.uns[key]['params']['sample_key']}`, and a larger change than matched random gene sets; "
            "effect = Cohen's d, positive = higher in the first group)."
        ),
        "",
        "| gene set | effect | FDR |",
        "|---|---|---|",
    ]
    rows += [f"| {_short(name)} | {r.effect:+.2f} | {r.fdr:.2g} |" for name, r in called.iterrows()]
    return rows


# Median per-gene deviance explained below which the report warns that the model reconstructs
# held-out cells hardly better than the null (each gene's average share of the cell's library).
LOW_DEVIANCE_EXPLAINED = 0.05


def reconstruction_lines(reconstruction) -> list[str]:
    """Markdown lines on how well held-out cells are reconstructed, with a warning when barely better than the null."""
    genes, cells = reconstruction["genes"], reconstruction["cells"]
    explained = float(genes["deviance_explained"].median())
    lines = [
        "- Reconstruction of the held-out cells: median correlation per gene "
        f"{genes['correlation'].median():.2f}, per cell {cells['correlation'].median():.2f}; median Poisson "
        f"deviance explained per gene {explained:.2f}."
    ]
    if explained <= 0:
        lines.append(
            f"  **Warning:** a median deviance explained of {explained:.2f} means the model reconstructs the "
            "held-out cells no better than a null that gives each gene its average share of the cell's library"
            + (" (below 0: worse than it)" if explained < 0 else "")
            + ". The representation has not yet learnt the genes' variation, so the impact scores below "
            "describe an under-trained model: train longer (more epochs: `--max-epochs`, `max_epochs=`) or "
            "on more cells before reading them."
        )
    elif explained < LOW_DEVIANCE_EXPLAINED:
        lines.append(
            f"  **Note:** a median deviance explained of {explained:.2f} is close to 0, the value of a null "
            "that gives each gene its average share of the cell's library: the model reconstructs held-out "
            "cells barely better than that. More epochs or more cells usually help; read the impact scores "
            "with care."
        )
    return lines


def write_report(
    adata: AnnData,
    path,
    *,
    title: str,
    dataset: str,
    comparison_note: str,
    figures: dict[str, str],
    timings: dict[str, float],
) -> None:
    """Write the markdown report of a finished pipeline run to ``path``."""
    model = adata.uns[MODEL_KEY]
    params = model["params"]
    history = model["history"]
    impact = adata.uns[IMPACT_KEY]
    diff = adata.uns[GROUP_DIFF_KEY]["params"]
    stats = impact["node_stats"]
    lines = [
        f"# {title}",
        "",
        f"Data: {dataset}: {adata.n_obs} cells, {len(model['var_names'])} genes used by the model.",
        "",
        "## Model",
        f"- Autoencoder genes -> {'-'.join(map(str, params['n_hidden']))} -> {params['n_latent']} nodes, "
        f"{params['likelihood']} likelihood, orthogonality penalty {params['ortho_penalty']}.",
        f"- {params['n_epochs']} epochs (best {params['best_epoch']}, validation loss "
        f"{history['val_loss'].min():.4f}); {int(stats['dead'].sum())} dead nodes.",
        *reconstruction_lines(model["reconstruction"]),
        f"- Impact: {impact['params']['method']} attributions, {SCORE_TEXT[impact['params']['score']]}; "
        f"{impact['impact'].shape[1]} gene sets ({impact['params']['gene_sets']}, {impact['params']['species']}).",
        "",
        *(["## One record per node", "", *node_records(adata), ""] if NODES_KEY in adata.uns else []),
        "## Which gene sets explain each node (panel d)",
        "Impact as scored; scaled: min-max per gene set across nodes, as in the paper's heatmap, where nodes "
        f"with no scaled score above {PANEL_D_THRESHOLD} and dead nodes are hidden.",
        "",
        *node_table(adata),
        "",
        "## Gene sets encoded by some node",
        "Top genes: those whose expression rises most in the cells where the node is active (`sd.tl.node_genes`).",
        "",
        *encoded_sets(adata),
        "",
        f"## {diff['group1']} vs {diff['group2']} (panel e)",
        comparison_note,
        "",
        f"Cells: {diff['n_cells1']} vs {diff['n_cells2']}. Positive: the set drives the node more in "
        f"{diff['group1']}. Shown where the whole-data scaled impact exceeds {PANEL_E_THRESHOLD}.",
        "",
        *difference_table(adata),
        "",
        *tested_sets(adata),
        "",
        "## Figures",
        *[f"- {label}: `{name}`" for label, name in figures.items()],
        "",
        "## Time (s)",
        *[f"- {step}: {seconds:.1f}" for step, seconds in timings.items()],
        "",
    ]
    with open(path, "w") as handle:
        handle.write("\n".join(lines))
