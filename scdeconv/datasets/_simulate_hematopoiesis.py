"""Simulated myeloid progenitors with known programs: Hallmark sets, novel blocks and an XOR block."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._choices import ConditionDesign, check_choice
from .._docs import inject_docs
from .._logging import logger
from ..genesets import hallmark
from . import _simulate as sim

__all__ = ["simulate_hematopoiesis"]

# Lineage-like groups shaped like Paul15's coarse clusters, with their share of cells.
GROUP_WEIGHTS: dict[str, float] = {"Ery": 0.30, "Mk": 0.10, "GMP": 0.15, "Baso": 0.13, "Mo": 0.20, "Neu": 0.12}

# Hallmark sets each group activates (biologically sensible for that lineage).
PLANTED_SETS: dict[str, tuple[str, ...]] = {
    "Ery": ("HALLMARK_HEME_METABOLISM", "HALLMARK_OXIDATIVE_PHOSPHORYLATION"),
    "Mk": ("HALLMARK_COAGULATION", "HALLMARK_TGF_BETA_SIGNALING"),
    "GMP": ("HALLMARK_E2F_TARGETS", "HALLMARK_G2M_CHECKPOINT"),
    "Baso": ("HALLMARK_IL2_STAT5_SIGNALING", "HALLMARK_PROTEIN_SECRETION"),
    "Mo": ("HALLMARK_INTERFERON_GAMMA_RESPONSE", "HALLMARK_INTERFERON_ALPHA_RESPONSE"),
    "Neu": ("HALLMARK_INFLAMMATORY_RESPONSE", "HALLMARK_TNFA_SIGNALING_VIA_NFKB"),
}

# Programs outside Hallmark: name -> (group whose cells may carry it, or "all"; share of those cells).
NOVEL_PROGRAMS: dict[str, tuple[str, float]] = {
    "ProgA": ("Ery", 0.5),  # a sub-state of one lineage
    "ProgB": ("Neu", 1.0),  # a lineage marker block that no Hallmark set describes
    "ProgC": ("all", 0.25),  # a lineage-independent state (e.g. a stress response)
}

# Never planted and their genes never perturbed: clean negatives. Sets without relevance to myeloid
# progenitors and little overlap with the planted ones (10-20 % of their genes).
NEGATIVE_SETS: tuple[str, ...] = (
    "HALLMARK_PANCREAS_BETA_CELLS",
    "HALLMARK_KRAS_SIGNALING_DN",
    "HALLMARK_MYOGENESIS",
    "HALLMARK_SPERMATOGENESIS",
    "HALLMARK_APICAL_JUNCTION",
    "HALLMARK_APICAL_SURFACE",
    "HALLMARK_BILE_ACID_METABOLISM",
    "HALLMARK_PEROXISOME",
    "HALLMARK_ESTROGEN_RESPONSE_EARLY",
    "HALLMARK_HEDGEHOG_SIGNALING",
    "HALLMARK_WNT_BETA_CATENIN_SIGNALING",
)

MIN_SET_GENES = 10  # planted sets keep at least this many genes in the panel
PLANTED_SHARE = 0.66  # share of the Hallmark budget planted sets may take when not all their genes fit
NEGATIVE_SHARE = 0.6  # share of the rest given to the negative sets
SMOOTH_GENE_SHARE = 0.2  # share of background genes each continuous factor loads on
SMOOTH_LOADING_SD = 0.3
GENE_KINDS = ["hallmark", "novel", "xor", "filler"]
MARKER_QUANTILES_Z = (0.0, 1.645)  # novel/XOR markers get baselines between the 50th and 95th percentile
DONOR_STREAM = 1  # donors draw from their own generator (seed, DONOR_STREAM): the rest stays as without donors


@inject_docs
def simulate_hematopoiesis(
    n_cells: int = 2000,
    *,
    n_genes: int | None = 3000,
    fold_change: float = 3.0,
    set_fraction: float = 0.5,
    novel_size: int = 25,
    xor_size: int = 20,
    xor_marginal_size: int = 10,
    xor_prob: float = 0.5,
    xor_fold_change: float | tuple[float, float] | None = None,
    filler_fraction: float = 0.2,
    n_smooth_factors: int = 3,
    n_donors: int = 1,
    donor_effect: float = 0.0,
    condition_effect: float = 0.0,
    condition_programs: tuple[str, ...] = ("HALLMARK_INTERFERON_ALPHA_RESPONSE",),
    condition_design: ConditionDesign = "donors",
    library_median: float = 3000.0,
    library_sigma: float = 0.6,
    dispersion: float = 0.3,
    gene_mean_sigma: float = 1.4,
    seed: int = 0,
) -> AnnData:
    """Simulate mouse myeloid progenitors (Paul15-like) with planted, known gene programs.

    Counts are negative binomial with log-normal library sizes, heavy-tailed gene means and
    gene-wise dispersions; zeros arise from low means, as in droplet data. Genes are correlated
    through shared factors: each program scales a block of genes by a per-cell activity, and a
    few continuous factors load on background genes. Cells fall into six lineage-like groups in
    ``obs["group"]``; each group activates two MSigDB Hallmark sets (mouse symbols from
    :func:`scdeconv.genesets.hallmark`):

    ========  ==============================================================
    group     planted Hallmark sets
    ========  ==============================================================
    ``Ery``   HEME_METABOLISM, OXIDATIVE_PHOSPHORYLATION
    ``Mk``    COAGULATION, TGF_BETA_SIGNALING
    ``GMP``   E2F_TARGETS, G2M_CHECKPOINT (cycling progenitors)
    ``Baso``  IL2_STAT5_SIGNALING, PROTEIN_SECRETION
    ``Mo``    INTERFERON_GAMMA_RESPONSE, INTERFERON_ALPHA_RESPONSE
    ``Neu``   INFLAMMATORY_RESPONSE, TNFA_SIGNALING_VIA_NFKB
    ========  ==============================================================

    (set names carry the ``HALLMARK_`` prefix in the data). Group shares are 30, 10, 15, 13, 20
    and 12 %. A planted set perturbs a random ``set_fraction`` of its genes in the panel. Each
    perturbed gene belongs to exactly one program (a gene shared by sets of two groups goes to one
    of them), and genes of eleven **negative** sets (PANCREAS_BETA_CELLS, KRAS_SIGNALING_DN,
    MYOGENESIS, SPERMATOGENESIS, APICAL_JUNCTION, APICAL_SURFACE, BILE_ACID_METABOLISM,
    PEROXISOME, ESTROGEN_RESPONSE_EARLY, HEDGEHOG_SIGNALING, WNT_BETA_CATENIN_SIGNALING) are never
    perturbed, so those sets carry no signal. The other never-planted (**bystander**) sets share
    genes with planted ones and are partly perturbed: ``uns["simulation"]["gene_sets"]`` gives
    the exact share for every Hallmark set, and ``set_group_fraction`` the share per group.

    Outside Hallmark, three blocks of ``novel_size`` synthetic genes (``ProgA_01``, ...) mark
    ``ProgA`` (half of the Ery cells), ``ProgB`` (all Neu cells) and ``ProgC`` (a quarter of
    all cells, whatever their group). A nonlinear program uses two hidden binary factors ``A`` and
    ``B`` (each on in ``xor_prob`` of the cells, independent of the group): the ``XOR`` block
    (``Xor_01``, ...) is up in cells where exactly one of them is on; the ``XOR_A`` and ``XOR_B``
    blocks (``XorA_01``, ``XorB_01``, ...; ``xor_marginal_size`` genes each, 0 to leave them out)
    are up where ``A``, resp. ``B``, is on, so that the XOR state is a nonlinear function of what
    the other genes show. Marker genes of these blocks get baselines between the median and the
    95th percentile of gene means. The remaining genes are background: unperturbed Hallmark genes
    and synthetic fillers ``Gene0001``, ... Each of ``n_smooth_factors`` continuous factors loads
    on a random 20 % of the background genes, which makes them correlated too.

    Parameters
    ----------
    n_cells
        Number of cells.
    n_genes
        Number of genes: the novel and XOR blocks, ``filler_fraction`` of synthetic fillers and
        Hallmark genes for the rest. Hallmark genes come from the planted sets first (all of them
        when they fit in 66 % of the Hallmark budget, otherwise about as many from each set),
        then from the negative sets (60 % of what is left), then from any set. The default keeps
        every gene of the planted sets; ``n_genes >= 800`` keeps at least 25 genes of each
        planted set and 10 of each negative set. ``None`` keeps all ~4.1k mouse Hallmark genes.
    fold_change
        Nominal fold change of a program's genes on the mean at activity 1. Each gene draws
        ``fold_change ** U(0.5, 1.5)``; each active cell an activity ``1.5 * Beta(4, 2)`` (mean 1),
        which multiplies the log fold change.
    set_fraction
        Share of a planted set's genes (present in the panel) that the set perturbs.
    novel_size
        Genes in each of the three novel (non-Hallmark) programs.
    xor_size
        Genes of the XOR block.
    xor_marginal_size
        Genes of each of the ``XOR_A`` and ``XOR_B`` blocks; 0 leaves the factors unmarked.
    xor_prob
        Probability that each hidden factor ``A``, ``B`` is on in a cell.
    xor_fold_change
        Fold changes of the ``XOR``, ``XOR_A`` and ``XOR_B`` genes: ``None`` (default) draws them as
        every programme's (around ``fold_change``); a number or a ``(low, high)`` pair draws each
        gene's log-uniformly in ``[low, high]`` (e.g. ``(1.5, 2.5)``: a weak nonlinear programme),
        times the cell's activity as for every programme.
    filler_fraction
        Share of genes that are synthetic fillers outside every gene set.
    n_smooth_factors
        Continuous per-cell factors (standard normal) loading on 20 % of background genes each.
    n_donors
        Donors the cells come from (each cell drawn uniformly); with 2 or more, ``obs["donor"]``
        (``donor_0``, ...) and ``obs["condition"]`` (see ``condition_design``). Cells of all
        groups come from every donor.
    donor_effect
        Standard deviation of each donor's log multiplier of each programme's activity
        (``exp(donor_effect * N(0, 1))`` per donor and programme): donors differ in how strongly
        they run every programme, as people do. ``0``: no donor effect.
    condition_effect
        Log multiplier of the activity of ``condition_programs`` in ``"stim"`` cells (a true
        difference between conditions); ``0``: none.
    condition_programs
        Programmes (names as in ``uns["simulation"]["program_genes"]``) that ``condition_effect``
        changes.
    condition_design
        ``"donors"``: odd donors are ``"stim"``, even ones ``"ctrl"`` (a case-control design,
        donors nested in conditions). ``"within_donors"``: half of each donor's cells, at random,
        are ``"stim"`` (each donor seen in both conditions, e.g. stimulated and control aliquots).
    {counts_model}

    Returns
    -------
    AnnData with raw counts in ``X`` (int32 CSR) and the truth:

    ``obs["group"]``
        Lineage-like group (categorical).
    ``obs["library_size"]``
        Expected UMIs of the cell (the realised total is ``X.sum(1)``).
    ``obs["activity_<program>"]``
        Activity of each program (0 where off): the planted Hallmark sets (by set name),
        ``ProgA``, ``ProgB``, ``ProgC``, ``XOR``, ``XOR_A``, ``XOR_B``.
    ``obs["xor_a"]``, ``obs["xor_b"]``, ``obs["xor"]``
        Hidden factors and ``xor_a != xor_b`` (bool).
    ``obs["smooth_<k>"]``
        Continuous factors, ``k = 1 .. n_smooth_factors``.
    ``obs["donor"]``, ``obs["condition"]``
        With ``n_donors >= 2``: each cell's donor and its condition.
    ``var["gene_kind"]``
        ``"hallmark"``, ``"novel"``, ``"xor"`` or ``"filler"``.
    ``var["program"]``
        Program perturbing the gene, ``""`` if none.
    ``var["baseline_mean"]``, ``var["dispersion"]``
        Expected count at the median library with no program on, and ``phi``.
    ``uns["simulation"]``
        ``planted_sets`` (group -> set names), ``program_genes`` (program -> perturbed genes),
        ``novel_programs`` (name -> genes), ``xor_genes``, ``xor_marginal_genes`` (``a``/``b`` ->
        genes), ``smooth_genes`` (``smooth_<k>`` -> genes), ``programs`` (table: kind, group,
        cell_fraction, n_genes), ``gene_sets`` (table over all 50 Hallmark sets: n_genes,
        n_present, planted_group, n_perturbed, frac_perturbed), ``set_group_fraction`` (sets x
        groups: share of the set's present genes perturbed by that group's programs),
        ``negative_sets`` (never planted, at least 10 genes present, at most 5 % perturbed),
        ``donor_effects`` (donors x programmes: each donor's multiplier of the programme's
        activity, without the condition's; with ``n_donors >= 2``) and ``params``.

    Examples
    --------
    >>> import scdeconv as sd
    >>> adata = sd.datasets.simulate_hematopoiesis(600, n_genes=800, seed=1)
    >>> adata.uns["simulation"]["planted_sets"]["Ery"]  # doctest: +SKIP
    array(['HALLMARK_HEME_METABOLISM', 'HALLMARK_OXIDATIVE_PHOSPHORYLATION'], dtype='<U34')
    """
    params = {
        "n_cells": sim.check_int("n_cells", n_cells, minimum=len(GROUP_WEIGHTS) * 5, hint="Simulate more cells."),
        "n_genes": -1,  # the panel's size, set below
        "n_genes_requested": -1 if n_genes is None else sim.check_int("n_genes", n_genes, minimum=1),
        "fold_change": sim.check_float("fold_change", fold_change, low=1.0, low_open=True),
        "set_fraction": sim.check_float("set_fraction", set_fraction, low=0.0, high=1.0, low_open=True),
        "novel_size": sim.check_int("novel_size", novel_size, minimum=1),
        "xor_size": sim.check_int("xor_size", xor_size, minimum=1),
        "xor_marginal_size": sim.check_int("xor_marginal_size", xor_marginal_size, minimum=0),
        "xor_prob": sim.check_float("xor_prob", xor_prob, low=0.0, high=1.0, low_open=True, high_open=True),
        # (low, high), or empty: the XOR blocks' fold changes are drawn as every programme's
        "xor_fold_change": np.array(
            [] if xor_fold_change is None else sim.check_fold_range("xor_fold_change", xor_fold_change)
        ),
        "filler_fraction": sim.check_float("filler_fraction", filler_fraction, low=0.0, high=0.9),
        "n_smooth_factors": sim.check_int("n_smooth_factors", n_smooth_factors, minimum=0),
        "n_donors": sim.check_int("n_donors", n_donors, minimum=1),
        "donor_effect": sim.check_float("donor_effect", donor_effect, low=0.0),
        "condition_effect": sim.check_float("condition_effect", condition_effect, low=-math.inf),
        "condition_programs": sim.as_str_array(condition_programs),
        "condition_design": condition_design,
        "library_median": sim.check_float("library_median", library_median, low=1.0),
        "library_sigma": sim.check_float("library_sigma", library_sigma, low=0.0),
        "dispersion": sim.check_float("dispersion", dispersion, low=0.0, low_open=True),
        "gene_mean_sigma": sim.check_float("gene_mean_sigma", gene_mean_sigma, low=0.0),
        "seed": sim.check_seed(seed),
        "species": "mouse",
        "gene_sets": "MSigDB Hallmark v7.5.1, mouse one-to-one orthologs",
        "groups": sim.as_str_array(GROUP_WEIGHTS),
        "group_weights": np.array(list(GROUP_WEIGHTS.values())),
    }
    rng = np.random.default_rng(params["seed"])
    sets = hallmark("mouse")

    blocks = _marker_blocks(novel_size, xor_size, xor_marginal_size)
    var = _gene_panel(rng, sets, blocks, n_genes, params["filler_fraction"])
    params["n_genes"] = len(var)
    groups = _assign_groups(rng, params["n_cells"])
    programs = _hallmark_programs(rng, sets, var.index, params["set_fraction"], groups)
    programs.update(_block_programs(rng, blocks, groups, params["xor_prob"]))
    for prog in programs.values():
        prog["activity"] = np.where(prog["cells"], sim.activity(rng, len(groups)), 0.0)
    check_choice("condition_design", condition_design, ConditionDesign)
    donors, stim, donor_effects = _donors(programs, len(groups), params)
    X, var, obs, smooth_genes = _expression(rng, var, groups, programs, params)
    if params["n_donors"] > 1:
        obs["donor"] = pd.Categorical.from_codes(donors, categories=list(donor_effects.index))
        obs["condition"] = pd.Categorical(np.where(stim, "stim", "ctrl"), categories=["ctrl", "stim"])

    adata = AnnData(X=X, obs=obs, var=var)
    adata.uns["simulation"] = _truth(sets, var.index, programs, smooth_genes, params)
    if params["n_donors"] > 1:
        adata.uns["simulation"]["donor_effects"] = donor_effects
    logger.info(
        "Simulated %d cells x %d genes (%d programs, median %.0f UMIs/cell); truth in .uns['simulation'].",
        adata.n_obs,
        adata.n_vars,
        len(programs),
        float(np.median(np.asarray(X.sum(axis=1)))),
    )
    return adata


def _donors(programs: dict[str, dict], n_cells: int, params: dict) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Each cell's donor and condition (stim), and each donor's multiplier of every programme's activity.

    The multipliers, and the condition's on ``condition_programs``, are applied to the activities in place.

    Donors draw from their own generator, so with one donor and no effects the data are exactly
    those of the same seed without donors.
    """
    if params["condition_effect"] != 0 and params["n_donors"] < 2:
        raise ValueError("condition_effect needs n_donors >= 2 (the condition is a property of donors or their cells).")
    unknown = sorted(set(params["condition_programs"]) - set(programs))
    if unknown and params["condition_effect"] != 0:
        raise ValueError(f"condition_programs {unknown} are not programmes here; pick from {list(programs)}.")
    rng = np.random.default_rng([params["seed"], DONOR_STREAM])
    n_donors = params["n_donors"]
    donors = rng.integers(n_donors, size=n_cells) if n_donors > 1 else np.zeros(n_cells, dtype=np.int64)
    factors = np.exp(params["donor_effect"] * rng.standard_normal((n_donors, len(programs))))
    if params["condition_design"] == "within_donors":
        stim = rng.random(n_cells) < 0.5
    else:
        stim = donors % 2 == 1
    changed = np.isin(list(programs), params["condition_programs"])
    for j, prog in enumerate(programs.values()):
        condition = np.where(stim, np.exp(params["condition_effect"]), 1.0) if changed[j] else 1.0
        prog["activity"] = prog["activity"] * (factors[donors, j] * condition)  # one product per cell, as folded
    names = [f"donor_{i}" for i in range(n_donors)]
    return donors, stim, pd.DataFrame(factors, index=pd.Index(names, name="donor"), columns=list(programs))


def _expression(
    rng: np.random.Generator, var: pd.DataFrame, groups: np.ndarray, programs: dict[str, dict], params: dict
) -> tuple[sp.csr_matrix, pd.DataFrame, pd.DataFrame, dict[str, list[str]]]:
    """Counts from baseline, programs and continuous factors; returns ``X``, ``var``, ``obs`` and smooth genes."""
    n_cells, n_genes = len(groups), len(var)
    base = sim.baseline_log_shares(rng, n_genes, sigma=params["gene_mean_sigma"])
    # Markers of the synthetic blocks are expressed well enough to be found.
    is_marker = var["gene_kind"].isin(["novel", "xor"]).to_numpy()
    base[is_marker] = params["gene_mean_sigma"] * rng.uniform(*MARKER_QUANTILES_Z, size=is_marker.sum())
    phi = sim.dispersions(rng, n_genes, median=params["dispersion"])
    library = sim.library_sizes(rng, n_cells, median=params["library_median"], sigma=params["library_sigma"])

    log_rates = np.repeat(base[None, :].astype(np.float32), n_cells, axis=0)
    col = pd.Series(np.arange(n_genes), index=var.index)
    program_of_gene = np.full(n_genes, "", dtype=object)
    for name, prog in programs.items():
        idx = col[prog["genes"]].to_numpy()
        if prog["kind"].startswith("xor") and len(params["xor_fold_change"]):
            log_fc = np.log(sim.range_fold_changes(rng, len(idx), *params["xor_fold_change"]))
        else:
            log_fc = np.log(sim.fold_changes(rng, len(idx), fold_change=params["fold_change"]))
        rows = np.flatnonzero(prog["cells"])
        log_rates[np.ix_(rows, idx)] += np.outer(prog["activity"][rows], log_fc)
        program_of_gene[idx] = name
    smooth, smooth_genes = _smooth_factors(rng, n_cells, params["n_smooth_factors"], var.index[program_of_gene == ""])
    for k, genes in smooth_genes.items():
        idx = col[genes].to_numpy()
        log_rates[:, idx] += np.outer(smooth[k], SMOOTH_LOADING_SD * rng.standard_normal(len(idx)))
    X = sim.sample_counts(rng, log_rates, library, phi)

    obs = pd.DataFrame(index=pd.Index([f"cell_{i}" for i in range(n_cells)]))
    obs["group"] = pd.Categorical(groups, categories=list(GROUP_WEIGHTS))
    obs["library_size"] = library
    for name, prog in programs.items():
        obs[f"activity_{name}"] = prog["activity"]
    obs["xor_a"] = programs["XOR"]["factor_a"]
    obs["xor_b"] = programs["XOR"]["factor_b"]
    obs["xor"] = programs["XOR"]["cells"]
    for k, values in smooth.items():
        obs[k] = values

    shares = np.exp(base - base.max())
    var = var.assign(
        program=pd.Categorical(program_of_gene.astype(str)),
        baseline_mean=shares / shares.sum() * params["library_median"],
        dispersion=phi,
    )
    return X, var, obs, smooth_genes


def _universe(sets: dict[str, list[str]]) -> list[str]:
    # dict.fromkeys keeps file order, so the panel does not depend on hash randomisation.
    return list(dict.fromkeys(g for genes in sets.values() for g in genes))


def _planted_names() -> list[str]:
    return [name for names in PLANTED_SETS.values() for name in names]


def _marker_blocks(novel_size: int, xor_size: int, xor_marginal_size: int) -> dict[str, tuple[str, list[str]]]:
    """Synthetic marker blocks outside Hallmark: program -> (gene kind, gene names)."""
    blocks = {name: ("novel", sim.numbered_names(f"{name}_", novel_size)) for name in NOVEL_PROGRAMS}
    blocks["XOR"] = ("xor", sim.numbered_names("Xor_", xor_size))
    if xor_marginal_size:
        blocks["XOR_A"] = ("xor", sim.numbered_names("XorA_", xor_marginal_size))
        blocks["XOR_B"] = ("xor", sim.numbered_names("XorB_", xor_marginal_size))
    return blocks


def _min_hallmark_genes() -> int:
    return math.ceil(len(_planted_names()) * MIN_SET_GENES / PLANTED_SHARE)


def _gene_budget(n_genes: int | None, n_blocks: int, filler_fraction: float, n_universe: int) -> tuple[int, int]:
    """Split the panel into Hallmark genes and synthetic fillers (the marker blocks are fixed)."""
    if n_genes is None:
        return n_universe, round(filler_fraction / (1 - filler_fraction) * (n_universe + n_blocks))
    n_hallmark = min(n_universe, n_genes - n_blocks - round(filler_fraction * n_genes))
    if n_hallmark < _min_hallmark_genes():
        needed = next(
            n for n in range(n_blocks, 100_000) if n - n_blocks - round(filler_fraction * n) >= _min_hallmark_genes()
        )
        raise ValueError(
            f"n_genes={n_genes} is too small to keep {MIN_SET_GENES} genes of each of the "
            f"{len(_planted_names())} planted Hallmark sets next to {n_blocks} marker-block genes. "
            f"Pass n_genes >= {needed}, or lower novel_size, xor_size, xor_marginal_size or filler_fraction."
        )
    return n_hallmark, n_genes - n_blocks - n_hallmark


def _gene_panel(
    rng: np.random.Generator,
    sets: dict[str, list[str]],
    blocks: dict[str, tuple[str, list[str]]],
    n_genes: int | None,
    filler_fraction: float,
) -> pd.DataFrame:
    """The genes, in random order, with their kind (``var["gene_kind"]``)."""
    n_blocks = sum(len(genes) for _, genes in blocks.values())
    n_hallmark, n_filler = _gene_budget(n_genes, n_blocks, filler_fraction, len(_universe(sets)))
    names = _hallmark_panel(rng, sets, n_hallmark)
    kinds = ["hallmark"] * len(names)
    for kind, genes in blocks.values():
        names += genes
        kinds += [kind] * len(genes)
    names += sim.numbered_names("Gene", n_filler, width=4)
    kinds += ["filler"] * n_filler
    var = pd.DataFrame({"gene_kind": pd.Categorical(kinds, categories=GENE_KINDS)}, index=pd.Index(names))
    return var.iloc[rng.permutation(len(var))]


def _hallmark_panel(rng: np.random.Generator, sets: dict[str, list[str]], n_hallmark: int) -> list[str]:
    """Hallmark genes of the panel: planted sets first, then the negative sets, then any other.

    When a stage does not fit, each of its sets gets about the same number of genes.
    """
    universe = _universe(sets)
    if n_hallmark >= len(universe):
        return universe
    planted = {name: sets[name] for name in _planted_names()}
    chosen = _round_robin(rng, planted, min(len(_universe(planted)), round(PLANTED_SHARE * n_hallmark)), {})
    negatives = {name: sets[name] for name in NEGATIVE_SETS}
    n_free = len(set(_universe(negatives)) - chosen.keys())
    chosen = _round_robin(rng, negatives, min(n_free, round(NEGATIVE_SHARE * (n_hallmark - len(chosen)))), chosen)
    others = [g for g in universe if g not in chosen]
    extra = rng.choice(len(others), size=n_hallmark - len(chosen), replace=False)
    return list(chosen) + [others[i] for i in np.sort(extra)]


def _round_robin(
    rng: np.random.Generator, gene_sets: dict[str, list[str]], n_new: int, chosen: dict[str, None]
) -> dict[str, None]:
    """Add ``n_new`` genes to ``chosen``, one from each set in turn (random order within a set)."""
    chosen = dict(chosen)
    target = len(chosen) + n_new
    queues = [[genes[i] for i in rng.permutation(len(genes))] for genes in gene_sets.values()]
    position = [0] * len(queues)
    while len(chosen) < target:
        for q, queue in enumerate(queues):
            # Skip genes already taken through an overlapping set.
            while position[q] < len(queue) and queue[position[q]] in chosen:
                position[q] += 1
            if position[q] < len(queue) and len(chosen) < target:
                chosen[queue[position[q]]] = None
    return chosen


def _assign_groups(rng: np.random.Generator, n_cells: int) -> np.ndarray:
    sizes = sim.split_counts(n_cells, np.array(list(GROUP_WEIGHTS.values())))
    return rng.permutation(np.repeat(list(GROUP_WEIGHTS), sizes))


def _hallmark_programs(
    rng: np.random.Generator, sets: dict[str, list[str]], var_names: pd.Index, set_fraction: float, groups: np.ndarray
) -> dict[str, dict]:
    """Pick the perturbed genes of each planted set; every gene goes to at most one program."""
    present = {name: [g for g in sets[name] if g in var_names] for name in _planted_names()}
    group_of = {name: group for group, names in PLANTED_SETS.items() for name in names}
    # Genes of the negative sets stay unperturbed, so that those sets are clean negatives.
    taken = {g for name in NEGATIVE_SETS for g in sets[name]}
    programs = {}
    # Small sets first, so that a set nested in a bigger one (IFN alpha in IFN gamma) keeps its genes.
    for name in sorted(present, key=lambda n: (len(present[n]), n)):
        eligible = [g for g in present[name] if g not in taken]
        n_target = max(3, round(set_fraction * len(present[name])))
        pick = rng.choice(len(eligible), size=min(n_target, len(eligible)), replace=False)
        genes = [eligible[i] for i in np.sort(pick)]
        if len(genes) < n_target:
            logger.debug("%s: only %d of %d wanted genes are free of other sets.", name, len(genes), n_target)
        taken.update(genes)
        cells = groups == group_of[name]
        programs[name] = {"kind": "hallmark", "group": group_of[name], "genes": genes, "cells": cells}
    return {name: programs[name] for name in _planted_names()}


def _block_programs(
    rng: np.random.Generator, blocks: dict[str, tuple[str, list[str]]], groups: np.ndarray, xor_prob: float
) -> dict[str, dict]:
    """Novel programs (sub-states of a group or of all cells) and the XOR program."""
    n_cells = len(groups)
    programs = {}
    for name, (group, share) in NOVEL_PROGRAMS.items():
        eligible = np.ones(n_cells, bool) if group == "all" else groups == group
        cells = eligible & (rng.random(n_cells) < share)
        programs[name] = {"kind": "novel", "group": group, "genes": blocks[name][1], "cells": cells}
    a = rng.random(n_cells) < xor_prob
    b = rng.random(n_cells) < xor_prob
    programs["XOR"] = {"kind": "xor", "group": "all", "genes": blocks["XOR"][1], "cells": a ^ b}
    programs["XOR"].update(factor_a=a, factor_b=b)
    if "XOR_A" in blocks:
        programs["XOR_A"] = {"kind": "xor_a", "group": "all", "genes": blocks["XOR_A"][1], "cells": a}
        programs["XOR_B"] = {"kind": "xor_b", "group": "all", "genes": blocks["XOR_B"][1], "cells": b}
    return programs


def _smooth_factors(
    rng: np.random.Generator, n_cells: int, n_factors: int, background: pd.Index
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Continuous nuisance factors on background genes, so that they too are correlated."""
    n_load = round(SMOOTH_GENE_SHARE * len(background))
    values, genes = {}, {}
    for k in range(1, n_factors + 1):
        values[f"smooth_{k}"] = rng.standard_normal(n_cells)
        pick = np.sort(rng.choice(len(background), size=n_load, replace=False))
        genes[f"smooth_{k}"] = list(background[pick])
    return values, genes


def _gene_set_truth(
    sets: dict[str, list[str]], var_names: pd.Index, programs: dict[str, dict]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per Hallmark set: genes present, where it is planted, and the share of its genes perturbed."""
    group_genes = {group: set() for group in GROUP_WEIGHTS}
    for prog in programs.values():
        if prog["kind"] == "hallmark":
            group_genes[prog["group"]].update(prog["genes"])
    planted_group = {name: group for group, names in PLANTED_SETS.items() for name in names}
    in_panel = set(var_names)
    rows, fractions = [], []
    for name, genes in sets.items():
        present = [g for g in dict.fromkeys(genes) if g in in_panel]
        n_hit = {group: sum(g in hit for g in present) for group, hit in group_genes.items()}
        denom = max(len(present), 1)
        rows.append((name, len(genes), len(present), planted_group.get(name, ""), sum(n_hit.values())))
        fractions.append([n_hit[group] / denom for group in GROUP_WEIGHTS])
    table = pd.DataFrame(rows, columns=["gene_set", "n_genes", "n_present", "planted_group", "n_perturbed"])
    table = table.set_index("gene_set")
    table["frac_perturbed"] = table["n_perturbed"] / table["n_present"].clip(lower=1)
    table["role"] = np.where(
        table["planted_group"] != "", "planted", np.where(table.index.isin(NEGATIVE_SETS), "negative", "bystander")
    )
    by_group = pd.DataFrame(fractions, index=table.index, columns=list(GROUP_WEIGHTS))
    return table, by_group


def _truth(
    sets: dict[str, list[str]],
    var_names: pd.Index,
    programs: dict[str, dict],
    smooth_genes: dict[str, list[str]],
    params: dict,
) -> dict:
    """``uns["simulation"]``: only arrays of str, DataFrames and scalars, so it survives ``write_h5ad``."""
    gene_sets, by_group = _gene_set_truth(sets, var_names, programs)
    negative = (gene_sets["role"] == "negative") & (gene_sets["n_present"] >= MIN_SET_GENES)
    table = pd.DataFrame(
        {
            "kind": [p["kind"] for p in programs.values()],
            "group": [p["group"] for p in programs.values()],
            "cell_fraction": [float(np.mean(p["cells"])) for p in programs.values()],
            "n_genes": [len(p["genes"]) for p in programs.values()],
        },
        index=pd.Index(list(programs), name="program"),
    )
    marginal = {key: programs.get(f"XOR_{key.upper()}", {"genes": []})["genes"] for key in "ab"}
    return {
        "planted_sets": {group: sim.as_str_array(names) for group, names in PLANTED_SETS.items()},
        "program_genes": {name: sim.as_str_array(p["genes"]) for name, p in programs.items()},
        "novel_programs": {name: sim.as_str_array(programs[name]["genes"]) for name in NOVEL_PROGRAMS},
        "xor_genes": sim.as_str_array(programs["XOR"]["genes"]),
        "xor_marginal_genes": {key: sim.as_str_array(genes) for key, genes in marginal.items()},
        "smooth_genes": {k: sim.as_str_array(genes) for k, genes in smooth_genes.items()},
        "programs": table,
        "gene_sets": gene_sets,
        "set_group_fraction": by_group,
        "negative_sets": sim.as_str_array(gene_sets.index[negative]),
        "params": params,
    }
