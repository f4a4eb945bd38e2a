"""The whole pipeline on one AnnData, as `scdeconv demo` and `scdeconv run` use it."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from anndata import AnnData

from . import pl, pp, tl
from ._report import write_report
from .tl._groups import two_group_labels

FIGURES = {
    "panel a: UMAP of the input": "panel_a_input_umap.png",
    "panel c: UMAP of the representation": "panel_c_representation_umap.png",
    "panel d: impact heatmap": "panel_d_impact_heatmap.png",
    "panel e: group comparison": "panel_e_group_diff.png",
    "training history": "training_history.png",
    "reconstruction of held-out cells": "reconstruction.png",
}


def _figures(adata: AnnData, folder: Path, color: str | None) -> None:
    import matplotlib.pyplot as plt

    fig_a, ax_a = plt.subplots(figsize=(5.5, 5))
    fig_c, ax_c = plt.subplots(figsize=(5.5, 5))
    pl.embedding_comparison(adata, color=color, ax=[ax_a, ax_c], show=False)
    drawn = {
        "panel_a_input_umap.png": fig_a,
        "panel_c_representation_umap.png": fig_c,
        "panel_d_impact_heatmap.png": pl.impact_heatmap(adata, show=False).figure,
        "panel_e_group_diff.png": pl.group_diff(adata, show=False).figure,
        "training_history.png": pl.training_history(adata, show=False).figure,
        "reconstruction.png": pl.reconstruction(adata, show=False).figure,
    }
    for name, figure in drawn.items():
        figure.savefig(folder / name, dpi=120, bbox_inches="tight")
        plt.close(figure)


def run_pipeline(
    adata: AnnData,
    out: str | Path,
    *,
    groupby: str,
    group1: str | Sequence[str],
    group2: str | Sequence[str] = "rest",
    dataset: str,
    comparison_note: str = "",
    layer: str | None = None,
    gene_sets="hallmark",
    species: str | None = None,
    gene_mode: str = "geneset",
    max_epochs: int = 200,
    seed: int = 0,
    progress: bool = True,
) -> tuple[AnnData, dict[str, float]]:
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

    two_group_labels(adata, groupby, group1, group2)  # fail on bad groups before minutes of training
    pp.select_genes(adata, gene_sets=gene_sets, mode=gene_mode, layer=layer, species=species)
    lap("select genes")
    tl.train_autoencoder(adata, layer=layer, max_epochs=max_epochs, seed=seed, progress=progress)
    lap("train")
    tl.module_impact(adata, gene_sets=gene_sets, species=species, progress=progress)
    tl.node_genes(adata, n_top=10, progress=progress)
    lap("impact")
    tl.group_diff(adata, groupby, group1, group2, progress=progress)
    lap("group comparison")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".partial-") as staging:
        staging = Path(staging)
        _figures(adata, staging, color=groupby)
        lap("figures")
        adata.write_h5ad(staging / "scdeconv_result.h5ad")
        lap("write h5ad")
        write_report(
            adata,
            staging / "report.md",
            title="scdeconv report",
            dataset=dataset,
            comparison_note=comparison_note,
            figures={**FIGURES, "AnnData with all results": "scdeconv_result.h5ad"},
            timings=timings,
        )
        for item in staging.iterdir():
            shutil.move(str(item), out / item.name)
    return adata, timings
