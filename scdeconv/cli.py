"""Command line: ``scdeconv demo`` (bundled Paul15) and ``scdeconv run FILE.h5ad``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

# The paper compared sorted populations (CMP CD41 vs Cebpe control) that this file lacks; these
# cluster pools are the nearest stand-ins: CD41 (Itga2b) marks megakaryocyte-biased progenitors,
# and Cebpe drives granulocyte (neutrophil) differentiation from GMPs.
DEMO_GROUP1 = ["7MEP", "8Mk"]
DEMO_GROUP2 = ["9GMP", "10GMP", "16Neu", "17Neu"]
DEMO_NOTE = (
    "The paper compared the sorted populations CMP CD41 and Cebpe control, whose labels are not in the "
    "bundled Paul15 file. As stand-ins, this compares megakaryocyte/erythroid-biased progenitors "
    "(clusters 7MEP + 8Mk; CD41/Itga2b marks Mk-biased CMPs) with granulocyte-monocyte progenitors and "
    "neutrophils (9GMP + 10GMP + 16Neu + 17Neu; Cebpe drives the granulocyte programme)."
)


def _groups(value: str) -> str | list[str]:
    """``"A"`` -> ``"A"``; ``"A,B"`` -> ``["A", "B"]`` (categories pooled into one group)."""
    parts = [p for p in value.split(",") if p]
    return parts[0] if len(parts) == 1 else parts


def _read(path: Path):
    """The whole file in memory, or a ValueError that says the file is not a readable .h5ad."""
    import anndata as ad

    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py and anndata raise OSError, KeyError, AnnDataReadError, ...
        raise ValueError(
            f"{path} is not a readable .h5ad file ({type(err).__name__}: {err}). Check that it is complete "
            "(not truncated) and was written by anndata's write_h5ad."
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scdeconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--max-epochs", type=int, default=200, help="training epochs at most (early stopping)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    demo = commands.add_parser("demo", parents=[common], help="the paper's figure on the bundled Paul15 data")
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")

    run = commands.add_parser("run", parents=[common], help="the same pipeline on your .h5ad file")
    run.add_argument("file", help="AnnData .h5ad with raw counts")
    run.add_argument("--groupby", required=True, help="obs column with the groups to compare")
    run.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        required=True,
        help="two groups; comma-separated categories are pooled; B may be 'rest'",
    )
    run.add_argument("--out", default="scdeconv_out")
    run.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    run.add_argument("--gene-sets", default="hallmark", help="'hallmark' or a .gmt path")
    run.add_argument("--species", choices=["human", "mouse"], default=None)
    run.add_argument("--genes", choices=["geneset", "hvg", "all"], default="geneset", help="gene selection mode")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    from . import datasets
    from ._pipeline import run_pipeline

    started = time.perf_counter()
    try:
        if args.command == "demo":
            adata = datasets.paul15()
            adata.obs["cluster"] = adata.obs["paul15_clusters"]
            options = dict(
                groupby="cluster",
                group1=DEMO_GROUP1,
                group2=DEMO_GROUP2,
                dataset="Paul et al. 2015 mouse myeloid progenitors (bundled)",
                comparison_note=DEMO_NOTE,
            )
        else:
            path = Path(args.file)
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist.")
            adata = _read(path)
            group1, group2 = (_groups(g) for g in args.compare)
            options = dict(
                groupby=args.groupby,
                group1=group1,
                group2=group2,
                dataset=path.name,
                layer=args.layer,
                gene_sets=args.gene_sets,
                species=args.species,
                gene_mode=args.genes,
            )
        _, timings = run_pipeline(
            adata, args.out, max_epochs=args.max_epochs, seed=args.seed, progress=not args.quiet, **options
        )
    except (ValueError, KeyError, TypeError, FileNotFoundError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        message = " ".join(str(message).split())  # one line, whatever the exception held
        message = message.replace("Pass `layer=`", "Pass `--layer`")  # the library's advice, in CLI words
        print(f"scdeconv {args.command}: error: {message}", file=sys.stderr)
        return 1
    total = time.perf_counter() - started
    print(f"Wrote figures, report.md and scdeconv_result.h5ad to {args.out}/ in {total:.1f} s.")
    print("  " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
