"""Where results live in ``adata.uns`` / ``obsm``: what marks each kind, who may overwrite it, and reading it back.

Every step that reads an earlier step's result goes through :func:`stored_result` (or
:func:`stored_obsm`), so a missing result always raises the same KeyError naming the call to run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from anndata import AnnData

from ._defaults import FDR
from ._logging import logger

# What marks each kind of scdeconv result in ``adata.uns`` (all of these entries present).
RESULT_MARKERS: dict[str, frozenset[str]] = {
    "model": frozenset({"params", "var_names", "weights"}),
    "impact": frozenset({"params", "impact", "gene_sets"}),
    "group_diff": frozenset({"params", "diff", "set_tests"}),
    "node_genes": frozenset({"params", "names", "scores"}),
    "gsea": frozenset({"params", "nes", "fdr"}),
    "stability": frozenset({"params", "nodes", "consensus_impact"}),
    "gene_selection": frozenset({"params", "n_genes"}),
    "node_table": frozenset({"params", "node_table"}),
}

# What each kind is called in messages, and the call that writes it ("run X first").
DESCRIBED: dict[str, str] = {
    "model": "a trained model",
    "impact": "a module_impact result",
    "group_diff": "a group_diff result",
    "node_genes": "a node_genes result",
    "gsea": "a node_gsea result",
    "stability": "a stability result",
    "gene_selection": "a gene selection",
    "node_table": "an annotate_nodes result",
    "representation": "the representation",
    "activity": "per-cell gene-set activity",
}
WRITTEN_BY: dict[str, str] = {
    "model": "sd.tl.train_autoencoder(adata)",
    "impact": "sd.tl.module_impact(adata)",
    "group_diff": "sd.tl.group_diff(adata, groupby, group1)",
    "node_genes": "sd.tl.node_genes(adata)",
    "gsea": "sd.tl.node_gsea(adata)",
    "stability": "sd.tl.stability(adata)",
    "gene_selection": "sd.pp.select_genes(adata)",
    "node_table": "sd.tl.annotate_nodes(adata)",
    "representation": "sd.tl.train_autoencoder(adata)",
    "activity": "sd.tl.module_impact(adata)",
}


def result_kind(entry) -> str | None:
    """The kind of scdeconv result ``entry`` is (a key of :data:`RESULT_MARKERS`), or ``None``."""
    if not isinstance(entry, Mapping):
        return None
    for kind, markers in RESULT_MARKERS.items():
        if markers <= set(entry):
            return kind
    return None


def stored_result(adata: AnnData, key: str, kind: str) -> dict[str, Any]:
    """``adata.uns[key]`` when it holds a ``kind`` result; otherwise a KeyError that names the call to run."""
    if key not in adata.uns:
        raise KeyError(f"Did not find {DESCRIBED[kind]} in adata.uns[{key!r}]. Run `{WRITTEN_BY[kind]}` first.")
    entry = adata.uns[key]
    if result_kind(entry) != kind:
        needs = ", ".join(repr(m) for m in sorted(RESULT_MARKERS[kind]))
        raise KeyError(
            f"adata.uns[{key!r}] is not {DESCRIBED[kind]} of scdeconv (it needs {needs}). "
            f"Run `{WRITTEN_BY[kind]}` or pass the right key."
        )
    return entry


def stored_obsm(adata: AnnData, key: str, kind: str):
    """``adata.obsm[key]``, or a KeyError that names the call writing it (``kind`` as in :data:`WRITTEN_BY`)."""
    if key not in adata.obsm:
        raise KeyError(f"Did not find {DESCRIBED[kind]} in adata.obsm[{key!r}]. Run `{WRITTEN_BY[kind]}` first.")
    return adata.obsm[key]


def claim_uns_key(adata: AnnData, key: str, kind: str, *, reads: Sequence[str] = ()) -> None:
    """Say what writing a ``kind`` result to ``adata.uns[key]`` will overwrite, before any work is done.

    The documented ``key_added`` policy: an earlier result of the same kind is overwritten (logged
    at info level, as scanpy does); any other entry is overwritten with a warning, except a
    trained model, which later steps need and which is expensive to rebuild, and the input the
    step itself reads (``reads``): a ValueError.
    """
    existing = result_kind(adata.uns[key]) if key in adata.uns else None
    if existing == "model" and kind != "model":
        raise ValueError(
            f"key_added={key!r} would overwrite the trained model in adata.uns[{key!r}] with a {kind} result. "
            "Pass another key_added (the model is needed by later steps)."
        )
    if key in reads:
        raise ValueError(
            f"key_added={key!r} is the key of this step's own input in adata.uns; writing there would destroy it. "
            "Pass another key_added."
        )
    if key not in adata.uns:
        return
    if existing == kind:
        logger.info("Overwriting the earlier %s result in adata.uns[%r].", kind, key)
        return
    what = f"a {existing} result" if existing else "an entry not written by scdeconv"
    logger.warning(
        "Overwriting adata.uns[%r], which held %s, with a %s result. Pass another key_added to keep it.",
        key,
        what,
        kind,
    )


def claim_obsm_key(adata: AnnData, key: str, *, ours: bool, what: str) -> None:
    """Warn before overwriting ``adata.obsm[key]`` unless it is an earlier result of the same step (``ours``)."""
    if key not in adata.obsm:
        return
    if ours:
        logger.info("Overwriting the earlier %s in adata.obsm[%r].", what, key)
        return
    logger.warning(
        "Overwriting adata.obsm[%r], which was not written by this step, with the %s. Pass another key to keep it.",
        key,
        what,
    )


def scored_profile(impact_params: dict) -> str:
    """The gene profile a module_impact result scored; results written before it was a choice scored attributions."""
    return impact_params.get("profile", "attribution")


def strongest_modules(impact: Mapping, *, fdr: float | None = None) -> pd.Series:
    """Per node, its strongest co-expression module called at ``fdr`` (largest ``module_null_z``), or ``""``.

    What names a node whose programme is a whole module (:func:`scdeconv.tl.annotate_nodes`);
    empty when the impact scored no modules (``null="expression"``). ``fdr`` defaults to ``FDR``.
    """
    fdr = FDR if fdr is None else fdr
    if "module_fdr" not in impact:
        return pd.Series("", index=pd.DataFrame(impact["impact"]).index, dtype=object)
    null_z = pd.DataFrame(impact["module_null_z"])
    called = pd.DataFrame(impact["module_fdr"]) < fdr
    best = null_z.where(called, -float("inf")).idxmax(axis=1)
    return best.where(called.any(axis=1), "").astype(object)


def carrying_modules(impact: Mapping, *, fdr: float | None = None) -> pd.DataFrame:
    """Nodes x sets: the node's strongest called co-expression module when the set is part of it, or ``""``.

    Under ``null="coexpression"`` a set lying inside a co-expression module cannot stand out from
    its own module mates, so a node that carries the module calls the module, not the set; the
    set is then among those the module is made of (``module_sets["all_sets"]``). Only the node's
    strongest called module (:func:`strongest_modules`) counts: tested against expression-matched
    genes, a few modules are called on nearly every node, and the strongest is what names it.
    All ``""`` when the impact scored no modules (``null="expression"``). ``fdr`` defaults to ``FDR``.
    """
    index, columns = pd.DataFrame(impact["impact"]).index, pd.DataFrame(impact["impact"]).columns
    carrying = pd.DataFrame("", index=index, columns=columns, dtype=object)
    if "module_fdr" not in impact:
        return carrying
    made_of = pd.DataFrame(impact["module_sets"])["all_sets"]
    for node, module in strongest_modules(impact, fdr=fdr).items():
        if module:
            members = [name for name in str(made_of[module]).split("; ") if name in carrying.columns]
            carrying.loc[node, members] = module
    return carrying
