"""Redraw every figure that README.md and the docs show, from the current code: one command.

    python docs/make_figures.py            # the demo's run (Paul15, seed 0), about a minute
    python docs/make_figures.py --out DIR  # write elsewhere (default: docs/_static)

It runs exactly what ``scdeconv demo`` runs (:func:`scdeconv.cli.demo_inputs`, the pipeline's own
figure code :func:`scdeconv._pipeline.draw_figures`), so the README's figures are the demo's, not
stale copies, and prints the demo report's path for the numbers quoted next to them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
# docs/_static name -> the demo output it copies; None: drawn here (both UMAPs side by side).
FIGURES = {
    "paul15_embedding_comparison.png": None,
    "paul15_impact_heatmap.png": "panel_d_impact_heatmap.png",
    "paul15_group_diff.png": "panel_e_group_diff.png",
    "paul15_impact_dotplot.png": "impact_dotplot.png",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "_static", help="folder of the figures")
    parser.add_argument("--report", type=Path, default=None, help="also keep the demo's report.md here")
    args = parser.parse_args(argv)

    import matplotlib.pyplot as plt

    from scdeconv import pl
    from scdeconv._pipeline import PipelineSpec, run_pipeline
    from scdeconv.cli import demo_inputs

    adata, options = demo_inputs()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        adata, _ = run_pipeline(adata, folder, PipelineSpec(**options, progress=False))
        for name, source in FIGURES.items():
            if source is not None:
                shutil.copyfile(Path(folder) / source, args.out / name)
        if args.report is not None:
            shutil.copyfile(Path(folder) / "report.md", args.report)
    axes = pl.embedding_comparison(adata, color="cell_type", figsize=(10, 4.2), show=False)  # coarse labels
    axes[0].figure.savefig(args.out / "paul15_embedding_comparison.png", dpi=120, bbox_inches="tight")
    plt.close(axes[0].figure)
    for name in FIGURES:
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
