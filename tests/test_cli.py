import re

import numpy as np
import pytest
from anndata import read_h5ad
from conftest import make_counts

import scdeconv as sd
from scdeconv.cli import main

EXPECTED = {
    "panel_a_input_umap.png",
    "panel_c_representation_umap.png",
    "panel_d_impact_heatmap.png",
    "panel_e_group_diff.png",
    "panel_d_impact_heatmap_paper.png",
    "panel_e_group_diff_paper.png",
    "impact_dotplot.png",
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


@pytest.mark.slow
def test_run_writes_figures_report_and_h5ad(small_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the user's")  # an existing folder: other files are left alone
    code = main(["run", str(small_file), "--groupby", "group", "--compare", "Ery", "GMP,Mk", "--out", str(out),
                 "--max-epochs", "3", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == EXPECTED | {"keep.txt"}
    assert (out / "keep.txt").read_text() == "the user's"
    report = (out / "report.md").read_text()
    assert "## Ery vs GMP+Mk (panel e)" in report and "| node_" in report
    result = read_h5ad(out / "scdeconv_result.h5ad")
    assert result.uns["scdeconv_group_diff"]["params"]["group2"] == "GMP+Mk"
    assert "the node's top genes |" in report  # encoded sets list their best node's marker genes
    assert "(Stouffer z) on the expression shift of the node's active cells" in report  # the profile scored
    assert list(result.uns["scdeconv_node_genes"]["names"].columns[:2]) == ["node_0", "node_1"]
    # No dead or rare node is named anywhere in the report's tables.
    stats = result.uns["scdeconv_impact"]["node_stats"]
    named = set(re.findall(r"\| (node_\d+) \|", report))
    assert named and not named & set(stats.index[stats["dead"].to_numpy()])


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
    import logging

    assert main(["run", str(tmp_path / "none.h5ad"), "--groupby", "g", "--compare", "a", "b"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert logging.getLogger("scdeconv").level == logging.NOTSET  # main() leaves the logger as it found it


def _fails_cleanly(argv, out, capsys, *messages):
    """Exit 1, one line on stderr naming each of ``messages``, and ``out`` as it was before."""
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    assert main([*argv, "--out", str(out), "--max-epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("scdeconv run: error: ")
    for message in messages:
        assert message in err, err
    after = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    assert after == before or (before is None and after == {})  # nothing partial, nothing clobbered


@pytest.mark.parametrize(
    "content",
    [pytest.param(b"not an hdf5 file" * 64, id="garbage"), pytest.param(b"", id="empty"), "truncated"],
)
def test_run_on_a_corrupt_file(small_file, tmp_path, capsys, content):
    bad = tmp_path / "bad.h5ad"
    bad.write_bytes(small_file.read_bytes()[:4000] if content == "truncated" else content)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    _fails_cleanly(["run", str(bad), "--groupby", "group", "--compare", "Ery", "rest"], out, capsys,
                   "is not a readable .h5ad file", "Check that it is complete")  # fmt: skip


def test_run_on_non_count_data(tmp_path, capsys):
    adata = make_counts(n_cells=60)
    adata.layers["counts"] = adata.X.copy()
    adata.X = adata.X.log1p()
    path = tmp_path / "lognorm.h5ad"
    adata.write_h5ad(path)
    argv = ["run", str(path), "--groupby", "group", "--compare", "ery", "mono"]
    # The library's advice as it wrote it, then the CLI's own word for the parameter it names.
    _fails_cleanly(argv, tmp_path / "out", capsys, "adata.X contains non-integer values", "`layer=`",
                   "On the command line: layer= is --layer.")  # fmt: skip
    _fails_cleanly([*argv, "--layer", "raw"], tmp_path / "out", capsys, "Layer 'raw' not found", "['counts']")


@pytest.mark.slow
def test_failure_while_writing_leaves_no_partial_output(small_file, tmp_path, capsys, monkeypatch):
    """A failure after the computation, while figures are written, leaves --out as it was."""
    import scdeconv._pipeline as pipeline

    def broken(adata, folder, color):
        (folder / "panel_a_input_umap.png").write_bytes(b"half a figure")
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "_figures", broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    _fails_cleanly(["run", str(small_file), "--groupby", "group", "--compare", "Ery", "rest"], out, capsys,
                   "disk full")  # fmt: skip
    assert not list(out.glob(".partial-*")) and np.array_equal(sorted(p.name for p in out.iterdir()), ["report.md"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"scdeconv {sd.__version__}"


def _parsers():
    import argparse

    from scdeconv.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"scdeconv": parser, **{f"scdeconv {name}": sub for name, sub in commands.choices.items()}}


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["run", "--help"]], ids=" ".join)
def test_help_is_plain_text(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and "usage: scdeconv" in text
    if argv == ["--help"]:
        assert "--version" in text and "examples:" in text
        assert "  scdeconv run data.h5ad --groupby leiden --compare 3 rest --layer counts --out my_report" in text


def test_every_option_has_help():
    for prog, parser in _parsers().items():
        for action in parser._actions:
            assert action.help, f"{prog} {action.option_strings or action.dest} has no help"


def test_option_hints_come_from_the_cli_table():
    import argparse

    from scdeconv.cli import LIBRARY_OPTIONS, _option_hints

    run = argparse.Namespace(layer=None, gene_sets="hallmark", species=None, genes="geneset", max_epochs=2, seed=0)
    demo = argparse.Namespace(max_epochs=2, seed=0, out="demo_out")
    message = "Not counts. Pass `layer=` naming the layer, or species='mouse'; adata.layers['counts'] = ..."
    assert _option_hints(message, run) == " On the command line: layer= is --layer, species= is --species."
    assert _option_hints(message, demo) == ""  # demo has neither option: nothing to map
    assert _option_hints("min_size=3 is too large; sublayer= and adata.layer= are not parameters", run) == ""
    run_options = {o for a in _parsers()["scdeconv run"]._actions for o in a.option_strings}
    assert set(LIBRARY_OPTIONS.values()) <= run_options  # the table names only options that exist
