"""Tools: compute and write results into AnnData (``key_added``, ``copy``)."""

from ._annotate_nodes import annotate_nodes
from ._group_diff import group_diff
from ._module_impact import module_impact
from ._node_genes import node_genes
from ._node_gsea import node_gsea
from ._stability import stability
from ._train_autoencoder import train_autoencoder

__all__ = ["annotate_nodes", "group_diff", "module_impact", "node_genes", "node_gsea", "stability", "train_autoencoder"]
