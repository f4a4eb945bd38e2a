"""Docstring text shared by several public functions, kept once and inserted by :func:`inject_docs`.

A docstring line ``    {name}`` is replaced by ``DOCS[name]``; ``    {result:kind}`` by the
``adata`` and ``key`` parameters of a function reading a ``kind`` result (the names of
:mod:`scdeconv._results`).
"""

from __future__ import annotations

import re

_SHOW_SAVE = """\
    show
        Show the figure; ``None`` shows it only in matplotlib's interactive mode.
    save
        As in scanpy: ``True`` writes ``sc.settings.figdir / "<plot name>.<file_format_figs>"``
        (the plot name is the function's name, e.g. ``impact_heatmap``); a str is appended to
        the plot name, ``save="_dot.png"`` writing ``figdir / "<plot name>_dot.png"`` (the
        extension, when given, replaces ``sc.settings.file_format_figs``). A
        :class:`pathlib.Path` (any :class:`os.PathLike`) is the exact file to write, relative to
        the working directory (``.<file_format_figs>`` added when it has no extension). The file
        written is logged (info)."""

_AX = """\
    ax
        Draw into this Axes instead of a new figure."""

_FIGURE = """\
    title
        Axes title; ``None`` names what is drawn.
    figsize
        Figure size when a new figure is made; by default it grows with what is drawn."""

DOCS = {
    "stream": """\
    chunk_size
        Cells per chunk read from the count matrix when it is on disk (a backed AnnData,
        ``anndata.read_h5ad(path, backed="r")``): cells stream chunk by chunk, so memory is
        bounded by the chunk, never by the whole matrix. Ignored for data in memory.
    batch_size
        Cells per saliency batch (default: about 64 MB of attributions per batch).
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress
        Show a progress bar over cells.""",
    "key_added_copy": """\
    key_added
        ``uns`` key of the result. An earlier result of the same kind there is overwritten
        (logged, as scanpy does); any other entry is overwritten with a logged warning; the
        trained model and this step's own input are never overwritten (ValueError).
    copy
        Return a modified copy instead of writing into ``adata``.""",
    "counts_model": """\
    library_median
        Median expected UMIs per cell.
    library_sigma
        Standard deviation of log library size.
    dispersion
        Median negative-binomial dispersion ``phi`` (variance ``mu + phi mu^2``) over genes.
    gene_mean_sigma
        Standard deviation of log baseline gene means (their spread over genes).
    seed
        Seed of the local random generator; the same seed gives identical data.""",
    "show_save": _SHOW_SAVE,
    "ax_show_save": f"{_AX}\n{_SHOW_SAVE}",
    "figure": _FIGURE,
}

_PLACEHOLDER = re.compile(r"^    \{(\w+)(?::(\w+))?\}$", flags=re.MULTILINE)


def _result_params(kind: str) -> str:
    """The ``adata`` and ``key`` parameters of a function that reads a ``kind`` result."""
    from ._results import DESCRIBED, WRITTEN_BY

    writer = "scdeconv." + WRITTEN_BY[kind].split("(")[0].removeprefix("sd.")
    return (
        f"    adata\n        Annotated data matrix with {DESCRIBED[kind]} in ``adata.uns[key]``\n"
        f"        (:func:`{writer}`).\n    key\n        ``uns`` key of that result."
    )


def inject_docs(func):
    """Replace the ``{name}`` and ``{result:kind}`` placeholder lines in ``func.__doc__``."""

    def expand(match: re.Match) -> str:
        name, argument = match.groups()
        if name == "result":
            return _result_params(argument)
        return DOCS[name] if name in DOCS else match.group(0)

    func.__doc__ = _PLACEHOLDER.sub(expand, func.__doc__ or "")
    return func
