"""Issue 15's criterion 5: are the planted programmes found again when the model is retrained with other seeds?"""

from __future__ import annotations

import numpy as np
import pandas as pd

import scdeconv as sd

from .config import FDR, LEVELS, Config
from .measure import log
from .simulation import prepare, simulator_truth


def run_stability(level: str, seed: int, cfg: Config) -> list[dict]:
    """One row per gene set: found in every run (``sd.tl.stability``), and its best node's stability.

    The data is fixed (simulator ``seed``); the model is trained with ``cfg.stability_runs`` seeds
    (``seed``, ``seed + 1``, ...), each run's sets called at set-level FDR < ``FDR``, as a user
    running ``sd.tl.stability`` sees them.
    """
    adata = sd.datasets.simulate_hematopoiesis(cfg.n_cells, n_genes=cfg.n_genes, seed=seed, **LEVELS[level])
    truth = simulator_truth(adata)
    adata, _ = prepare(adata, mode="hvg", seed=seed, labels_col="group")
    sd.tl.train_autoencoder(adata, mask_var=None, max_epochs=cfg.max_epochs, seed=seed, progress=False)
    sd.tl.module_impact(adata, n_null=cfg.n_null, activity_key=None, progress=False, seed=seed)
    sd.tl.stability(adata, n_seeds=cfg.stability_runs, fdr=FDR, progress=False)
    result = adata.uns["scdeconv_stability"]
    impact = adata.uns["scdeconv_impact"]
    live = ~impact["node_stats"]["dead"].to_numpy()
    best_node = impact["impact"].loc[live].idxmax(axis=0)  # per set, the reference node carrying it
    node_stability = result["nodes"]["stability"]
    sets = result["gene_sets"]
    log(f"stability {level}, seed {seed}: {cfg.stability_runs} runs")
    return [
        {
            "level": level,
            "seed": seed,
            "set": name,
            "kind": set_kind(name, truth),
            "fraction found": float(sets.loc[name, "fraction_found"]),
            "best node stability": float(node_stability[best_node[name]]),
        }
        for name in sets.index
    ]


def set_kind(name: str, truth: dict) -> str:
    """``"planted"``, ``"never planted"`` (the simulator's clean negatives, genes never perturbed) or ``"other"``."""
    return "planted" if name in truth["planted"] else "never planted" if name in truth["negative"] else "other"


def stability_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per level and kind of set: share found in every run, in some run, and the median best-node stability."""
    if table.empty:
        return table
    kept = table[table["kind"] != "other"].sort_values("kind", key=lambda k: k != "planted", kind="stable")
    grouped = kept.groupby(["level", "kind"], sort=False)
    summary = pd.DataFrame(
        {
            "sets": grouped.size(),
            "found in every run": grouped["fraction found"].apply(lambda f: float(np.mean(f >= 1.0))),
            "found in some run": grouped["fraction found"].apply(lambda f: float(np.mean(f > 0))),
            "median best-node stability": grouped["best node stability"].median(),
        }
    ).reset_index()
    levels = list(dict.fromkeys(table["level"]))
    return summary.sort_values("level", key=lambda lv: lv.map(levels.index), kind="stable").reset_index(drop=True)
