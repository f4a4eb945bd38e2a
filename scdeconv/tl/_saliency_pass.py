"""One pass of saliency over the cells of an AnnData, reduced to per-group sums of set scores.

Shared by :func:`module_impact` and :func:`group_diff`: the model is rebuilt from ``uns``, the
counts are taken in the model's gene order, and per-cell gene-set medians are summed per group
label as they stream out of :func:`scdeconv._module.saliency.iter_saliency`. Sums and counts
(not averages of averages) make chunks computed anywhere combine exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from anndata import AnnData

from .._model_store import load_model, stored_model
from .._utils import as_row_matrix, check_counts, columns_of, get_matrix, select_columns
from ..scoring import cell_activity, expression_bins


@dataclass
class GroupSums:
    """Per-group sums over cells, and cells per group.

    ``set_medians`` (groups, nodes, sets): per-cell set medians of |attribution| (``"median"``);
    ``attribution`` (groups, nodes, genes): |attribution| per gene (``"enrichment"``). Beside the
    sums: ``gene_mean``, the mean encoder input of each gene over all cells (expression bins),
    and ``activity`` (cells, sets), the per-cell activity of each set when asked for.
    ``node_set`` and ``node_set_squares`` (groups, nodes, sets): sums of the per-cell set
    enrichment of each node and of its square (the moments a two-group test needs).
    """

    n_cells: np.ndarray
    set_medians: np.ndarray | None = None
    attribution: np.ndarray | None = None
    gene_mean: np.ndarray | None = None
    activity: np.ndarray | None = None
    node_set: np.ndarray | None = None
    node_set_squares: np.ndarray | None = None

    def mean(self, name: str) -> np.ndarray:
        """Per-group means of one of the summed quantities."""
        total = getattr(self, name)
        return total / np.maximum(self.n_cells, 1).reshape(-1, *([1] * (total.ndim - 1)))

    def pooled(self) -> GroupSums:
        """All groups summed into one (exact: sums and counts, not averages of averages)."""
        fields = ("set_medians", "attribution", "node_set", "node_set_squares")
        return GroupSums(
            n_cells=self.n_cells.sum(keepdims=True),
            gene_mean=self.gene_mean,
            activity=self.activity,
            **{f: getattr(self, f).sum(axis=0, keepdims=True) for f in fields if getattr(self, f) is not None},
        )


def model_counts(adata: AnnData, model_key: str):
    """The raw counts the model was trained on, columns in the model's gene order, and its gene list."""
    entry = stored_model(adata, model_key)
    layer = entry["params"]["layer"]
    layer = None if layer == "X" else layer
    genes = np.asarray(entry["var_names"]).astype(str)
    columns = columns_of(adata.var_names, genes, what=f"the model in adata.uns[{model_key!r}]")
    counts = as_row_matrix(select_columns(get_matrix(adata, layer), columns))
    check_counts(counts, layer=layer)
    return counts, genes


def saliency_group_sums(
    adata: AnnData,
    *,
    model_key: str,
    set_columns: list[np.ndarray],
    labels: np.ndarray,
    n_groups: int,
    method: str,
    score: str,
    chunk_size: int | None,
    device: str,
    progress: bool,
    activity: bool = False,
    node_sets: bool = False,
    n_bins: int = 10,
    bins: np.ndarray | None = None,
) -> GroupSums:
    """Sum, within each group, what ``score`` needs from the cells' attributions.

    Parameters
    ----------
    set_columns
        Per gene set, column indices into the model's gene list.
    labels
        Group index of every cell in ``0 .. n_groups-1``; cells labelled ``-1`` are skipped.
    score
        ``"median"`` sums per-cell set medians; ``"enrichment"`` sums per-gene attributions.
    activity
        Also score each cell's activity of each set (:func:`scdeconv.scoring.cell_activity`),
        with ``n_bins`` expression bins.
    node_sets
        Also sum, per group, each cell's score of every (node, set) and its square: the set
        enrichment of the cell's attributions (:func:`scdeconv._module.saliency.cell_set_enrichment`)
        for ``"enrichment"``, the set median for ``"median"``.
    bins
        Expression bin of every gene; by default ``n_bins`` equal-count bins of this pass's
        mean input (pass the stored bins so per-cell scores match a previous
        :func:`~scdeconv.tl.module_impact`).
    """
    from tqdm import tqdm

    from .._module.inference import input_means
    from .._module.saliency import iter_saliency
    from .._module.training import resolve_device

    module, genes = load_model(adata, model_key)
    counts, _ = model_counts(adata, model_key)
    device = resolve_device(device)
    rows = np.flatnonzero(labels >= 0)
    n_nodes, median = module.n_latent, score == "median"
    sums = GroupSums(n_cells=np.bincount(labels[rows], minlength=n_groups))
    sums.gene_mean = input_means(module, counts, device=device)
    if median:
        sums.set_medians = np.zeros((n_groups, n_nodes, len(set_columns)))
    else:
        sums.attribution = np.zeros((n_groups, n_nodes, len(genes)))
    if bins is None:
        bins = expression_bins(sums.gene_mean, n_bins)
    if node_sets:
        sums.node_set = np.zeros((n_groups, n_nodes, len(set_columns)))
        sums.node_set_squares = np.zeros_like(sums.node_set)
    if activity:
        sums.activity = np.full((len(labels), len(set_columns)), np.nan)
    with tqdm(total=len(rows), desc="saliency", unit="cell", disable=not progress) as bar:
        for group in range(n_groups):  # one group at a time, so per-gene sums stay per group
            chunks = iter_saliency(
                module,
                counts,
                set_columns,
                rows=np.flatnonzero(labels == group),
                method=method,
                set_scores=median,
                gene_sums=not median,
                cell_totals=activity,
                node_set_bins=bins if node_sets and not median else None,
                chunk_size=chunk_size,
                device=device,
            )
            for chunk in chunks:
                if median:
                    sums.set_medians[group] += chunk.set_scores.sum(axis=0, dtype=np.float64)
                else:
                    sums.attribution[group] += chunk.gene_sums
                if node_sets:
                    scores = (chunk.set_scores if median else chunk.node_set_scores).astype(np.float64)
                    sums.node_set[group] += scores.sum(axis=0)
                    sums.node_set_squares[group] += (scores * scores).sum(axis=0)
                if activity:
                    sums.activity[chunk.rows] = cell_activity(chunk.cell_totals, bins, set_columns)
                bar.update(len(chunk.rows))
    return sums
