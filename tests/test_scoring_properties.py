"""Property-based tests (hypothesis) of the scoring core: scdeconv.scoring and the saliency kernels.

Properties: permuting cells or genes permutes the results accordingly; duplicating every cell
leaves the impact unchanged; a superset of a gene set scores as documented (Stouffer
combination of its parts; genes absent from the data are ignored); every score is finite for
any non-negative count input. Examples are few and small so the file stays fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scdeconv import scoring
from scdeconv._module.autoencoder import Autoencoder
from scdeconv._module.reducers import AttributionProfile, CellActivity, SetMedians
from scdeconv._module.saliency import METHODS, attribution, set_medians
from scdeconv.genesets import match_gene_sets

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(0, 1e3, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def profiles(draw, min_genes: int = 4, max_genes: int = 24):
    """(nodes x genes non-negative profile, gene means with distinct values, n_bins)."""
    n_nodes = draw(st.integers(1, 4))
    n_genes = draw(st.integers(min_genes, max_genes))
    profile = draw(arrays(np.float64, (n_nodes, n_genes), elements=finite))
    means = draw(arrays(np.float64, n_genes, elements=finite, unique=True))
    n_bins = draw(st.integers(1, max(1, n_genes // 2)))
    return profile, means, n_bins


@st.composite
def gene_sets(draw, n_genes: int, max_sets: int = 4):
    return [
        np.unique(draw(arrays(np.int64, draw(st.integers(1, n_genes)), elements=st.integers(0, n_genes - 1))))
        for _ in range(draw(st.integers(1, max_sets)))
    ]


@st.composite
def count_matrices(draw, max_cells: int = 10, max_genes: int = 12):
    """Any non-negative integer counts, including empty cells, empty genes and huge values."""
    shape = (draw(st.integers(1, max_cells)), draw(st.integers(3, max_genes)))
    values = st.one_of(st.integers(0, 20), st.sampled_from([0, 0, 1, 10**4, 10**7]))
    return draw(arrays(np.int64, shape, elements=values)).astype(np.float32)


def network(n_genes: int, seed: int = 0) -> Autoencoder:
    return Autoencoder(n_genes, n_latent=3, n_hidden=(5,), generator=torch.Generator().manual_seed(seed))


# --- scoring.py ------------------------------------------------------------------------------------
@SETTINGS
@given(data=profiles(), perm_seed=st.integers(0, 2**16))
def test_gene_permutation_permutes_bins_zscores_and_set_scores(data, perm_seed):
    profile, means, n_bins = data
    perm = np.random.default_rng(perm_seed).permutation(len(means))
    bins = scoring.expression_bins(means, n_bins)
    np.testing.assert_array_equal(scoring.expression_bins(means[perm], n_bins), bins[perm])
    z = scoring.binned_zscores(profile, bins)
    np.testing.assert_allclose(scoring.binned_zscores(profile[:, perm], bins[perm]), z[:, perm], atol=1e-9)
    sets = [np.arange(0, len(means), 2), np.array([len(means) - 1])]
    where = np.argsort(perm)  # new position of every old gene
    moved = [np.sort(where[s]) for s in sets]
    np.testing.assert_allclose(
        scoring.set_enrichment(z[:, perm], moved), scoring.set_enrichment(z, sets), rtol=1e-9, atol=1e-9
    )


@SETTINGS
@given(data=profiles(), perm_seed=st.integers(0, 2**16))
def test_cell_permutation_permutes_cell_activity(data, perm_seed):
    totals, means, n_bins = data  # read the profile as cells x genes
    perm = np.random.default_rng(perm_seed).permutation(len(totals))
    bins = scoring.expression_bins(means, n_bins)
    sets = [np.arange(0, len(means), 3), np.arange(1, len(means))]
    permuted, gene_z_permuted = scoring.cell_activity(totals[perm], bins, sets)
    activity, gene_z = scoring.cell_activity(totals, bins, sets)
    np.testing.assert_array_equal(permuted, activity[perm])
    np.testing.assert_array_equal(gene_z_permuted, gene_z[perm])


@SETTINGS
@given(data=profiles(min_genes=6), split=st.integers(1, 5))
def test_superset_is_the_stouffer_combination_of_its_parts(data, split):
    """Documented in set_enrichment: sqrt(|A+B|) score(A+B) = sqrt(|A|) score(A) + sqrt(|B|) score(B)."""
    profile, means, n_bins = data
    z = scoring.binned_zscores(profile, scoring.expression_bins(means, n_bins))
    genes = np.arange(len(means))
    a, b = genes[:split], genes[split:]
    part_a, part_b, union = scoring.set_enrichment(z, [a, b, genes]).T
    np.testing.assert_allclose(
        np.sqrt(len(genes)) * union, np.sqrt(len(a)) * part_a + np.sqrt(len(b)) * part_b, atol=1e-9
    )


def test_superset_with_genes_absent_from_the_data_matches_the_same_genes():
    var_names = ["Gata1", "Klf1", "Hbb-b1", "Cd14", "Lyz2"]
    sets = {"S": ["Gata1", "Klf1", "Cd14"], "S+": ["Gata1", "Klf1", "Cd14", "Absent1"]}
    indices, sizes = match_gene_sets(sets, var_names)
    np.testing.assert_array_equal(indices["S"], indices["S+"])
    assert sizes.loc["S+", "n_genes"] == 4 and sizes.loc["S+", "n_present"] == 3


@SETTINGS
@given(
    values=arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 12)),
                  elements=st.floats(0, 100, width=32)),
    split=st.integers(1, 11),
)  # fmt: skip
def test_set_median_of_a_superset_lies_between_the_medians_of_its_parts(values, split):
    n_genes = values.shape[2]
    split = min(split, n_genes - 1)
    cols = [torch.arange(split), torch.arange(split, n_genes), torch.arange(n_genes)]
    medians = set_medians(torch.from_numpy(values), cols).numpy()
    np.testing.assert_allclose(medians[..., 2], np.median(values, axis=2), rtol=1e-6)
    low, high = np.minimum(medians[..., 0], medians[..., 1]), np.maximum(medians[..., 0], medians[..., 1])
    assert np.all(low <= medians[..., 2] + 1e-5) and np.all(medians[..., 2] <= high + 1e-5)


@SETTINGS
@given(data=profiles(), seed=st.integers(0, 100))
def test_null_model_and_fdr_are_finite_and_bounded(data, seed):
    profile, means, n_bins = data
    bins = scoring.expression_bins(means, n_bins)
    z = scoring.binned_zscores(profile, bins)
    sets = [np.arange(0, len(means), 2), np.arange(len(means))]
    null = scoring.matched_null(z, bins, sets, n_null=15, seed=seed)
    assert np.isfinite(null.mean).all() and np.isfinite(null.sd).all() and (null.sd >= 0).all()
    assert ((null.n_exceeding >= 0) & (null.n_exceeding <= 15)).all()
    pvalues = np.random.default_rng(seed).random(profile.shape)
    fdr = scoring.benjamini_hochberg(pvalues)
    assert ((fdr >= pvalues - 1e-12) & (fdr <= 1)).all()
    perm = np.random.default_rng(seed + 1).permutation(pvalues.size)
    np.testing.assert_array_equal(scoring.benjamini_hochberg(pvalues.ravel()[perm]), fdr.ravel()[perm])
    scaled = scoring.scaled_difference(pd.DataFrame(z))
    assert np.isfinite(scaled.to_numpy()).all() and np.abs(scaled.to_numpy()).max() <= 1 + 1e-12


# --- saliency kernels ------------------------------------------------------------------------------
@SETTINGS
@given(counts=count_matrices(), method=st.sampled_from(METHODS))
def test_scores_are_finite_for_any_non_negative_counts(counts, method):
    module = network(counts.shape[1])
    n_cells, n_genes = counts.shape
    sets = [np.arange(0, n_genes, 2), np.arange(n_genes)]
    bins = scoring.expression_bins(counts.mean(axis=0) + np.arange(n_genes) * 1e-9, 3)
    medians = SetMedians(n_cells, module.n_latent, sets)  # each cell its own group
    profile = AttributionProfile(n_cells, module.n_latent, n_genes)
    activity = CellActivity(n_cells, n_cells, bins, sets)
    stream(module, counts, [medians, profile, activity], labels=np.arange(n_cells), method=method, batch_size=4)
    for part in (medians.sums, profile.sums):
        assert np.isfinite(part).all() and (part >= 0).all()
    z = scoring.binned_zscores(profile.pooled(), bins)
    assert np.isfinite(scoring.set_enrichment(z, sets)).all()
    with_counts = counts.sum(axis=1) > 0  # cells without counts are left out of every pass: NaN activity
    assert np.isfinite(activity.activity[with_counts]).all() and np.isnan(activity.activity[~with_counts]).all()


@SETTINGS
@given(counts=count_matrices(), perm_seed=st.integers(0, 2**16), method=st.sampled_from(METHODS))
def test_permuting_cells_permutes_saliency(counts, perm_seed, method):
    module = network(counts.shape[1])
    sets = [np.arange(0, counts.shape[1], 2), np.arange(counts.shape[1])]
    perm = np.random.default_rng(perm_seed).permutation(len(counts))

    bins = np.arange(counts.shape[1]) % 2

    def run(matrix):
        n_cells = len(matrix)
        medians = SetMedians(n_cells, module.n_latent, sets)  # each cell its own group
        profile = AttributionProfile(1, module.n_latent, matrix.shape[1])
        activity = CellActivity(n_cells, 1, bins, sets)
        stream(module, matrix, [medians], labels=np.arange(n_cells), method=method)
        stream(module, matrix, [profile, activity], method=method)
        return medians.sums, profile.sums, activity.activity

    scores, sums, activity = run(counts)
    scores_p, sums_p, activity_p = run(counts[perm])
    np.testing.assert_allclose(scores_p, scores[perm], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activity_p, activity[perm], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sums_p, sums, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(counts=count_matrices(), perm_seed=st.integers(0, 2**16), method=st.sampled_from(METHODS))
def test_permuting_genes_permutes_attributions(counts, perm_seed, method):
    """A model whose input weights follow the genes' new order attributes the same, permuted."""
    module = network(counts.shape[1]).double()
    perm = np.random.default_rng(perm_seed).permutation(counts.shape[1])
    permuted = network(counts.shape[1]).double()
    permuted.load_state_dict(module.state_dict())
    with torch.no_grad():
        permuted.encoder[0].weight.copy_(module.encoder[0].weight[:, perm])
    x = module.prepare_input(torch.from_numpy(counts.astype(np.float64)))
    expected = attribution(module, x, method=method)[:, :, perm]
    got = attribution(permuted, x[:, perm], method=method)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-9, atol=1e-12)


@SETTINGS
@given(counts=count_matrices(), method=st.sampled_from(METHODS))
def test_duplicating_every_cell_leaves_impact_unchanged(counts, method):
    module = network(counts.shape[1])
    n_genes = counts.shape[1]
    sets = [np.arange(0, n_genes, 2), np.arange(n_genes)]

    def impact(matrix):
        medians = SetMedians(1, module.n_latent, sets)
        profile = AttributionProfile(1, module.n_latent, n_genes)
        stream(module, matrix, [medians, profile], method=method, batch_size=3)
        bins = scoring.expression_bins(np.arange(n_genes, dtype=float), 2)
        paper = medians.sums[0] / len(matrix)  # the paper's score: mean over cells of per-cell medians
        return paper, scoring.profile_enrichment(profile.pooled(), bins, sets)

    for once, twice in zip(impact(counts), impact(np.vstack([counts, counts])), strict=True):
        np.testing.assert_allclose(twice, once, rtol=1e-4, atol=1e-5)


def test_duplicating_every_cell_leaves_module_impact_unchanged(trained_adata):
    """End to end through sd.tl.module_impact (both scores)."""
    import anndata as ad

    import scdeconv as sd

    twice = ad.concat([trained_adata, trained_adata], uns_merge="first", keys=["a", "b"], index_unique="-")
    for score, method in (("median", "guided"), ("enrichment", "grad_x_input")):
        kwargs = dict(score=score, method=method, n_null=0, activity_key=None, progress=False, copy=True)
        once = sd.tl.module_impact(trained_adata, **kwargs).uns["scdeconv_impact"]["impact"]
        doubled = sd.tl.module_impact(twice, **kwargs).uns["scdeconv_impact"]["impact"]
        np.testing.assert_allclose(doubled.to_numpy(), once.to_numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_bins", [1, 3])
def test_expression_bins_are_equal_count(n_bins):
    bins = scoring.expression_bins(np.arange(12.0)[::-1], n_bins)
    assert np.bincount(bins).tolist() == [12 // n_bins] * n_bins
