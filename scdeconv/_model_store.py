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

if TYPE_CHECKING:
    from ._module.autoencoder import Autoencoder

# Constructor arguments of the Autoencoder kept in params (everything else there is bookkeeping).
ARCHITECTURE_PARAMS = ("n_latent", "n_hidden", "softplus_beta", "likelihood", "size_factors", "target_sum")


def stored_model(adata: AnnData, key: str = MODEL_KEY) -> dict[str, Any]:
    """``adata.uns[key]``, or a KeyError that says to train first."""
    if key not in adata.uns:
        raise KeyError(
            f"Did not find a trained model in adata.uns[{key!r}]. Run `sd.tl.train_autoencoder(adata)` first."
        )
    entry = adata.uns[key]
    if not isinstance(entry, dict) or not {"params", "var_names", "weights"} <= set(entry):
        raise KeyError(
            f"adata.uns[{key!r}] is not a scdeconv model (needs 'params', 'var_names', 'weights'). "
            "Run `sd.tl.train_autoencoder(adata)` or pass the right key."
        )
    return entry


def build_model(params: dict[str, Any], n_genes: int, generator=None) -> Autoencoder:
    """A fresh Autoencoder with the architecture recorded in ``params``."""
    from ._module.autoencoder import Autoencoder

    beta = float(params["softplus_beta"])
    return Autoencoder(
        n_genes,
        n_latent=int(params["n_latent"]),
        n_hidden=tuple(int(h) for h in np.atleast_1d(params["n_hidden"])),
        softplus_beta=beta if beta > 0 else None,  # 0 stands for "layer width" (h5ad has no None)
        likelihood=str(params["likelihood"]),
        size_factors=bool(params["size_factors"]),
        target_sum=float(params["target_sum"]),
        generator=generator,
    )


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
