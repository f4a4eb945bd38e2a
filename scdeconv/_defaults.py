"""Numbers that several modules share: one home for each rule and display threshold.

Tools record the values they used in their ``params``; later steps read the record, not these.
"""

from __future__ import annotations

# The paper's heatmap (panel d) hides nodes with no min-max scaled score above this.
PANEL_D_THRESHOLD = 0.7
# The paper's group comparison (panel e) shows a difference only where the scaled impact exceeds this.
PANEL_E_THRESHOLD = 0.85
# A node whose activation spread is at most this share of the largest node's carries no information.
DEAD_RELATIVE_STD = 1e-3
# A node's active cells: those at or above this quantile of its activation (its top quarter).
ACTIVE_QUANTILE = 0.75
# A cell fires a node when its activation rises above the node's floor by this share of its range;
# a node fired by fewer than MIN_ACTIVE_CELLS cells (or MIN_ACTIVE_FRACTION of them, if more)
# describes too few cells to attribute any gene set or gene to it.
FIRING_RANGE_FRACTION = 0.05
MIN_ACTIVE_CELLS = 10
MIN_ACTIVE_FRACTION = 0.005
# Equal-count expression bins that gene z-scores and the null model match genes within.
N_BINS = 10
# Random matched gene sets per (node, set) in the null model.
N_NULL = 1000
# null="coexpression": co-expression modules of the model's genes, clustered from the expression of
# a random half of the cells (at most MODULE_CELLS of them).
N_MODULES = 20
MODULE_CELLS = 2000
# Significance level of the reports and plots that mark calls.
FDR = 0.05
# A sample (donor) enters a sample-level group test for a group where it has at least this many
# cells: its pseudobulk mean of fewer cells is mostly cell-to-cell noise (a common pseudobulk floor).
MIN_SAMPLE_CELLS = 10
# annotate_nodes: a live node is redundant when its activation correlates at least this much (|r|
# over cells) with a node that carries more impact; it is active in a category whose share of the
# node's active cells is at least ACTIVE_LIFT times the category's share of all cells.
REDUNDANT_CORRELATION = 0.9
ACTIVE_LIFT = 2.0
# FDR levels of one, two and three stars in the plots of calls (panels d and e, significant view).
FDR_STARS = (0.05, 0.01, 0.001)
