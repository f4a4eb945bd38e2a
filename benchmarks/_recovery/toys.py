"""The paper's XOR toy and a parity programme that no linear view can see."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from sklearn.metrics import roc_auc_score

import scdeconv as sd
from scdeconv.datasets import _simulate as simtools
from scdeconv.scoring import expression_bins

from .config import FDR, Config
from .methods import run_ours, toy_runners
from .metrics import best_precision
from .outputs import Output, lognorm


def module_context(adata: AnnData, seed: int, modules: dict[str, list[str]], labels_col: str | None) -> dict:
    """Context for data without Hallmark genes: all genes, the planted modules as the gene sets."""
    genes = adata.var_names.to_numpy().astype(str)
    x = lognorm(adata)
    index = pd.Index(genes)
    ctx = {
        "seed": seed,
        "genes": genes,
        "lognorm": x,
        "bins": expression_bins(x.mean(axis=0), 10),
        "sets": {m: index.get_indexer(g) for m, g in modules.items()},
        "gene_sets": modules,
    }
    if labels_col is not None:
        ctx["labels"] = adata.obs[labels_col].astype(str).to_numpy()
    return ctx


def fold_label(fold_change) -> str:
    """``4x`` or ``1.5-2.5x``: how the XOR toy's fold change is shown in the tables."""
    if isinstance(fold_change, tuple | list):
        return f"{fold_change[0]:g}-{fold_change[1]:g}x"
    return f"{fold_change:g}x"


def run_xor(seed: int, cfg: Config, runners: dict) -> list[dict]:
    """(c) Per module, the best component's share of the module's markers among its top 20 genes."""
    return [row for fold in cfg.xor_fold_changes for row in run_xor_level(seed, fold, cfg, runners)]


def run_xor_level(seed: int, fold_change, cfg: Config, runners: dict) -> list[dict]:
    adata = sd.datasets.simulate_xor(cfg.xor_cells, fold_change=fold_change, seed=seed)
    sim = adata.uns["simulation"]
    modules = {m: list(g) for m, g in sim["module_genes"].items()}
    xor = set(sim["xor_modules"])
    ctx = module_context(adata, seed, modules, None)
    outputs = [run_ours(adata, ctx, cfg)] + [r(adata, ctx, cfg) for r in toy_runners(runners).values()]
    rows = []
    for out in outputs:
        prec = best_precision(out.top_genes, {m: set(g) for m, g in modules.items()})
        rows.append(
            {
                "seed": seed,
                "fold change": fold_label(fold_change),
                "method": out.name,
                "single modules": np.mean([v for m, v in prec.items() if m not in xor]),
                "XOR modules": np.mean([v for m, v in prec.items() if m in xor]),
                "seconds": out.seconds,
            }
        )
    return rows


def simulate_parity(
    n_cells: int,
    *,
    n_factors: int = 3,
    block: int = 30,
    n_background: int = 240,
    fold_change: float = 3.0,
    seed: int = 0,
) -> AnnData:
    """Hidden binary factors, each marking its own block of genes; the program is their parity.

    Each factor ``F_k`` (on in half the cells) multiplies its ``block`` genes by ``fold_change``.
    The parity ``P = F_1 xor ... xor F_n`` is the program: every factor, hence every gene, is
    independent of ``P``, and every linear combination of genes is uncorrelated with it, so no
    per-gene test, no mean-based set score and no linear projection separates ``P = 1`` from
    ``P = 0`` cells (a rank test of a set's mean does: the distribution of the number of active
    factors differs). Only a nonlinear read-out recovers it.
    """
    rng = np.random.default_rng(seed)
    factors = rng.random((n_cells, n_factors)) < 0.5
    n_genes = n_factors * block + n_background
    base = simtools.baseline_log_shares(rng, n_genes, sigma=1.0)
    base[: n_factors * block] = rng.uniform(0, 1.5, n_factors * block)  # markers expressed enough to see
    log_rates = np.repeat(base[None, :].astype(np.float32), n_cells, axis=0)
    for k in range(n_factors):
        log_rates[:, k * block : (k + 1) * block] += np.log(fold_change) * factors[:, [k]]
    library = simtools.library_sizes(rng, n_cells, median=2000.0, sigma=0.4)
    x = simtools.sample_counts(rng, log_rates, library, simtools.dispersions(rng, n_genes, median=0.2))
    names = [f"F{k}_{i:02d}" for k in range(n_factors) for i in range(1, block + 1)]
    names += simtools.numbered_names("Bg", n_background, width=3)
    adata = AnnData(x, obs=pd.DataFrame(index=[f"cell_{i}" for i in range(n_cells)]))
    adata.var_names = names
    for k in range(n_factors):
        adata.obs[f"F{k}"] = factors[:, k]
    adata.obs["parity"] = np.logical_xor.reduce(factors, axis=1)
    return adata


def probe(embedding: np.ndarray, y: np.ndarray, *, linear: bool) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = LogisticRegression(max_iter=2000) if linear else KNeighborsClassifier(n_neighbors=15)
    embedding = np.asarray(embedding, dtype=np.float64)
    embedding = embedding[:, embedding.std(axis=0) > 1e-6 * max(embedding.std(axis=0).max(), 1e-12)]  # no dead nodes
    return float(cross_val_score(make_pipeline(StandardScaler(), clf), embedding, y, cv=5).mean())


def run_parity(seed: int, cfg: Config, runners: dict) -> list[dict]:
    """Can a method's representation tell the parity? And do per-gene / per-set tests see it?"""
    from scipy.stats import mannwhitneyu

    from scdeconv.scoring import benjamini_hochberg

    adata = simulate_parity(cfg.parity_cells, seed=seed)
    y = adata.obs["parity"].to_numpy()
    markers = [g for g in adata.var_names if g.startswith("F")]
    ctx = module_context(adata, seed, {"PARITY_FACTORS": markers}, None)
    x = ctx["lognorm"]
    outputs = [run_ours(adata, ctx, cfg)] + [r(adata, ctx, cfg) for r in toy_runners(runners).values()]
    outputs.append(Output("log-normalised input", embedding=x))
    rows = []
    for out in outputs:
        emb = np.asarray(out.embedding)
        single = max(max(roc_auc_score(y, c), 1 - roc_auc_score(y, c)) for c in emb.T if np.ptp(c) > 0)
        factors = [probe(emb, adata.obs[f"F{k}"].to_numpy(), linear=True) for k in range(3)]
        rows.append(
            {
                "seed": seed,
                "method": out.name,
                "linear probe (parity)": probe(emb, y, linear=True),
                "15-NN (parity)": probe(emb, y, linear=False),
                "best single node AUROC": single,
                "linear probe (factors)": float(np.mean(factors)),
            }
        )
    # What tests that know the labels see: per gene, and per set (the mean of the markers).
    genes_p = mannwhitneyu(x[y], x[~y], axis=0).pvalue
    set_p = mannwhitneyu(x[y][:, : len(markers)].mean(1), x[~y][:, : len(markers)].mean(1)).pvalue
    rows.append(
        {
            "seed": seed,
            "method": "tests given the parity labels",
            "genes at FDR < 0.05": int((benjamini_hochberg(genes_p) < FDR).sum()),
            "set p-value": float(set_p),
        }
    )
    return rows


# Codes given to a decoder in the parity experiment: name -> columns built from the factors F (cells x 3).
PARITY_CODES = {
    "nothing (library size only)": lambda f, rng: np.zeros((len(f), 1)),
    "parity only": lambda f, rng: np.logical_xor.reduce(f, axis=1)[:, None],
    "the 3 factors": lambda f, rng: f,
    "the 3 factors + parity": lambda f, rng: np.column_stack([f, np.logical_xor.reduce(f, axis=1)]),
    "the 3 factors + a random bit": lambda f, rng: np.column_stack([f, rng.random(len(f)) < 0.5]),
}


def run_parity_codes(seed: int, cfg: Config) -> list[dict]:
    """What a reconstruction objective gains from a node that carries the parity: a decoder fed oracle codes.

    scdeconv's decoder (128 hidden units, Softplus) and Poisson likelihood with size factors are
    fitted to the parity toy's counts from fixed codes instead of an encoder's output, on 80% of the
    cells, full batch (Adam, lr 1e-2); the held-out mean Poisson negative log-likelihood per entry
    (without ``log(x!)``) is reported. Since the parity is a function of the factors, the data given
    "factors + parity" are distributed exactly as given "factors": a parity node can lower no
    reconstruction loss once the factors are coded, and alone it explains nothing, so no
    reconstruction objective rewards a node for carrying it.
    """
    import torch

    from scdeconv._module.autoencoder import Autoencoder

    adata = simulate_parity(cfg.parity_cells, seed=seed)
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X
    counts = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    factors = adata.obs[[f"F{k}" for k in range(3)]].to_numpy()
    rng = np.random.default_rng(seed)
    train = rng.random(len(factors)) < 0.8
    fit, held_out = torch.as_tensor(train), torch.as_tensor(~train)
    log_library = torch.log(counts.sum(dim=1, keepdim=True))

    def loss(module, code, rows):
        log_mu = torch.log_softmax(module.decode(code[rows]), dim=1) + log_library[rows]
        return (torch.exp(log_mu) - counts[rows] * log_mu).mean()

    rows = []
    for name, make in PARITY_CODES.items():
        code = torch.as_tensor(np.asarray(make(factors, rng), dtype=np.float32))
        torch.manual_seed(seed)
        module = Autoencoder(counts.shape[1], n_latent=code.shape[1], n_hidden=(128,))
        opt = torch.optim.Adam(module.decoder.parameters(), lr=1e-2)
        for _ in range(cfg.parity_code_steps):
            opt.zero_grad()
            loss(module, code, fit).backward()
            opt.step()
        with torch.no_grad():
            rows.append({"seed": seed, "method": "scdeconv's decoder", "code": name,
                         "held-out loss": float(loss(module, code, held_out))})  # fmt: skip
    return rows
