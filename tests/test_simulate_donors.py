"""Donors in simulate_hematopoiesis: donor multipliers of programme activity and a condition, nothing else changed."""

import numpy as np
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
        np.testing.assert_allclose(ratio, expected, rtol=1e-6)
    # The condition's multiplier sits on the target alone, in stim donors.
    log_ratio = np.log(factors[target].to_numpy())
    donor_only = np.log(
        sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=4, donor_effect=0.5).uns["simulation"]["donor_effects"][
            target
        ]
    ).to_numpy()
    np.testing.assert_allclose(log_ratio - donor_only, [0.0, 1.0, 0.0, 1.0], atol=1e-12)
    with pytest.raises(ValueError, match="not programmes here"):
        sd.datasets.simulate_hematopoiesis(**SMALL, n_donors=2, condition_effect=1.0, condition_programs=("NOPE",))
