"""Forward passes over all cells in batches (no gradients)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm import tqdm

from .autoencoder import Autoencoder
from .training import batches, dense_rows


@torch.no_grad()
def embed(module: Autoencoder, counts, *, batch_size: int = 1024, device: torch.device | str = "cpu") -> np.ndarray:
    """Representation of every cell, cells x nodes (float32)."""
    device = torch.device(device)
    module.to(device).eval()
    out = np.empty((counts.shape[0], module.n_latent), dtype=np.float32)
    for rows in batches(counts.shape[0], batch_size):
        x = module.prepare_input(dense_rows(counts, rows, device))
        out[rows] = module.encode(x).cpu().numpy()
    return out


@torch.no_grad()
def input_means(
    module: Autoencoder, counts, *, batch_size: int = 1024, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Mean encoder input (log1p of library-normalised counts) of every gene over the cells with counts."""
    device = torch.device(device)
    total = torch.zeros(counts.shape[1], dtype=torch.float64, device=device)
    n_cells = 0
    for rows in batches(counts.shape[0], batch_size):
        raw = dense_rows(counts, rows, device)
        n_cells += int((raw.sum(dim=1) > 0).sum())
        total += module.prepare_input(raw).sum(dim=0, dtype=torch.float64)  # cells without counts add 0
        del raw  # not held while the next batch is read
    return (total / max(n_cells, 1)).cpu().numpy()


@torch.no_grad()
def weighted_input_sums(
    module: Autoencoder,
    counts,
    weights: np.ndarray,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """One pass over all cells: sums the encoder input per gene, its squares, and ``weights.T @ input``.

    ``weights`` is cells x k (e.g. each node's active cells); ``weighted`` is k x genes. Sums are
    float64 so that means and variances of millions of cells stay exact enough.
    """
    device = torch.device(device)
    n_genes = counts.shape[1]
    total = torch.zeros(n_genes, dtype=torch.float64, device=device)
    squares = torch.zeros_like(total)
    weighted = torch.zeros(weights.shape[1], n_genes, dtype=torch.float64, device=device)
    chunks = list(batches(counts.shape[0], batch_size))
    for rows in tqdm(chunks, desc="expression in active cells", unit="batch", disable=not progress):
        x = module.prepare_input(dense_rows(counts, rows, device)).double()
        total += x.sum(dim=0)
        squares += (x * x).sum(dim=0)
        weighted += torch.as_tensor(weights[rows], dtype=torch.float64, device=device).T @ x
    return {"sum": total.cpu().numpy(), "squares": squares.cpu().numpy(), "weighted": weighted.cpu().numpy()}


@torch.no_grad()
def reconstruction_quality(
    module: Autoencoder, counts, rows: np.ndarray, *, batch_size: int = 1024, device: torch.device | str = "cpu"
) -> dict[str, np.ndarray]:
    """How well the model reconstructs the cells ``rows`` (held out from training).

    Returns per gene ``gene_correlation`` (Pearson, over cells, of observed vs reconstructed
    log1p-normalised expression) and ``gene_deviance_explained`` (Poisson deviance of the
    reconstruction relative to a null that gives each cell the gene's average share of its
    library); per cell ``cell_correlation`` (over genes). NaN where a gene or cell is constant.
    Two streamed passes over ``rows``: sums only, never all cells at once.
    """
    device = torch.device(device)
    module = copy.deepcopy(module).double().to(device).eval()  # float64 sums; the caller's model is untouched
    gene_totals = torch.zeros(counts.shape[1], dtype=torch.float64, device=device)
    for batch in batches(len(rows), batch_size):
        gene_totals += dense_rows(counts, rows[batch], device).double().sum(0)
    share = gene_totals / gene_totals.sum().clamp(min=1e-12)
    moments = torch.zeros(5, counts.shape[1], dtype=torch.float64, device=device)  # sum x, y, x2, y2, xy
    deviance = torch.zeros(2, counts.shape[1], dtype=torch.float64, device=device)  # model, null
    cell_corr = []
    for batch in batches(len(rows), batch_size):
        observed = dense_rows(counts, rows[batch], device).double()
        expected = module.expected_counts(observed).clamp(min=1e-12)
        baseline = (observed.sum(1, keepdim=True) * share).clamp(min=1e-12)
        x, y = module.prepare_input(observed), module.prepare_input(expected)
        moments += torch.stack([x.sum(0), y.sum(0), (x * x).sum(0), (y * y).sum(0), (x * y).sum(0)])
        deviance += torch.stack(
            [_poisson_deviance(observed, expected).sum(0), _poisson_deviance(observed, baseline).sum(0)]
        )
        cell_corr.append(_row_correlation(x, y))
    n = len(rows)
    sx, sy, sxx, syy, sxy = moments / n
    gene_corr = (sxy - sx * sy) / torch.sqrt((sxx - sx**2) * (syy - sy**2))
    return {
        "gene_correlation": gene_corr.cpu().numpy(),
        # A gene with no counts in these cells has nothing to explain: NaN, not -inf.
        "gene_deviance_explained": torch.where(gene_totals > 0, 1 - deviance[0] / deviance[1], torch.nan).cpu().numpy(),
        "cell_correlation": torch.cat(cell_corr).cpu().numpy(),
    }


def _poisson_deviance(observed: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    ratio = torch.where(observed > 0, observed * torch.log(observed / expected), torch.zeros_like(observed))
    return 2 * (ratio - (observed - expected))


def _row_correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    return (xc * yc).sum(1) / torch.sqrt((xc * xc).sum(1) * (yc * yc).sum(1))
