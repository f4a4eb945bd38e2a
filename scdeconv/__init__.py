"""scdeconv: deconvolve autoencoders trained on single-cell RNA-seq into gene programs.

Kinalis, Nielsen, Winther & Bagger (2019), BMC Bioinformatics 20:379, the scanpy way::

    import scdeconv as sd
    sd.pp.select_genes(adata)
    sd.tl.train_autoencoder(adata)
    sd.tl.module_impact(adata)
    sd.pl.impact_heatmap(adata)
"""

from __future__ import annotations

from . import datasets, genesets, get, pl, pp, tl
from .genesets import read_gmt

__version__ = "0.1.0"

__all__ = ["Autoencoder", "datasets", "genesets", "get", "pl", "pp", "read_gmt", "tl"]


def __getattr__(name: str):
    # torch is imported only when the model class is asked for, keeping `import scdeconv` light.
    if name == "Autoencoder":
        from ._module.autoencoder import Autoencoder

        return Autoencoder
    raise AttributeError(f"module 'scdeconv' has no attribute {name!r}")
