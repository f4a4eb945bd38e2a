"""scdeconv and its peers (plain AE, PCA, NMF, LinearSCVI, decoupler), each as an Output."""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings

import numpy as np
import pandas as pd
from anndata import AnnData

import scdeconv as sd

from .config import N_COMPONENTS, Config
from .measure import PeakRSS
from .outputs import Output, from_loadings, node_gene_matrix, top_genes


def run_ours(
    adata: AnnData,
    ctx: dict,
    cfg: Config,
    *,
    name="scdeconv",
    train=None,
    method="grad_x_input",
    score="enrichment",
    model=None,
    impact=None,
    rank_by="expression",
) -> Output:
    """scdeconv: train (unless ``model`` names one already trained), impact, node genes, activity."""
    key = model or name.replace(" ", "_")
    with PeakRSS() as meter:
        train_seconds = np.nan
        if model is None:
            kwargs = {"max_epochs": cfg.max_epochs, "seed": ctx["seed"], "progress": False, **(train or {})}
            start = time.perf_counter()
            sd.tl.train_autoencoder(adata, mask_var=None, key_added=f"X_{key}", **kwargs)
            train_seconds = time.perf_counter() - start
        sd.tl.module_impact(
            adata,
            gene_sets=ctx.get("gene_sets", "hallmark"),
            method=method,
            score=score,
            model_key=key,
            key_added=f"{name}_impact",
            n_null=cfg.n_null,
            activity_key=f"{name}_activity",
            progress=False,
            seed=ctx["seed"],
            **(impact or {}),
        )
        result = adata.uns[f"{name}_impact"]
        dead = result["node_stats"]["dead"].to_numpy()
        if score == "enrichment":  # the ranking of sd.tl.node_genes
            importance = node_gene_matrix(adata, model_key=key, rank_by=rank_by, method=method)
        else:  # the plain ranking: mean |attribution| over cells, from the package's own saliency pass
            from scdeconv._module.config import StreamOptions
            from scdeconv._module.reducers import AttributionProfile
            from scdeconv.tl._saliency_pass import saliency_pass

            n_nodes = int(adata.uns[key]["params"]["n_latent"])
            profile = AttributionProfile(1, n_nodes, len(adata.uns[key]["var_names"]))
            labels = np.zeros(adata.n_obs, dtype=np.int64)
            saliency_pass(adata, [profile], model_key=key, labels=labels, n_groups=1, method=method,
                          options=StreamOptions(progress=False))  # fmt: skip
            importance = profile.pooled()
    live = importance[~dead]
    history = adata.uns[key]["history"]
    return Output(
        name,
        embedding=np.asarray(adata.obsm[f"X_{key}"]),
        importance=live,
        set_scores=result["impact"].loc[~dead].max(axis=0),
        activity=adata.obsm[f"{name}_activity"].copy(),
        top_genes=top_genes(live, ctx["genes"]),
        seconds=meter.seconds,
        peak_mb=meter.peak_mb,
        extra={
            "train_seconds": train_seconds,
            "val_loss": float(np.nanmin(history["val_loss"])),
            "epochs": len(history),
            "dead": int(dead.sum()),
            "set_fdr": result["set_stats"]["fdr"] if "set_stats" in result else None,
        },
    )


def run_plain_ae(adata: AnnData, ctx: dict, cfg: Config) -> Output:
    """A plain autoencoder: no orthogonality penalty, plain gradients, the paper's median score."""
    out = run_ours(adata, ctx, cfg, name="plain AE", train={"ortho_penalty": 0.0}, method="gradient", score="median")
    return out


def run_pca(adata: AnnData, ctx: dict, cfg: Config) -> Output:
    from sklearn.decomposition import PCA

    with PeakRSS() as meter:
        x = ctx["lognorm"]
        pca = PCA(n_components=min(N_COMPONENTS, min(x.shape) - 1), random_state=ctx["seed"])
        scores = pca.fit_transform(x)
        out = from_loadings("PCA", scores, pca.components_, ctx, scores @ pca.components_)
    out.seconds, out.peak_mb = meter.seconds, meter.peak_mb
    return out


def run_nmf(adata: AnnData, ctx: dict, cfg: Config) -> Output:
    from sklearn.decomposition import NMF

    with PeakRSS() as meter, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at the capped iterations
        x = ctx["lognorm"]
        nmf = NMF(
            n_components=min(N_COMPONENTS, min(x.shape) - 1),
            init="nndsvda",
            max_iter=cfg.nmf_iter,
            random_state=ctx["seed"],
        )
        w = nmf.fit_transform(x)
        out = from_loadings("NMF", w, nmf.components_, ctx, w @ nmf.components_)
    out.seconds, out.peak_mb = meter.seconds, meter.peak_mb
    return out


def run_linear_scvi(adata: AnnData, ctx: dict, cfg: Config) -> Output:
    import scvi

    for name in ("scvi", "lightning", "lightning.pytorch", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with PeakRSS() as meter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scvi.settings.seed = ctx["seed"]
        data = AnnData(adata.X.astype(np.float32), obs=pd.DataFrame(index=adata.obs_names))
        data.var_names = adata.var_names
        scvi.model.LinearSCVI.setup_anndata(data)
        model = scvi.model.LinearSCVI(data, n_latent=N_COMPONENTS)
        model.train(
            max_epochs=cfg.scvi_epochs,
            accelerator="cpu",
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            enable_checkpointing=False,
        )
        loadings = model.get_loadings().to_numpy().T  # k x genes
        latent = model.get_latent_representation()
        out = from_loadings("LinearSCVI", latent, loadings, ctx, latent @ loadings)
    out.seconds, out.peak_mb = meter.seconds, meter.peak_mb
    return out


def run_decoupler(adata: AnnData, ctx: dict, cfg: Config, which: str) -> Output:
    import decoupler as dc

    with PeakRSS() as meter:
        data = AnnData(ctx["lognorm"], obs=pd.DataFrame(index=adata.obs_names))
        data.var_names = adata.var_names
        net = pd.DataFrame(
            [(s, g) for s, cols in ctx["sets"].items() for g in ctx["genes"][cols]], columns=["source", "target"]
        )
        getattr(dc.mt, which)(data, net, tmin=3, verbose=False)
        activity = data.obsm[f"score_{which}"][list(ctx["sets"])]
    out = Output(
        f"decoupler {which.upper() if which == 'ulm' else 'AUCell'}",
        embedding=activity.to_numpy(),
        activity=activity.reset_index(drop=True),
        seconds=meter.seconds,
        peak_mb=meter.peak_mb,
    )
    labels = ctx.get("labels")
    if labels is not None:  # label-informed set score: largest group-vs-rest difference of mean activity
        act = activity.to_numpy()
        diffs = np.stack([act[labels == g].mean(0) - act[labels != g].mean(0) for g in np.unique(labels)])
        out.set_scores = pd.Series(diffs.max(axis=0), index=activity.columns)
    return out


def peers(cfg: Config) -> dict:
    """Peer name -> runner; optional ones only when installed."""
    runners = {"plain AE": run_plain_ae, "PCA": run_pca, "NMF": run_nmf}
    if cfg.use_decoupler and importlib.util.find_spec("decoupler") is not None:
        runners["decoupler ULM"] = lambda a, c, f: run_decoupler(a, c, f, "ulm")
        runners["decoupler AUCell"] = lambda a, c, f: run_decoupler(a, c, f, "aucell")
    if cfg.use_scvi and importlib.util.find_spec("scvi") is not None:
        runners["LinearSCVI"] = run_linear_scvi
    return runners
