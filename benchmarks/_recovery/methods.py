"""scdeconv and its peers (plain AE, PCA, NMF, LinearSCVI, DRVI, cNMF, decoupler), each as an Output."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

import scdeconv as sd

from .config import N_COMPONENTS, Config
from .measure import PeakRSS
from .outputs import Output, from_components, from_loadings, node_gene_matrix, top_genes


def peer_threads():
    """The thread policy scdeconv computes under (the CPUs free when a run starts), for the torch peers too.

    torch's default uses every core, and on a shared machine its threads wait for each other: a
    LinearSCVI fit took 300 s instead of 20 s under load. Fair timings give the peers the same policy.
    """
    from scdeconv._module.compute import cpu_compute

    return cpu_compute("cpu", None)


QUIET_LOGGERS = ("scvi", "lightning", "lightning.pytorch", "pytorch_lightning", "drvi")
TRAINER_QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False,
                 "enable_checkpointing": False}  # fmt: skip


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

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with PeakRSS() as meter, warnings.catch_warnings(), peer_threads():
        warnings.simplefilter("ignore")
        scvi.settings.seed = ctx["seed"]
        data = AnnData(adata.X.astype(np.float32), obs=pd.DataFrame(index=adata.obs_names))
        data.var_names = adata.var_names
        scvi.model.LinearSCVI.setup_anndata(data)
        model = scvi.model.LinearSCVI(data, n_latent=N_COMPONENTS)
        model.train(max_epochs=cfg.scvi_epochs, accelerator="cpu", **TRAINER_QUIET)
        loadings = model.get_loadings().to_numpy().T  # k x genes
        latent = model.get_latent_representation()
        out = from_loadings("LinearSCVI", latent, loadings, ctx, latent @ loadings)
    out.seconds, out.peak_mb = meter.seconds, meter.peak_mb
    return out


def run_drvi(adata: AnnData, ctx: dict, cfg: Config) -> Output:
    """DRVI (Moinfar & Theis): disentangled latent dimensions, each read out per direction.

    Its own defaults (split decoders pooled by logsumexp, 128-128 layers, NB-type likelihood) with
    ``cfg.drvi_latent`` dimensions, trained ``cfg.drvi_epochs`` epochs on the raw counts. A
    component is one (dimension, direction) that has not vanished, its gene importance DRVI's
    out-of-distribution interpretability score (``calculate_interpretability_scores``: the
    decoded effect of traversing the dimension that way); the per-cell activity comes from DRVI's
    library-normalised expression (log1p), as the linear peers' from their reconstruction.
    """
    import scvi
    from drvi.model import DRVI

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with PeakRSS() as meter, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), peer_threads():
        warnings.simplefilter("ignore")
        scvi.settings.seed = ctx["seed"]  # also seeds numpy's global RNG, which DRVI's traversal draws from
        data = AnnData(adata.X.astype(np.float32), obs=pd.DataFrame(index=adata.obs_names))
        data.var_names = adata.var_names
        DRVI.setup_anndata(data, is_count_data=True)
        model = DRVI(data, n_latent=cfg.drvi_latent)
        model.train(max_epochs=cfg.drvi_epochs, accelerator="cpu", **TRAINER_QUIET)
        latent = model.get_latent_representation()
        embed = AnnData(latent)
        model.set_latent_dimension_stats(embed)
        scores = model.calculate_interpretability_scores(embed, methods="OOD", inplace=False)
        keep_pos = ~embed.var["vanished_positive_direction"].to_numpy()
        keep_neg = ~embed.var["vanished_negative_direction"].to_numpy()
        importance = np.concatenate(
            [scores["OOD_combined_positive"][keep_pos], scores["OOD_combined_negative"][keep_neg]]
        )
        expression = model.get_normalized_expression(data, library_size=1e4, return_numpy=True)
        out = from_components("DRVI", latent, np.asarray(importance), ctx, np.log1p(np.asarray(expression)))
    out.seconds, out.peak_mb = meter.seconds, meter.peak_mb
    out.extra["components"] = len(importance)
    return out


def run_cnmf(adata: AnnData, ctx: dict, cfg: Config) -> Output:
    """cNMF (Kotliar et al. 2019): consensus of ``cfg.cnmf_iter`` NMF replicates, k = N_COMPONENTS.

    cNMF's own pipeline on the raw counts of every panel gene (no further gene selection):
    ``prepare`` (genes scaled to unit variance), ``factorize``, ``combine``, ``consensus`` with its
    default outlier filter (``cfg.cnmf_density``). A component's gene importance is cNMF's
    ``spectra_scores`` (z-score regression coefficients, its marker ranking); embedding and
    activity from the consensus usages and TPM spectra.
    """
    from cnmf import cNMF

    k = N_COMPONENTS
    with (
        PeakRSS() as meter,
        warnings.catch_warnings(),
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        counts = AnnData(adata.X.astype(np.float64), obs=pd.DataFrame(index=adata.obs_names))
        counts.var_names = adata.var_names
        counts.write_h5ad(Path(tmp) / "counts.h5ad")
        (Path(tmp) / "genes.txt").write_text("\n".join(adata.var_names))
        run = cNMF(output_dir=tmp, name="bench")
        run.prepare(
            counts_fn=str(Path(tmp) / "counts.h5ad"),
            components=[k],
            n_iter=cfg.cnmf_iter,
            seed=ctx["seed"],
            genes_file=str(Path(tmp) / "genes.txt"),
        )
        run.factorize(worker_i=0, total_workers=1)
        run.combine()
        run.consensus(k=k, density_threshold=cfg.cnmf_density, show_clustering=False, build_ref=False)
        usage, spectra_scores, spectra_tpm, _ = run.load_results(K=k, density_threshold=cfg.cnmf_density)
        genes = pd.Index(ctx["genes"])
        importance = spectra_scores.T.reindex(columns=genes).fillna(0.0).to_numpy()  # k x genes
        tpm = spectra_tpm.T.reindex(columns=genes).fillna(0.0).to_numpy()
        recon = np.log1p(usage.to_numpy() @ tpm / 100)  # usages sum to 1: TPM / 100 = per 10^4
        out = from_components("cNMF", usage.to_numpy(), importance, ctx, recon)
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
    if cfg.use_drvi and importlib.util.find_spec("drvi") is not None:
        runners["DRVI"] = run_drvi
    if cfg.use_cnmf and importlib.util.find_spec("cnmf") is not None:
        runners["cNMF"] = run_cnmf
    return runners


OPTIONAL_PEERS = ("decoupler ULM", "decoupler AUCell", "LinearSCVI", "DRVI", "cNMF")
SIMULATION_ONLY = ("DRVI", "cNMF")  # the slowest peers: run on the simulated levels only (time budget)


def toy_runners(runners: dict, *, decoupler: bool = False) -> dict:
    """The peers the toys and the real data run: not the simulation-only ones (nor decoupler, unless asked)."""
    return {
        n: r for n, r in runners.items() if n not in SIMULATION_ONLY and (decoupler or not n.startswith("decoupler"))
    }
