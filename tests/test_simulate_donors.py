"""Donors in simulate_hematopoiesis: donor multipliers of programme activity and a condition, nothing else changed."""

import numpy as np
import pandas as pd
import pytest

import scdeconv as sd

SMALL = dict(n_cells=300, n_genes=800, seed=3)


def test_one_donor_without_effects_is_the_data_without_donors():
    plain = sd.datasets.simulate_hematopoiesis(**SMALL)
    same = sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=1, donor_effect=0.0)
    assert (plain.X != same.X).nnz == 0
    assert "donor" not in same.obs and "donor_effects" not in same.uns["simulation"]


def test_donor_and_condition_multiply_programme_activity():
    base = sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=4)
    target = "HALLMARK_INTERFERON_ALPHA_RESPONSE"
    adata = sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=4, donor_effect=0.5, condition_effect=1.0)
    assert list(adata.obs["donor"].cat.categories) == ["donor_0", "donor_1", "donor_2", "donor_3"]
    assert (base.obs["donor"] == adata.obs["donor"]).all()  # the same cells from the same donors
    stim = adata.obs["donor"].isin(["donor_1", "donor_3"]).to_numpy()
    assert (adata.obs["condition"].to_numpy() == np.where(stim, "stim", "ctrl")).all()
    factors = adata.uns["simulation"]["donor_effects"]
    for program in (target, "HALLMARK_HEME_METABOLISM", "ProgC"):
        column = f"activity_{program}"
        on = base.obs[column].to_numpy() > 0
        ratio = adata.obs[column].to_numpy()[on] / base.obs[column].to_numpy()[on]
        expected = factors.loc[adata.obs["donor"].to_numpy()[on], program].to_numpy()
        if program == target:  # the condition's multiplier, in stim cells only
            expected = expected * np.where(stim[on], np.e, 1.0)
        np.testing.assert_allclose(ratio, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="not programmes here"):
        sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=2, condition_effect=1.0, condition_programs=("NOPE",))
    with pytest.raises(ValueError, match="condition_effect needs n_donors >= 2"):
        sd.datasets.simulate_hematopoiesis(**SMALL, condition_effect=1.0)


def test_conditions_within_donors():
    adata = sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=4, condition_design="within_donors")
    table = pd.crosstab(adata.obs["donor"], adata.obs["condition"])
    assert (table > 0.3 * table.sum(axis=1).to_numpy()[:, None]).all().all()  # every donor in both, about half
    with pytest.raises(ValueError, match="condition_design must be one of 'donors', 'within_donors'"):
        sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=4, condition_design="paired")
