"""The simulated haematopoiesis at each difficulty level, and the ablations of scdeconv."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
from anndata import AnnData

import scdeconv as sd
from scdeconv.scoring import expression_bins

from .config import LEVELS, Config
from .measure import log
from .methods import run_ours
from .metrics import (
    GROUP_DIFF_ROW,
    best_precision,
    embedding_metrics,
    group_diff_metrics,
    group_metrics,
    recovery_metrics,
)
from .outputs import Output, lognorm, set_columns


def simulator_truth(adata: AnnData) -> dict:
    sim = adata.uns["simulation"]
    groups = {g: list(s) for g, s in sim["planted_sets"].items()}
    return {
        "groups": groups,
        "planted": {s for sets in groups.values() for s in sets},
        "negative": set(sim["negative_sets"]),
        "novel": {p: set(g) for p, g in sim["novel_programs"].items()},
        "xor": {"XOR": set(sim["xor_genes"])},
    }


def prepare(adata: AnnData, *, mode: str, seed: int, labels_col: str | None, species=None) -> tuple[AnnData, dict]:
    """Select genes (``mode``), subset to them, and the shared context every method gets."""
    sd.pp.select_genes(adata, mode=mode, **({"species": species} if species else {}))
    adata = adata[:, adata.var["scdeconv_selected"].to_numpy()].copy()
    genes = adata.var_names.to_numpy().astype(str)
    x = lognorm(adata)
    sets = set_columns(genes, species) if mode != "all" else {}
    ctx = {"seed": seed, "genes": genes, "lognorm": x, "sets": sets, "bins": expression_bins(x.mean(axis=0), 10)}
    if labels_col is not None:
        ctx["labels"] = adata.obs[labels_col].astype(str).to_numpy()
    return adata, ctx


def run_simulation(level: str, seed: int, cfg: Config, runners: dict, keep: dict) -> list[dict]:
    adata = sd.datasets.simulate_hematopoiesis(cfg.n_cells, n_genes=cfg.n_genes, seed=seed, **LEVELS[level])
    truth = simulator_truth(adata)
    adata, ctx = prepare(adata, mode="hvg", seed=seed, labels_col="group")
    outputs = [run_ours(adata, ctx, cfg)]
    for name, profile in cfg.profile_rows.items():  # the same model, its sets scored on another profile
        outputs.append(run_ours(adata, ctx, cfg, name=name, model="scdeconv", impact={"profile": profile}))
    for name, runner in runners.items():
        try:
            outputs.append(runner(adata, ctx, cfg))
        except Exception as error:  # one peer failing on one dataset is reported, not fatal
            log(f"{name} FAILED on {level}, seed {seed}: {error!r}")
    if level == cfg.ablation_level and seed in cfg.ablation_seeds:
        keep[seed] = (adata, ctx, truth, {o.name: o for o in outputs})
    log(f"simulation {level}, seed {seed}: " + ", ".join(f"{o.name} {o.seconds:.0f} s" for o in outputs))
    package = group_diff_metrics(adata, impact_key="scdeconv_impact", groupby="group", truth=truth)
    rows = [simulation_row(out, ctx, truth, level, seed) for out in outputs]
    return [*rows, {"level": level, "seed": seed, "method": GROUP_DIFF_ROW, **package}]


def simulation_row(out: Output, ctx: dict, truth: dict, level: str, seed: int) -> dict:
    row = {"level": level, "seed": seed, "method": out.name}
    row.update(recovery_metrics(out, truth))
    row.update(group_metrics(out, ctx["labels"], truth))
    row.update(embedding_metrics(out, ctx["lognorm"], ctx["labels"], seed))
    if out.top_genes:
        row["discovery"] = np.mean(list(best_precision(out.top_genes, truth["novel"]).values()))
        row["disc. XOR block"] = best_precision(out.top_genes, truth["xor"])["XOR"]
    row.update({"seconds": out.seconds, "peak MB": out.peak_mb})
    return row


def run_ablations(cfg: Config, keep: dict, main_rows: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for seed, (adata, ctx, truth, trained) in keep.items():
        default = trained["scdeconv"]
        base = {"level": cfg.ablation_level, "seed": seed, "method": "scdeconv"}
        ref = main_rows[(main_rows["level"] == cfg.ablation_level) & (main_rows["seed"] == seed)]
        ref = ref[ref["method"] == "scdeconv"].iloc[0].to_dict()
        rows.append({**ref, "variant": "default", **training_columns(default)})
        for variant in cfg.ablations:
            out = ablation(variant, adata, ctx, cfg, seed, trained)
            row = simulation_row(out, out.extra.get("ctx", ctx), truth, cfg.ablation_level, seed)
            rows.append({**base, **row, "variant": variant, **training_columns(out)})
    table = pd.DataFrame(rows)
    return table.drop(columns=["level", "method"])


def training_columns(out: Output) -> dict:
    return {
        "val loss": out.extra.get("val_loss"),
        "epochs": out.extra.get("epochs"),
        "train s": out.extra.get("train_seconds"),
        "dead nodes": out.extra.get("dead"),
    }


def ablation(variant: str, adata: AnnData, ctx: dict, cfg: Config, seed: int, models: dict) -> Output:
    default = models["scdeconv"]
    trained = {"model": "scdeconv"}
    specs = {
        "ortho 0": {"model": "plain_AE"},  # the plain AE's model: ortho 0, otherwise our defaults
        "ortho 1": {"train": {"ortho_penalty": 1.0}},
        "NB": {"train": {"likelihood": "nb"}},
        "MSE": {"train": {"likelihood": "mse"}},
        "guided": {"method": "guided", **trained},
        "gradient": {"method": "gradient", **trained},
        "integrated gradients": {"method": "integrated_gradients", **trained},
        "paper score": {"method": "guided", "score": "median", **trained},
        # Attribution profiles over all cells (node_cells="all", node_genes rank_by="mean"): 0.1's defaults.
        "all-cell profiles": {"impact": {"node_cells": "all", "profile": "attribution"}, "rank_by": "mean", **trained},
        # node_genes ranked by attribution contrast (0.2's default) instead of expression shift.
        "attribution genes": {"rank_by": "contrast", **trained},
    }
    name = "abl_" + variant.replace(" ", "_")
    if variant in specs:
        out = run_ours(adata, ctx, cfg, name=name, **specs[variant])
        if "model" in specs[variant]:  # a model trained before: report its training
            source = models["plain AE"] if variant == "ortho 0" else default
            out.extra.update({k: source.extra[k] for k in ("val_loss", "epochs", "dead", "train_seconds")})
        return out
    if variant == "original recipe":
        # SGD with Nesterov momentum, batch size 1, lr 1e-3 (the original code), for as many epochs
        # as fit in the wall time our default took to train.
        sgd = {"optimizer": "sgd", "batch_size": 1, "lr": 1e-3, "patience": 10**6}
        start = time.perf_counter()
        sd.tl.train_autoencoder(
            adata, mask_var=None, key_added="X_probe", max_epochs=1, seed=seed, progress=False, **sgd
        )
        per_epoch = time.perf_counter() - start
        budget = default.extra["train_seconds"]
        epochs = max(1, int(budget // per_epoch))
        out = run_ours(adata, ctx, cfg, name=name, train={**sgd, "max_epochs": epochs})
        return out
    if variant == "standardised nodes":
        # The default model; its live nodes standardised (mean 0, SD 1) before neighbours are taken.
        latent = np.asarray(default.embedding, dtype=np.float64)
        spread = latent.std(axis=0)
        keep = spread > 1e-3 * spread.max()
        z = (latent[:, keep] - latent[:, keep].mean(axis=0)) / spread[keep]
        return replace(default, name=name, embedding=z)
    if variant == "geneset panel":
        full = sd.datasets.simulate_hematopoiesis(
            cfg.n_cells, n_genes=cfg.n_genes, seed=seed, **LEVELS[cfg.ablation_level]
        )
        sub, sub_ctx = prepare(full, mode="geneset", seed=seed, labels_col="group")
        out = run_ours(sub, sub_ctx, cfg, name=name)
        out.extra["ctx"] = sub_ctx
        return out
    raise ValueError(f"Unknown ablation {variant!r}.")
