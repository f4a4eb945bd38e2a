"""Run the torch core on CUDA and on the CPU with the same seeds; check they agree and time both.

Uses the torch core only (``scdeconv._module``, which never touches AnnData); install the project
on the GPU machine first (``pip install -e .``), then run ``python benchmarks/device_check.py``.
Prints the device, per-epoch training time, saliency throughput, and the largest CPU-vs-GPU
differences of losses, latent codes, attribution sums, per-cell node-set scores and node_genes'
expression shifts.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy import sparse

from scdeconv._module.autoencoder import Autoencoder
from scdeconv._module.config import FitConfig, StreamOptions
from scdeconv._module.inference import embed, weighted_input_sums
from scdeconv._module.reducers import AttributionProfile, NodeSetScores
from scdeconv._module.saliency import stream_attributions
from scdeconv._module.training import fit, resolve_device


def node_set_scores(module, counts, sets, device) -> np.ndarray:
    """Per-cell (node, set) robust enrichment, as group_diff's tests use it, on the first 500 cells."""
    bins = (np.argsort(np.argsort(np.asarray(counts.mean(axis=0)).ravel())) * 10 // counts.shape[1]).astype(np.int64)
    scores = NodeSetScores(500, module.n_latent, bins, sets)  # each of the 500 cells its own group
    labels = np.where(np.arange(counts.shape[0]) < 500, np.arange(counts.shape[0]), -1)
    stream_attributions(module, counts, [scores], labels=labels, method="grad_x_input",
                        options=StreamOptions(device=device, progress=False))  # fmt: skip
    return scores.sums


def expression_shift(module, counts, weights, device) -> np.ndarray:
    """Nodes x genes: (mean input in each node's weighted cells - mean) / sd, as sd.tl.node_genes."""
    sums = weighted_input_sums(module, counts, weights, device=device)
    n = counts.shape[0]
    mean = sums["sum"] / n
    sd = np.sqrt(np.maximum(sums["squares"] / n - mean**2, 0.0))
    return (sums["weighted"] / weights.sum(axis=0)[:, None] - mean) / np.where(sd > 0, sd, np.inf)


def run(device: str, counts, sets, epochs: int) -> dict:
    module = Autoencoder(counts.shape[1], generator=torch.Generator().manual_seed(0))
    rows = np.arange(counts.shape[0])
    start = time.perf_counter()
    result = fit(module, counts, train_rows=rows[200:], val_rows=rows[:200],
                 config=FitConfig(max_epochs=epochs, patience=epochs), device=device, progress=False)  # fmt: skip
    train = (time.perf_counter() - start) / epochs
    latent = embed(module, counts, device=device)
    start = time.perf_counter()
    profile = AttributionProfile(1, module.n_latent, counts.shape[1])
    stream_attributions(module, counts, [profile], labels=np.zeros(counts.shape[0], dtype=np.int64),
                        method="grad_x_input", options=StreamOptions(device=device, progress=False))  # fmt: skip
    sums = profile.sums[0]
    if device != "cpu":
        torch.cuda.synchronize()
    saliency = counts.shape[0] / (time.perf_counter() - start)
    node_sets = node_set_scores(module, counts, sets, device)
    return {"val": np.array(result.val_loss), "latent": latent, "sums": sums, "node_sets": node_sets,
            "module": module, "s/epoch": train, "cells/s": saliency}  # fmt: skip


def main() -> None:
    device = resolve_device("auto")
    print(f"device auto -> {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    rng = np.random.default_rng(0)
    mean = rng.lognormal(0, 1.2, size=2000) * rng.lognormal(0, 0.5, size=(6000, 1)) * 0.5
    counts = sparse.csr_matrix(rng.poisson(mean).astype(np.float32))
    sets = [rng.choice(2000, 40, replace=False) for _ in range(50)]
    results = {"cpu": run("cpu", counts, sets, epochs=3)}
    if device.type == "cuda":
        results["cuda"] = run("cuda", counts, sets, epochs=3)
        cpu, gpu = results["cpu"], results["cuda"]
        print("max |val loss diff|", float(np.abs(cpu["val"] - gpu["val"]).max()))
        print("max |latent diff|", float(np.abs(cpu["latent"] - gpu["latent"]).max()))
        scale = np.abs(cpu["sums"]).max()
        print("max |attribution-sum diff| / largest sum", float(np.abs(cpu["sums"] - gpu["sums"]).max() / scale))
        top = np.abs(cpu["sums"]) > 1e-3 * scale  # entries that are not numerically zero
        rel = np.abs(cpu["sums"] - gpu["sums"])[top] / np.abs(cpu["sums"])[top]
        print("max rel attribution-sum diff where sums > 1e-3 of the largest", float(rel.max()))
        # Same (GPU-trained) model on both devices: the numerical path alone.
        same_model = node_set_scores(gpu["module"].cpu(), counts, sets, "cpu")
        diff = np.abs(same_model - gpu["node_sets"])
        print("per-cell node-set scores, same model, |CPU - GPU|: max", float(diff.max()), "99.9th pct",
              float(np.percentile(diff, 99.9)), "median", float(np.median(diff)),
              "| scores' sd", float(gpu["node_sets"].std()))  # fmt: skip
        # node_genes' expression shift in each node's active cells (top quarter), same model.
        latent = gpu["latent"].astype(np.float64)
        weights = (latent >= np.quantile(latent, 0.75, axis=0)).astype(np.float64)
        shifts = {d: expression_shift(gpu["module"], counts, weights, d) for d in ("cpu", "cuda")}
        print("expression shift in active cells, same model, max |CPU - GPU|",
              float(np.abs(shifts["cpu"] - shifts["cuda"]).max()), "| largest shift",
              float(np.abs(shifts["cpu"]).max()))  # fmt: skip
    for name, r in results.items():
        speed = f"{r['s/epoch']:.3f} s/epoch (6000 x 2000), saliency {r['cells/s']:.0f} cells/s"
        print(f"{name}: {speed}, val {r['val'][-1]:.4f}")


if __name__ == "__main__":
    main()
