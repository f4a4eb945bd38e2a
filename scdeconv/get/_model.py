from __future__ import annotations

from anndata import AnnData

from .._keys import MODEL_KEY
from .._model_store import load_model


def model(adata: AnnData, key: str = MODEL_KEY):
    """The trained :class:`scdeconv.Autoencoder` (a ``torch.nn.Module``) rebuilt from ``adata.uns[key]``.

    Returns
    -------
    ``(module, genes)``: the model in eval mode on the CPU, and its input genes in order.
    """
    return load_model(adata, key)
