"""Every choice a caller makes by name, as a ``Literal`` type, and the one check of it.

A leaf module (only ``typing``): the torch core, the tools and the plots all import their choices
from here, so an option is spelled once and its error message is the same everywhere.
"""

from __future__ import annotations

from typing import Literal, get_args

# The model and its training (scdeconv._module).
Likelihood = Literal["poisson", "nb", "mse"]
Optimizer = Literal["adam", "sgd"]
Shuffle = Literal["global", "chunks"]
ShuffleOption = Literal["auto", "global", "chunks"]  # "auto": chunks on disk, else global
# Attributions of nodes to genes.
Method = Literal["guided", "gradient", "grad_x_input", "integrated_gradients"]
# Tools.
Score = Literal["enrichment", "median"]
Profile = Literal["attribution", "expression"]
NullModelKind = Literal["expression", "coexpression"]  # random sets matched on expression bins or co-expression
NodeCells = Literal["active", "all"]
RankBy = Literal["expression", "contrast", "active", "mean"]
AttributionRanking = Literal["contrast", "active", "mean"]
MatchOn = Literal["gene_sets", "genes"]
GeneMode = Literal["geneset", "hvg", "all"]
Species = Literal["human", "mouse"]
DiffLevel = Literal["node", "set"]
DiffPairs = Literal["called", "all"]  # group_diff: test the (node, set) pairs module_impact called, or all
# Plots.
PanelView = Literal["significant", "paper"]  # supported calls only, or the paper's min-max view

# Simulated data.
ConditionDesign = Literal["donors", "within_donors"]


def choices(kind) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` type, in order."""
    return tuple(get_args(kind))


def check_choice(name: str, value, kind, *, allow_none: bool = False) -> None:
    """Raise a ValueError naming the allowed values when ``value`` is not one of ``kind``'s.

    Parameters
    ----------
    name
        The parameter's name, as the caller spelled it.
    value
        What was passed.
    kind
        A ``Literal[...]`` type from this module.
    allow_none
        ``None`` is allowed too (it means "detect" or "default"; the message says so).
    """
    allowed = choices(kind)
    if value in allowed or (allow_none and value is None):
        return
    listed = ", ".join(map(repr, allowed)) + (" or None" if allow_none else "")
    raise ValueError(f"{name} must be one of {listed}, not {value!r}.")
