"""The report's figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import TOP


def figures(out: Path, sim: pd.DataFrame, xor: pd.DataFrame, abl: pd.DataFrame) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    made = []
    # 1. Program recovery and group-test power by difficulty.
    methods = list(dict.fromkeys(sim["method"]))
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric in zip(axes, ["AUPRC", "power", "discovery"], strict=True):
        if metric not in sim:
            continue
        pivot = sim.pivot_table(index="level", columns="method", values=metric, aggfunc="mean", sort=False)
        pivot = pivot.dropna(axis=1, how="all")
        pivot.plot.bar(ax=ax, rot=0, legend=ax is axes[0], color=[colors[m] for m in pivot.columns])
        ax.set_title(metric)
        ax.set_ylim(0, 1.05)
    if axes[0].get_legend():
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(fig_dir / "recovery_by_level.png", dpi=110)
    plt.close(fig)
    made.append("figures/recovery_by_level.png")
    # 2. Power vs false discovery, every (level, seed, method).
    if "power" in sim:
        fig, ax = plt.subplots(figsize=(7.0, 4.5))
        # The attribution row shares the default's per-cell activity (same points), so it is left
        # out; scdeconv is drawn last, as larger edged diamonds, so the peers do not hide it.
        rows = sim.dropna(subset=["power"])
        rows = rows[rows["method"] != "scdeconv (attribution)"]
        for method in [m for m in methods if m in set(rows["method"])][::-1]:
            part = rows[rows["method"] == method]
            ours = method == "scdeconv"
            ax.scatter(
                part["FDP"],
                part["power"],
                label=method,
                color=colors[method],
                s=60 if ours else 25,
                marker="D" if ours else "o",
                edgecolors="black" if ours else "none",
                zorder=3 if ours else 2,
            )
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.set_xlabel("false discovery proportion (never-planted sets)")
        ax.set_ylabel("power (planted sets, group vs rest)")
        fig.tight_layout()
        fig.savefig(fig_dir / "power_vs_fdp.png", dpi=110)
        plt.close(fig)
        made.append("figures/power_vs_fdp.png")
    # 3. The paper's XOR metric.
    if xor.empty:
        return made
    fig, ax = plt.subplots(figsize=(10, 4.5))
    by = ["fold change", "method"] if "fold change" in xor else ["method"]
    xor.groupby(by, sort=False)[["single modules", "XOR modules"]].mean().plot.bar(ax=ax, rot=60)
    ax.set_ylabel(f"markers among best node's top {TOP}")
    ax.set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(fig_dir / "xor_metric.png", dpi=110)
    plt.close(fig)
    made.append("figures/xor_metric.png")
    # 4. Ablations.
    if not abl.empty:
        fig, ax = plt.subplots(figsize=(8, 4))
        cols = [c for c in ("AUPRC", "power", "discovery") if c in abl]
        abl.groupby("variant", sort=False)[cols].mean().plot.bar(ax=ax, rot=35)
        ax.set_ylim(0, 1.05)
        fig.tight_layout()
        fig.savefig(fig_dir / "ablations.png", dpi=110)
        plt.close(fig)
        made.append("figures/ablations.png")
    return made
