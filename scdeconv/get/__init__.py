"""Accessors: tidy DataFrames and objects from results stored in AnnData."""

from ._activity import activity
from ._group_diff_df import group_diff_df
from ._impact_df import impact_df
from ._model import model
from ._node_genes_df import node_genes_df
from ._nodes_df import nodes_df

__all__ = ["activity", "group_diff_df", "impact_df", "model", "node_genes_df", "nodes_df"]
