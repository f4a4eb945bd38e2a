from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData

from .._keys import MODEL_KEY
from .._model_store import load_model

if TYPE_CHECKING:
    from .._module.autoencoder import Autoencoder


def model(adata: AnnData, key: str = MODEL_KEY) -> tuple[Autoencoder, np.ndarray]:
    """The trained :class:`scdeconv.Autoencoder` (a ``torch.nn.Module``) rebuilt from ``adata.uns[key]``.

    Parameters
    ----------
    adata
        Annotated data matrix with a model from :func:`scdeconv.tl.train_autoencoder` (also after
        ``write_h5ad`` / ``read_h5ad``).
    key
        Key of the model in ``adata.uns``.

    Returns
    -------
    ``(module, genes)``: the model in eval mode on the CPU, and its input genes in order.
    """
    return load_model(adata, key)
