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
from .._rows import ChunkedRows
from .._utils import check_counts, columns_of, count_matrix
from ..scoring import binned_zscores, expression_bins, set_enrichment

_SUMMED = (
    "set_medians",
    "attribution",
    "node_set",
    "node_set_squares",
    "node_gene_z",
    "weighted_attribution",
    "node_weight_totals",
    "activity_gene_z",
)


@dataclass
class GroupSums:
    """Per-group sums over cells, and cells per group.

    ``set_medians`` (groups, nodes, sets): per-cell set medians of |attribution| (``"median"``);
    ``attribution`` (groups, nodes, genes): |attribution| per gene (``"enrichment"``). Beside the
    sums: ``gene_mean``, the mean encoder input of each gene over all cells (expression bins),
    and ``activity`` (cells, sets), the per-cell activity of each set when asked for.
    ``node_set`` and ``node_set_squares`` (groups, nodes, sets): sums of the per-cell set
    enrichment of each node and of its square (the moments a two-group test needs);
    ``node_gene_z`` (groups, nodes, genes): sums of each gene's per-cell standardised attribution
    (what the set scores add up; the competitive part of the two-group test needs it per gene).
    ``weighted_attribution`` (groups, nodes, genes) and ``node_weight_totals`` (groups, nodes):
    |attribution| summed with each node's own cell weights, and the weights' sums.
    ``activity_gene_z`` (groups, genes): sums of the within-cell standardised attribution of each
    gene that the per-cell activity adds up (with ``activity``).
    """

    n_cells: np.ndarray
    set_medians: np.ndarray | None = None
    attribution: np.ndarray | None = None
    gene_mean: np.ndarray | None = None
    activity: np.ndarray | None = None
    node_set: np.ndarray | None = None
    node_set_squares: np.ndarray | None = None
    node_gene_z: np.ndarray | None = None
    weighted_attribution: np.ndarray | None = None
    node_weight_totals: np.ndarray | None = None
    activity_gene_z: np.ndarray | None = None

    def mean(self, name: str) -> np.ndarray:
        """Per-group means of one of the summed quantities."""
        total = getattr(self, name)
        return total / np.maximum(self.n_cells, 1).reshape(-1, *([1] * (total.ndim - 1)))

    def profiles(self) -> np.ndarray:
        """Per group, nodes x genes mean |attribution|: over each node's weighted cells when summed so."""
        if self.weighted_attribution is None:
            return self.mean("attribution")
        return self.weighted_attribution / np.maximum(self.node_weight_totals, 1e-12)[:, :, None]

    @classmethod
    def combine(cls, parts: list[GroupSums]) -> GroupSums:
        """Sums over disjoint chunks of cells, added up: the same as one pass over all of them.

        Each part must come from :func:`saliency_group_sums` with the same ``gene_mean`` (pass the
        all-cell ``gene_mean`` to every chunk); per-cell ``activity`` rows are taken from the part
        that computed them.
        """
        first = parts[0]
        out = GroupSums(n_cells=sum(p.n_cells for p in parts), gene_mean=first.gene_mean)
        for name in _SUMMED:
            if getattr(first, name) is not None:
                setattr(out, name, sum(getattr(p, name) for p in parts))
        if first.activity is not None:
            out.activity = first.activity.copy()
            for part in parts[1:]:
                done = ~np.isnan(part.activity).all(axis=1)
                out.activity[done] = part.activity[done]
        return out

    def pooled(self) -> GroupSums:
        """All groups summed into one (exact: sums and counts, not averages of averages)."""
        fields = _SUMMED
        return GroupSums(
            n_cells=self.n_cells.sum(keepdims=True),
            gene_mean=self.gene_mean,
            activity=self.activity,
            **{f: getattr(self, f).sum(axis=0, keepdims=True) for f in fields if getattr(self, f) is not None},
        )


def model_counts(adata: AnnData, model_key: str, chunk_size: int | None = None):
    """The raw counts the model was trained on, columns in the model's gene order, and its gene list.

    For a backed AnnData the counts stay on disk and are read ``chunk_size`` cells at a time.
    """
    entry = stored_model(adata, model_key)
    layer = entry["params"]["layer"]
    layer = None if layer == "X" else layer
    genes = np.asarray(entry["var_names"]).astype(str)
    columns = columns_of(adata.var_names, genes, what=f"the model in adata.uns[{model_key!r}]")
    counts = count_matrix(adata, layer, columns, chunk_size=chunk_size)
    if not isinstance(counts, ChunkedRows):  # on disk the values were checked when training
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
    batch_size: int | None = None,
    cells: np.ndarray | None = None,
    gene_mean: np.ndarray | None = None,
    node_weights: np.ndarray | None = None,
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
    chunk_size
        Cells per chunk read from disk when ``adata`` is backed (ignored in memory).
    batch_size
        Cells per saliency batch (default: about 64 MB of attributions per batch).
    cells
        Only these cells (row indices), e.g. one chunk of a pass split over processes; combine
        the parts with :meth:`GroupSums.combine`. Pass the all-cell ``gene_mean`` to every part.
    gene_mean
        Mean encoder input per gene over all cells, when already known (else computed here).
    node_weights
        Cells x nodes weights (rows as ``adata``'s cells): also sum |attribution| per node with that
        node's cell weights (``weighted_attribution``, ``node_weight_totals``).
    """
    from tqdm import tqdm

    from .._module.inference import input_means
    from .._module.saliency import iter_saliency
    from .._module.training import resolve_device

    module, genes = load_model(adata, model_key)
    counts, _ = model_counts(adata, model_key, chunk_size)
    device = resolve_device(device)
    if cells is not None:
        keep = np.zeros(len(labels), dtype=bool)
        keep[np.asarray(cells)] = True
        labels = np.where(keep, labels, -1)
    rows = np.flatnonzero(labels >= 0)
    n_nodes, median = module.n_latent, score == "median"
    sums = GroupSums(n_cells=np.bincount(labels[rows], minlength=n_groups))
    on_disk = isinstance(counts, ChunkedRows)
    if gene_mean is None:
        gene_mean = input_means(module, counts, batch_size=counts.chunk_size if on_disk else 1024, device=device)
    sums.gene_mean = gene_mean
    if median:
        sums.set_medians = np.zeros((n_groups, n_nodes, len(set_columns)))
    else:
        sums.attribution = np.zeros((n_groups, n_nodes, len(genes)))
    if bins is None:
        bins = expression_bins(sums.gene_mean, n_bins)
    if node_sets:
        sums.node_set = np.zeros((n_groups, n_nodes, len(set_columns)))
        sums.node_set_squares = np.zeros_like(sums.node_set)
        if not median:
            sums.node_gene_z = np.zeros((n_groups, n_nodes, len(genes)))
    if activity:
        sums.activity = np.full((len(labels), len(set_columns)), np.nan)
        sums.activity_gene_z = np.zeros((n_groups, len(genes)))
    if node_weights is not None:
        node_weights = np.asarray(node_weights, dtype=np.float64)
        sums.weighted_attribution = np.zeros((n_groups, n_nodes, len(genes)))
        sums.node_weight_totals = np.zeros((n_groups, n_nodes))
    # In memory: one window holding every cell. On disk: contiguous windows of chunk_size cells.
    windows = counts.windows(rows) if on_disk else [(rows, None)]
    with tqdm(total=len(rows), desc="saliency", unit="cell", disable=not progress) as bar:
        for window, block in windows:
            source, offset = (counts, 0) if block is None else (block, window)
            for group in range(n_groups):  # one group at a time, so per-gene sums stay per group
                members = np.flatnonzero(labels[window] == group)
                if len(members) == 0:
                    continue
                chunks = iter_saliency(
                    module,
                    source,
                    set_columns,
                    rows=window[members] if block is None else members,
                    method=method,
                    set_scores=median,
                    gene_sums=not median,
                    cell_totals=activity,
                    node_set_bins=bins if node_sets and not median else None,
                    node_weights=None
                    if node_weights is None
                    else (node_weights if block is None else node_weights[window]),
                    chunk_size=batch_size,
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
                        if not median:
                            sums.node_gene_z[group] += chunk.node_gene_zsums
                    if node_weights is not None:
                        sums.weighted_attribution[group] += chunk.weighted_gene_sums
                        cell_rows = chunk.rows if block is None else offset[chunk.rows]
                        sums.node_weight_totals[group] += node_weights[cell_rows].sum(axis=0)
                    if activity:
                        cell_rows = chunk.rows if block is None else offset[chunk.rows]
                        cell_z = binned_zscores(chunk.cell_totals, bins)
                        sums.activity[cell_rows] = set_enrichment(cell_z, set_columns)
                        sums.activity_gene_z[group] += cell_z.sum(axis=0)
                        del cell_z  # not held while the next batch's attributions are computed
                    bar.update(len(chunk.rows))
    return sums
