"""Training engines timed alike: each runs ``epochs`` epochs and reports every epoch's wall time and its setup.

- ``bare``: the physical reference, a plain torch autoencoder of the same shape (log1p input ->
  128 -> 64 -> 128 -> genes, Poisson NLL on log rates, ``torch.optim.Adam``, batch 128, the whole
  matrix made dense once, 95% of the cells per epoch) with no checks, no validation, no penalty.
- ``scdeconv``: the package's own loop (``scdeconv._module.training.fit``, defaults: Poisson with
  size factors, orthogonality penalty, AdamW, validation every epoch, sparse input made dense one
  minibatch at a time).
- ``scvi``: scvi-tools' LinearSCVI (64 latent, batch 128, 95/5 split, no early stopping).
- ``drvi``: DRVI (drvi-py; 64 latent, batch 128, 95/5 split, no early stopping).

An epoch's time runs from one epoch's start to the next (validation included); setup is the rest
of the call (model and optimizer creation, data registration, Lightning's start-up).
"""

from __future__ import annotations

import time

import numpy as np

TRAIN_FRACTION = 0.95


def cpu_settings(device: str):
    """The CPU settings scdeconv computes under (denormals as zero), applied to the bare loop alike."""
    from scdeconv._module.compute import cpu_compute

    return cpu_compute(device, n_threads=_threads())


def _threads() -> int:
    import torch

    return torch.get_num_threads()  # the worker's thread count, fixed by speed.py


def bare(adata, epochs: int, device: str) -> dict:
    import torch

    start = time.perf_counter()
    dense = torch.from_numpy(adata.X.toarray().astype(np.float32)).to(device)
    n_cells, n_genes = dense.shape
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(n_genes, 128), torch.nn.Softplus(), torch.nn.Linear(128, 64), torch.nn.Softplus(),
        torch.nn.Linear(64, 128), torch.nn.Softplus(), torch.nn.Linear(128, n_genes),
    ).to(device)  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rows = np.arange(int(n_cells * TRAIN_FRACTION))
    rng = np.random.default_rng(0)
    setup = time.perf_counter() - start
    seconds = []
    with cpu_settings(device):
        for _ in range(epochs):
            began = time.perf_counter()
            order = torch.as_tensor(rng.permutation(rows), device=device)
            for i in range(0, len(order), 128):
                x = dense[order[i : i + 128]]
                loss = torch.nn.functional.poisson_nll_loss(net(torch.log1p(x)), x, log_input=True)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _sync(device)
            seconds.append(time.perf_counter() - began)
    return {"epoch_s": seconds, "setup_s": setup}


def scdeconv(adata, epochs: int, device: str, checkpoint: str | None = None, auto_threads: bool = False) -> dict:
    import torch

    from scdeconv._module.autoencoder import Autoencoder
    from scdeconv._module.checkpoint import Checkpoint
    from scdeconv._module.config import FitConfig
    from scdeconv._module.training import fit

    start = time.perf_counter()
    counts = adata.X.tocsr()
    module = Autoencoder(adata.n_vars, generator=torch.Generator().manual_seed(0))
    order = np.random.default_rng(0).permutation(adata.n_obs)
    n_val = adata.n_obs - int(adata.n_obs * TRAIN_FRACTION)
    train, val = np.sort(order[n_val:]), np.sort(order[:n_val])
    saver = Checkpoint(checkpoint, {"run": "speed"}, every_epochs=1) if checkpoint else None
    # Threads fixed to the worker's count like every engine; auto_threads: the package default (free CPUs).
    config = FitConfig(max_epochs=epochs, patience=epochs, n_threads=None if auto_threads else _threads())
    result = fit(module, counts, train_rows=train, val_rows=val, config=config, device=device, progress=False,
                 checkpoint=saver)  # fmt: skip
    total = time.perf_counter() - start
    return {"epoch_s": result.seconds, "setup_s": total - sum(result.seconds)}


class _EpochTimer:
    """A Lightning callback recording the time from each training epoch's start to the next's."""

    def __init__(self):
        self.starts: list[float] = []
        self.end = None

    def on_train_epoch_start(self, trainer, pl_module):
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module):
        self.end = time.perf_counter()

    @property
    def seconds(self) -> list[float]:
        return list(np.diff([*self.starts, self.end]))


def _lightning_callback():
    from lightning.pytorch.callbacks import Callback

    return type("EpochTimer", (_EpochTimer, Callback), {})()


def scvi(adata, epochs: int, device: str) -> dict:
    import scvi as scvi_tools

    start = time.perf_counter()
    scvi_tools.settings.seed = 0
    scvi_tools.model.LinearSCVI.setup_anndata(adata)
    model = scvi_tools.model.LinearSCVI(adata, n_latent=64)
    return _lightning_train(model, epochs, device, start)


def drvi(adata, epochs: int, device: str) -> dict:
    from drvi.model import DRVI

    start = time.perf_counter()
    DRVI.setup_anndata(adata)
    model = DRVI(adata, n_latent=64)
    return _lightning_train(model, epochs, device, start)


def _lightning_train(model, epochs: int, device: str, start: float) -> dict:
    timer = _lightning_callback()
    accelerator = "gpu" if str(device).startswith("cuda") else "cpu"
    model.train(max_epochs=epochs, batch_size=128, train_size=TRAIN_FRACTION, accelerator=accelerator, devices=1,
                enable_progress_bar=False, early_stopping=False, callbacks=[timer])  # fmt: skip
    total = time.perf_counter() - start
    return {"epoch_s": timer.seconds, "setup_s": total - sum(timer.seconds)}


def available(engine: str) -> str | None:
    """None when the engine can run here, else why not (the optional ``benchmarks`` extra)."""
    import importlib.util

    needs = {"scvi": "scvi", "drvi": "drvi"}.get(engine)
    if needs and importlib.util.find_spec(needs) is None:
        return f"{engine}: not installed (pip install -e '.[benchmarks]')"
    return None


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


ENGINES = {"bare": bare, "scdeconv": scdeconv, "scvi": scvi, "drvi": drvi}
