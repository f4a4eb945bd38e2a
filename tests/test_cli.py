import pytest
from anndata import read_h5ad

import scdeconv as sd
from scdeconv.cli import main

EXPECTED = {
    "panel_a_input_umap.png",
    "panel_c_representation_umap.png",
    "panel_d_impact_heatmap.png",
    "panel_e_group_diff.png",
    "training_history.png",
    "reconstruction.png",
    "report.md",
    "scdeconv_result.h5ad",
}


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "sim.h5ad"
    sd.datasets.simulate_hematopoiesis(400, n_genes=600, seed=3).write_h5ad(path)
    return path


def test_run_writes_figures_report_and_h5ad(small_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(small_file), "--groupby", "group", "--compare", "Ery", "GMP,Mk", "--out", str(out),
                 "--max-epochs", "3", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == EXPECTED
    report = (out / "report.md").read_text()
    assert "## Ery vs GMP+Mk (panel e)" in report and "| node_" in report
    result = read_h5ad(out / "scdeconv_result.h5ad")
    assert result.uns["scdeconv_group_diff"]["params"]["group2"] == "GMP+Mk"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--groupby", "nope", "--compare", "Ery", "rest"], "groupby 'nope' is not a column"),
        (["--groupby", "group", "--compare", "Erythro", "rest"], "not found in adata.obs['group']"),
    ],
)
def test_run_bad_input_fails_cleanly(small_file, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["run", str(small_file), *args, "--out", str(out), "--max-epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())  # nothing partial


def test_run_missing_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.h5ad"), "--groupby", "g", "--compare", "a", "b"]) == 1
    assert "does not exist" in capsys.readouterr().err
