"""Pure torch/numpy core: the autoencoder, its training loop and its attributions. Never imports anndata."""
