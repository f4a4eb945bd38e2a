"""What a saliency pass keeps: small accumulators fed batch by batch by :func:`~.saliency.stream_attributions`.

Each reducer declares what it needs from a batch (``needs_magnitude``: the full cells x nodes x
genes |attribution|; ``block_width``: how many genes its attributions span, which sizes the
batches) and keeps float64 sums per group of cells. Sums and counts, not averages of averages, so
reducers fed disjoint cells anywhere combine exactly with :meth:`Reducer.merge`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from ..scoring import active_expression_shift, cell_activity
from .saliency import CellBatch, cell_gene_zscores, set_membership


class Reducer:
    """Base class: per-group float64 sums named in ``summed``, merged by addition."""

    needs_magnitude = True
    summed: tuple[str, ...] = ()

    def block_width(self, n_genes: int) -> int:
        return n_genes

    def update(self, batch: CellBatch) -> None:
        raise NotImplementedError

    def merge(self, other: Reducer) -> None:
        """Add the sums of ``other``, fed other cells of the same pass, to this reducer's."""
        for name in self.summed:
            getattr(self, name).__iadd__(getattr(other, name))


class AttributionProfile(Reducer):
    """Per group, each node's |attribution| to each gene summed over cells, optionally weighted per node.

    ``node_weights`` (cells x nodes, rows as the streamed matrix's) gives each node its own cells,
    e.g. its active cells (:func:`scdeconv.scoring.active_cells`); without it every cell weighs 1.
    """

    summed = ("sums", "weight_totals")

    def __init__(self, n_groups: int, n_nodes: int, n_genes: int, node_weights: np.ndarray | None = None):
        self.node_weights = None if node_weights is None else np.asarray(node_weights, dtype=np.float64)
        self.sums = np.zeros((n_groups, n_nodes, n_genes))
        self.weight_totals = np.zeros((n_groups, n_nodes))

    def update(self, batch: CellBatch) -> None:
        magnitude = batch.magnitude
        weights = None
        if self.node_weights is not None:
            weights = torch.as_tensor(
                self.node_weights[batch.positions], dtype=magnitude.dtype, device=magnitude.device
            )
        present, sums = batch.group_sums(magnitude, weights)
        self.sums[present] += sums.double().cpu().numpy()
        if weights is None:
            self.weight_totals[present] += np.bincount(batch.labels, minlength=present.max() + 1)[present, None]
        else:
            self.weight_totals[present] += batch.group_sums(weights)[1].double().cpu().numpy()

    def profiles(self) -> np.ndarray:
        """Groups x nodes x genes mean |attribution| (over each node's weighted cells)."""
        return self.sums / np.maximum(self.weight_totals, 1e-12)[:, :, None]

    def pooled(self) -> np.ndarray:
        """Nodes x genes mean |attribution| over all groups' cells together (exact: sums, not averages)."""
        return self.sums.sum(axis=0) / np.maximum(self.weight_totals.sum(axis=0), 1e-12)[:, None]


class ExpressionShift(Reducer):
    """Per group, the encoder input's sums per gene (and squares), and each node's sums over its weighted cells.

    No attributions: the input itself (log1p of library-normalised counts), so that a node's
    active cells (``node_weights``, cells x nodes, as for :class:`AttributionProfile`) can be
    compared with all cells gene by gene (:func:`scdeconv.scoring.active_expression_shift`).
    """

    needs_magnitude = False
    summed = ("total", "squares", "weighted", "weight_totals", "n_cells")

    def __init__(self, n_groups: int, n_nodes: int, n_genes: int, node_weights: np.ndarray):
        self.node_weights = np.asarray(node_weights, dtype=np.float64)
        self.total = np.zeros((n_groups, n_genes))
        self.squares = np.zeros_like(self.total)
        self.weighted = np.zeros((n_groups, n_nodes, n_genes))
        self.weight_totals = np.zeros((n_groups, n_nodes))
        self.n_cells = np.zeros(n_groups)

    def block_width(self, n_genes: int) -> int:
        return 1  # holds no attribution block: batches are sized by the other reducers

    def update(self, batch: CellBatch) -> None:
        x = batch.x.double()
        weights = torch.as_tensor(self.node_weights[batch.positions], dtype=x.dtype, device=x.device)
        for group, rows in batch.groups():
            part = x[rows]
            self.total[group] += part.sum(dim=0).cpu().numpy()
            self.squares[group] += (part * part).sum(dim=0).cpu().numpy()
            self.weighted[group] += (weights[rows].T @ part).cpu().numpy()
            self.weight_totals[group] += weights[rows].sum(dim=0).cpu().numpy()
            self.n_cells[group] += part.shape[0]

    def profiles(self) -> np.ndarray:
        """Groups x nodes x genes: the shift of each node's active cells within each group, in SDs."""
        parts = zip(self.total, self.squares, self.weighted, self.weight_totals, self.n_cells, strict=True)
        return np.stack([active_expression_shift(t, q, w, c, int(n)) for t, q, w, c, n in parts])

    def pooled(self) -> np.ndarray:
        """Nodes x genes: the shift of each node's active cells among all groups' cells together."""
        return active_expression_shift(
            self.total.sum(axis=0),
            self.squares.sum(axis=0),
            self.weighted.sum(axis=0),
            self.weight_totals.sum(axis=0),
            int(self.n_cells.sum()),
        )


class SetMedians(Reducer):
    """Per group, sums and squares over cells of each node's per-cell median |attribution| over each set.

    The paper's statistic (Kinalis et al. 2019); its sums give the mean over cells, its squares the
    moments of a two-group test.
    """

    needs_magnitude = False
    summed = ("sums", "squares")

    def __init__(self, n_groups: int, n_nodes: int, set_columns: Sequence[np.ndarray]):
        self.set_columns = [np.asarray(c) for c in set_columns]
        self.sums = np.zeros((n_groups, n_nodes, len(self.set_columns)))
        self.squares = np.zeros_like(self.sums)

    def block_width(self, n_genes: int) -> int:
        return len(np.unique(np.concatenate(self.set_columns)))

    def update(self, batch: CellBatch) -> None:
        medians = batch.set_medians(self.set_columns)
        for group, rows in batch.groups():
            part = medians[rows]
            self.sums[group] += part.sum(axis=0)
            self.squares[group] += (part * part).sum(axis=0)


class NodeSetScores(Reducer):
    """Per group, moments over cells of each cell's set enrichment for every (node, set).

    A cell's score of (node, set) is its |attribution| to the node standardised among the genes of
    each expression bin (:func:`~.saliency.cell_gene_zscores`) and Stouffer-summed over the set.
    Keeps the sums and squares of those scores, and the sums of the per-gene standardised values
    they add up (``gene_z``: what a competitive test of the scores' change needs).
    """

    summed = ("sums", "squares", "gene_z")

    def __init__(self, n_groups: int, n_nodes: int, bins: np.ndarray, set_columns: Sequence[np.ndarray]):
        self.bins = np.asarray(bins)
        # The z-scores come bin by bin (cell_gene_zscores(by_bin=True)): members are taken in that order.
        self.order = np.argsort(self.bins, kind="stable")
        self.members = set_membership(set_columns, len(self.bins))[self.order]
        self.sums = np.zeros((n_groups, n_nodes, len(set_columns)))
        self.squares = np.zeros_like(self.sums)
        self.gene_z = np.zeros((n_groups, n_nodes, len(self.bins)))

    def update(self, batch: CellBatch) -> None:
        magnitude = batch.magnitude
        bins = torch.as_tensor(self.bins, dtype=torch.long, device=magnitude.device)
        gene_z = cell_gene_zscores(magnitude, bins, by_bin=True)
        scores = (gene_z @ torch.as_tensor(self.members, dtype=gene_z.dtype, device=gene_z.device)).double()
        for group, rows in batch.groups():
            part = scores[rows]
            self.sums[group] += part.sum(dim=0).cpu().numpy()
            self.squares[group] += (part * part).sum(dim=0).cpu().numpy()
        present, gene_z_sums = batch.group_sums(gene_z)
        self.gene_z[np.ix_(present, np.arange(gene_z.shape[1]), self.order)] += gene_z_sums.double().cpu().numpy()


class CellActivity(Reducer):
    """Each cell's activity of each gene set, and per group the sums of the gene z-scores it adds up.

    A cell's activity is its |attribution| summed over nodes, z-scored among expression-matched
    genes and Stouffer-summed over each set (:func:`scdeconv.scoring.cell_activity`). ``activity``
    has a row for every row of the streamed matrix (NaN where a cell was not streamed).
    """

    summed = ("gene_z",)
    needs_magnitude = False  # node totals only (:meth:`~.saliency.CellBatch.node_totals`)

    def __init__(self, n_cells: int, n_groups: int, bins: np.ndarray, set_columns: Sequence[np.ndarray]):
        self.bins = np.asarray(bins)
        self.set_columns = [np.asarray(c) for c in set_columns]
        self.activity = np.full((n_cells, len(self.set_columns)), np.nan)
        self.gene_z = np.zeros((n_groups, len(self.bins)))

    def update(self, batch: CellBatch) -> None:
        totals = batch.node_totals().cpu().numpy()
        activity, gene_z = cell_activity(totals, self.bins, self.set_columns)
        self.activity[batch.positions] = activity
        for group, rows in batch.groups():
            self.gene_z[group] += gene_z[rows].sum(axis=0)

    def merge(self, other: CellActivity) -> None:
        super().merge(other)
        done = ~np.isnan(other.activity).all(axis=1)
        self.activity[done] = other.activity[done]


class Relabelled(Reducer):
    """Feeds ``inner`` coarser groups: a cell of group ``g`` counts for ``inner`` in group ``mapping[g]``.

    One pass can then keep fine groups (e.g. group x sample) in small reducers and only the coarse
    groups in a large one (an :class:`AttributionProfile` is nodes x genes per group).
    """

    def __init__(self, inner: Reducer, mapping: np.ndarray):
        self.inner, self.mapping = inner, np.asarray(mapping, dtype=np.int64)
        self.needs_magnitude = inner.needs_magnitude

    def block_width(self, n_genes: int) -> int:
        return self.inner.block_width(n_genes)

    def update(self, batch: CellBatch) -> None:
        self.inner.update(dataclasses.replace(batch, labels=self.mapping[batch.labels]))

    def merge(self, other: Relabelled) -> None:
        self.inner.merge(other.inner)


def pooled_groups(reducer: Reducer, groups: Sequence[Sequence[int]]) -> Reducer:
    """A shallow copy of ``reducer`` whose summed arrays pool its groups: new group ``i`` = sum over ``groups[i]``.

    Sums pool exactly, so a reducer fed many groups answers for any union of them (e.g. one
    category against all the others) without another pass.
    """
    pooled = copy.copy(reducer)
    for name in reducer.summed:
        values = getattr(reducer, name)
        setattr(pooled, name, np.stack([values[np.asarray(list(g), dtype=np.int64)].sum(axis=0) for g in groups]))
    return pooled


class InputSample(Reducer):
    """The encoder input of a fixed sample of cells (``positions``, rows of the streamed matrix), float32.

    What co-expression modules are computed from (:func:`scdeconv.scoring.coexpression_modules`);
    rows of cells not fed stay 0, so samples fed disjoint cells merge by addition.
    """

    needs_magnitude = False
    summed = ("rows",)

    def __init__(self, positions: np.ndarray, n_genes: int):
        self.positions = np.sort(np.asarray(positions, dtype=np.int64))
        self.rows = np.zeros((len(self.positions), n_genes), dtype=np.float32)

    def block_width(self, n_genes: int) -> int:
        return 1  # holds no attribution block: batches are sized by the other reducers

    def update(self, batch: CellBatch) -> None:
        positions = np.asarray(batch.positions)
        keep = np.isin(positions, self.positions)
        if keep.any():
            where = np.searchsorted(self.positions, positions[keep])
            rows = torch.as_tensor(np.flatnonzero(keep), device=batch.x.device)
            self.rows[where] = batch.x[rows].float().cpu().numpy()
