"""Speed, scale and memory of scdeconv, with the physical references and the peers measured in the same run.

Run: ``python benchmarks/speed.py`` (CPU, everything but the 1M-cell file), ``--smoke`` (tiny, for
CI), ``--scale 10000,100000,1000000`` (cells of the on-disk table), ``--copies 10`` (synthetic
copies of Paul15), ``--epochs 20`` (epochs per engine on Paul15; the copies run ``--copy-epochs``),
``--engines bare,scdeconv,scvi,drvi``, ``--device cuda`` (every engine on the GPU).

Every measurement runs in its own subprocess with the same torch thread count (``--threads``,
default: all CPUs of this process) and reports its own peak RSS. Sections:

``train``
    Steady-state seconds per epoch (median of the epochs after the first) of the bare torch loop
    (the practical limit), scdeconv, LinearSCVI and DRVI on Paul15 and its copies, each engine's
    setup time apart, ratios to the bare loop and to scdeconv, and training GFLOP/s against a
    plain fp32 matmul of the same run.
``impact``
    ``module_impact`` (every node x cell x Hallmark set, null model and per-cell activity; the
    default expression profile, then the attribution profile) against the bare exact Jacobian of
    the same model (batched GEMMs, under the same CPU settings); each the median of ``--repeats``
    runs after a warm-up run.
``checkpoint``
    scdeconv's epoch time with a checkpoint written after every epoch, against none.
``loaded``
    scdeconv's epoch time on Paul15 while another process keeps one CPU busy: torch's default
    threads against the package's automatic choice, each against the idle run.
``e2e``
    Paul15 end to end as a user runs it: select genes, train to early stop, module_impact,
    group_diff, node_genes (no plots).
``scale``
    Synthetic backed ``.h5ad`` files of N cells x 2,000 genes (``X`` stays on disk): train for
    ``--scale-epochs`` + module_impact, time and peak RSS.
``accuracy``
    The fast path (float32, batched) against a float64 one-cell-at-a-time reference.

Timings depend on the machine and its load: the load average is printed with each section, and
ratios are taken within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from _speed import data, engines  # noqa: E402


def _macs(n_genes: int, hidden: int = 128, latent: int = 64) -> int:
    """Multiply-accumulates of one cell's forward pass through the default autoencoder."""
    return 2 * (n_genes * hidden + hidden * latent)


def steady(seconds: list[float]) -> float | None:
    """Median epoch after the first (warm-up); the only epoch when there is one."""
    if not seconds:
        return None
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


# ----------------------------------------------------------------------------- workers (one subprocess each)
def work_matmul(spec: dict) -> dict:
    import torch

    n, device = spec.get("n", 2048), spec.get("device", "cpu")
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < spec.get("seconds", 2.0):
        a @ b
        reps += 1
    engines._sync(device)
    return {"gflops": 2 * n**3 * reps / (time.perf_counter() - start) / 1e9}


def work_train(spec: dict) -> dict:
    import anndata

    adata = anndata.read_h5ad(spec["path"])
    options = {k: spec[k] for k in ("checkpoint", "auto_threads") if k in spec}
    out = engines.ENGINES[spec["engine"]](adata, spec["epochs"], spec.get("device", "cpu"), **options)
    epoch = steady(out["epoch_s"])
    n_train = int(adata.n_obs * engines.TRAIN_FRACTION)
    out["s_epoch"] = epoch
    out["gflops"] = 3 * 2 * _macs(adata.n_vars) * n_train / epoch / 1e9 if epoch else None
    return out


def work_impact(spec: dict) -> dict:
    import anndata
    import torch

    import scdeconv as sd
    from scdeconv._model_store import load_model
    from scdeconv._module.saliency import default_chunk_size, jacobian
    from scdeconv._module.training import batches, dense_rows

    adata = anndata.read_h5ad(spec["path"])
    device = torch.device(spec.get("device", "cpu"))
    sd.tl.train_autoencoder(adata, mask_var=None, max_epochs=max(spec["epochs"], 1), progress=False,
                            device=str(device), n_threads=torch.get_num_threads())  # fmt: skip
    module, _ = load_model(adata)
    module.to(device)
    counts = adata.X.tocsr()
    size = default_chunk_size(module.n_latent, adata.n_vars)
    repeats = max(int(spec.get("repeats", 1)), 1)

    def bare_jacobian() -> float:
        with torch.no_grad(), engines.cpu_settings(str(device)):
            start = time.perf_counter()
            for rows in batches(adata.n_obs, size):  # the bare exact Jacobian, every node, cell and gene
                jacobian(module, module.prepare_input(dense_rows(counts, rows, device)), guided=False).abs_().sum(0)
            engines._sync(str(device))
            return time.perf_counter() - start

    def impact(profile: str) -> float:
        start = time.perf_counter()
        sd.tl.module_impact(adata, profile=profile, progress=False, device=str(device),
                            n_null=spec.get("n_null", 1000), key_added=f"impact_{profile}",
                            activity_key=f"activity_{profile}")  # fmt: skip
        return time.perf_counter() - start

    # Each timing is the median of ``repeats`` runs after the first (a warm-up: thread pools, first touch).
    runs = {"bare": [], "expression": [], "attribution": []}  # the default profile, then the paper's kind of evidence
    for _ in range(repeats + (repeats > 1)):
        runs["bare"].append(bare_jacobian())
        for profile in ("expression", "attribution"):
            runs[profile].append(impact(profile))
    bare, seconds = steady(runs["bare"]), {p: steady(runs[p]) for p in ("expression", "attribution")}
    flops = 2 * module.n_latent * 128 * adata.n_vars * adata.n_obs
    return {"impact_s": seconds["expression"], "impact_attribution_s": seconds["attribution"], "jacobian_s": bare,
            "gflops": flops / bare / 1e9, "n_sets": adata.uns["impact_expression"]["impact"].shape[1]}  # fmt: skip


def work_e2e(spec: dict) -> dict:
    began = time.perf_counter()
    import gseapy.parser  # noqa: F401  (the heavy imports, timed apart: paid once per session)
    import torch

    import scdeconv as sd

    device = spec.get("device", "cpu")
    adata = sd.datasets.paul15()
    steps = {"imports_s": time.perf_counter() - began}
    clock = start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name], clock = now - clock, now

    sd.pp.select_genes(adata)
    lap("select_s")
    sd.tl.train_autoencoder(adata, progress=False, device=device, n_threads=torch.get_num_threads())
    lap("train_s")
    sd.tl.module_impact(adata, progress=False, device=device)
    lap("impact_s")
    sd.tl.group_diff(adata, "paul15_clusters", ["7MEP", "8Mk"], ["9GMP", "10GMP", "16Neu", "17Neu"], progress=False,
                     device=device)  # fmt: skip
    lap("group_diff_s")
    sd.tl.node_genes(adata, progress=False, device=device)
    lap("node_genes_s")
    steps["total_s"] = time.perf_counter() - start
    steps["epochs"] = int(adata.uns["scdeconv"]["params"]["n_epochs"])
    steps["n_genes"] = len(adata.uns["scdeconv"]["var_names"])
    return steps


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


def run_worker(name: str, spec: dict, threads: int, inline: bool = False) -> dict:
    """Run one measurement in a fresh process with ``threads`` torch threads; it reports its own peak RSS.

    ``inline`` runs it in this process instead (``--smoke``: no start-up per measurement).
    """
    if inline:
        out = WORKERS[name](spec)
        out["rss_gb"] = peak_rss_gb()
        return out
    cmd = [sys.executable, str(HERE), "--worker", name, "--spec", json.dumps(spec), "--threads", str(threads)]
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


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _ratio(a, b):
    return a / b if a and b else None


def _round_median(runs: list[dict], engine: str, key: str, over: str | None = None) -> float | None:
    """Median over rounds of an engine's ``key``, or of its ratio to engine ``over``'s in the same round."""
    values = [r[engine].get(key) if over is None else _ratio(r[engine].get(key), r.get(over, {}).get(key))
              for r in runs]  # fmt: skip
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _pct(gflops, matmul):
    return 100 * gflops / matmul["gflops"] if gflops and matmul.get("gflops") else None


# ----------------------------------------------------------------------------- sections
def section_train(args, w, sets, matmul) -> dict:
    """Per data set and engine: steady-state epoch, setup, ratios. Returns the scdeconv Paul15 epoch (idle).

    Engines run in ``--rounds`` rounds (every engine once per round, in turn), and each ratio is the
    median over rounds of the ratio within a round: the machine's speed drifts over minutes
    (benchmarks/README.md), and engines measured side by side share the drift.
    """
    engine_names = [e for e in args.engines.split(",") if e]
    skipped = [reason for e in engine_names if (reason := engines.available(e))]
    engine_names = [e for e in engine_names if not engines.available(e)]
    rounds = 1 if args.smoke else args.rounds
    print(f"\nTraining, steady state ({load()}; {rounds} round(s), medians); "
          f"{'; '.join(skipped) or 'all engines present'}")  # fmt: skip
    header = ["data", "cells x genes", "epochs", "engine", "s/epoch", "setup s", "x bare loop", "scdeconv speed-up",
              "% matmul", "RSS GB"]  # fmt: skip
    rows, idle = [], {}
    for label, path, n_cells, n_genes, epochs in sets:
        runs = [{e: w("train", path=path, engine=e, epochs=epochs) for e in engine_names} for _ in range(rounds)]
        for e in engine_names:
            speed_up = None if e == "scdeconv" else _round_median(runs, e, "s_epoch", over="scdeconv")
            rss = max(r[e].get("rss_gb") or 0 for r in runs)
            rows.append([label, f"{n_cells} x {n_genes}", epochs, e, _round_median(runs, e, "s_epoch"),
                         _round_median(runs, e, "setup_s"), _round_median(runs, e, "s_epoch", over="bare"), speed_up,
                         _pct(_round_median(runs, e, "gflops"), matmul), rss])  # fmt: skip
        idle[label] = _round_median(runs, "scdeconv", "s_epoch")
    print(table(header, rows))
    print("x bare loop: an engine's epoch over the bare torch loop's (target for scdeconv: <= 1.3); scdeconv")
    print("speed-up: the engine's epoch over scdeconv's (target for LinearSCVI: >= 4); ratios are medians over")
    print("rounds of the ratio within a round.")
    return idle


def section_impact(args, w, sets) -> None:
    repeats = 1 if args.smoke else args.repeats
    print(
        f"\nmodule_impact vs the bare exact Jacobian ({load()}; target <= 1.5x; "
        + (f"median of {repeats} runs after a warm-up)" if repeats > 1 else "one run)")
    )
    rows = []
    for label, path, *_ in sets[: 1 if args.smoke else 2]:
        r = w("impact", path=path, epochs=1, n_null=50 if args.smoke else 1000, repeats=repeats)
        rows.append([label, r.get("n_sets"), r.get("jacobian_s"), r.get("impact_s"),
                     _ratio(r.get("impact_s"), r.get("jacobian_s")), r.get("impact_attribution_s"),
                     _ratio(r.get("impact_attribution_s"), r.get("jacobian_s")), r.get("rss_gb")])  # fmt: skip
    print(table(["data", "sets", "Jacobian s", "module_impact s", "impact / Jacobian",
                 "attribution profile s", "attribution / Jacobian", "RSS GB"], rows))  # fmt: skip


def section_checkpoint(args, w, sets, tmp: Path) -> None:
    print(f"\nCheckpoint after every epoch vs none ({load()}; target overhead < 5%)")
    rows = []
    for label, path, _, _, epochs in sets:
        plain = w("train", path=path, engine="scdeconv", epochs=epochs)
        saved = w("train", path=path, engine="scdeconv", epochs=epochs, checkpoint=str(tmp / f"{label}.ckpt"))
        rows.append([label, plain.get("s_epoch"), saved.get("s_epoch"),
                     100 * (_ratio(saved.get("s_epoch"), plain.get("s_epoch")) or np.nan) - 100])  # fmt: skip
    print(table(["data", "s/epoch, none", "s/epoch, every epoch", "overhead %"], rows))


def section_loaded(args, w, sets, idle: dict) -> None:
    label, path, _, _, epochs = sets[0]
    print(f"\nOn a busy machine: {label} while another process keeps one CPU busy ({load()})")
    busy = subprocess.Popen([sys.executable, "-c", "x = 0\nwhile True:\n    x += 1"])
    try:
        time.sleep(1.0)
        default = w("train", path=path, engine="scdeconv", epochs=epochs)  # torch's threads, fixed
        auto = w("train", path=path, engine="scdeconv", epochs=epochs, auto_threads=True)
    finally:
        busy.kill()
    quiet = idle.get(label)
    rows = [["torch default threads", default.get("s_epoch"), _ratio(default.get("s_epoch"), quiet)],
            ["n_threads=None (free CPUs)", auto.get("s_epoch"), _ratio(auto.get("s_epoch"), quiet)]]  # fmt: skip
    print(table(["threads", "s/epoch, loaded", "loaded / idle (target <= 2.5)"], rows))


def section_e2e(args, w) -> None:
    r = w("e2e")
    print(f"\nEnd to end on Paul15 ({load()}; select genes, train to early stop, impact, group_diff, node_genes;"
          " target < 8 s; imports of torch, gseapy and scdeconv and reading Paul15 timed apart)")  # fmt: skip
    keys = ["total_s", "select_s", "train_s", "epochs", "impact_s", "group_diff_s", "node_genes_s", "imports_s",
            "rss_gb"]  # fmt: skip
    header = ["total s", "select s", "train s", "epochs", "impact s", "group_diff s", "node_genes s",
              "imports + read s", "RSS GB"]  # fmt: skip
    print(table(header, [[r.get(k) for k in keys]]))


def section_scale(args, w, tmp: Path) -> None:
    sizes = [2000] if args.smoke else [int(s) for s in args.scale.split(",") if s]
    header = ["cells", "file GB", "train s", "impact s", "total s", "s per 1M cells (linear)", "peak RSS GB"]
    print(f"\nFrom disk (backed .h5ad, X streamed in chunks): train {args.scale_epochs} epoch(s) + module_impact"
          f" ({load()})")  # fmt: skip
    print(table(header, []), flush=True)
    for n in sizes:
        path = tmp / f"synthetic_{n}.h5ad"
        data.write_synthetic_h5ad(path, n, n_genes=200 if args.smoke else 2000)
        res = w("scale", path=str(path), epochs=args.scale_epochs, n_null=20 if args.smoke else 200)
        total = (res.get("train_s") or np.nan) + (res.get("impact_s") or np.nan)
        row = [n, f"{path.stat().st_size / 1e9:.2f}", res.get("train_s"), res.get("impact_s"), total,
               total / n * 1e6, res.get("rss_gb")]  # fmt: skip
        print(table(header, [row]).splitlines()[-1], flush=True)
        path.unlink()


def section_accuracy(args, w) -> None:
    acc = w("accuracy", cells=300 if args.smoke else 1500, genes=500 if args.smoke else 2000,
            epochs=3 if args.smoke else 60)  # fmt: skip
    print("\nFast path (float32, batched) vs reference (float64, unbatched) on the simulator")
    print(table(["", "validation loss", "planted-set AUPRC"],
                [["fast", acc.get("fast_val"), acc.get("fast_auprc")], ["reference", acc.get("ref_val"),
                  acc.get("ref_auprc")]]))  # fmt: skip
    same_loss = abs(acc["fast_val"] - acc["ref_val"]) <= 1e-4 * abs(acc["ref_val"])
    agree = same_loss and abs(acc["fast_auprc"] - acc["ref_auprc"]) < 1e-6
    print(f"max |impact difference| / max |impact|: {acc['impact_rel_diff']:.2e}; agree: {agree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    parser.add_argument("--copies", default="10", help="synthetic copies of Paul15 (x cells), comma-separated")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per engine on Paul15 (median after the first)")
    parser.add_argument("--copy-epochs", type=int, default=6, help="epochs per engine on the copies")
    parser.add_argument("--rounds", type=int, default=2, help="training rounds (every engine once per round)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of the Jacobian and module_impact (median, after a warm-up)"
    )
    parser.add_argument("--engines", default="bare,scdeconv,scvi,drvi", help="training engines to time")
    parser.add_argument("--scale", default="10000,100000", help="cells of the on-disk runs (x 2,000 genes)")
    parser.add_argument("--scale-epochs", type=int, default=1, help="epochs of each on-disk training run")
    parser.add_argument("--sections", default="train,impact,checkpoint,loaded,e2e,scale,accuracy",
                        help="sections to run (default: all)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch threads of every worker (default: all CPUs)")
    parser.add_argument("--device", default="cpu", help="torch device of every engine (cpu, cuda)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        out = WORKERS[args.worker](json.loads(args.spec))
        out["rss_gb"] = peak_rss_gb()
        print(json.dumps(out))
        return
    run_all(args)


def run_all(args) -> None:
    import torch

    from scdeconv._module.compute import available_cpus

    threads = args.threads or available_cpus()
    if args.smoke:
        args.engines = "bare,scdeconv"
    tmp = Path(tempfile.mkdtemp(prefix="scdeconv_speed_"))
    w = lambda name, **spec: run_worker(name, {"device": args.device, **spec}, threads, inline=args.smoke)  # noqa: E731
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {threads} threads per worker"
    print(f"Device: {args.device} ({device}); {os.cpu_count()} CPUs; {load()}. Ratios are within this run.")
    matmul = w("matmul", n=512 if args.smoke else 2048, seconds=0.5 if args.smoke else 3.0)
    print(f"fp32 matmul: {fmt(matmul.get('gflops'), 1)} GFLOP/s", flush=True)

    sections = set(args.sections.split(","))
    base = data.paul15_counts()
    if args.smoke:
        base = base[:300].copy()
        base = base[:, np.asarray(base.X.sum(axis=0)).ravel() > 0].copy()
    sets = []
    factors = [1] if args.smoke else [1, *(int(c) for c in args.copies.split(",") if c)]
    for factor in factors:
        copy = base if factor == 1 else data.nb_copies(base, factor)
        path = tmp / f"paul15_x{factor}.h5ad"
        copy.write_h5ad(path)
        epochs = 2 if args.smoke else (args.epochs if factor == 1 else args.copy_epochs)
        sets.append((f"Paul15 x{factor}", str(path), copy.n_obs, copy.n_vars, epochs))
    idle = section_train(args, w, sets, matmul) if "train" in sections else {}
    if "impact" in sections:
        section_impact(args, w, sets)
    if "checkpoint" in sections:
        section_checkpoint(args, w, sets, tmp)
    if "loaded" in sections and not args.smoke and args.device == "cpu":
        section_loaded(args, w, sets, idle)
    if "e2e" in sections and not args.smoke:
        section_e2e(args, w)
    if "scale" in sections:
        section_scale(args, w, tmp)
    if "accuracy" in sections:
        section_accuracy(args, w)


if __name__ == "__main__":
    main()
