import numpy as np
import pytest

import scdeconv as sd
from scdeconv.genesets import hallmark


def test_geneset_mode_is_the_papers_filter(counts_adata):
    adata = counts_adata
    max_count = np.asarray(adata.X.max(axis=0).todense()).ravel()
    set_genes = {g.upper() for genes in hallmark("mouse").values() for g in genes}
    sd.pp.select_genes(adata)
    selected = adata.var["scdeconv_selected"].to_numpy()
    expected = (max_count >= 3) & adata.var_names.str.upper().isin(set_genes)
    np.testing.assert_array_equal(selected, expected)
    assert adata.uns["scdeconv_selected"]["params"]["mode"] == "geneset"


def test_modes_and_subset(counts_adata):
    everything = sd.pp.select_genes(counts_adata, mode="all", copy=True)
    hvg = sd.pp.select_genes(counts_adata, mode="hvg", n_top_genes=10, copy=True)
    genesets = sd.pp.select_genes(counts_adata, copy=True)
    all_sel, hvg_sel, set_sel = (a.var["scdeconv_selected"].to_numpy() for a in (everything, hvg, genesets))
    assert (set_sel <= hvg_sel).all() and (hvg_sel <= all_sel).all()
    assert "scdeconv_selected" not in counts_adata.var  # copy=True left the input alone
    subset = sd.pp.select_genes(counts_adata, min_count=8, subset=True, copy=True)
    assert subset.n_vars == int(sd.pp.select_genes(counts_adata, min_count=8, copy=True).var["scdeconv_selected"].sum())


def test_rejects_normalised_data(counts_adata):
    counts_adata.X = counts_adata.X.multiply(1 / 3).tocsr()
    with pytest.raises(ValueError, match=r"non-integer.*layer="):
        sd.pp.select_genes(counts_adata)
