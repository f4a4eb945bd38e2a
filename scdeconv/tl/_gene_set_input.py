"""Turn the user's gene sets into column indices of a model's genes, checking species."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger
from ..genesets import detect_species, match_gene_sets, to_gene_sets


def describe_gene_sets(gene_sets) -> str:
    """A short, h5ad-friendly description of what was passed, for ``params``."""
    if isinstance(gene_sets, str | Path):
        return str(gene_sets)
    return f"custom ({len(gene_sets)} sets)" if hasattr(gene_sets, "__len__") else "custom"


def resolve_gene_sets(
    gene_sets, genes: np.ndarray, *, species: str | None, min_size: int
) -> tuple[dict[str, np.ndarray], pd.DataFrame, str]:
    """Gene sets matched to ``genes`` (case-insensitively), after species detection and translation.

    Returns
    -------
    Set name -> column indices into ``genes``; the size table of :func:`match_gene_sets`
    with ``n_given`` (genes per set as given, before ortholog translation) in front; the species
    used.
    """
    data_species = detect_species(genes)
    if species is not None and species not in ("human", "mouse"):
        raise ValueError(f"species must be 'human', 'mouse' or None (detect), not {species!r}.")
    if species is not None and data_species is not None and species != data_species:
        raise ValueError(
            f"species={species!r} was given, but the data's gene symbols look {data_species} "
            f"(by their overlap with Hallmark symbols). Pass species={data_species!r}."
        )
    species = species or data_species
    if species is None:
        logger.warning("Could not tell the data's species from its gene symbols; assuming human symbols.")
        species = "human"
    sets = to_gene_sets(gene_sets, species=species)
    sets_species = detect_species([g for members in sets.values() for g in members])
    if sets_species == "mouse" and species == "human":
        raise ValueError(
            "The gene sets hold mouse symbols but the data look human. Use human gene sets, or pass "
            "species='mouse' if the data are in fact mouse."
        )
    indices, sizes = match_gene_sets(sets, genes, min_size=min_size)
    sizes.insert(0, "n_given", _given_sizes(gene_sets, sets))
    return indices, sizes, species


def _given_sizes(gene_sets, sets: dict[str, list[str]]) -> list[int]:
    """Genes per set as the user gave them, before any ortholog translation (``n_given``)."""
    given = to_gene_sets(gene_sets)  # species=None: no translation ("hallmark" gives the human sets)
    return [len(dict.fromkeys(given.get(name, sets[name]))) for name in sets]
