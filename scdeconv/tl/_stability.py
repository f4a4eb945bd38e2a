from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._choices import MatchOn, check_choice
from .._docs import inject_docs
from .._keys import IMPACT_KEY, STABILITY_KEY
from .._logging import logger
from .._module.config import StreamOptions
from .._results import carrying_modules, claim_uns_key, scored_profile, stored_result
from ._module_impact import module_impact
from ._node_genes import impact_zscores
from ._train_autoencoder import TrainingConfig, train_autoencoder


def _impact_arguments(result: dict) -> dict:
    """module_impact arguments that score a retrained model as the reference was scored (its matched sets)."""
    params = result["params"]
    names = ("method", "score", "species", "min_size", "n_bins", "n_null", "node_cells", "seed")
    # Results written before profiles and null models were choices scored attributions, on bins.
    recorded = {"profile": scored_profile(params), "null": params.get("null", "expression")}
    if "n_modules" in params:
        recorded["n_modules"] = int(params["n_modules"])
    return {"gene_sets": dict(result["gene_sets"]), **recorded, **{name: params[name] for name in names}}


def _match_nodes(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of nodes by the correlation of their gene profiles.

    Returns, for each reference node, the index of its partner in ``other`` and their correlation.
    """
    from scipy.optimize import linear_sum_assignment

    ref = reference - reference.mean(axis=1, keepdims=True)
    oth = other - other.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ref, axis=1)[:, None] * np.linalg.norm(oth, axis=1)[None, :]
    corr = np.divide(ref @ oth.T, norms, out=np.zeros((len(ref), len(oth))), where=norms > 0)
    rows, cols = linear_sum_assignment(-corr)
    partner = np.empty(len(ref), dtype=np.int64)
    partner[rows] = cols
    return partner, corr[np.arange(len(ref)), partner]


@inject_docs
def stability(
    adata: AnnData,
    *,
    n_seeds: int = 3,
    impact_key: str = IMPACT_KEY,
    match_on: MatchOn = "gene_sets",
    fdr: float = 0.05,
    progress: bool = True,
    key_added: str = STABILITY_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Retrain with other seeds, match nodes across runs, and say which nodes and gene sets are stable.

    Nodes are arbitrary per training run (as cNMF programs are per factorisation). The model in
    ``adata.uns`` is retrained ``n_seeds - 1`` times with the same settings and seeds
    ``seed + 1, seed + 2, ...``; each run's nodes are matched one-to-one to the reference nodes
    (Hungarian algorithm) by the correlation of their profiles: by default their impact over
    the gene sets (``match_on="gene_sets"``), or the per-gene z-scores the impact summed over its
    sets (``"genes"``: of the impact's profile, by default each gene's expression shift in the
    node's active cells), which are dominated by the many genes that move with no node and so
    match worse.

    Parameters
    ----------
    adata
        AnnData with a trained model and :func:`scdeconv.tl.module_impact` results (the reference).
    n_seeds
        Runs in all, the reference included (at least 2).
    match_on
        ``"gene_sets"`` or ``"genes"``: the node profiles that are correlated for matching.
    impact_key
        ``uns`` key of the reference impact; its gene sets, method, score, profile and null model
        are reused.
    fdr
        Threshold of the set-level FDR (``set_stats``, and of the module calls) for calling a gene
        set found in a run.
    progress
        Log each retraining.
    {key_added_copy}

    Returns
    -------
    ``None``, or a copy when ``copy=True``. Writes ``adata.uns['scdeconv_stability' | key_added]``:

    ``nodes``
        DataFrame per reference node: ``stability`` (mean correlation with its matched nodes),
        and per extra run ``partner_<seed>`` and ``correlation_<seed>``.
    ``consensus_impact``
        DataFrame nodes x gene sets: the impact averaged over the reference and its matched nodes.
    ``gene_sets``
        DataFrame per gene set: ``fraction_found`` (runs where some node encodes it at ``fdr``:
        the set is called, or is part of a node's strongest called co-expression module; needs
        ``score="enrichment"``) and ``mean_best_impact``; most reproducible first.
    ``params``
        ``n_seeds``, ``seeds``, ``impact_key``, ``fdr``.
    """
    check_choice("match_on", match_on, MatchOn)
    if n_seeds < 2:
        raise ValueError(f"n_seeds must be at least 2 (the reference and one more run), not {n_seeds}.")
    adata = adata.copy() if copy else adata
    reference = stored_result(adata, impact_key, "impact")
    impact_params = reference["params"]
    model_key = impact_params["model_key"]
    claim_uns_key(adata, key_added, "stability", reads=(impact_key, model_key))
    training = TrainingConfig.from_params(stored_result(adata, model_key, "model")["params"])
    seed = training.fit.seed

    def node_profiles(data: AnnData, impact: dict) -> np.ndarray:
        if match_on == "genes":  # the gene z-scores each impact summed over its sets
            return impact_zscores(data, impact, StreamOptions(progress=False))
        return impact["impact"].to_numpy()

    ref_profiles = node_profiles(adata, reference)
    impacts = [reference["impact"]]
    found = [_found(reference, fdr)]
    nodes = pd.DataFrame(index=reference["impact"].index)
    seeds = [seed + k for k in range(1, n_seeds)]
    # The retrainings run on a lean copy: counts and the gene mask only.
    lean = AnnData(X=adata.X, obs=pd.DataFrame(index=adata.obs_names), var=adata.var.copy(), layers=dict(adata.layers))
    for other_seed in seeds:
        if progress:
            logger.info("stability: training with seed %d", other_seed)
        arguments = {**training.arguments(), "seed": other_seed}
        run = train_autoencoder(lean, progress=False, copy=True, **arguments)
        module_impact(run, **_impact_arguments(reference), activity_key=None, progress=False)
        run_impact = run.uns["scdeconv_impact"]["impact"]
        partner, corr = _match_nodes(ref_profiles, node_profiles(run, run.uns["scdeconv_impact"]))
        impacts.append(pd.DataFrame(run_impact.to_numpy()[partner], index=nodes.index, columns=run_impact.columns))
        found.append(_found(run.uns["scdeconv_impact"], fdr))
        nodes[f"partner_{other_seed}"] = run_impact.index[partner]
        nodes[f"correlation_{other_seed}"] = corr
    nodes.insert(0, "stability", nodes[[f"correlation_{s}" for s in seeds]].mean(axis=1))
    consensus = sum(impacts) / len(impacts)
    sets = pd.DataFrame(
        {
            "fraction_found": pd.concat(found, axis=1).mean(axis=1),
            "mean_best_impact": pd.concat([i.max(axis=0) for i in impacts], axis=1).mean(axis=1),
        }
    ).sort_values(["fraction_found", "mean_best_impact"], ascending=False)
    adata.uns[key_added] = {
        "params": {
            "n_seeds": int(n_seeds),
            "seeds": np.asarray([seed, *seeds]),
            "match_on": match_on,
            "impact_key": impact_key,
            "fdr": fdr,
        },
        "nodes": nodes,
        "consensus_impact": consensus,
        "gene_sets": sets,
    }
    logger.info("Added adata.uns[%r]: node stability over %d runs.", key_added, n_seeds)
    return adata if copy else None


def _found(result: dict, fdr: float) -> pd.Series:
    """Per gene set, whether some node encodes it at ``fdr`` (NaN without a null model).

    Called at the set level, or (``null="coexpression"``) part of the strongest called module of
    some node: a set inside a module the node carries cannot stand out from it, and the module
    stands for it.
    """
    names = result["impact"].columns
    if "set_stats" not in result:
        return pd.Series(np.nan, index=names)
    called = (result["set_stats"]["fdr"] < fdr).reindex(names, fill_value=False)
    carried = (carrying_modules(result, fdr=fdr) != "").any(axis=0).reindex(names, fill_value=False)
    return (called | carried).astype(float)
