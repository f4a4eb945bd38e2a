"""A short markdown report of a pipeline run: what each node encodes, what separates the groups."""

from __future__ import annotations

from anndata import AnnData

from ._defaults import FDR
from ._keys import GROUP_DIFF_KEY, IMPACT_KEY, MODEL_KEY, NODE_GENES_KEY, NODES_KEY
from ._results import carrying_modules, scored_profile, strongest_modules
from .get import impact_df, nodes_df
from .scoring import min_active_cells

SCORE_TEXT = {
    "median": "per-cell median over each set's genes, mean over cells (the paper's score)",
    "enrichment": "enrichment of each set's genes per node (Stouffer z)",
}
NULL_TEXT = {
    "expression": "tested against random gene sets of the same expression levels",
    "coexpression": (
        "tested against random gene sets of the same expression levels and against random genes of the same "
        "co-expression modules (both must reject), each module also scored as one unit"
    ),
}
PROFILE_TEXT = {
    "expression": "on the expression shift of the node's active cells",
    "attribution": "on the node's mean |attribution|",
}


def impact_text(params: dict) -> str:
    """One line on how the impact was scored: attributions, score and (for the enrichment) profile."""
    text = f"{params['method']} attributions, {SCORE_TEXT[params['score']]}"
    if params["score"] == "enrichment":
        text += " " + PROFILE_TEXT[scored_profile(params)]
        if int(params.get("n_null", 0) or 0) > 0:
            text += ", " + NULL_TEXT[params.get("null", "expression")]
    return text


def _short(name: str) -> str:
    """A gene-set name, or a module label naming several, without MSigDB's collection prefix."""
    return name.replace("HALLMARK_", "")


def _fdr_text(value: float, floor: float | None) -> str:
    """An FDR as the report prints it: ``"<= 0.001"`` at the null's floor, else 2 digits."""
    if floor is not None and value <= floor * (1 + 1e-9):
        return f"<= {floor:.2g}"
    return f"{value:.2g}"


def _null_floor(params: dict) -> float | None:
    """The smallest p-value the null model resolves, ``1 / (1 + n_null)``; None without a null."""
    n_null = int(params.get("n_null", 0) or 0)
    return 1.0 / (1 + n_null) if n_null > 0 else None


def listed_genes(adata: AnnData, node: str, n_genes: int) -> list[str]:
    """The node's top genes from ``sd.tl.node_genes`` (none for dead or rare nodes, none scored 0)."""
    if NODE_GENES_KEY not in adata.uns or node not in adata.uns[NODE_GENES_KEY]["names"]:
        return []
    return [str(g) for g in adata.uns[NODE_GENES_KEY]["names"][node] if str(g)][:n_genes]


def node_status_line(adata: AnnData, *, key: str = IMPACT_KEY) -> str:
    """How many nodes are live, dead and rare, and the rule that keeps the latter two out of the report."""
    stats = adata.uns[key]["node_stats"]
    status = stats["status"] if "status" in stats else stats["dead"].map({True: "dead", False: "live"})
    counts = status.value_counts()
    return (
        f"{counts.get('live', 0)} live nodes, {counts.get('dead', 0)} dead (no variation or no impact) and "
        f"{counts.get('rare', 0)} rare (firing in fewer than {min_active_cells(adata.n_obs)} cells); dead and "
        "rare nodes are never reported."
    )


def node_table(
    adata: AnnData, *, key: str = IMPACT_KEY, n_sets: int = 3, fdr: float = FDR, n_genes: int = 5
) -> list[str]:
    """Markdown rows: each node with a call (panel d), its called gene sets (largest impact first) and top genes."""
    stored = adata.uns[key]
    if "fdr" not in stored:
        return ["(no null model: run `module_impact` with `score='enrichment'` for calls)"]
    floor = _null_floor(stored["params"])
    table = impact_df(adata, key)
    called = table[table["fdr"] < fdr]
    if called.empty:
        return [f"No (node, gene set) pair at FDR < {fdr} on a live node."]
    rows = [
        f"{called['node'].nunique()} nodes carry {len(called)} (node, gene set) calls at FDR < {fdr}; "
        f"up to {n_sets} per node, largest impact first.",
        "",
        "| node | gene sets called (impact, FDR) | the node's top genes |",
        "|---|---|---|",
    ]
    for node in sorted(called["node"].unique(), key=lambda n: int(str(n).split("_")[-1])):
        top = called[called["node"] == node].nlargest(n_sets, "impact")
        sets = ", ".join(f"{_short(r.gene_set)} ({r.impact:.3g}, {_fdr_text(r.fdr, floor)})" for r in top.itertuples())
        rows.append(f"| {node} | {sets} | {', '.join(listed_genes(adata, node, n_genes))} |")
    return rows


def node_records(adata: AnnData, *, key: str = NODES_KEY) -> list[str]:
    """Markdown rows: one per live node (``sd.tl.annotate_nodes``): its gene set or novel flag, where active, genes."""
    if key not in adata.uns:
        return []
    table = nodes_df(adata, key, include_dead=False)
    floor = _null_floor(adata.uns[IMPACT_KEY]["params"])
    counts = nodes_df(adata, key)["status"].value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    rows = [
        f"Nodes: {summary}; {int(table['novel'].sum())} novel programmes (live; no gene set called, "
        "nor a module made of given sets). "
        "FDR: the best set's, conditional on the stronger sets called on the node that share its genes (a set "
        "called only through their genes is not this node's programme; panel d's table below gives the marginal "
        "calls). A node with no set called but a co-expression module called (`module_k: the sets it is made "
        "of`) shows the module's FDR: its genes move together, so the module is tested as one unit.",
        "",
    ]
    rows += ["| node | programme | FDR | active in | top genes |", "|---|---|---|---|---|"]
    modules = adata.uns[IMPACT_KEY].get("module_sets")
    for r in table.itertuples():
        name = _short(r.annotation) if r.status == "live" else f"redundant with {r.redundant_with}"
        by_module = r.n_called == 0 and bool(getattr(r, "module", ""))
        fdr = "" if r.novel or not name else _fdr_text(r.module_fdr if by_module else r.best_fdr, floor)
        if by_module and r.status == "live":
            made_of = modules.loc[r.module]
            name += (
                f" ({r.module}: {made_of['n_genes']} genes, no set over-represented)"
                if r.novel
                else f" ({made_of['n_genes']} genes, {made_of['top_share']:.0%} in the first set)"
            )
        rows.append(f"| {r.node} | {name} | {fdr} | {getattr(r, 'active_in', '')} | {getattr(r, 'top_genes', '')} |")
    return rows


def encoded_sets(adata: AnnData, *, key: str = IMPACT_KEY, fdr: float = FDR, n_genes: int = 6) -> list[str]:
    """Markdown rows: gene sets that some node encodes at the given FDR (null model), best first.

    With ``sd.tl.node_genes`` results, each row also lists the best node's top ``n_genes`` genes.
    """
    stats = adata.uns[key].get("set_stats")
    if stats is None:
        return ["(no null model: run `module_impact` with `score='enrichment'`)"]
    floor = _null_floor(adata.uns[key]["params"])
    called = stats[stats["fdr"] < fdr]
    rows = [f"{len(called)} of {len(stats)} gene sets at FDR < {fdr} (best node, Sidak-corrected over nodes).", ""]
    if NODE_GENES_KEY not in adata.uns:
        rows += ["| gene set | best node | null z | FDR |", "|---|---|---|---|"]
        rows += [
            f"| {_short(name)} | {r.best_node} | {r.null_z:.2f} | {_fdr_text(r.fdr, floor)} |"
            for name, r in called.iterrows()
        ]
        return rows
    rows += ["| gene set | best node | null z | FDR | the node's top genes |", "|---|---|---|---|---|"]
    for name, r in called.iterrows():
        genes = ", ".join(listed_genes(adata, r.best_node, n_genes))
        rows.append(f"| {_short(name)} | {r.best_node} | {r.null_z:.2f} | {_fdr_text(r.fdr, floor)} | {genes} |")
    return rows


def difference_table(adata: AnnData, *, key: str = GROUP_DIFF_KEY, n_rows: int = 10, fdr: float = FDR) -> list[str]:
    """Markdown rows: the largest (node, set) differences that panel e shows (tested calls), largest first."""
    from .pl._group_diff import calls_of_difference

    result = adata.uns[key]
    if "node_set_tests" not in result:
        return ["(no per-(node, set) tests: rerun `sd.tl.group_diff`)"]
    table, fdr_table = calls_of_difference(adata, key=key, fdr=fdr)
    long = table.stack().rename("diff").reset_index()
    long.columns = ["node", "gene_set", "diff"]
    long = long.reindex(long["diff"].abs().sort_values(ascending=False).index)
    floor = _null_floor(result.get("params", {}))
    if long.empty:
        return [f"No (node, gene set) difference at FDR < {fdr} (per-(node, set) tests, live nodes)."]
    rows = [
        f"{len(long)} (node, gene set) differences at FDR < {fdr} (per-(node, set) tests, live nodes); the "
        f"{min(n_rows, len(long))} largest:",
        "",
        "| node | gene set | difference | FDR |",
        "|---|---|---|---|",
    ]
    for r in long.head(n_rows).itertuples():
        called_fdr = _fdr_text(fdr_table.loc[r.node, r.gene_set], floor)
        rows.append(f"| {r.node} | {_short(r.gene_set)} | {r.diff:+.3g} | {called_fdr} |")
    return rows


def expectation_table(adata: AnnData, expectations, *, key: str = IMPACT_KEY, n_genes: int = 8) -> list[str]:
    """Markdown rows: does each expected (gene set, marker genes) pairing hold in this run?

    ``expectations``: (gene set, what the paper read in it, marker genes) triples. A pairing holds
    when the set is called (set FDR below ``FDR``) and its best node's top ``n_genes`` genes
    include one of the markers, or (``null="coexpression"``) when the set is part of the
    strongest co-expression module called on a node whose top genes include one. For each marker group, the
    nodes whose top genes hold a marker are listed with what they are called, so a reader sees
    where the markers went.
    """
    stats = adata.uns[key].get("set_stats")
    if stats is None or not expectations:
        return []
    rows = [
        "| gene set | the paper's reading | best node (set FDR) | its top genes | markers there | holds |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    via_module, strongest = carrying_modules(adata.uns[key]), strongest_modules(adata.uns[key])
    calls = impact_df(adata, key)
    calls = calls[calls["fdr"] < FDR] if "fdr" in calls else calls.iloc[:0]
    floor = _null_floor(adata.uns[key]["params"])
    for gene_set, reading, markers in expectations:
        markers = [m.upper() for m in markers]
        if gene_set not in stats.index:
            rows.append(f"| {_short(gene_set)} | {reading} | (not scored) | | | no |")
            continue
        best = stats.loc[gene_set]
        top = listed_genes(adata, best["best_node"], n_genes)
        found = [g for g in top if g.upper() in markers]
        holds = bool(found) and best["fdr"] < FDR
        row = [f"{best['best_node']} ({_fdr_text(best['fdr'], floor)})", ", ".join(top), ", ".join(found) or "none"]
        if not holds:  # the set may be in the module that names a node (null="coexpression")
            for node, module in via_module.loc[via_module[gene_set] != "", gene_set].items():
                genes = listed_genes(adata, node, n_genes)
                if hit := [g for g in genes if g.upper() in markers]:
                    fdr = _fdr_text(adata.uns[key]["module_fdr"].loc[node, module], floor)
                    row, holds = [f"{node} as {module} ({fdr})", ", ".join(genes), ", ".join(hit)], True
                    break
        rows.append(f"| {_short(gene_set)} | {reading} | {' | '.join(row)} | {'yes' if holds else '**no**'} |")
        carriers = []
        for node in adata.uns[key]["impact"].index:
            hit = [g for g in listed_genes(adata, node, 3) if g.upper() in markers]
            if hit:
                labels = calls[calls["node"] == node].nlargest(2, "impact")["gene_set"].map(_short)
                named = f"called {', '.join(labels)}" if len(labels) else _module_name(adata.uns[key], strongest[node])
                carriers.append(f"{node} ({', '.join(hit)}; {named})")
        notes.append(
            f"- Nodes led (top 3 genes) by {_short(gene_set)}'s markers: " + ("; ".join(carriers) or "none") + "."
        )
    return [*rows, "", *notes]


def _module_name(impact: dict, module: str) -> str:
    """``"named module_7 (SET_A; SET_B)"`` for a node's strongest called module, else ``"called nothing"``."""
    if not module:
        return "called nothing"
    return f"named {module} ({_short(impact['module_sets'].loc[module, 'sets']) or 'no set over-represented'})"


def tested_sets(adata: AnnData, *, key: str = GROUP_DIFF_KEY, n_rows: int = 10, fdr: float = FDR) -> list[str]:
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
    floor = _null_floor(adata.uns[key].get("params", {}))
    rows += [f"| {_short(name)} | {r.effect:+.2f} | {_fdr_text(r.fdr, floor)} |" for name, r in called.iterrows()]
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
    expectations=(),
    expectations_note: str = "",
) -> None:
    """Write the markdown report of a finished pipeline run to ``path``.

    ``expectations`` (gene set, reading, marker genes) triples add a section saying which of them
    this run reproduces (:func:`expectation_table`), after ``expectations_note``.
    """
    model = adata.uns[MODEL_KEY]
    params = model["params"]
    history = model["history"]
    impact = adata.uns[IMPACT_KEY]
    diff = adata.uns[GROUP_DIFF_KEY]["params"]
    floor = _null_floor(impact["params"])
    resolution = (
        f" P-values and FDRs are floored at {floor:.2g} = 1 / (1 + {impact['params']['n_null']} random sets), "
        "the smallest the null model resolves (`<= ` in the tables)."
        if floor is not None
        else ""
    )
    expected = expectation_table(adata, expectations)
    lines = [
        f"# {title}",
        "",
        f"Data: {dataset}: {adata.n_obs} cells, {len(model['var_names'])} genes used by the model.",
        "",
        "## Model",
        f"- Autoencoder genes -> {'-'.join(map(str, params['n_hidden']))} -> {params['n_latent']} nodes, "
        f"{params['likelihood']} likelihood, orthogonality penalty {params['ortho_penalty']}.",
        f"- {params['n_epochs']} epochs (best {params['best_epoch']}, validation loss "
        f"{history['val_loss'].min():.4f}); {node_status_line(adata)}",
        *reconstruction_lines(model["reconstruction"]),
        f"- Impact: {impact_text(impact['params'])}; "
        f"{impact['impact'].shape[1]} gene sets ({impact['params']['gene_sets']}, {impact['params']['species']})."
        + resolution,
        "",
        *(["## One record per node", "", *node_records(adata), ""] if NODES_KEY in adata.uns else []),
        "## Which gene sets explain each node (panel d)",
        f"Calls of the null model: (node, gene set) pairs at FDR < {FDR} on live nodes, as panel d shows them "
        "(panel d also draws, marked m, the sets of the co-expression module that names a node: see the node records). "
        "Top genes: those whose expression rises most in the cells where the node is active "
        "(`sd.tl.node_genes`; only genes that rise are listed).",
        "",
        *node_table(adata),
        "",
        "## Gene sets encoded by some node",
        *encoded_sets(adata),
        "",
        *(["## What this run reproduces of the paper", expectations_note, "", *expected, ""] if expected else []),
        f"## {diff['group1']} vs {diff['group2']} (panel e)",
        comparison_note,
        "",
        f"Cells: {diff['n_cells1']} vs {diff['n_cells2']}. Positive: the set drives the node more in {diff['group1']}. "
        + (
            f"Samples (`{diff['sample_key']}`) are the replicates."
            if diff.get("replicates") == "samples"
            else "Cells are the replicates (no sample key): with cells from several donors, run with "
            "`--sample-key` so that a donor effect cannot read as a group difference."
        ),
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
