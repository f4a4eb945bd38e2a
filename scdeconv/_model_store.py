"""Store a trained model inside ``adata.uns`` as plain arrays, and rebuild it from there.

Nothing is pickled: weights are numpy arrays, parameters are plain values, so ``write_h5ad`` /
``read_h5ad`` round-trip the model and loading never executes code from a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from ._keys import MODEL_KEY
from ._results import stored_result

if TYPE_CHECKING:
    from ._module.autoencoder import Autoencoder


def stored_model(adata: AnnData, key: str = MODEL_KEY) -> dict[str, Any]:
    """``adata.uns[key]`` holding a trained model, or a KeyError that says to train first."""
    return stored_result(adata, key, "model")


def build_model(params: dict[str, Any], n_genes: int, generator=None) -> Autoencoder:
    """A fresh Autoencoder with the architecture recorded in ``params``."""
    from ._module.config import ModelConfig, from_params

    return from_params(ModelConfig, params).build(n_genes, generator=generator)


def load_model(adata: AnnData, key: str = MODEL_KEY) -> tuple[Autoencoder, np.ndarray]:
    """Rebuild the model stored in ``adata.uns[key]``.

    Returns
    -------
    The model (eval mode, CPU) and its gene list, in the model's input order.
    """
    entry = stored_model(adata, key)
    genes = np.asarray(entry["var_names"]).astype(str)
    weights = _checked_weights(entry["weights"], key)
    module = build_model(entry["params"], len(genes))
    expected = {name: tuple(value.shape) for name, value in module.weights_as_numpy().items()}
    found = {name: tuple(value.shape) for name, value in weights.items() if name in expected}
    if found != expected:
        raise ValueError(
            f"The weights in adata.uns[{key!r}] do not fit its params and {len(genes)} genes "
            f"(expected shapes {expected}, found {found}). The stored model is corrupt: train again."
        )
    module.load_numpy_weights(weights)
    module.eval()
    return module, genes


def _checked_weights(weights, key: str) -> dict[str, np.ndarray]:
    """The stored weights as plain numeric arrays; anything else (object arrays, strings) is refused, never run."""
    if not isinstance(weights, dict):
        raise ValueError(
            f"adata.uns[{key!r}]['weights'] is not a dict of arrays. The stored model is corrupt: train again."
        )
    checked = {}
    for name, value in weights.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(
                f"adata.uns[{key!r}]['weights'][{name!r}] is {kind}, not a float array. The stored model is "
                "corrupt or was not written by scdeconv: train again."
            )
        checked[name] = value
    return checked


def model_entry(module: Autoencoder, params: dict[str, Any], genes, history: pd.DataFrame) -> dict[str, Any]:
    """The h5ad-serialisable dict written to ``adata.uns[key]``."""
    return {
        "params": params,
        "var_names": np.asarray(genes, dtype=str),
        "weights": module.weights_as_numpy(),
        "history": history,
    }
