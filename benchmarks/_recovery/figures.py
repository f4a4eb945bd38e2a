"""The report's figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import TOP
from .metrics import GROUP_DIFF_ROW


def figures(out: Path, sim: pd.DataFrame, xor: pd.DataFrame, abl: pd.DataFrame) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    made = []
    # 1. Program recovery and group-test power by difficulty.
    methods = list(dict.fromkeys(sim["method"]))
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(m for m in methods if m != GROUP_DIFF_ROW)}
    colors[GROUP_DIFF_ROW] = "gold"  # beside scdeconv's blue, not a wrapped-around tab10 colour
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric in zip(axes, ["AUPRC", "power", "discovery"], strict=True):
        if metric not in sim:
            continue
        pivot = sim.pivot_table(index="level", columns="method", values=metric, aggfunc="mean", sort=False)
        pivot = pivot.dropna(axis=1, how="all")
        pivot.plot.bar(ax=ax, rot=0, legend=False, color=[colors[m] for m in pivot.columns])
        ax.set_title(metric)
        ax.set_ylim(0, 1.05)
    # One legend for the three panels, outside them: a method may be in one panel only (group_diff: power).
    legend = {}
    for ax in axes:
        legend.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    fig.legend(legend.values(), legend.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(fig_dir / "recovery_by_level.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    made.append("figures/recovery_by_level.png")
    # 2. Power vs false discovery, every (level, seed, method).
    if "power" in sim:
        fig, ax = plt.subplots(figsize=(7.0, 4.5))
        # The attribution row shares the default's per-cell activity (same points), so it is left
        # out; scdeconv is drawn last, as larger edged diamonds (stars: what sd.tl.group_diff itself
        # calls), so the peers do not hide it.
        rows = sim.dropna(subset=["power"])
        rows = rows[rows["method"] != "scdeconv (attribution)"]
        for method in [m for m in methods if m in set(rows["method"])][::-1]:
            part = rows[rows["method"] == method]
            ours = method in ("scdeconv", GROUP_DIFF_ROW)
            ax.scatter(
                part["FDP"],
                part["power"],
                label=method,
                color=colors[method],
                s=(110 if method == GROUP_DIFF_ROW else 60) if ours else 25,
                marker=("*" if method == GROUP_DIFF_ROW else "D") if ours else "o",
                edgecolors="black" if ours else "none",
                zorder=(4 if method == GROUP_DIFF_ROW else 3) if ours else 2,  # the stars over the diamonds
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
    folds = list(dict.fromkeys(xor["fold change"])) if "fold change" in xor else [None]
    fig, axes = plt.subplots(1, len(folds), figsize=(5 * len(folds), 4), sharey=True, squeeze=False)
    for ax, fold in zip(axes[0], folds, strict=True):  # one panel per fold change, methods side by side
        part = xor if fold is None else xor[xor["fold change"] == fold]
        means = part.groupby("method", sort=False)[["single modules", "XOR modules"]].mean()
        means.plot.bar(ax=ax, rot=30, legend=ax is axes[0][0])
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.set_title("" if fold is None else f"fold change {fold}")
        ax.set_xlabel("")
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel(f"markers among best node's top {TOP}")
    fig.tight_layout()
    fig.savefig(fig_dir / "xor_metric.png", dpi=110)
    plt.close(fig)
    made.append("figures/xor_metric.png")
    # 4. Ablations.
    if not abl.empty:
        fig, ax = plt.subplots(figsize=(9, 4))
        cols = [c for c in ("AUPRC", "power", "discovery") if c in abl]
        abl.groupby("variant", sort=False)[cols].mean().plot.bar(ax=ax, rot=40)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")  # long names do not overlap
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # the last bars stay visible
        fig.tight_layout()
        fig.savefig(fig_dir / "ablations.png", dpi=110)
        plt.close(fig)
        made.append("figures/ablations.png")
    return made
