"""Shared machinery of the simulators: argument checks, gene names and negative-binomial counts.

Counts follow the usual droplet model: cell ``c`` draws a library size ``L_c`` (log-normal), gene
``g`` a baseline share ``p_g`` (log-normal, so heavy-tailed) and a dispersion ``phi_g``; programs
and continuous factors shift the log-mean of their genes; the shares are renormalised per cell and
counts are Gamma-Poisson (negative binomial) with mean ``L_c * p_cg`` and variance
``mu + phi_g * mu**2``. Dropout is not added on top: zeros come from low means, as in real UMI data.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

# Per-cell activity of an active program: 1.5 * Beta(4, 2) has mean 1 (the nominal fold change)
# and spreads over (0, 1.5), so activity is graded within a group rather than a step.
ACTIVITY_BETA = (4.0, 2.0)
ACTIVITY_SCALE = 1.5
# Dispersion spread across genes (sd of log phi) and the range it is clipped to.
DISPERSION_LOG_SD = 0.5
DISPERSION_RANGE = (0.01, 5.0)


def check_int(name: str, value: object, *, minimum: int, hint: str = "") -> int:
    """Return ``value`` as int, or raise a ValueError/TypeError that says what to pass."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} ({value!r}).")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.{' ' + hint if hint else ''}")
    return int(value)


def check_float(
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as float, or raise if it is not a finite number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, not {value!r}.")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open or math.isinf(high) else "]"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}; got {value}. Pass a value in that range.")
    return float(value)


def check_seed(seed: object) -> int:
    """Seeds are non-negative integers so that they can be recorded in ``uns`` and reused."""
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be a non-negative integer, not {type(seed).__name__} ({seed!r}).")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}. Pass e.g. seed=0.")
    return int(seed)


def numbered_names(prefix: str, n: int, *, width: int = 2) -> list[str]:
    """``prefix`` followed by 1-based zero-padded numbers: ``Gene0001, Gene0002, ...``."""
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def split_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` into integer parts proportional to ``weights`` (largest remainder)."""
    exact = np.asarray(weights, dtype=float) / np.sum(weights) * n
    parts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - parts), kind="stable")
    parts[order[: n - parts.sum()]] += 1
    return parts


def library_sizes(rng: np.random.Generator, n_cells: int, *, median: float, sigma: float) -> np.ndarray:
    """Log-normal expected library sizes (UMIs per cell)."""
    return median * np.exp(sigma * rng.standard_normal(n_cells))


def baseline_log_shares(rng: np.random.Generator, n_genes: int, *, sigma: float) -> np.ndarray:
    """Gene-wise log baseline expression; log-normal means give the heavy right tail of real data."""
    return sigma * rng.standard_normal(n_genes)


def dispersions(rng: np.random.Generator, n_genes: int, *, median: float) -> np.ndarray:
    """Gene-wise negative-binomial dispersion ``phi`` (variance ``mu + phi * mu**2``)."""
    phi = median * np.exp(DISPERSION_LOG_SD * rng.standard_normal(n_genes))
    return np.clip(phi, *DISPERSION_RANGE)


def activity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Graded activity of a program in the cells where it is on (mean 1)."""
    return ACTIVITY_SCALE * rng.beta(*ACTIVITY_BETA, size=n)


def fold_changes(rng: np.random.Generator, n: int, *, fold_change: float) -> np.ndarray:
    """Per-gene fold changes spread around ``fold_change`` on the log scale (``fc ** U(0.5, 1.5)``)."""
    return fold_change ** rng.uniform(0.5, 1.5, size=n)


def check_fold_range(name: str, value: object) -> tuple[float, float]:
    """A fold change or a ``(low, high)`` range of them, all above 1, as ``(low, high)``."""
    if isinstance(value, Real) and not isinstance(value, bool):
        value = check_float(name, value, low=1.0, low_open=True)
        return value, value
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be a number or a (low, high) pair of numbers, not {value!r}.")
    low, high = (check_float(name, v, low=1.0, low_open=True) for v in value)
    if low > high:
        raise ValueError(f"{name}=({low}, {high}) has low > high; pass (low, high) with low <= high.")
    return low, high


def range_fold_changes(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """Per-gene fold changes log-uniform in ``[low, high]``; one uniform draw per gene, as :func:`fold_changes`."""
    return np.exp(np.log(low) + rng.uniform(0.0, 1.0, size=n) * (np.log(high) - np.log(low)))


def sample_counts(
    rng: np.random.Generator,
    log_rates: np.ndarray,
    library: np.ndarray,
    phi: np.ndarray,
    *,
    chunk_size: int = 1024,
) -> sp.csr_matrix:
    """Negative-binomial counts from unnormalised log rates (cells x genes), as int32 CSR.

    Rates are renormalised per cell so that ``library`` is each cell's expected total. Cells are
    drawn in chunks so that no extra cells x genes temporaries of the full size are held.
    """
    theta = 1.0 / phi
    chunks = []
    for start in range(0, log_rates.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        mu = np.exp(log_rates[rows] - log_rates[rows].max(axis=1, keepdims=True))
        mu *= (library[rows] / mu.sum(axis=1))[:, None]
        # Gamma-Poisson mixture: lambda = mu * Gamma(theta, 1 / theta) has mean mu, variance phi * mu^2.
        lam = rng.standard_gamma(np.broadcast_to(theta, mu.shape))
        lam *= mu / theta
        chunks.append(sp.csr_matrix(rng.poisson(lam).astype(np.int32)))
    return sp.vstack(chunks, format="csr")


def as_str_array(values) -> np.ndarray:
    """Plain unicode array, the form ``write_h5ad`` stores without fuss (also when empty)."""
    return np.asarray(list(values), dtype=str)
