"""The markdown report says what a poor reconstruction means instead of printing the number alone."""

import numpy as np
import pandas as pd
import pytest

from scdeconv._report import reconstruction_lines


def _reconstruction(deviance_explained):
    genes = pd.DataFrame({"correlation": 0.3, "deviance_explained": deviance_explained})
    return {"genes": genes, "cells": pd.DataFrame({"correlation": [0.5, 0.6]})}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([-0.08, -0.05, 0.02, np.nan], "**Warning:** a median deviance explained of -0.05"),  # NaN genes ignored
        ([0.0, 0.0, 0.3], "**Warning:**"),
        ([0.01, 0.03, 0.2], "**Note:** a median deviance explained of 0.03"),
        ([0.2, 0.3, 0.4], None),
    ],
)
def test_reconstruction_warns_when_no_better_than_the_null(values, expected):
    lines = reconstruction_lines(_reconstruction(values))
    assert lines[0].startswith("- Reconstruction of the held-out cells: median correlation per gene 0.30")
    if expected is None:
        assert len(lines) == 1
        return
    assert len(lines) == 2 and lines[1].startswith(f"  {expected}")
    assert "each gene its average share of the cell's library" in lines[1]
    assert "epochs" in lines[1] and "cells" in lines[1]
    if expected.startswith("**Warning"):
        assert "no better than" in lines[1] and ("worse than it" in lines[1]) == bool(np.nanmedian(values) < 0)


def test_fdr_text_says_when_a_value_sits_at_the_null_floor():
    from scdeconv._report import _fdr_text

    assert _fdr_text(1 / 1001, 1 / 1001) == "<= 0.001"
    assert _fdr_text(0.0123, 1 / 1001) == "0.012"
    assert _fdr_text(1e-12, None) == "1e-12"  # no null model: nothing to floor at


def _with_calls(trained_adata):
    """A copy where the first live node is called for every set and node_0 (made rare) would be too."""
    import scdeconv as sd

    adata = trained_adata.copy()
    impact = adata.uns["scdeconv_impact"]
    stats = impact["node_stats"]
    stats["status"] = stats["status"].astype(object)
    stats.loc["node_0", ["status", "dead"]] = ["rare", True]
    live = str(stats.index[~stats["dead"].to_numpy()][0])
    impact["fdr"].loc[:] = 0.5
    impact["fdr"].loc[[live, "node_0"]] = 1 / (1 + impact["params"]["n_null"])  # at the null's floor
    sd.tl.node_genes(adata, n_top=5, progress=False)
    return adata, live


def test_report_tables_never_name_dead_or_rare_nodes(trained_adata):
    from scdeconv._report import listed_genes, node_status_line, node_table

    adata, live = _with_calls(trained_adata)
    rows = node_table(adata)
    called = [r for r in rows if r.startswith("| node_")]
    assert [r.split(" | ")[0] for r in called] == [f"| {live}"]  # node_0 is rare: never listed
    assert "<= 0.001" in called[0]  # FDRs at the floor say so
    genes = listed_genes(adata, live, 5)
    assert genes and called[0].endswith(f"| {', '.join(genes)} |")
    status = adata.uns["scdeconv_impact"]["node_stats"]["status"].value_counts()
    assert f"{status['live']} live nodes" in node_status_line(adata) and f"{status['rare']} rare" in node_status_line(
        adata
    )


def test_expectation_table_says_which_pairing_holds(trained_adata):
    from scdeconv._report import expectation_table, listed_genes

    adata, _ = _with_calls(trained_adata)
    stats = adata.uns["scdeconv_impact"]["set_stats"]
    first, second = stats.index[:2]
    stats.loc[[first, second], "fdr"] = 0.001  # both called
    lead = listed_genes(adata, stats.loc[first, "best_node"], 8)
    assert lead  # the check below needs a listed gene
    rows = expectation_table(adata, [(first, "planted", (lead[0].lower(),)), (second, "absent", ("NOT_A_GENE",))])
    table = [r for r in rows if r.startswith("| ") and not r.startswith("| gene set")]
    assert table[0].endswith(f"| {lead[0]} | yes |") and table[1].endswith("| none | **no** |")
    assert rows[-1].startswith(f"- Nodes led (top 3 genes) by {second.removeprefix('HALLMARK_')}'s markers: none")


def test_tables_without_calls_say_so(trained_adata):
    from scdeconv._report import difference_table, node_table

    adata = trained_adata.copy()
    adata.uns["scdeconv_impact"]["fdr"].loc[:] = 0.9
    adata.uns["scdeconv_group_diff"]["node_set_tests"]["fdr"].loc[:] = 0.9
    assert node_table(adata) == ["No (node, gene set) pair at FDR < 0.05 on a live node."]
    assert difference_table(adata) == [
        "No (node, gene set) difference at FDR < 0.05 (per-(node, set) tests, live nodes)."
    ]
