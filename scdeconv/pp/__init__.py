"""Preprocessing: gene selection for the autoencoder."""

from ._select_genes import select_genes

__all__ = ["select_genes"]
