"""Recovery benchmark: scdeconv against decoupler, LinearSCVI, DRVI, cNMF, PCA, NMF and a plain autoencoder.

Run ``python benchmarks/recovery.py`` to regenerate ``benchmarks/RESULTS.md`` and the figures in
``benchmarks/figures/`` (``--smoke`` for a tiny run in well under a minute, ``--out DIR`` to write
elsewhere). Needs ``pip install -e ".[benchmarks]"`` for decoupler, scvi-tools, drvi-py and cnmf;
without them those peers are skipped and the report says so.

Every method is turned into the same outputs, on the same cells and genes:

- an **embedding** (cells x d) for neighbourhood preservation and kNN accuracy;
- a **components x genes importance** matrix (our nodes' expression shifts, |loadings| of PCA, NMF,
  LinearSCVI, DRVI's per-direction interpretability scores, cNMF's spectra scores) that gives each
  component's top-20 genes (discovery, the XOR metric) and, through one shared enrichment
  (importance z-scored within expression bins, Stouffer-summed over the set, best component), a
  **score per gene set** for program recovery;
- a **per-cell activity** of every gene set, compared group vs rest by the same Mann-Whitney
  test with BH FDR (the self-contained part of what ``sd.tl.group_diff`` reports as
  ``set_tests``) for power and false discovery.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from pathlib import Path

import pandas as pd
from _recovery.bounds import run_bounds
from _recovery.config import HERE, SMOKE, Config
from _recovery.measure import log
from _recovery.methods import OPTIONAL_PEERS, peers
from _recovery.real import EXPECTATIONS, run_real
from _recovery.report import write_report
from _recovery.simulation import run_ablations, run_simulation
from _recovery.stability import run_stability
from _recovery.toys import run_parity, run_parity_codes, run_xor


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one seed, few peers (< 60 s)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for RESULTS.md and figures/")
    parser.add_argument("--seeds", type=int, nargs="+", help="simulator seeds (default 0 1 2)")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite RESULTS.md from the tables of the last run (figures/*.csv)"
    )
    parser.add_argument(
        "--only",
        choices=tuple(ALONE),
        help="rerun one stage alone (stability: criterion 5; codes: the parity decoder fed oracle codes,"
        " criterion 8; bounds: oracle nodes and per-cell separability, criterion 1); the other tables come"
        " from the last run",
    )
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else Config()
    if args.seeds:
        cfg.seeds = tuple(args.seeds)
    tables = args.out / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    package_logger = logging.getLogger("scdeconv")
    level_before = package_logger.level
    package_logger.setLevel(logging.ERROR)
    try:
        if args.report_only or args.only:
            return _from_tables(args, cfg, tables)
        return _run(args, cfg, tables)
    finally:
        package_logger.setLevel(level_before)  # main() called from Python (the tests) leaves the logger as it was


PARTS = ("sim", "bounds", "xor", "parity", "codes", "real", "abl", "stab")


def _from_tables(args: argparse.Namespace, cfg: Config, tables: Path) -> Path:
    """RESULTS.md from the last run's tables, the stability stage rerun first when asked."""
    parts = {k: _read_table(tables / f"recovery_{k}.csv") for k in PARTS}
    meta = pd.read_csv(tables / "recovery_meta.csv").iloc[0]
    cfg.seeds = tuple(int(v) for v in parts["sim"]["seed"].unique())
    skipped = [] if pd.isna(meta["skipped"]) else str(meta["skipped"]).split("; ")
    seconds = float(meta["seconds"])
    if args.only:
        start = time.perf_counter()
        part, stage = ALONE[args.only]
        parts[part] = stage(cfg, skipped)
        parts[part].to_csv(tables / f"recovery_{part}.csv", index=False)
        seconds += time.perf_counter() - start
    return write_report(args.out, cfg, parts, seconds, skipped, str(meta.get("load", "")))


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() else pd.DataFrame()  # a run before the stage existed


def _stability_stage(cfg: Config, failed: list[str]) -> pd.DataFrame:
    return _stage(
        "stability",
        lambda: pd.DataFrame([r for lv in cfg.levels for s in cfg.stability_seeds for r in run_stability(lv, s, cfg)]),
        failed,
        ("level", "set", "kind", "fraction found", "best node stability"),
    )


def _codes_stage(cfg: Config, failed: list[str]) -> pd.DataFrame:
    return _stage(
        "parity codes",
        lambda: pd.DataFrame([r for s in cfg.seeds for r in run_parity_codes(s, cfg)]),
        failed,
        ("code", "held-out loss"),
    )


def _bounds_stage(cfg: Config, failed: list[str]) -> pd.DataFrame:
    return _stage(
        "bounds",
        lambda: pd.DataFrame([run_bounds(lv, s, cfg) for lv in cfg.levels for s in cfg.seeds]),
        failed,
        ("level", "oracle-node AUPRC", "supervised accuracy", "largest group share"),
    )


# Stages that --only reruns alone: name -> (part of the report, stage).
ALONE = {
    "stability": ("stab", _stability_stage),
    "codes": ("codes", _codes_stage),
    "bounds": ("bounds", _bounds_stage),
}


def _run(args: argparse.Namespace, cfg: Config, tables: Path) -> Path:
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    runners = peers(cfg)
    skipped = [p for p in OPTIONAL_PEERS if p not in runners]
    keep: dict = {}
    sim = pd.DataFrame([r for lv in cfg.levels for s in cfg.seeds for r in run_simulation(lv, s, cfg, runners, keep)])
    log(f"simulations done ({time.perf_counter() - start:.0f} s)")
    bounds = _bounds_stage(cfg, skipped)
    abl = _stage("ablations", lambda: run_ablations(cfg, keep, sim), skipped)
    log(f"ablations done ({time.perf_counter() - start:.0f} s)")
    xor = _stage(
        "XOR toy",
        lambda: pd.DataFrame([r for s in cfg.seeds for r in run_xor(s, cfg, runners)]),
        skipped,
        ("fold change", "single modules", "XOR modules", "seconds"),
    )
    parity = _stage(
        "parity",
        lambda: pd.DataFrame([r for s in cfg.seeds for r in run_parity(s, cfg, runners)]),
        skipped,
        (
            "linear probe (parity)",
            "15-NN (parity)",
            "best single node AUROC",
            "linear probe (factors)",
            "genes at FDR < 0.05",
            "set p-value",
        ),
    )
    codes = _codes_stage(cfg, skipped)
    log(f"toys done ({time.perf_counter() - start:.0f} s)")
    real_sets = [
        w for w in EXPECTATIONS if cfg.real and (w.startswith("T cells") or (w.startswith("Paul15") and cfg.paul15))
    ]
    skipped += [w.split(":")[0] for w in EXPECTATIONS if w not in real_sets]
    real = _stage("real data", lambda: pd.DataFrame([r for w in real_sets for r in run_real(w, cfg, runners)]), skipped)
    log(f"real data done ({time.perf_counter() - start:.0f} s)")
    stab = _stability_stage(cfg, skipped)
    log(f"stability done ({time.perf_counter() - start:.0f} s)")
    parts = dict(sim=sim, bounds=bounds, xor=xor, parity=parity, codes=codes, real=real, abl=abl, stab=stab)
    if not cfg.smoke:
        for name, table in parts.items():
            table.to_csv(tables / f"recovery_{name}.csv", index=False)
        load = f"1-min load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} CPUs"
        meta = {"seconds": time.perf_counter() - start, "skipped": "; ".join(skipped), "load": load}
        pd.DataFrame([meta]).to_csv(tables / "recovery_meta.csv", index=False)
    load = f"1-min load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} CPUs"
    path = write_report(args.out, cfg, parts, time.perf_counter() - start, skipped, load)
    log(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    return path


def _stage(name: str, run, failed: list[str], columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Run one part of the benchmark; a failure is reported (and listed in RESULTS.md), not fatal."""
    try:
        return run()
    except Exception:
        import traceback

        log(f"{name} FAILED:\n{traceback.format_exc()}")
        failed.append(f"{name} (failed, see the log)")
        return pd.DataFrame(columns=["seed", "method", "data", "variant", *columns])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
