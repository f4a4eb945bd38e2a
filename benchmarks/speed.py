"""Speed, scale and memory of scdeconv, with its peers measured in the same run.

Run: ``python benchmarks/speed.py`` (full), ``--smoke`` (tiny, for CI), ``--scale 10000,100000``
(cells of the on-disk table; add 1000000 for the 1M-cell run), ``--copies 10,100`` (synthetic
copies of Paul15), ``--epochs 2``, ``--no-scvi``.

Every measurement runs in its own subprocess, which reports its own peak RSS. Printed tables:

1. Paul15 (bundled, all genes with a count >= 3) and synthetic negative-binomial copies at 10x
   and 100x the cells: seconds per training epoch of scdeconv (defaults: Poisson, orthogonality
   penalty 0.05, batch 128) and of scvi-tools' LinearSCVI (same genes, 64 latent, batch 128,
   same epochs); module_impact (all nodes x cells x 50 Hallmark sets, with its null model) vs a
   bare batched-GEMM Jacobian of the same model; achieved GFLOP/s of training and of the
   Jacobian vs a plain fp32 matmul measured in the same run; peak RSS of each.
2. End to end on Paul15 (select genes, train to early stop, module_impact, group_diff; no plots).
3. Scale: synthetic ``.h5ad`` files of N cells x 2,000 genes, opened backed (``X`` stays on disk),
   train for a fixed number of epochs + module_impact: time and peak RSS.
4. Accuracy: validation loss and planted-set AUPRC on the simulator for the fast path (float32,
   batched) and a slow reference (float64, one cell per saliency batch, unbatched loss).

Timings depend on the machine and on its load at the time: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


# ----------------------------------------------------------------------------- data
def paul15_counts():
    import scdeconv as sd

    adata = sd.datasets.paul15()
    sd.pp.select_genes(adata, mode="all")
    return adata[:, adata.var["scdeconv_selected"].to_numpy()].copy()


def nb_copies(adata, factor: int, seed: int = 0, block: int = 10_000):
    """``factor`` x the cells of ``adata``: negative-binomial counts around randomly drawn real cells."""
    import anndata
    from scipy import sparse

    rng = np.random.default_rng(seed)
    x = sparse.csr_matrix(adata.X, dtype=np.float64)
    library = np.asarray(x.sum(axis=1)).ravel()
    share = np.asarray(x.sum(axis=0)).ravel() / library.sum()
    n = adata.n_obs * factor
    pieces = []
    for start in range(0, n, block):
        src = rng.integers(0, adata.n_obs, min(block, n - start))
        own = x[src].toarray() / library[src, None]
        mu = library[src, None] * (0.7 * own + 0.3 * share)
        pieces.append(sparse.csr_matrix(rng.poisson(rng.gamma(5.0, mu / 5.0)).astype(np.float32)))
    out = anndata.AnnData(sparse.vstack(pieces, format="csr"))
    out.var_names = adata.var_names
    out.obs_names = [f"c{i}" for i in range(n)]
    return out


def write_synthetic_h5ad(path: Path, n_cells: int, n_genes: int = 2000, seed: int = 0, block: int = 20_000) -> None:
    """Write N x G NB counts (Hallmark gene symbols) as a CSR ``.h5ad``, block by block (never whole in memory)."""
    import h5py
    import pandas as pd
    from anndata.io import write_elem
    from scipy import sparse

    import scdeconv as sd

    genes = sorted({g for s in sd.genesets.hallmark("human").values() for g in s})[:n_genes]
    rng = np.random.default_rng(seed)
    base = rng.lognormal(-1.5, 1.5, n_genes)
    programs = rng.random((8, n_genes)) < 0.05  # 8 cell states with their own raised genes
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        write_elem(f, "obs", pd.DataFrame(index=pd.Index([f"c{i}" for i in range(n_cells)], dtype=str)))
        write_elem(f, "var", pd.DataFrame(index=pd.Index(genes, dtype=str)))
        for key in ("obsm", "varm", "layers", "obsp", "varp", "uns"):
            write_elem(f, key, {})
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        g.attrs["shape"] = (n_cells, n_genes)
        data = g.create_dataset("data", (0,), maxshape=(None,), dtype=np.float32, chunks=(1 << 18,))
        indices = g.create_dataset("indices", (0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 18,))
        indptr = g.create_dataset("indptr", (n_cells + 1,), dtype=np.int64)
        indptr[0], nnz = 0, 0
        for start in range(0, n_cells, block):
            m = min(block, n_cells - start)
            state = rng.integers(0, 8, m)
            mu = base * np.where(programs[state], 6.0, 1.0) * rng.lognormal(0, 0.4, (m, 1))
            counts = rng.poisson(rng.gamma(3.0, mu / 3.0)).astype(np.float32)
            counts[np.arange(m), rng.integers(0, n_genes, m)] += 1  # no empty cell
            csr = sparse.csr_matrix(counts)
            data.resize((nnz + csr.nnz,))
            indices.resize((nnz + csr.nnz,))
            data[nnz:], indices[nnz:] = csr.data, csr.indices
            indptr[start + 1 : start + m + 1] = csr.indptr[1:] + nnz
            nnz += csr.nnz


# ----------------------------------------------------------------------------- workers
def _macs(n_genes: int, hidden: int = 128, latent: int = 64) -> int:
    """Multiply-accumulates of one cell's forward pass through the default autoencoder."""
    return 2 * (n_genes * hidden + hidden * latent)


def work_matmul(spec: dict) -> dict:
    import torch

    n, device = spec.get("n", 2048), spec.get("device", "cpu")
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < spec.get("seconds", 2.0):
        a @ b
        reps += 1
    if device != "cpu":
        torch.cuda.synchronize()
    return {"gflops": 2 * n**3 * reps / (time.perf_counter() - start) / 1e9}


def work_train(spec: dict) -> dict:
    import anndata

    adata = anndata.read_h5ad(spec["path"])
    epochs, n_train = spec["epochs"], int(adata.n_obs * 0.95)
    if spec["engine"] == "scvi":
        import scvi

        scvi.settings.seed = 0
        scvi.model.LinearSCVI.setup_anndata(adata)
        model = scvi.model.LinearSCVI(adata, n_latent=64)
        start = time.perf_counter()
        model.train(max_epochs=epochs, batch_size=128, train_size=0.95, accelerator="cpu", devices=1,
                    enable_progress_bar=False, early_stopping=False)  # fmt: skip
        seconds = (time.perf_counter() - start) / epochs
        return {"s_epoch": seconds}
    import torch

    from scdeconv._module.autoencoder import Autoencoder
    from scdeconv._module.config import FitConfig
    from scdeconv._module.training import fit

    counts = adata.X.tocsr()
    module = Autoencoder(adata.n_vars, generator=torch.Generator().manual_seed(0))
    rows = np.random.default_rng(0).permutation(adata.n_obs)
    start = time.perf_counter()
    train, val = np.sort(rows[adata.n_obs - n_train :]), np.sort(rows[: adata.n_obs - n_train])
    fit(module, counts, train_rows=train, val_rows=val, config=FitConfig(max_epochs=epochs, patience=epochs),
        progress=False, device=spec.get("device", "cpu"))  # fmt: skip
    seconds = (time.perf_counter() - start) / epochs
    return {"s_epoch": seconds, "gflops": 3 * 2 * _macs(adata.n_vars) * n_train / seconds / 1e9}


def work_impact(spec: dict) -> dict:
    import anndata
    import torch

    import scdeconv as sd
    from scdeconv._model_store import load_model
    from scdeconv._module.saliency import default_chunk_size, jacobian
    from scdeconv._module.training import batches, dense_rows

    adata = anndata.read_h5ad(spec["path"])
    device = torch.device(spec.get("device", "cpu"))
    sd.tl.train_autoencoder(adata, max_epochs=max(spec["epochs"], 1), progress=False, device=str(device))
    module, _ = load_model(adata)
    module.to(device)
    counts = adata.X.tocsr()
    size = default_chunk_size(module.n_latent, adata.n_vars)
    start = time.perf_counter()
    with torch.no_grad():
        for rows in batches(adata.n_obs, size):  # the bare exact Jacobian, every node, cell and gene
            jacobian(module, module.prepare_input(dense_rows(counts, rows, device)), guided=False).abs_().sum(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    bare = time.perf_counter() - start
    start = time.perf_counter()
    sd.tl.module_impact(adata, progress=False, device=str(device), n_null=spec.get("n_null", 1000))
    impact = time.perf_counter() - start
    flops = 2 * module.n_latent * 128 * adata.n_vars * adata.n_obs
    return {"impact_s": impact, "jacobian_s": bare, "gflops": flops / bare / 1e9,
            "n_sets": adata.uns["scdeconv_impact"]["impact"].shape[1]}  # fmt: skip


def work_e2e(spec: dict) -> dict:
    import scdeconv as sd

    adata = sd.datasets.paul15()
    start = time.perf_counter()
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata, progress=False, device=spec.get("device", "cpu"))
    trained = time.perf_counter()
    sd.tl.module_impact(adata, progress=False, device=spec.get("device", "cpu"))
    scored = time.perf_counter()
    sd.tl.group_diff(adata, "paul15_clusters", ["7MEP", "8Mk"], ["9GMP", "10GMP", "16Neu", "17Neu"], progress=False,
                     device=spec.get("device", "cpu"))  # fmt: skip
    end = time.perf_counter()
    return {"total_s": end - start, "train_s": trained - start, "impact_s": scored - trained,
            "group_diff_s": end - scored, "epochs": int(adata.uns["scdeconv"]["params"]["n_epochs"])}  # fmt: skip


def work_scale(spec: dict) -> dict:
    import anndata

    import scdeconv as sd

    adata = anndata.read_h5ad(spec["path"], backed="r")
    start = time.perf_counter()
    device = spec.get("device", "cpu")
    sd.tl.train_autoencoder(adata, max_epochs=spec["epochs"], patience=spec["epochs"], progress=False, device=device)
    trained = time.perf_counter()
    sd.tl.module_impact(adata, gene_sets="hallmark", species="human", n_null=spec.get("n_null", 200), progress=False,
                        device=device)  # fmt: skip
    return {"train_s": trained - start, "impact_s": time.perf_counter() - trained}


def work_accuracy(spec: dict) -> dict:
    import torch
    from sklearn.metrics import average_precision_score

    import scdeconv as sd
    import scdeconv.tl._saliency_pass as passes
    from scdeconv._model_store import load_model
    from scdeconv._module.training import evaluate

    adata = sd.datasets.simulate_hematopoiesis(spec["cells"], n_genes=spec["genes"], seed=0)
    sd.tl.train_autoencoder(adata, max_epochs=spec["epochs"], progress=False, device="cpu")
    sim = adata.uns["simulation"]
    planted = {s for sets in sim["planted_sets"].values() for s in sets}

    def auprc() -> tuple[float, np.ndarray]:
        result = adata.uns["scdeconv_impact"]
        best = result["impact"].loc[~result["node_stats"]["dead"].to_numpy()].max()
        return float(average_precision_score(best.index.isin(list(planted)), best.to_numpy())), result["impact"]

    module, genes = load_model(adata)
    val = np.flatnonzero(adata.obs_names.isin(adata.uns["scdeconv"]["params"]["validation_cells"]))
    counts = adata[:, genes].X
    fast_val = evaluate(module, counts, val, 512, torch.device("cpu"))
    with torch.no_grad():
        dense = torch.from_numpy(counts[val].toarray()).double()
        ref_val = float(module.double().reconstruction_loss(dense))
    sd.tl.module_impact(adata, progress=False, device="cpu", n_null=200)
    fast_auprc, fast_impact = auprc()
    original = passes.load_model
    passes.load_model = lambda a, k: (lambda m, g: (m.double(), g))(*original(a, k))  # float64 reference
    try:
        sd.tl.module_impact(adata, progress=False, device="cpu", n_null=200, batch_size=1)  # one cell at a time
    finally:
        passes.load_model = original
    ref_auprc, ref_impact = auprc()
    diff = np.abs(fast_impact.to_numpy() - ref_impact.to_numpy()).max() / np.abs(ref_impact.to_numpy()).max()
    return {"fast_val": fast_val, "ref_val": ref_val, "fast_auprc": fast_auprc, "ref_auprc": ref_auprc,
            "impact_rel_diff": float(diff)}  # fmt: skip


WORKERS = {f.__name__[5:]: f for f in (work_matmul, work_train, work_impact, work_e2e, work_scale, work_accuracy)}


def peak_rss_gb() -> float:
    """This process's peak resident memory: VmHWM, which (unlike ru_maxrss) does not carry over the
    parent's peak across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def run_worker(name: str, spec: dict, threads: int | None, inline: bool = False) -> dict:
    """Run one measurement in a fresh process; it reports its results and its own peak RSS.

    ``inline`` runs it in this process instead (``--smoke``: no start-up per measurement; the RSS
    is then this process's peak so far).
    """
    if inline:
        out = WORKERS[name](spec)
        out["rss_gb"] = peak_rss_gb()
        return out
    cmd = [sys.executable, str(HERE), "--worker", name, "--spec", json.dumps(spec)]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"error": f"{name} failed (exit {proc.returncode})"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- tables
def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header: list[str], rows: list[list]) -> str:
    cells = [header, *[[fmt(v) for v in r] for r in rows]]
    lines = ["| " + " | ".join(r) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    parser.add_argument("--copies", default="10,100", help="synthetic copies of Paul15 (x cells)")
    parser.add_argument("--scale", default="10000,100000", help="cells of the on-disk runs (x 2,000 genes)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per training run")
    parser.add_argument("--scale-epochs", type=int, default=1, help="epochs of each on-disk training run")
    parser.add_argument("--no-scvi", action="store_true", help="skip LinearSCVI")
    parser.add_argument("--sections", default="train,e2e,scale,accuracy", help="tables to print (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    parser.add_argument("--device", default="cpu", help="torch device of the scdeconv runs (cpu, cuda)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        out = WORKERS[args.worker](json.loads(args.spec))
        out["rss_gb"] = peak_rss_gb()
        print(json.dumps(out))
        return
    run_all(args)


def run_all(args) -> None:
    import scdeconv as sd

    try:
        import scvi  # noqa: F401

        has_scvi = not args.no_scvi and not args.smoke
    except ImportError:
        has_scvi = False
    tmp = Path(tempfile.mkdtemp(prefix="scdeconv_speed_"))
    w = lambda name, **spec: run_worker(name, {"device": args.device, **spec}, args.threads, inline=args.smoke)  # noqa: E731
    print("Timings depend on this machine and its load when run; ratios are measured in the same run.")
    import torch

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"scdeconv device: {args.device} ({name}); LinearSCVI on CPU\n")
    matmul = w("matmul", n=512 if args.smoke else 2048, seconds=0.5 if args.smoke else 3.0)
    print(f"fp32 matmul: {fmt(matmul.get('gflops'), 1)} GFLOP/s\n", flush=True)

    sections = set(args.sections.split(","))
    base = paul15_counts()
    if "train" not in sections:
        copies = None
    elif args.smoke:
        base = base[:300].copy()
        base = base[:, np.asarray(base.X.sum(axis=0)).ravel() > 0].copy()
        copies = []
    else:
        copies = [int(c) for c in args.copies.split(",") if c]
    rows = []
    for factor in [] if copies is None else [1, *copies]:
        data = base if factor == 1 else nb_copies(base, factor)
        path = tmp / f"paul15_x{factor}.h5ad"
        data.write_h5ad(path)
        epochs = 1 if args.smoke else args.epochs
        ours = w("train", path=str(path), engine="scdeconv", epochs=epochs)
        peer = w("train", path=str(path), engine="scvi", epochs=epochs) if has_scvi else {}
        if args.smoke:
            impact = w("impact", path=str(path), epochs=1, n_null=50)
        else:
            impact = w("impact", path=str(path), epochs=1) if factor <= 10 else {}
        rows.append([f"Paul15 x{factor}", f"{data.n_obs} x {data.n_vars}", ours.get("s_epoch"), peer.get("s_epoch"),
                     _ratio(peer.get("s_epoch"), ours.get("s_epoch")), _pct(ours.get("gflops"), matmul),
                     ours.get("rss_gb"), peer.get("rss_gb"), impact.get("impact_s"), impact.get("jacobian_s"),
                     _ratio(impact.get("impact_s"), impact.get("jacobian_s")), _pct(impact.get("gflops"), matmul),
                     impact.get("rss_gb")])  # fmt: skip
        del data
    if rows:
        print("Training per epoch (target: >= 4x faster than LinearSCVI) and module_impact, all nodes x cells x")
        print("Hallmark sets with null model (target: <= 2x the bare Jacobian); % of matmul GFLOP/s (target >= 40%)")
        print(table(["data", "cells x genes", "scdeconv s/epoch", "LinearSCVI s/epoch", "speed-up", "train % matmul",
                 "train RSS GB", "scvi RSS GB", "impact s", "Jacobian s", "impact / Jacobian", "Jacobian % matmul",
                 "impact RSS GB"], rows))  # fmt: skip

    if not args.smoke and "e2e" in sections:
        e2e = w("e2e")
        print("\nEnd to end on Paul15 (select genes, train to early stop, impact, group_diff; target < 20 s)")
        print(table(["total s", "train s", "epochs", "impact s", "group_diff s", "RSS GB"],
                    [[e2e.get("total_s"), e2e.get("train_s"), e2e.get("epochs"), e2e.get("impact_s"),
                      e2e.get("group_diff_s"), e2e.get("rss_gb")]]))  # fmt: skip

    sizes = [2000] if args.smoke else [int(s) for s in args.scale.split(",") if s]
    sizes = sizes if "scale" in sections else []
    header = ["cells", "file GB", "train s", "impact s", "total s", "s per 1M cells (linear)", "peak RSS GB"]
    if sizes:
        print(f"\nFrom disk (backed .h5ad, X streamed in chunks): train {args.scale_epochs} epoch(s) + module_impact")
        print(table(header, []), flush=True)
    last = None
    for n in sizes:
        path = tmp / f"synthetic_{n}.h5ad"
        write_synthetic_h5ad(path, n, n_genes=200 if args.smoke else 2000)
        res = w("scale", path=str(path), epochs=args.scale_epochs, n_null=20 if args.smoke else 200)
        total = (res.get("train_s") or np.nan) + (res.get("impact_s") or np.nan)
        last = [n, f"{path.stat().st_size / 1e9:.2f}", res.get("train_s"), res.get("impact_s"), total,
                total / n * 1e6, res.get("rss_gb")]  # fmt: skip
        print(table(header, [last]).splitlines()[-1], flush=True)
        path.unlink()
    if last is not None and not args.smoke and max(sizes) < 1_000_000:
        print(
            f"EXTRAPOLATION (not measured): 1,000,000 cells ~ {last[4] * 1e6 / last[0] / 60:.1f} min, "
            f"linear in cells from the {last[0]}-cell run; RSS stays near {fmt(last[6])} GB (chunked)."
        )

    if "accuracy" not in sections:
        return
    acc = w("accuracy", cells=300 if args.smoke else 1500, genes=500 if args.smoke else 2000,
            epochs=3 if args.smoke else 60)  # fmt: skip
    print("\nFast path (float32, batched) vs reference (float64, unbatched) on the simulator")
    print(table(["", "validation loss", "planted-set AUPRC"],
                [["fast", acc.get("fast_val"), acc.get("fast_auprc")], ["reference", acc.get("ref_val"),
                  acc.get("ref_auprc")]]))  # fmt: skip
    same_loss = abs(acc["fast_val"] - acc["ref_val"]) <= 1e-4 * abs(acc["ref_val"])
    agree = same_loss and abs(acc["fast_auprc"] - acc["ref_auprc"]) < 1e-6
    print(f"max |impact difference| / max |impact|: {acc['impact_rel_diff']:.2e}; agree: {agree}")
    _ = sd  # imported for its side effect of failing early when the package is broken


def _ratio(a, b):
    return a / b if a and b else None


def _pct(gflops, matmul):
    return 100 * gflops / matmul["gflops"] if gflops and matmul.get("gflops") else None


if __name__ == "__main__":
    main()
