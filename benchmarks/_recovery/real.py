"""Real data (Wu 2020 T cells, Paul15), with the expectations stated before measuring."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

import scdeconv as sd
from scdeconv.scoring import activity_tests

from .config import FDR, Config
from .methods import run_ours, toy_runners
from .metrics import embedding_metrics
from .simulation import prepare

# (data, contrast, set, expected sign of group1 - group2, why)
EXPECTATIONS = {
    "T cells (Wu 2020): CD8 vs CD4": [
        ("HALLMARK_ALLOGRAFT_REJECTION", +1, "cytotoxic genes GZMB, PRF1, IFNG, GZMA"),
        ("HALLMARK_INTERFERON_GAMMA_RESPONSE", +1, "IFN-gamma-induced genes in effector CD8 cells"),
        ("HALLMARK_IL2_STAT5_SIGNALING", -1, "IL2RA, CTLA4 in CD4 regulatory T cells"),
    ],
    "Paul15: 7MEP+8Mk vs 9-10GMP+16-17Neu": [
        ("HALLMARK_HEME_METABOLISM", +1, "erythroid/megakaryocyte heme programme (the paper's erythroid module)"),
        ("HALLMARK_INFLAMMATORY_RESPONSE", -1, "myeloid/inflammatory module of granulocyte progenitors"),
        ("HALLMARK_REACTIVE_OXYGEN_SPECIES_PATHWAY", -1, "Mpo and oxidative burst genes of neutrophil precursors"),
    ],
}


PAUL15_GROUPS = (["7MEP", "8Mk"], ["9GMP", "10GMP", "16Neu", "17Neu"])


def load_real(which: str) -> tuple[AnnData, np.ndarray, str | None]:
    """The data, a two-group label (1, 2, or 0 for cells in neither group) and the species."""
    if which.startswith("T cells"):
        adata = sd.datasets.wu2020_tcells()  # bundled with the package
        cluster = adata.obs["cluster_orig"].astype(str)
        adata.obs["label"] = cluster
        group = np.where(cluster.str.startswith("8."), 1, np.where(cluster.str.startswith("4."), 2, 0))
        return adata, group, "human"
    adata = sd.datasets.paul15()
    # Only the clusters of the stand-in comparison (637 of 2,730 cells), to fit the time budget.
    adata = adata[adata.obs["paul15_clusters"].isin(PAUL15_GROUPS[0] + PAUL15_GROUPS[1])].copy()
    cluster = adata.obs["paul15_clusters"].astype(str)
    adata.obs["label"] = cluster
    group = np.where(cluster.isin(PAUL15_GROUPS[0]), 1, np.where(cluster.isin(PAUL15_GROUPS[1]), 2, 0))
    return adata, group, "mouse"


def run_real(which: str, cfg: Config, runners: dict) -> list[dict]:
    adata, group, species = load_real(which)
    adata, ctx = prepare(adata, mode="geneset", seed=0, labels_col="label", species=species)
    outputs = [run_ours(adata, ctx, cfg)] + [r(adata, ctx, cfg) for r in toy_runners(runners, decoupler=True).values()]
    rows = []
    for out in outputs:
        tests = activity_tests(
            out.activity.to_numpy()[group == 1], out.activity.to_numpy()[group == 2], list(out.activity.columns)
        )
        tests["rank"] = tests["effect"].rank(ascending=False)
        row = {"data": which, "method": out.name}
        met = 0
        for name, sign, _ in EXPECTATIONS[which]:
            effect, fdr = tests.loc[name, ["effect", "fdr"]]
            row[name.removeprefix("HALLMARK_")] = f"{effect:+.2f}{'*' if fdr < FDR else ''}"
            met += int(np.sign(effect) == sign and fdr < FDR)
        row["expectations met"] = f"{met}/{len(EXPECTATIONS[which])}"
        row.update(embedding_metrics(out, ctx["lognorm"], ctx["labels"], 0))
        row["seconds"] = out.seconds
        rows.append(row)
    return rows
