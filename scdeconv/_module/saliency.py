"""Per-cell attributions of representation nodes to input genes, streamed over cells into reducers.

For this architecture (Linear + Softplus layers) the Jacobian of every node with respect to the
input is a few matrix products, so all nodes of a batch of cells are attributed at once, exactly,
without autograd. :func:`stream_attributions` is the one driver: it reads the cells batch by
batch, computes what the batch's reducers (:mod:`scdeconv._module.reducers`) ask for, and hands
them a :class:`CellBatch`; nothing of size cells x nodes x genes is held beyond one batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .._choices import Method, check_choice, choices
from .autoencoder import Autoencoder
from .config import StreamOptions
from .training import batches, dense_rows, resolve_device

METHODS: tuple[str, ...] = choices(Method)

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
    of cells x nodes x genes), and the median is a selection, not a sort.
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
    module: Autoencoder,
    x: torch.Tensor,
    *,
    guided: bool,
    columns: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
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
    out
        Contiguous (cells, nodes, genes) tensor the last, largest product is written into (a
        buffer reused over batches: no fresh allocation of the block per batch).
    """
    grad = first_layer_gradient(module, x, guided=guided)
    weight = module.encoder[0].weight
    if len(module.encoder) > 1:
        if columns is not None:
            weight = weight.index_select(1, columns)
        if out is not None:  # through the first Linear layer, to its input, as one matrix product
            cells, nodes = grad.shape[:2]
            torch.mm(grad.reshape(cells * nodes, -1), weight, out=out.view(cells * nodes, -1))
            return out
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
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Signed attribution of every node to every input gene, (cells, nodes, genes).

    ``"guided"`` and ``"gradient"`` are the (guided) Jacobian; ``"grad_x_input"`` multiplies the
    gradient by the input; ``"integrated_gradients"`` averages gradients along the straight path
    from an all-zero input (midpoint rule, ``n_steps`` points) and multiplies by the input.
    ``out``: a buffer for the result, as in :func:`jacobian` (not used by integrated gradients).
    """
    check_choice("method", method, Method)
    if method == "guided":
        return jacobian(module, x, guided=True, columns=columns, out=out)
    if method == "gradient":
        return jacobian(module, x, guided=False, columns=columns, out=out)
    x_cols = x if columns is None else x.index_select(1, columns)
    # In place: no second cells x nodes x genes buffer (allocating one costs as much as the product).
    if method == "grad_x_input":
        return jacobian(module, x, guided=False, columns=columns, out=out).mul_(x_cols.unsqueeze(1))
    total = None  # integrated gradients
    for alpha in (np.arange(n_steps) + 0.5) / n_steps:
        step = jacobian(module, x * float(alpha), guided=False, columns=columns)
        total = step if total is None else total.add_(step)
    return total.mul_(x_cols.unsqueeze(1) / n_steps)


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


def cell_gene_zscores(values: torch.Tensor, bins: torch.Tensor, *, by_bin: bool = False) -> torch.Tensor:
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
    by_bin
        Return the genes in the order of ``torch.argsort(bins, stable=True)`` (bin by bin), which
        saves putting them back when the caller can take them so.
    """
    # Rows (cell, node) x genes with each bin's genes side by side: a bin is then a view, and
    # columns are gathered once, in 2-D (gathering along the last of three dimensions is slow).
    flat = values.reshape(-1, values.shape[2])
    order = torch.argsort(bins, stable=True)
    grouped = flat.index_select(1, order)
    # A spread below 1e-7 of the row's largest value (or near float underflow, as in dead nodes)
    # is rounding noise: its genes score 0 rather than overflowing 1 / spread to inf.
    floor = (flat.amax(dim=1, keepdim=True) * 1e-7).clamp(min=torch.finfo(values.dtype).tiny * 1e8)
    start = 0
    for size in torch.bincount(bins).tolist():
        if size == 0:
            continue
        deviation = grouped.narrow(1, start, size)
        start += size
        deviation -= _lower_row_median(deviation)
        absolute = deviation.abs()
        spread = _lower_row_median(absolute).mul_(1.4826)
        spread = torch.where(spread > 0, spread, absolute.mean(dim=1, keepdim=True) * 1.2533)
        scale = torch.where(spread > floor, 1 / spread.clamp(min=floor), torch.zeros_like(spread))
        deviation.mul_(scale)
    if not by_bin:
        grouped = grouped.index_select(1, torch.argsort(order))  # back to the genes' order
    return grouped.view_as(values)


def _lower_row_median(rows: torch.Tensor) -> torch.Tensor:
    """Each row's lower median (``torch.median``'s: the smaller middle value of an even count), as a column.

    On the CPU numpy's partition is faster than ``torch.median`` along a dimension (benchmarks/README.md).
    """
    k = (rows.shape[1] - 1) // 2
    if rows.device.type != "cpu":
        return rows.median(dim=1, keepdim=True).values
    return torch.from_numpy(np.partition(rows.numpy(), k, axis=1)[:, k : k + 1].copy())


def set_membership(set_columns: Sequence[np.ndarray], n_genes: int) -> np.ndarray:
    """Genes x sets matrix with ``1 / sqrt(|S|)`` for members (the Stouffer weights)."""
    matrix = np.zeros((n_genes, len(set_columns)))
    for s, cols in enumerate(set_columns):
        matrix[np.asarray(cols), s] = 1 / np.sqrt(len(cols))
    return matrix


def default_chunk_size(n_nodes: int, n_genes: int) -> int:
    """Cells per batch so that one attribution block stays near 64 MB."""
    return int(max(1, min(4096, _BLOCK_ELEMENTS // max(1, n_nodes * n_genes))))


class Workspace:
    """One flat buffer that every batch's (cells, nodes, genes) block is written into, grown when needed."""

    def __init__(self):
        self._flat: torch.Tensor | None = None

    def block(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A contiguous tensor of ``shape`` with the dtype and device of ``like``, its values undefined."""
        size = int(np.prod(shape))
        flat = self._flat
        if flat is None or flat.numel() < size or flat.dtype != like.dtype or flat.device != like.device:
            flat = self._flat = torch.empty(size, dtype=like.dtype, device=like.device)
        return flat[:size].view(shape)


@dataclass
class CellBatch:
    """One batch of cells as reducers see it: the input, group labels, and attributions computed on demand.

    With a ``workspace``, the batch's attribution block is written into its buffer: reducers must
    not keep the block (nor views of it) beyond the batch.
    """

    module: Autoencoder
    method: str
    x: torch.Tensor  # prepared encoder input, cells x genes
    labels: np.ndarray  # group of each cell, 0 .. n_groups-1
    positions: np.ndarray  # each cell's row in the streamed matrix (for per-cell results)
    workspace: Workspace | None = field(default=None, repr=False)
    _magnitude: torch.Tensor | None = field(default=None, repr=False)

    def _block(self) -> torch.Tensor | None:
        if self.workspace is None or self.method == "integrated_gradients":
            return None
        shape = (self.x.shape[0], self.module.n_latent, self.x.shape[1])
        return self.workspace.block(shape, self.x)

    @property
    def magnitude(self) -> torch.Tensor:
        """|attribution| of every node to every gene, (cells, nodes, genes); computed once per batch."""
        if self._magnitude is None:
            self._magnitude = attribution(self.module, self.x, method=self.method, out=self._block()).abs_()
        return self._magnitude

    @property
    def has_magnitude(self) -> bool:
        return self._magnitude is not None

    def node_totals(self) -> torch.Tensor:
        """|attribution| of every gene summed over nodes, (cells, genes).

        From the full block when a reducer asked for it; otherwise, for ``"grad_x_input"``, as
        ``x * sum_nodes |gradient|`` (the input is non-negative), with no product of the whole
        block by the input. The sum over nodes is a batched product with a vector of ones (a
        reduction over the block's middle axis is several times slower).
        """
        from_gradient = self._magnitude is None and self.method == "grad_x_input"
        if from_gradient:
            block = jacobian(self.module, self.x, guided=False, out=self._block()).abs_()
        else:
            block = self.magnitude
        totals = torch.bmm(block.new_ones(block.shape[0], 1, block.shape[1]), block).squeeze(1)
        return totals.mul_(self.x) if from_gradient else totals

    def groups(self) -> Iterator[tuple[int, slice | np.ndarray]]:
        """``(group, rows)`` for each group present in the batch; ``rows`` is a slice when there is only one."""
        present = np.unique(self.labels)
        if len(present) == 1:
            yield int(present[0]), slice(None)
            return
        for group in present:
            yield int(group), np.flatnonzero(self.labels == group)

    def group_sums(self, values: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """The groups present and, per group, the sum of ``values`` (cells, ...) over its cells, by matrix products.

        With ``weights`` (cells x nodes) and ``values`` (cells, nodes, genes), each node's sum is
        weighted by its own column. Sums run over the batch's cells (a few hundred) in the
        values' precision, float32 in practice: gathering each group's rows first cost several times
        more (benchmarks/README.md).
        """
        present, inverse = np.unique(self.labels, return_inverse=True)
        n_cells = values.shape[0]
        indicator = values.new_zeros((len(present), n_cells))
        indicator[torch.as_tensor(inverse, device=values.device), torch.arange(n_cells, device=values.device)] = 1
        if weights is None:
            return present, (indicator @ values.reshape(n_cells, -1)).view(len(present), *values.shape[1:])
        per_node = (indicator[:, :, None] * weights[None]).permute(2, 0, 1)  # nodes, groups, cells
        return present, torch.bmm(per_node, values.transpose(0, 1)).transpose(0, 1)

    def set_medians(self, set_columns: Sequence[np.ndarray]) -> np.ndarray:
        """Per-cell median |attribution| over each set's genes, (cells, nodes, sets) float64."""
        device = self.x.device
        if self.has_magnitude:
            cols = [torch.as_tensor(c, dtype=torch.long, device=device) for c in set_columns]
            return set_medians(self._magnitude, cols).cpu().numpy().astype(np.float64)
        if device.type == "cpu" and self.method in _BY_SET and len(self.module.encoder) > 1:
            cols = [torch.as_tensor(c, dtype=torch.long) for c in set_columns]
            return set_medians_by_set(self.module, self.x, cols, method=self.method)
        # Attribute only the genes that belong to some set: the largest product shrinks accordingly.
        union = np.unique(np.concatenate(list(set_columns)))
        local = [torch.as_tensor(np.searchsorted(union, c), dtype=torch.long, device=device) for c in set_columns]
        part = attribution(self.module, self.x, method=self.method, columns=torch.as_tensor(union, device=device))
        return set_medians(part.abs_(), local).cpu().numpy().astype(np.float64)


@torch.no_grad()
def stream_attributions(
    module: Autoencoder,
    counts,
    reducers: Sequence,
    *,
    labels: np.ndarray,
    method: str = "grad_x_input",
    options: StreamOptions | None = None,
) -> np.ndarray:
    """Feed the attributions of every labelled cell with counts to ``reducers``, batch by batch.

    Returns the number of cells fed per group. Cells without any count are skipped (their input
    carries nothing to attribute), as are cells labelled ``-1``.

    Parameters
    ----------
    counts
        Cells x genes raw counts (scipy sparse, numpy, or an on-disk reader with ``windows``),
        columns in the model's gene order.
    reducers
        Objects with ``update(batch)`` (a :class:`CellBatch`), ``needs_magnitude`` (whether they
        read the full attribution) and ``block_width(n_genes)`` (genes their attributions span).
    labels
        Group of every row of ``counts`` in ``0 .. n_groups-1``; rows labelled ``-1`` are skipped.
    method
        Attribution method (see :func:`attribution`).
    """
    check_choice("method", method, Method)
    options = options or StreamOptions()
    device = resolve_device(options.device)
    module.to(device).eval()
    labels = np.asarray(labels)
    rows = np.flatnonzero(labels >= 0)
    full = any(r.needs_magnitude for r in reducers)
    width = max(r.block_width(counts.shape[1]) for r in reducers)
    size = options.batch_size or default_chunk_size(module.n_latent, width)
    dtype = next(module.parameters()).dtype  # float64 for a reference run
    # In memory: one window holding every cell. On disk: contiguous windows of chunk_size cells.
    windows = counts.windows(rows) if hasattr(counts, "windows") else [(rows, None)]
    from tqdm import tqdm

    from .compute import cpu_compute

    fed = np.zeros(int(labels.max()) + 1 if len(rows) else 0, dtype=np.int64)
    workspace = Workspace()  # one attribution block for all batches (reducers reduce it within the batch)
    with (
        tqdm(total=len(rows), desc="saliency", unit="cell", disable=not options.progress) as bar,
        cpu_compute(device, options.n_threads),
    ):
        for window, block in windows:
            for index in batches(len(window), size):
                positions = window[index]
                source, local = (counts, positions) if block is None else (block, index)
                raw = dense_rows(source, local, device).to(dtype)
                bar.update(len(positions))
                with_counts = (raw.sum(dim=1) > 0).cpu().numpy()
                if not with_counts.all():
                    raw, positions = raw[torch.from_numpy(with_counts).to(device)], positions[with_counts]
                    if len(positions) == 0:
                        continue
                batch = CellBatch(module, method, module.prepare_input(raw), labels[positions], positions, workspace)
                del raw  # not held while the reducers run or the next batch is read
                if full:
                    batch.magnitude  # noqa: B018 -- computed once, before the reducers share it
                for reducer in reducers:
                    reducer.update(batch)
                fed += np.bincount(batch.labels, minlength=len(fed))
    return fed
