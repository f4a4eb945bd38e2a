"""Plots: ``sd.pl``. Each returns its matplotlib objects; ``show``/``save`` as in scanpy."""

from ._embedding_comparison import embedding_comparison
from ._group_diff import group_diff
from ._group_diff_dotplot import group_diff_dotplot
from ._impact_dotplot import impact_dotplot
from ._impact_heatmap import impact_heatmap
from ._node_genes import node_genes
from ._reconstruction import reconstruction
from ._training_history import training_history

__all__ = [
    "embedding_comparison",
    "group_diff",
    "group_diff_dotplot",
    "impact_dotplot",
    "impact_heatmap",
    "node_genes",
    "reconstruction",
    "training_history",
]
