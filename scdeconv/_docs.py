"""Docstring text shared by several public functions, kept once and inserted by :func:`inject_docs`."""

from __future__ import annotations

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
    "ax_show_save": """\
    ax
        Draw into this Axes instead of a new figure.
    show
        Show the figure; ``None`` shows it only in matplotlib's interactive mode.
    save
        As in scanpy: ``True`` writes ``sc.settings.figdir / "<plot name>.<file_format_figs>"``
        (the plot name is the function's name, e.g. ``impact_heatmap``); a str is appended to
        the plot name, ``save="_dot.png"`` writing ``figdir / "<plot name>_dot.png"`` (the
        extension, when given, replaces ``sc.settings.file_format_figs``). A
        :class:`pathlib.Path` (any :class:`os.PathLike`) is the exact file to write, relative to
        the working directory (``.<file_format_figs>`` added when it has no extension). The file
        written is logged (info).""",
    "show_save": """\
    show
        Show the figure; ``None`` shows it only in matplotlib's interactive mode.
    save
        As in scanpy: ``True`` writes ``sc.settings.figdir / "<plot name>.<file_format_figs>"``
        (the plot name is the function's name, e.g. ``impact_heatmap``); a str is appended to
        the plot name, ``save="_dot.png"`` writing ``figdir / "<plot name>_dot.png"`` (the
        extension, when given, replaces ``sc.settings.file_format_figs``). A
        :class:`pathlib.Path` (any :class:`os.PathLike`) is the exact file to write, relative to
        the working directory (``.<file_format_figs>`` added when it has no extension). The file
        written is logged (info).""",
}


def inject_docs(func):
    """Replace ``{name}`` placeholders of :data:`DOCS` in ``func.__doc__`` (other braces are left alone)."""
    doc = func.__doc__ or ""
    for name, text in DOCS.items():
        doc = doc.replace("    {" + name + "}", text)
    func.__doc__ = doc
    return func
