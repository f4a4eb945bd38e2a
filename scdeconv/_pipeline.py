"""The whole pipeline on one AnnData, as `scdeconv demo` and `scdeconv run` use it."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anndata import AnnData

from . import pl, pp, tl
from ._defaults import FDR
from ._report import write_report
from .tl._groups import sample_labels, two_group_labels

FIGURES = {
    "panel a: UMAP of the input": "panel_a_input_umap.png",
    "panel c: UMAP of the representation": "panel_c_representation_umap.png",
    "panel d: gene sets called per node (FDR stars; m: in the node's module)": "panel_d_impact_heatmap.png",
    "panel e: differences called between the groups (FDR stars)": "panel_e_group_diff.png",
    "panel d as in the paper (min-max scaled, untested)": "panel_d_impact_heatmap_paper.png",
    "panel e as in the paper (scaled difference over the scaled impact)": "panel_e_group_diff_paper.png",
    "dot plot of the calls (size: FDR, colour: null z)": "impact_dotplot.png",
    "training history": "training_history.png",
    "reconstruction of held-out cells": "reconstruction.png",
}


# Cheaper UMAPs for the pipeline's panels a and c, the largest cost of its figures: an exact kNN
# graph (no nearest-neighbour descent to compile) and 200 layout epochs instead of 500; on Paul15
# the layouts look the same, and the two UMAPs take about half as long.
UMAP_SETTINGS = dict(neighbors_kwargs={"transformer": "sklearn"}, umap_kwargs={"maxiter": 200})


def draw_figures(adata: AnnData, color: str | None) -> dict[str, object]:
    """The pipeline's figures, by file name (those of :data:`FIGURES`): one home for the demo and the docs."""
    import matplotlib.pyplot as plt

    fig_a, ax_a = plt.subplots(figsize=(5.5, 5))
    fig_c, ax_c = plt.subplots(figsize=(5.5, 5))
    pl.embedding_comparison(adata, color=color, ax=[ax_a, ax_c], show=False, **UMAP_SETTINGS)
    return {
        "panel_a_input_umap.png": fig_a,
        "panel_c_representation_umap.png": fig_c,
        "panel_d_impact_heatmap.png": pl.impact_heatmap(adata, show=False).figure,
        "panel_e_group_diff.png": pl.group_diff(adata, show=False).figure,
        "panel_d_impact_heatmap_paper.png": pl.impact_heatmap(adata, view="paper", fdr=FDR, show=False).figure,
        "panel_e_group_diff_paper.png": pl.group_diff(adata, view="paper", show=False).figure,
        "impact_dotplot.png": pl.impact_dotplot(adata, show=False).figure,
        "training_history.png": pl.training_history(adata, show=False).figure,
        "reconstruction.png": pl.reconstruction(adata, show=False).figure,
    }


def _figures(adata: AnnData, folder: Path, color: str | None) -> None:
    import matplotlib.pyplot as plt

    for name, figure in draw_figures(adata, color).items():
        figure.savefig(folder / name, dpi=120, bbox_inches="tight")
        plt.close(figure)


@dataclass(frozen=True)
class PipelineSpec:
    """What one pipeline run does: the comparison, the data's layer and gene sets, and training."""

    groupby: str
    group1: str | Sequence[str]
    group2: str | Sequence[str] = "rest"
    sample_key: str | None = None  # obs column of samples (donors): group tests across samples
    dataset: str = ""  # how the report names the data
    comparison_note: str = ""  # why these groups (the demo's stand-ins for the paper's sorted populations)
    layer: str | None = None
    gene_sets: object = "hallmark"
    species: str | None = None
    gene_mode: str = "geneset"
    max_epochs: int = 200
    seed: int = 0
    progress: bool = True
    checkpoint: str | None = None  # training checkpoint: resumed when it holds this run
    # (gene set, the paper's reading, marker genes): the report says which of these the run reproduces
    expectations: tuple = ()
    expectations_note: str = ""


def run_pipeline(adata: AnnData, out: str | Path, spec: PipelineSpec) -> tuple[AnnData, dict[str, float]]:
    """Select genes, train, score impact, compare groups, then write figures, report and h5ad to ``out``.

    Everything is computed before anything is written, and files are written into a temporary
    folder moved into place at the end, so a failure leaves ``out`` without partial results.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal start
        now = time.perf_counter()
        timings[step] = now - start
        start = now

    progress = spec.progress
    two_group_labels(adata, spec.groupby, spec.group1, spec.group2)  # fail on bad groups before training
    if spec.sample_key is not None:
        sample_labels(adata, spec.sample_key)
    pp.select_genes(adata, gene_sets=spec.gene_sets, mode=spec.gene_mode, layer=spec.layer, species=spec.species)
    lap("select genes")
    tl.train_autoencoder(
        adata,
        layer=spec.layer,
        max_epochs=spec.max_epochs,
        seed=spec.seed,
        checkpoint=spec.checkpoint,
        progress=progress,
    )
    lap("train")
    tl.module_impact(adata, gene_sets=spec.gene_sets, species=spec.species, progress=progress)
    tl.node_genes(adata, n_top=10, progress=progress)
    tl.annotate_nodes(adata, groupby=spec.groupby)
    lap("impact")
    tl.group_diff(adata, spec.groupby, spec.group1, spec.group2, sample_key=spec.sample_key, progress=progress)
    lap("group comparison")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    with tempfile.TemporaryDirectory(dir=out, prefix=f"{_STAGING}{os.getpid()}-") as staging:
        staging = Path(staging)
        _figures(adata, staging, color=spec.groupby)
        lap("figures")
        adata.write_h5ad(staging / "scdeconv_result.h5ad")
        lap("write h5ad")
        write_report(
            adata,
            staging / "report.md",
            title="scdeconv report",
            dataset=spec.dataset,
            comparison_note=spec.comparison_note,
            figures={**FIGURES, "AnnData with all results": "scdeconv_result.h5ad"},
            timings=timings,
            expectations=spec.expectations,
            expectations_note=spec.expectations_note,
        )
        for item in staging.iterdir():  # each output appears under its name whole (a rename), or not at all
            os.replace(item, out / item.name)
    return adata, timings


_STAGING = ".partial-"  # outputs are written into out/.partial-<pid>-*/ and renamed into out/ at the end


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders that runs killed while writing left behind (their process is gone)."""
    for folder in out.glob(f"{_STAGING}*"):
        pid = folder.name.removeprefix(_STAGING).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
