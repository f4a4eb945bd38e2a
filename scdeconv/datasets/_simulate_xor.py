"""The XOR toy of Kinalis et al. 2019's revision: binary factors, marker modules, some of them XOR."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import inject_docs
from .._logging import logger
from . import _simulate as sim

__all__ = ["simulate_xor"]


@inject_docs
def simulate_xor(
    n_cells: int = 1000,
    *,
    n_genes: int = 200,
    n_factors: int = 4,
    n_modules: int = 6,
    n_xor_modules: int = 2,
    module_size: int = 20,
    fold_change: float | tuple[float, float] = 4.0,
    factor_prob: float = 0.5,
    library_median: float = 2000.0,
    library_sigma: float = 0.4,
    dispersion: float = 0.2,
    gene_mean_sigma: float = 1.0,
    seed: int = 0,
) -> AnnData:
    """Simulate hidden binary factors with planted marker-gene modules, some expressed as an XOR.

    Each cell carries ``n_factors`` hidden binary factors ``F0, F1, ...`` (each on with
    probability ``factor_prob``, independently). Each module is a block of ``module_size`` marker
    genes whose mean is multiplied by ``fold_change`` (or by a per-gene fold change in a given
    range) in the cells where its rule holds. The
    first ``n_modules - n_xor_modules`` modules follow one factor each (module ``i`` follows
    ``F{i mod n_factors}``); the last ``n_xor_modules`` follow the XOR of two factors (XOR module
    ``j`` follows ``F{2j mod n_factors} xor F{(2j + 1) mod n_factors}``), on where exactly one of
    the two is on, which no single linear direction of the factors explains. The remaining genes
    are background. Counts are negative binomial with log-normal library sizes.

    Recovery is scored as in the paper: the share of a module's marker genes among a node's top
    20 saliency genes, hence 20 markers per module by default.

    Parameters
    ----------
    n_cells
        Number of cells.
    n_genes
        Number of genes, at least ``n_modules * module_size``.
    n_factors
        Hidden binary factors (at least 2 when there are XOR modules).
    n_modules
        Modules in all, XOR ones included.
    n_xor_modules
        Modules that follow the XOR of two factors.
    module_size
        Marker genes per module.
    fold_change
        Fold change of a module's genes where its rule holds; a ``(low, high)`` pair draws each
        marker gene's fold change log-uniformly in that range (e.g. ``(1.5, 2.5)``, a weak
        programme).
    factor_prob
        Probability that a factor is on in a cell.
    {counts_model}

    Returns
    -------
    AnnData with raw counts in ``X`` (int32 CSR), genes ``Mod0_01``, ... (markers) and
    ``Bg001``, ... (background), and the truth:

    ``obs["factor_<k>"]``
        The hidden factors (bool).
    ``obs["module_<i>"]``
        Whether module ``i``'s rule holds in the cell (bool).
    ``obs["library_size"]``
        Expected UMIs of the cell.
    ``var["module"]``
        Module of a marker gene, ``""`` for background.
    ``var["fold_change"]``
        Fold change of each gene where its module's rule holds (1 for background).
    ``uns["simulation"]``
        ``modules`` (table indexed by module: ``rule`` such as ``"F0 xor F1"``, ``kind``
        ``"single"``/``"xor"``, ``factor_a``, ``factor_b`` (-1 for single), ``n_genes``,
        ``cell_fraction``), ``module_genes`` (module -> marker genes), ``xor_modules`` (names of
        the XOR modules) and ``params``.

    Examples
    --------
    >>> import scdeconv as sd
    >>> adata = sd.datasets.simulate_xor(500, seed=0)
    >>> adata.uns["simulation"]["modules"]["rule"].tolist()
    ['F0', 'F1', 'F2', 'F3', 'F0 xor F1', 'F2 xor F3']
    """
    n_cells = sim.check_int("n_cells", n_cells, minimum=10, hint="Simulate more cells.")
    n_modules = sim.check_int("n_modules", n_modules, minimum=1)
    n_xor_modules = sim.check_int("n_xor_modules", n_xor_modules, minimum=0)
    if n_xor_modules > n_modules:
        raise ValueError(f"n_xor_modules={n_xor_modules} exceeds n_modules={n_modules}; raise n_modules.")
    n_factors = sim.check_int(
        "n_factors", n_factors, minimum=2 if n_xor_modules else 1, hint="An XOR module needs two factors."
    )
    module_size = sim.check_int("module_size", module_size, minimum=1)
    n_genes = sim.check_int(
        "n_genes",
        n_genes,
        minimum=n_modules * module_size,
        hint=f"The {n_modules} modules of {module_size} genes need that many; lower module_size or n_modules.",
    )
    fold_low, fold_high = sim.check_fold_range("fold_change", fold_change)
    factor_prob = sim.check_float("factor_prob", factor_prob, low=0.0, high=1.0, low_open=True, high_open=True)
    library_median = sim.check_float("library_median", library_median, low=1.0)
    library_sigma = sim.check_float("library_sigma", library_sigma, low=0.0)
    dispersion = sim.check_float("dispersion", dispersion, low=0.0, low_open=True)
    gene_mean_sigma = sim.check_float("gene_mean_sigma", gene_mean_sigma, low=0.0)
    seed = sim.check_seed(seed)
    rng = np.random.default_rng(seed)

    factors = rng.random((n_cells, n_factors)) < factor_prob
    modules = _module_table(n_modules, n_xor_modules, n_factors, module_size)
    on = _module_states(factors, modules)

    markers = [g for i in range(n_modules) for g in sim.numbered_names(f"Mod{i}_", module_size)]
    var_names = markers + sim.numbered_names("Bg", n_genes - len(markers), width=3)
    module_of_gene = np.repeat(modules.index.to_numpy(), module_size).tolist() + [""] * (n_genes - len(markers))

    base = sim.baseline_log_shares(rng, n_genes, sigma=gene_mean_sigma)
    phi = sim.dispersions(rng, n_genes, median=dispersion)
    library = sim.library_sizes(rng, n_cells, median=library_median, sigma=library_sigma)
    gene_fold = np.ones(n_genes)
    if fold_low == fold_high:  # one fold change: no draw, so a seed gives the data it always gave
        gene_fold[: len(markers)] = fold_low
    else:
        gene_fold[: len(markers)] = sim.range_fold_changes(rng, len(markers), fold_low, fold_high)
    log_rates = np.repeat(base[None, :].astype(np.float32), n_cells, axis=0)
    for i in range(n_modules):
        cols = slice(i * module_size, (i + 1) * module_size)
        log_rates[:, cols] += np.log(gene_fold[cols]) * on[:, [i]]
    X = sim.sample_counts(rng, log_rates, library, phi)

    obs = pd.DataFrame(index=pd.Index([f"cell_{i}" for i in range(n_cells)]))
    for k in range(n_factors):
        obs[f"factor_{k}"] = factors[:, k]
    for i, name in enumerate(modules.index):
        obs[name] = on[:, i]
    obs["library_size"] = library
    var = pd.DataFrame({"module": pd.Categorical(module_of_gene), "fold_change": gene_fold}, index=pd.Index(var_names))
    modules["cell_fraction"] = on.mean(axis=0)

    params = {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "n_factors": n_factors,
        "n_modules": n_modules,
        "n_xor_modules": n_xor_modules,
        "module_size": module_size,
        "fold_change": fold_low if fold_low == fold_high else np.array([fold_low, fold_high]),
        "factor_prob": factor_prob,
        "library_median": library_median,
        "library_sigma": library_sigma,
        "dispersion": dispersion,
        "gene_mean_sigma": gene_mean_sigma,
        "seed": seed,
    }
    adata = AnnData(X=X, obs=obs, var=var)
    adata.uns["simulation"] = {
        "modules": modules,
        "module_genes": {
            name: sim.as_str_array(np.asarray(var_names)[var["module"].to_numpy() == name]) for name in modules.index
        },
        "xor_modules": sim.as_str_array(modules.index[modules["kind"] == "xor"]),
        "params": params,
    }
    logger.info(
        "Simulated %d cells x %d genes, %d modules (%d XOR); truth in .uns['simulation'].",
        n_cells,
        n_genes,
        n_modules,
        n_xor_modules,
    )
    return adata


def _module_table(n_modules: int, n_xor_modules: int, n_factors: int, module_size: int) -> pd.DataFrame:
    """Which factor(s) each module follows: singles first, then XOR pairs."""
    rows = []
    for i in range(n_modules - n_xor_modules):
        rows.append((f"F{i % n_factors}", "single", i % n_factors, -1))
    for j in range(n_xor_modules):
        a, b = (2 * j) % n_factors, (2 * j + 1) % n_factors
        rows.append((f"F{a} xor F{b}", "xor", a, b))
    table = pd.DataFrame(rows, columns=["rule", "kind", "factor_a", "factor_b"])
    table.index = pd.Index([f"module_{i}" for i in range(n_modules)], name="module")
    table["n_genes"] = module_size
    return table


def _module_states(factors: np.ndarray, modules: pd.DataFrame) -> np.ndarray:
    """Cells x modules, True where the module's rule holds."""
    a = factors[:, modules["factor_a"].to_numpy()]
    b_idx = modules["factor_b"].to_numpy()
    b = factors[:, np.maximum(b_idx, 0)]
    return np.where(b_idx >= 0, a ^ b, a)
