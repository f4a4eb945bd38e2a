"""Per-cell attributions of representation nodes to input genes, batched and reduced on the fly.

For this architecture (Linear + Softplus layers) the Jacobian of every node with respect to the
input is a few matrix products, so all nodes of a batch of cells are attributed at once, exactly,
without autograd. Nothing of size cells x nodes x genes is ever held: each batch is reduced to
per-cell gene-set medians (and optional per-gene sums) before the next one is computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .autoencoder import Autoencoder
from .training import batches, dense_rows

Method = Literal["guided", "gradient", "grad_x_input", "integrated_gradients"]
METHODS: tuple[str, ...] = ("guided", "gradient", "grad_x_input", "integrated_gradients")

# Methods whose set medians are computed set by set on the CPU (see set_medians_by_set).
_BY_SET = ("guided", "gradient", "grad_x_input")

# Elements of one batch's (cells x nodes x genes) attribution block: bounds memory (~64 MB).
_BLOCK_ELEMENTS = 16_000_000


@torch.no_grad()
def first_layer_gradient(module: Autoencoder, x: torch.Tensor, *, guided: bool) -> torch.Tensor:
    """(cells, nodes, width of the first layer's output): the Jacobian is this times ``encoder[0].weight``.

    With a single encoder layer (no hidden layer) it is already the Jacobian (cells, nodes, genes).
    """
    pre = []
    h = x
    for layer, beta in zip(module.encoder, module.encoder_betas, strict=True):
        a = layer(h)
        pre.append((a, beta))
        h = torch.nn.functional.softplus(a, beta=beta)
    # Seed: node j's derivative w.r.t. its own pre-activation, as (cells, nodes, 1) times W rows.
    a, beta = pre[-1]
    grad = torch.sigmoid(beta * a).unsqueeze(2)  # (B, J, 1): diagonal, always positive
    grad = grad * module.encoder[-1].weight.unsqueeze(0)  # (B, J, H): at the last hidden activation's output
    for depth in range(len(module.encoder) - 2, -1, -1):
        if guided:
            grad = grad.clamp(min=0)
        a, beta = pre[depth]
        grad = grad * torch.sigmoid(beta * a).unsqueeze(1)  # through the Softplus
        if depth > 0:
            grad = grad @ module.encoder[depth].weight  # through the Linear layer, to its input
    return grad


def _median_last(values: np.ndarray) -> np.ndarray:
    """Median over the last axis by selection (numpy's introselect), not a full sort."""
    n = values.shape[-1]
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(values, [lo, hi] if hi != lo else [lo], axis=-1)
    return 0.5 * (part[..., lo] + part[..., hi])


@torch.no_grad()
def set_medians_by_set(
    module: Autoencoder, x: torch.Tensor, set_columns: Sequence[torch.Tensor], *, method: str
) -> np.ndarray:
    """Per-cell median |attribution| over each set's genes, (cells, nodes, sets), on the CPU.

    The same numbers as :func:`set_medians` of the full attribution, computed set by set: the last
    product is taken only over the set's genes, so its result is already contiguous (no gather
    of cells x nodes x genes), and the median is a selection, not a sort. About 10x faster on CPU.
    Only for ``"guided"``, ``"gradient"`` and ``"grad_x_input"`` with a hidden layer.
    """
    grad = first_layer_gradient(module, x, guided=method == "guided")
    weight = module.encoder[0].weight
    out = np.empty((*grad.shape[:2], len(set_columns)), dtype=np.float64)
    for s, cols in enumerate(set_columns):
        part = (grad @ weight.index_select(1, cols)).abs_()
        if method == "grad_x_input":
            part.mul_(x.index_select(1, cols).unsqueeze(1))
        out[:, :, s] = _median_last(part.numpy())
    return out


@torch.no_grad()
def jacobian(
    module: Autoencoder, x: torch.Tensor, *, guided: bool, columns: torch.Tensor | None = None
) -> torch.Tensor:
    """d(node) / d(input) for every node, as a (cells, nodes, genes) tensor.

    With ``guided=True`` this is guided backpropagation (Springenberg et al. 2015), as in the
    paper: on the way back, the gradient is clamped at zero at each activation before being
    multiplied by the activation's derivative.

    Parameters
    ----------
    x
        Prepared encoder input (``module.prepare_input(counts)``), cells x genes.
    columns
        Restrict the result to these input genes (saves the last, largest product).
    """
    grad = first_layer_gradient(module, x, guided=guided)
    weight = module.encoder[0].weight
    if len(module.encoder) > 1:
        if columns is not None:
            weight = weight.index_select(1, columns)
        grad = grad @ weight  # through the first Linear layer, to its input
    if len(module.encoder) == 1 and columns is not None:  # no hidden layer: the seed was the input
        grad = grad.index_select(2, columns)
    return grad


def attribution(
    module: Autoencoder,
    x: torch.Tensor,
    *,
    method: Method = "guided",
    columns: torch.Tensor | None = None,
    n_steps: int = 16,
) -> torch.Tensor:
    """Signed attribution of every node to every input gene, (cells, nodes, genes).

    ``"guided"`` and ``"gradient"`` are the (guided) Jacobian; ``"grad_x_input"`` multiplies the
    gradient by the input; ``"integrated_gradients"`` averages gradients along the straight path
    from an all-zero input (midpoint rule, ``n_steps`` points) and multiplies by the input.
    """
    if method == "guided":
        return jacobian(module, x, guided=True, columns=columns)
    if method == "gradient":
        return jacobian(module, x, guided=False, columns=columns)
    x_cols = x if columns is None else x.index_select(1, columns)
    # In place: no second cells x nodes x genes buffer (allocating one costs as much as the product).
    if method == "grad_x_input":
        return jacobian(module, x, guided=False, columns=columns).mul_(x_cols.unsqueeze(1))
    if method == "integrated_gradients":
        total = None
        for alpha in (np.arange(n_steps) + 0.5) / n_steps:
            step = jacobian(module, x * float(alpha), guided=False, columns=columns)
            total = step if total is None else total.add_(step)
        return total.mul_(x_cols.unsqueeze(1) / n_steps)
    raise ValueError(f"method must be one of {METHODS}, not {method!r}.")


def set_medians(values: torch.Tensor, set_columns: Sequence[torch.Tensor]) -> torch.Tensor:
    """Median over each set's genes, per cell and node: (cells, nodes, genes) -> (cells, nodes, sets).

    The median of an even number of values is the mean of the middle two (as numpy's).
    """
    out = values.new_empty((*values.shape[:2], len(set_columns)))
    for s, cols in enumerate(set_columns):
        ordered = values.index_select(2, cols).sort(dim=2).values
        n = ordered.shape[2]
        out[:, :, s] = 0.5 * (ordered[:, :, (n - 1) // 2] + ordered[:, :, n // 2])
    return out


def cell_gene_zscores(values: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Each (cell, node) row of |attribution| standardised among the genes of each expression bin.

    Robustly: minus the bin's median, divided by its scaled median absolute deviation (1.4826
    MAD; where that is 0, as in sparse rows, by 1.2533 x the mean absolute deviation; no spread
    at all, or one below 1e-7 of the row's largest value, gives 0). Median and MAD, unlike mean
    and standard deviation, barely move when a group's strong programme lifts a minority of a
    bin's genes in its cells, so unrelated genes keep their values.

    Parameters
    ----------
    values
        (cells, nodes, genes) |attribution|.
    bins
        Expression bin (``0 .. n_bins-1``) of every gene, long tensor.
    """
    standardised = torch.zeros_like(values)
    # A spread below 1e-7 of the row's largest value (or near float underflow, as in dead nodes)
    # is rounding noise: its genes score 0 rather than overflowing 1 / spread to inf.
    floor = (values.amax(dim=2, keepdim=True) * 1e-7).clamp(min=torch.finfo(values.dtype).tiny * 1e8)
    for b in torch.unique(bins):
        genes = torch.nonzero(bins == b).ravel()
        block = values.index_select(2, genes)
        deviation = block - block.median(dim=2, keepdim=True).values
        spread = deviation.abs().median(dim=2, keepdim=True).values * 1.4826
        spread = torch.where(spread > 0, spread, deviation.abs().mean(dim=2, keepdim=True) * 1.2533)
        scale = torch.where(spread > floor, 1 / spread.clamp(min=floor), torch.zeros_like(spread))
        standardised[:, :, genes] = deviation * scale
    return standardised


def cell_set_enrichment(values: torch.Tensor, bins: torch.Tensor, set_matrix: torch.Tensor) -> torch.Tensor:
    """Per cell and node, the set enrichment of |attribution|: (cells, nodes, genes) -> (cells, nodes, sets).

    The values standardised by :func:`cell_gene_zscores`, summed over each set and divided by
    ``sqrt(|S|)`` (Stouffer).

    Parameters
    ----------
    bins
        Expression bin (``0 .. n_bins-1``) of every gene, long tensor.
    set_matrix
        Genes x sets, ``1 / sqrt(|S|)`` where the gene is in the set, else 0.
    """
    return cell_gene_zscores(values, bins) @ set_matrix


def set_membership(set_columns: Sequence[np.ndarray], n_genes: int) -> np.ndarray:
    """Genes x sets matrix with ``1 / sqrt(|S|)`` for members (the Stouffer weights)."""
    matrix = np.zeros((n_genes, len(set_columns)))
    for s, cols in enumerate(set_columns):
        matrix[np.asarray(cols), s] = 1 / np.sqrt(len(cols))
    return matrix


@dataclass
class SaliencyChunk:
    """The reduced saliency of one batch of cells."""

    rows: np.ndarray  # row indices of the cells
    set_scores: np.ndarray | None  # (cells, nodes, sets): per-cell median |attribution| over each set
    gene_sums: np.ndarray | None  # (nodes, genes): sum over the batch's cells of |attribution|
    cell_totals: np.ndarray | None  # (cells, genes): sum over nodes of |attribution|
    node_set_scores: np.ndarray | None = None  # (cells, nodes, sets): per-cell set enrichment of each node
    node_gene_zsums: np.ndarray | None = None  # (nodes, genes): sum over the batch's cells of the gene z-scores
    weighted_gene_sums: np.ndarray | None = None  # (nodes, genes): sum over cells of weight x |attribution|


def default_chunk_size(n_nodes: int, n_genes: int) -> int:
    """Cells per batch so that one attribution block stays near 64 MB."""
    return int(max(1, min(4096, _BLOCK_ELEMENTS // max(1, n_nodes * n_genes))))


@torch.no_grad()
def iter_saliency(
    module: Autoencoder,
    counts,
    set_columns: Sequence[np.ndarray],
    *,
    rows: np.ndarray | None = None,
    method: Method = "guided",
    set_scores: bool = True,
    gene_sums: bool = False,
    cell_totals: bool = False,
    node_set_bins: np.ndarray | None = None,
    node_weights: np.ndarray | None = None,
    chunk_size: int | None = None,
    n_steps: int = 16,
    device: torch.device | str = "cpu",
) -> Iterator[SaliencyChunk]:
    """Stream per-cell gene-set medians of |attribution| over batches of cells.

    Parameters
    ----------
    counts
        Cells x genes raw counts (scipy sparse or numpy), columns in the model's gene order.
    set_columns
        For each gene set, the column indices of its genes in ``counts``.
    rows
        Cells to attribute (default: all).
    set_scores
        Return per-cell medians of |attribution| over each set's genes (the paper's statistic).
    gene_sums
        Return per-batch sums over cells of |attribution| for every node and gene.
    cell_totals
        Return, for every cell and gene, the sum over nodes of |attribution| (per-cell activity).
    node_set_bins
        Expression bin of every gene: when given, also return per cell, node and set the set
        enrichment of |attribution| (:func:`cell_set_enrichment`), and per node and gene the
        batch's sum of the standardised values (:func:`cell_gene_zscores`).
    node_weights
        Cells x nodes weights, rows aligned with ``counts``: when given, also return per node and
        gene the batch's weighted sum of |attribution| (each node with its own cell weights).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}.")
    device = torch.device(device)
    module.to(device).eval()
    n_genes = counts.shape[1]
    per_cell_sets = node_set_bins is not None
    if per_cell_sets:
        bins_t = torch.as_tensor(np.asarray(node_set_bins), dtype=torch.long, device=device)
        members = torch.as_tensor(set_membership(set_columns, n_genes), dtype=torch.float32, device=device)
    if gene_sums or cell_totals or per_cell_sets or node_weights is not None:
        columns, local = None, [torch.as_tensor(c, dtype=torch.long, device=device) for c in set_columns]
        width = n_genes
    else:
        # Attribute only the genes that belong to some set: the largest product shrinks accordingly.
        union = np.unique(np.concatenate(list(set_columns)))
        columns = torch.as_tensor(union, dtype=torch.long, device=device)
        local = [torch.as_tensor(np.searchsorted(union, c), dtype=torch.long, device=device) for c in set_columns]
        width = len(union)
    global_sets = [torch.as_tensor(np.asarray(c), dtype=torch.long, device=device) for c in set_columns]
    rows = np.arange(counts.shape[0]) if rows is None else np.asarray(rows)
    size = chunk_size or default_chunk_size(module.n_latent, width)
    for batch in batches(len(rows), size):
        idx = rows[batch]
        dtype = next(module.parameters()).dtype  # float64 for a reference run
        x = module.prepare_input(dense_rows(counts, idx, device).to(dtype))
        by_set = set_scores and device.type == "cpu" and method in _BY_SET and len(module.encoder) > 1
        if by_set:
            medians = set_medians_by_set(module, x, global_sets, method=method)
            if not (gene_sums or cell_totals or per_cell_sets):
                yield SaliencyChunk(rows=idx, set_scores=medians, gene_sums=None, cell_totals=None)
                continue
        magnitude = attribution(module, x, method=method, columns=columns, n_steps=n_steps).abs_()
        gene_z = cell_gene_zscores(magnitude, bins_t) if per_cell_sets else None
        yield SaliencyChunk(
            rows=idx,
            set_scores=(medians if by_set else set_medians(magnitude, local).cpu().numpy()) if set_scores else None,
            gene_sums=magnitude.sum(dim=0).cpu().numpy() if gene_sums else None,
            cell_totals=magnitude.sum(dim=1).cpu().numpy() if cell_totals else None,
            node_set_scores=(gene_z @ members.to(gene_z.dtype)).cpu().numpy() if per_cell_sets else None,
            node_gene_zsums=gene_z.sum(dim=0).cpu().numpy() if per_cell_sets else None,
            weighted_gene_sums=(
                torch.einsum(
                    "cn,cng->ng", torch.as_tensor(node_weights[idx], dtype=magnitude.dtype, device=device), magnitude
                )
                .cpu()
                .numpy()
                if node_weights is not None
                else None
            ),
        )
