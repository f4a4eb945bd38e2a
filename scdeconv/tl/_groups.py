"""Cell groups from an ``obs`` column, with clear errors for unknown or empty groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._logging import logger


def _column(adata: AnnData, groupby: str, what: str = "groupby") -> pd.Categorical:
    if groupby not in adata.obs:
        raise KeyError(
            f"{what} {groupby!r} is not a column of adata.obs; it has {list(adata.obs.columns)}. Pass one of those."
        )
    values = adata.obs[groupby]
    if not isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(str).where(values.notna())
    return pd.Categorical(values)


def group_labels(adata: AnnData, groupby: str, what: str = "groupby") -> tuple[np.ndarray, list[str]]:
    """Integer label per cell (``-1`` where missing) and the category names, in order.

    Categories without cells are left out (with a warning): they have nothing to score. ``what``
    names the parameter in errors.
    """
    column = _column(adata, groupby, what)
    unused = [str(c) for c in column.categories if not (column == c).any()]
    if unused:
        logger.warning("adata.obs[%r] has categories without cells, left out: %s.", groupby, unused)
        column = column.remove_unused_categories()
    categories = [str(c) for c in column.categories]
    if not categories:
        raise ValueError(
            f"adata.obs[{groupby!r}] has no groups (all values missing). Fill it in, or pass another obs column."
        )
    return np.asarray(column.codes, dtype=np.int64), categories


def as_group_list(group) -> list:
    """A group given as one category (str, int, ...) or as a list of categories, as a list."""
    return list(group) if isinstance(group, Sequence | np.ndarray) and not isinstance(group, str) else [group]


def _members(column: pd.Categorical, group: str | Sequence[str], groupby: str) -> np.ndarray:
    wanted = as_group_list(group)
    known = {str(c) for c in column.categories}
    unknown = [g for g in wanted if str(g) not in known]
    if unknown:
        raise ValueError(
            f"Group(s) {unknown} not found in adata.obs[{groupby!r}]; it has {sorted(known)}. Pass one of those."
        )
    return np.asarray(pd.Series(column).astype(str).isin([str(g) for g in wanted]))


def two_group_labels(
    adata: AnnData, groupby: str, group1: str | Sequence[str], group2: str | Sequence[str] = "rest"
) -> np.ndarray:
    """``0`` for cells of ``group1``, ``1`` for ``group2`` (or every other cell), ``-1`` otherwise.

    A group may be one category or a list of categories pooled together.
    """
    column = _column(adata, groupby)
    in1 = _members(column, group1, groupby)
    if isinstance(group2, str) and group2 == "rest":
        in2 = ~in1 & np.asarray(pd.Series(column).notna())
    else:
        in2 = _members(column, group2, groupby)
    if (in1 & in2).any():
        raise ValueError(f"group1 {group1!r} and group2 {group2!r} share cells; give two disjoint groups.")
    for name, members in (("group1", in1), ("group2", in2)):
        if members.sum() < 2:
            raise ValueError(
                f"{name} has {int(members.sum())} cells in adata.obs[{groupby!r}]; at least 2 are needed to compare. "
                "Pick a larger group, or pool categories by passing a list (e.g. group1=['a', 'b'])."
            )
    labels = np.full(adata.n_obs, -1, dtype=np.int64)
    labels[in1] = 0
    labels[in2] = 1
    return labels


ALL_GROUPS = "all"  # group1 value: every category of groupby against the rest


def group_label(group: str | Sequence[str]) -> str:
    """How a group is named in results: its category, or its pooled categories joined by ``+``."""
    return "+".join(map(str, as_group_list(group)))


def group_contrasts(
    adata: AnnData, groupby: str, group1: str | Sequence[str], group2: str | Sequence[str] = "rest"
) -> tuple[np.ndarray, list[tuple[str, list[int], list[int]]]]:
    """Cell labels and the comparisons to make of them: ``(name, groups of side 1, groups of side 2)``.

    Two groups: labels ``0``/``1`` (``-1`` elsewhere) and one comparison. ``group1="all"``: the
    category codes of ``groupby`` and one comparison per category against all the others, so that
    one pass over the cells serves every category.
    """
    if not (isinstance(group1, str) and group1 == ALL_GROUPS):
        labels = two_group_labels(adata, groupby, group1, group2)
        return labels, [(group_label(group1), [0], [1])]
    if not (isinstance(group2, str) and group2 == "rest"):
        raise ValueError(
            f"group1='all' compares every category of adata.obs[{groupby!r}] with the rest of the cells; "
            f"leave group2='rest' (got {group2!r}), or name one group1 to compare it with {group2!r}."
        )
    labels, categories = group_labels(adata, groupby)
    if len(categories) < 2:
        raise ValueError(f"adata.obs[{groupby!r}] has one category ({categories[0]!r}); group1='all' needs two.")
    counts = np.bincount(labels[labels >= 0], minlength=len(categories))
    small = [c for c, n in zip(categories, counts, strict=True) if n < 2]
    if small or counts.sum() - counts.max() < 2:
        raise ValueError(
            f"Categories {small or categories} of adata.obs[{groupby!r}] have fewer than 2 cells (or leave fewer "
            "than 2 for the rest); at least 2 per side are needed. Merge small categories or drop their cells."
        )
    everything = range(len(categories))
    return labels, [(c, [k], [j for j in everything if j != k]) for k, c in enumerate(categories)]


def sample_labels(adata: AnnData, sample_key: str) -> tuple[np.ndarray, list[str]]:
    """Sample (donor) code of every cell (``-1`` where missing, with a warning) and the sample names."""
    codes, names = group_labels(adata, sample_key, what="sample_key")
    missing = int((codes < 0).sum())
    if missing:
        logger.warning("%d cells have no value in adata.obs[%r]; left out of the comparison.", missing, sample_key)
    return codes, names
