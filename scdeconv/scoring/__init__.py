"""Statistics of gene sets on nodes and cells, numpy only: one home for each kernel.

Two impact scores are built here from attributions streamed by :mod:`scdeconv._module.saliency`:

- ``"median"``, the paper's (Kinalis et al. 2019): for each cell, the median |saliency| over the
  genes of S present in the data; then the mean over cells.
- ``"enrichment"`` (default): how much more the genes of S drive node j than genes of the same
  expression level do. For node j, the mean |attribution| of each gene over cells is z-scored
  among the genes of its expression bin; the set's score is the Stouffer sum
  ``sum(z[S]) / sqrt(|S|)``. It is comparable across nodes and sets, and unaffected by a node's
  overall gain or by the typical attribution of a gene's expression level, the two things that
  dominate the paper's median.

Modules: ``_profiles`` (bins, z-scores, Stouffer sums, per-cell activity), ``_nodes`` (active
cells, dead nodes), ``_null`` (matched random sets and the competitive test), ``_coexpression``
(the co-expression modules random sets can be matched on, and what each is made of), ``_stats`` (Welch
from moments, Benjamini-Hochberg), ``_significance`` (module_impact's tables), ``_group_tests``
(group_diff's tests) and ``_display`` (the paper's display transforms).
"""

from __future__ import annotations

from ._coexpression import coexpression_modules, module_columns, module_gene_sets
from ._display import minmax_per_set, scaled_difference, visible_nodes
from ._group_tests import (
    SampleDesign,
    activity_tests,
    direction,
    node_set_tests,
    sample_design,
    sample_level_test,
)
from ._nodes import (
    active_cells,
    firing_cells,
    group_lift,
    min_active_cells,
    node_statistics,
    node_status,
    redundant_nodes,
)
from ._null import CompetitiveTest, MatchedSets, NullModel, competitive_test, matched_null, module_null
from ._profiles import (
    active_expression_shift,
    binned_zscores,
    cell_activity,
    expression_bins,
    log_ratio,
    profile_enrichment,
    set_enrichment,
)
from ._significance import impact_significance, module_significance
from ._stats import TwoGroupTest, benjamini_hochberg, paired_t, welch_from_moments, welch_from_values

__all__ = [
    "CompetitiveTest",
    "MatchedSets",
    "NullModel",
    "SampleDesign",
    "TwoGroupTest",
    "active_cells",
    "active_expression_shift",
    "activity_tests",
    "benjamini_hochberg",
    "binned_zscores",
    "cell_activity",
    "coexpression_modules",
    "competitive_test",
    "direction",
    "expression_bins",
    "firing_cells",
    "group_lift",
    "impact_significance",
    "log_ratio",
    "matched_null",
    "min_active_cells",
    "minmax_per_set",
    "module_columns",
    "module_gene_sets",
    "module_null",
    "module_significance",
    "node_set_tests",
    "node_statistics",
    "node_status",
    "paired_t",
    "profile_enrichment",
    "redundant_nodes",
    "sample_design",
    "sample_level_test",
    "scaled_difference",
    "set_enrichment",
    "visible_nodes",
    "welch_from_moments",
    "welch_from_values",
]
