"""Command line: ``scdeconv demo`` (bundled Paul15) and ``scdeconv run FILE.h5ad``.

The parser's texts are plain (``--help`` prints them as they are); the library's error messages
are printed as the library wrote them, followed by the command-line option of each library
parameter they name (:data:`LIBRARY_OPTIONS`).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

from . import __version__

DESCRIPTION = (
    "Train an autoencoder on single-cell RNA-seq counts and deconvolve it into gene programmes "
    "(Kinalis et al. 2019): which gene sets drive each node of the representation, and which "
    "separate two groups of cells. Writes the figures (panels a, c, d, e), report.md and the "
    "AnnData with all results."
)
EPILOG = """\
examples:
  scdeconv demo --out demo_out
  scdeconv run data.h5ad --groupby leiden --compare 3 rest --layer counts --out my_report
  scdeconv run data.h5ad --groupby cell_type --compare "CD8 T" "CD4 T,Treg"

Run "scdeconv demo -h" or "scdeconv run -h" for the options of a command.
"""

# Library parameter -> the option of a command that sets it. When a library error names one of
# these parameters (``layer=``, ``species='mouse'``), the CLI adds which option that is.
LIBRARY_OPTIONS = {
    "layer": "--layer",
    "sample_key": "--sample-key",
    "gene_sets": "--gene-sets",
    "species": "--species",
    "mode": "--genes",
    "max_epochs": "--max-epochs",
    "seed": "--seed",
}

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

# What the paper read in Paul15 (Kinalis et al. 2019): an erythroid node explained by heme
# metabolism and a myeloid node by the inflammatory response. The report checks both on each run:
# is the set called, and do its best node's top genes hold the lineage's markers?
DEMO_EXPECTATIONS = (
    (
        "HALLMARK_HEME_METABOLISM",
        "erythroid node",
        (
            *("Klf1", "Gata1", "Car1", "Car2", "Blvrb", "Hba-a2", "Hbb-b1", "Alas2", "Ermap", "Rhag", "Rhd"),
            *("Add2", "Spta1", "Slc4a1", "Gypa", "Epor", "Aqp1"),
        ),
    ),
    (
        "HALLMARK_INFLAMMATORY_RESPONSE",
        "myeloid (granulocyte/monocyte) node",
        ("Mpo", "Elane", "Prtn3", "Ctsg", "Lyz2", "Cebpe", "Csf1r", "Fcgr3", "Ms4a3", "Ly6c1", "Lcn2", "Ltf"),
    ),
)
DEMO_EXPECTATIONS_NOTE = (
    "The paper read an erythroid node explained by HEME_METABOLISM and a myeloid node explained by "
    "INFLAMMATORY_RESPONSE in these data. Each holds here when the set is called for some node and that "
    "node's top genes include markers of the lineage; the last lines say which nodes the markers lead instead."
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


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's wrapping of paragraphs, except blocks with indented lines (the examples), kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = text.strip("\n").split("\n\n")
        return "\n\n".join(
            "\n".join(indent + line for line in block.splitlines())
            if "\n " in block
            else super(_HelpFormatter, self)._fill_text(block, width, indent)
            for block in blocks
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scdeconv", description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="{demo,run}", help="the pipeline to run"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--max-epochs",
        type=int,
        default=200,
        help="training epochs at most; early stopping may end sooner (default: 200)",
    )
    common.add_argument("--seed", type=int, default=0, help="random seed of the training (default: 0)")
    common.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="checkpoint training to FILE; rerunning the same command after a crash or kill resumes from it",
    )
    common.add_argument(
        "--quiet", action="store_true", help="no progress bars and no info messages (warnings and errors only)"
    )

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="the paper's figure on the bundled Paul15 data",
        description="The whole pipeline on the bundled Paul et al. 2015 myeloid progenitors: "
        "megakaryocyte/erythroid-biased progenitors (7MEP, 8Mk) against granulocyte-monocyte "
        "progenitors and neutrophils (9GMP, 10GMP, 16Neu, 17Neu).",
    )
    demo.add_argument("--out", default="demo_out", help="output folder, created if missing (default: demo_out)")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="the same pipeline on your .h5ad file",
        description="The whole pipeline on your AnnData file: gene selection, training, impact of the "
        "gene sets on each node, and the comparison of two groups of cells.",
    )
    run.add_argument("file", help="AnnData .h5ad with raw counts (in X, or in the layer given by --layer)")
    run.add_argument("--groupby", required=True, help="obs column with the groups to compare")
    run.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        required=True,
        help="two groups; comma-separated categories are pooled; B may be 'rest'",
    )
    run.add_argument(
        "--sample-key",
        default=None,
        help="obs column of each cell's sample (donor, patient): test the groups across samples, not cells",
    )
    run.add_argument("--out", default="scdeconv_out", help="output folder, created if missing (default: scdeconv_out)")
    run.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    run.add_argument(
        "--gene-sets",
        default="hallmark",
        help="'hallmark' (MSigDB Hallmark, bundled) or a .gmt path (default: hallmark)",
    )
    run.add_argument(
        "--species",
        choices=["human", "mouse"],
        default=None,
        help="species of the data's gene symbols (default: detected); human sets are translated to mouse",
    )
    run.add_argument(
        "--genes",
        choices=["geneset", "hvg", "all"],
        default="geneset",
        help="genes the model uses: those in some gene set (the paper), plus highly variable genes, or all "
        "(default: geneset)",
    )
    return parser


def _option_hints(message: str, args: argparse.Namespace) -> str:
    """Name the option of each library parameter that ``message`` mentions (``layer=`` -> ``--layer``).

    Only options of the command that ran (those in ``args``) are named, from :data:`LIBRARY_OPTIONS`,
    the CLI's own table; the library's message itself is left as it is.
    """
    named = [
        (name, option)
        for name, option in LIBRARY_OPTIONS.items()
        if hasattr(args, option.removeprefix("--").replace("-", "_")) and re.search(rf"(?<![\w.]){name}=", message)
    ]
    if not named:
        return ""
    return " On the command line: " + ", ".join(f"{name}= is {option}" for name, option in named) + "."


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Our messages at info (warnings with --quiet), whatever scanpy's verbosity; other libraries' at warning.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    package_logger = logging.getLogger("scdeconv")
    level_before = package_logger.level
    package_logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return _main(args)
    finally:
        package_logger.setLevel(level_before)  # main() called from Python leaves the logger as it was


def demo_inputs() -> tuple:
    """The demo's data (bundled Paul15, clusters in ``obs["cluster"]``) and its pipeline options.

    One home for what ``scdeconv demo`` runs, shared with ``docs/make_figures.py``, which draws
    the README's figures from the same run.
    """
    from . import datasets

    adata = datasets.paul15()
    adata.obs["cluster"] = adata.obs["paul15_clusters"]
    options = dict(
        groupby="cluster",
        group1=DEMO_GROUP1,
        group2=DEMO_GROUP2,
        dataset="Paul et al. 2015 mouse myeloid progenitors (bundled)",
        comparison_note=DEMO_NOTE,
        expectations=DEMO_EXPECTATIONS,
        expectations_note=DEMO_EXPECTATIONS_NOTE,
    )
    return adata, options


def _main(args: argparse.Namespace) -> int:
    from ._pipeline import PipelineSpec, run_pipeline

    started = time.perf_counter()
    try:
        if args.command == "demo":
            adata, options = demo_inputs()
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
                sample_key=args.sample_key,
            )
        spec = PipelineSpec(
            **options, max_epochs=args.max_epochs, seed=args.seed, checkpoint=args.checkpoint, progress=not args.quiet
        )
        _, timings = run_pipeline(adata, args.out, spec)
    except (ValueError, KeyError, TypeError, FileNotFoundError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        message = " ".join(str(message).split())  # one line, whatever the exception held
        print(f"scdeconv {args.command}: error: {message}{_option_hints(message, args)}", file=sys.stderr)
        return 1
    total = time.perf_counter() - started
    print(f"Wrote figures, report.md and scdeconv_result.h5ad to {args.out}/ in {total:.1f} s.")
    print("  " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
