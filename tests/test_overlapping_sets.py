"""The conditional test of overlapping gene sets: a set called only through another called set's genes is not called."""

import numpy as np
import pandas as pd

from scdeconv.scoring import MatchedSets, impact_significance


def _toy(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_genes = 400
    z = rng.normal(size=(2, n_genes))
    z[0, :30] += 3.0  # the programme: genes 0-29 drive node 0
    z[0, 150:165] += 3.0  # a second programme on the same node, in genes of its own
    cols = {
        "P": np.arange(30),  # carries the programme
        "B": np.r_[0:15, 100:115],  # half of P's genes and 15 of its own without signal: a bystander
        "S": np.r_[15:30, 150:165],  # half of P's genes and 15 of its own with signal: a real second set
        "C": np.arange(200, 230),  # unrelated
    }
    impact = pd.DataFrame(0.0, index=["node_0", "node_1"], columns=list(cols))
    sets = MatchedSets(list(cols.values()), np.zeros(n_genes, dtype=int), n_null=2000, seed=1)
    return impact_significance(z, impact, np.array([False, False]), sets)


FLOOR = 1 / (1 + 2000)  # reported p-values and FDRs stop at what the 2000 random sets resolve


def test_bystander_is_called_marginally_but_not_conditionally():
    out = _toy()
    fdr, conditional = out["fdr"].loc["node_0"], out["fdr_conditional"].loc["node_0"]
    at_floor = FLOOR * (1 + 1e-9)
    assert fdr["P"] <= at_floor and fdr["B"] < 0.05 and fdr["S"] <= at_floor  # B: 15 genes at +3 -> z about 8
    assert conditional["P"] <= at_floor and conditional["S"] < 1e-3
    # B re-tested on its 15 genes outside P: no signal there.
    assert conditional["B"] > 0.05
    assert fdr["C"] > 0.05 and conditional["C"] > 0.05
    # Never below the marginal p-value; pairs not called keep it.
    p, pc = out["pvalue"].to_numpy(), out["pvalue_conditional"].to_numpy()
    assert (pc >= p - 1e-15).all()
    np.testing.assert_allclose(pc[1], p[1])
    stats = out["set_stats"]
    assert stats.loc["B", "fdr"] < 0.05 and stats.loc["B", "fdr_conditional"] > 0.05
    assert stats.loc["P", "fdr_conditional"] <= FLOOR * (1 + 1e-9)


def test_a_set_inside_a_stronger_one_has_nothing_left():
    # A set whose genes all lie in a stronger called set is explained by it: conditional p = 1.
    rng = np.random.default_rng(2)
    z = rng.normal(size=(1, 300))
    z[0, :40] += 3.0
    cols = [np.arange(40), np.arange(10, 20)]
    impact = pd.DataFrame(0.0, index=["node_0"], columns=["BIG", "INSIDE"])
    out = impact_significance(z, impact, np.array([False]), MatchedSets(cols, np.zeros(300, dtype=int), 500))
    assert out["fdr"].loc["node_0", "INSIDE"] < 0.05
    assert out["pvalue_conditional"].loc["node_0", "INSIDE"] == 1.0
