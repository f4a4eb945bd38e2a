"""Gene sets: read them in any common form, translate species, match them to the data.

Every entry point turns its input into one normal form, ``dict[str, list[str]]`` (set name ->
gene symbols), and :func:`match_gene_sets` turns that into column indices of an AnnData.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ._choices import Species, check_choice
from ._data_files import data_path
from ._logging import logger

__all__ = [
    "detect_species",
    "hallmark",
    "human_to_mouse",
    "match_gene_sets",
    "msigdb",
    "read_gmt",
    "to_gene_sets",
]

GeneSets = dict[str, list[str]]

HALLMARK_GMT = "h.all.v7.5.1.symbols.gmt"
ORTHOLOG_TABLE = "biomart_human_to_mouse.csv.gz"


def read_gmt(path: str | Path) -> GeneSets:
    """Read a GMT file (one gene set a line: name, description, genes; tab-separated).

    Parsing is gseapy's (:func:`gseapy.parser.read_gmt`); this wrapper adds the checks it lacks.

    Parameters
    ----------
    path
        Path of a ``.gmt`` file.

    Returns
    -------
    Set name -> list of gene symbols, in file order.
    """
    from gseapy.parser import read_gmt as gseapy_read_gmt

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GMT file {str(path)!r} does not exist. Pass the path of a .gmt file.")
    if path.suffix.lower() != ".gmt":
        raise ValueError(f"{str(path)!r} does not end in .gmt. Rename it, or pass the gene sets as a dict.")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"GMT file {str(path)!r} is not text ({err}). Is it compressed or corrupt?") from None
    malformed = [i + 1 for i, line in enumerate(lines) if line.strip() and len(line.strip().split("\t")) < 3]
    if malformed:
        raise ValueError(
            f"GMT file {str(path)!r} is malformed: line(s) {malformed[:5]} do not have the tab-separated "
            "fields 'name, description, gene1, ...'. Fix those lines or export the file again."
        )
    sets = gseapy_read_gmt(str(path))
    if not sets:
        raise ValueError(
            f"GMT file {str(path)!r} holds no gene sets (empty or blank). Check the file or export it again."
        )
    return {name: [g for g in genes if g] for name, genes in sets.items()}


def msigdb(collection: str = "h.all", *, version: str = "2023.2.Hs") -> GeneSets:
    """Download an MSigDB collection through :class:`gseapy.Msigdb` (needs the internet).

    Parameters
    ----------
    collection
        MSigDB collection, e.g. ``"h.all"`` (Hallmark), ``"c2.cp.reactome"``, ``"c7.immunesigdb"``;
        ``gseapy.Msigdb().list_category(dbver=version)`` lists them.
    version
        MSigDB release, e.g. ``"2023.2.Hs"`` (human symbols) or ``"2023.2.Mm"`` (mouse symbols).

    Returns
    -------
    Set name -> gene symbols, ready for any ``gene_sets=`` argument. Cite MSigDB (Liberzon et
    al. 2015, Cell Systems 1:417) and the collection's own source.

    Raises
    ------
    ConnectionError
        When MSigDB cannot be reached (offline): download the GMT file from
        https://www.gsea-msigdb.org by other means and pass its path, or use the bundled
        ``"hallmark"``.
    ValueError
        When MSigDB has no such collection or version.
    """
    from gseapy import Msigdb

    try:
        sets = Msigdb.get_gmt(category=collection, dbver=version)
    except OSError as err:  # requests' ConnectionError, timeouts and URLError are OSErrors
        raise ConnectionError(
            f"Could not download MSigDB collection {collection!r} (version {version!r}): {err}. "
            "Are you offline? Download the .gmt file from https://www.gsea-msigdb.org and pass its path "
            "(gene_sets='path/to/file.gmt'), or use the bundled gene_sets='hallmark'."
        ) from err
    if not sets:
        raise ValueError(
            f"MSigDB has no collection {collection!r} in version {version!r}. List them with "
            f"`gseapy.Msigdb().list_category(dbver={version!r})` and `gseapy.Msigdb().list_dbver()`."
        )
    logger.info("Downloaded %d gene sets of MSigDB %s (%s).", len(sets), collection, version)
    return {str(name): [g for g in genes if g] for name, genes in sets.items()}


@lru_cache(maxsize=1)
def _one_to_one_orthologs() -> dict[str, str]:
    table = pd.read_csv(data_path(ORTHOLOG_TABLE), usecols=["Gene name", "Mouse gene name", "Mouse homology type"])
    table = table[table["Mouse homology type"] == "ortholog_one2one"].dropna()
    table = table.drop_duplicates(["Gene name", "Mouse gene name"])
    # A human symbol can carry several Ensembl ids; keep it only if all point to one mouse gene.
    unique = table.groupby("Gene name")["Mouse gene name"].nunique() == 1
    table = table[table["Gene name"].isin(unique.index[unique])]
    return dict(zip(table["Gene name"], table["Mouse gene name"], strict=True))


def human_to_mouse(genes: Sequence[str]) -> list[str]:
    """Translate human gene symbols to mouse by Ensembl one-to-one orthologs.

    Genes without a one-to-one ortholog are dropped.

    Parameters
    ----------
    genes
        Human gene symbols, in their exact (upper) case, e.g. ``["GATA1", "SPI1"]``.

    Returns
    -------
    The mouse symbols of the genes that have a one-to-one ortholog, in the order given.
    """
    table = _one_to_one_orthologs()
    return [table[g] for g in genes if g in table]


@lru_cache(maxsize=2)
def _hallmark(species: Species) -> tuple[tuple[str, tuple[str, ...]], ...]:
    sets = read_gmt(data_path(HALLMARK_GMT))
    if species == "mouse":
        sets = {name: human_to_mouse(genes) for name, genes in sets.items()}
    return tuple((name, tuple(genes)) for name, genes in sets.items())


def hallmark(species: Species = "human") -> GeneSets:
    """MSigDB Hallmark gene sets v7.5.1 (50 sets), bundled.

    Parameters
    ----------
    species
        ``"human"`` gives MSigDB's symbols; ``"mouse"`` translates them by Ensembl BioMart
        one-to-one orthologs (about 4.1k of 4.4k genes map).

    Returns
    -------
    Set name -> gene symbols. Cite Liberzon et al. 2015, Cell Systems 1:417.
    """
    check_choice("species", species, Species)
    return {name: list(genes) for name, genes in _hallmark(species)}


@lru_cache(maxsize=1)
def _hallmark_universe() -> dict[str, frozenset[str]]:
    return {sp: frozenset(g for genes in hallmark(sp).values() for g in genes) for sp in ("human", "mouse")}


def detect_species(symbols: Sequence[str], *, min_matches: int = 10) -> Species | None:
    """Guess whether gene symbols are human or mouse from their exact-case overlap with Hallmark.

    Human symbols are upper case (``GATA1``), mouse symbols are capitalised (``Gata1``), so the
    exact-case overlap with the human and the mouse Hallmark genes tells the two apart.

    Parameters
    ----------
    symbols
        Gene symbols, e.g. ``adata.var_names``.
    min_matches
        Fewest symbols that must match the Hallmark genes of a species for it to be called.

    Returns
    -------
    ``"human"``, ``"mouse"``, or ``None`` when fewer than ``min_matches`` symbols match either.
    """
    symbols = set(map(str, symbols))
    hits = {sp: len(symbols & universe) for sp, universe in _hallmark_universe().items()}
    best = max(hits, key=hits.get)
    if hits[best] < min_matches:
        return None
    return best


def to_gene_sets(gene_sets: str | Path | Mapping | pd.DataFrame, *, species: Species | None = None) -> GeneSets:
    """Turn gene sets given in any supported form into ``dict[str, list[str]]``.

    Parameters
    ----------
    gene_sets
        ``"hallmark"`` (bundled MSigDB Hallmark), a path to a GMT file, a mapping
        set name -> genes (e.g. a gseapy library from :func:`gseapy.get_library` or
        :func:`msigdb`), or a long table with columns ``source`` (set) and ``target`` (gene)
        as decoupler uses (e.g. ``decoupler.op.hallmark()``); its ``weight`` column, if any,
        is ignored, since the scores treat sets as unweighted, and rows with a negative weight
        are kept.
    species
        Species of the data. For ``"hallmark"`` it picks human symbols or their mouse orthologs.
        For other sets whose symbols look human while ``species="mouse"``, the sets are
        translated by one-to-one orthologs.
    """
    if isinstance(gene_sets, str) and gene_sets.lower() == "hallmark":
        return hallmark(species or "human")
    if isinstance(gene_sets, str | Path):
        sets = read_gmt(gene_sets)
    elif isinstance(gene_sets, pd.DataFrame):
        missing = {"source", "target"} - set(gene_sets.columns)
        if missing:
            raise ValueError(
                f"A gene-set table needs the columns 'source' (set) and 'target' (gene); missing {sorted(missing)}."
            )
        if "weight" in gene_sets.columns and gene_sets["weight"].nunique() > 1:
            logger.info("Gene-set table: the 'weight' column is ignored (sets are scored unweighted).")
        grouped = gene_sets.groupby("source", observed=True, sort=False)["target"]
        sets = {str(k): list(map(str, v)) for k, v in grouped}
    elif isinstance(gene_sets, Mapping):
        sets = {}
        for name, genes in gene_sets.items():
            if isinstance(genes, str) or not isinstance(genes, Sequence | np.ndarray | set | frozenset):
                raise TypeError(f"Gene set {name!r} must be a list of gene symbols, not {type(genes).__name__}.")
            sets[str(name)] = list(map(str, genes))
    else:
        raise TypeError(
            "gene_sets must be 'hallmark', a GMT path, a dict of set -> genes or a DataFrame with "
            f"'source'/'target' columns, not {type(gene_sets).__name__}."
        )
    if not sets:
        raise ValueError("gene_sets is empty: give at least one gene set.")
    sets_species = detect_species([g for genes in sets.values() for g in genes])
    if species == "mouse" and sets_species == "human":
        translated = {name: human_to_mouse(genes) for name, genes in sets.items()}
        n_before = len({g for genes in sets.values() for g in genes})
        n_after = len({g for genes in translated.values() for g in genes})
        logger.info(
            "Translated human gene sets to mouse by one-to-one orthologs: %d of the %d distinct human genes "
            "(over all %d sets) have one.",
            n_after,
            n_before,
            len(sets),
        )
        sets = translated
    return sets


def match_gene_sets(
    gene_sets: GeneSets,
    var_names: Sequence[str],
    *,
    min_size: int = 3,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Match gene sets to the data's genes, case-insensitively (as the paper upper-cased symbols).

    Parameters
    ----------
    gene_sets
        Normal-form gene sets (see :func:`to_gene_sets`).
    var_names
        The data's gene symbols.
    min_size
        Sets with fewer genes present in the data are dropped (with a log message).

    Returns
    -------
    ``(indices, sizes)``: set name -> sorted column indices into ``var_names``; and a table
    indexed by set with ``n_genes`` (in the set) and ``n_present`` (found in the data).
    """
    names = pd.Index([str(v) for v in var_names])
    if names.has_duplicates:
        dup = names[names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"Gene symbols are duplicated (e.g. {dup}). Make them unique first "
            "(`adata.var_names_make_unique()`) or aggregate duplicated genes."
        )
    exact = {name: i for i, name in enumerate(names)}
    # Case-insensitive fallback; where two symbols differ only by case (Paul15 has LPCAT4 and
    # Lpcat4), an exact-case match wins and otherwise the first one is taken.
    upper: dict[str, int] = {}
    for i, name in enumerate(names):
        upper.setdefault(name.upper(), i)
    indices, rows = {}, []
    for name, genes in gene_sets.items():
        wanted = [str(g) for g in dict.fromkeys(genes)]
        hit = [exact[g] if g in exact else upper.get(g.upper(), -1) for g in wanted]
        found = np.unique(np.array([h for h in hit if h >= 0], dtype=np.int64))
        rows.append((name, len(wanted), len(found)))
        if len(found) >= min_size:
            indices[name] = found
    sizes = pd.DataFrame(rows, columns=["gene_set", "n_genes", "n_present"]).set_index("gene_set")
    dropped = sizes.index[sizes["n_present"] < min_size]
    if len(indices) == 0:
        data_species = detect_species(var_names)
        set_species = detect_species([g for genes in gene_sets.values() for g in genes])
        hint = ""
        if data_species and set_species and data_species != set_species:
            hint = f" The data look {data_species} but the gene sets look {set_species}: pass species={data_species!r}."
        raise ValueError(
            f"No gene set has at least {min_size} of its genes among the data's {len(names)} genes "
            f"(best overlap: {int(sizes['n_present'].max())} genes).{hint} Check that var_names hold gene "
            "symbols (not Ensembl ids) and that gene selection kept the set genes, or lower min_size."
        )
    kept = sizes.loc[list(indices)]
    share = kept["n_present"] / kept["n_genes"].clip(lower=1)
    covered = len(np.unique(np.concatenate(list(indices.values()))))
    logger.info(
        "Matched %d gene sets (of %d) to the data's %d genes (case-insensitive; a set is kept with at least %d "
        "of its genes present). Per kept set: median size %d genes (after any ortholog translation), median %d "
        "present, median share present %.0f%%; %d distinct genes of the data are in some kept set.",
        len(kept),
        len(sizes),
        len(names),
        min_size,
        int(kept["n_genes"].median()),
        int(kept["n_present"].median()),
        100 * float(share.median()),
        covered,
    )
    for name, n_present, n_genes in zip(sizes.index, sizes["n_present"], sizes["n_genes"], strict=True):
        logger.debug("gene set %s: %d of its %d genes present", name, n_present, n_genes)
    if len(dropped):
        logger.info(
            "Dropped %d gene sets with fewer than %d genes among the data's %d (e.g. %s).",
            len(dropped),
            min_size,
            len(names),
            ", ".join(map(str, dropped[:3])),
        )
    return indices, sizes


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
    check_choice("species", species, Species, allow_none=True)
    data_species = detect_species(genes)
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
