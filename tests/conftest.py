"""Tiny seeded fixtures shared by the tests."""

from __future__ import annotations

import contextlib

import matplotlib
import numpy as np
import pytest
from anndata import AnnData
from scipy import sparse

matplotlib.use("Agg")


def pytest_configure(config):
    # urllib3 (via gseapy's requests) probes IPv6 support with a socket when first imported; import
    # it here, before pytest-socket blocks sockets, so that the probe is not reported as a test's.
    with contextlib.suppress(ImportError):
        import urllib3  # noqa: F401


def pytest_collection_modifyitems(config, items):
    """Tests marked ``online`` get their sockets back; every other test runs with them disabled."""
    for item in items:
        if item.get_closest_marker("online"):
            item.add_marker(pytest.mark.enable_socket)


@pytest.fixture(autouse=True, scope="session")
def _threads_independent_of_load():
    # n_threads=None leaves out the CPUs other processes are busy on when a computation starts; a
    # test's numbers must not depend on what else runs on the machine, so tests see none busy and
    # compute with every available CPU (2 here and in CI). Subprocess tests pass n_threads. Session
    # scope: module-scoped fixtures (trained references) are built before function-scoped ones.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("scdeconv._module.compute.busy_elsewhere", lambda: 0)
        yield


def make_counts(n_cells: int = 120, seed: int = 0) -> AnnData:
    """Negative-binomial counts over mouse Hallmark symbols, two groups with a planted heme program."""
    from scdeconv.genesets import hallmark

    rng = np.random.default_rng(seed)
    sets = hallmark("mouse")
    heme = sets["HALLMARK_HEME_METABOLISM"][:40]
    ifn = sets["HALLMARK_INTERFERON_GAMMA_RESPONSE"][:40]
    other = [g for g in sets["HALLMARK_MYC_TARGETS_V1"] if g not in heme and g not in ifn][:40]
    genes = list(dict.fromkeys(heme + ifn + other))
    mean = rng.gamma(1.0, 2.0, size=len(genes))
    group = np.repeat(["ery", "mono"], [n_cells // 2, n_cells - n_cells // 2])
    mu = np.tile(mean, (n_cells, 1))
    mu[np.ix_(group == "ery", np.isin(genes, heme))] *= 4
    mu[np.ix_(group == "mono", np.isin(genes, ifn))] *= 4
    counts = rng.negative_binomial(5, 5 / (5 + mu))
    counts[:, 0] += 3  # no empty cell, and gene 0 always passes the count filter
    counts[0] += 1  # no empty gene
    adata = AnnData(sparse.csr_matrix(counts.astype(np.float32)))
    adata.var_names = genes
    adata.obs_names = [f"cell{i}" for i in range(n_cells)]
    adata.obs["group"] = group
    return adata


@pytest.fixture
def counts_adata() -> AnnData:
    return make_counts()


@pytest.fixture
def counts_factory():
    """``make_counts`` itself, for tests that need several fresh objects."""
    return make_counts


@pytest.fixture(scope="session")
def trained_adata() -> AnnData:
    """A small model trained for a few epochs, impact and group comparison computed (do not modify)."""
    import scdeconv as sd

    adata = make_counts(n_cells=160, seed=1)
    sd.tl.train_autoencoder(adata, n_latent=8, n_hidden=(16,), max_epochs=5, batch_size=32, progress=False)
    sd.tl.module_impact(adata, progress=False)
    sd.tl.group_diff(adata, "group", "ery", progress=False)
    return adata


def stream(module, counts, reducers, *, labels=None, method="guided", batch_size=None):
    """Feed ``reducers`` the attributions of every cell of ``counts`` (one group unless ``labels``), on the CPU.

    ``labels=np.arange(n_cells)`` makes every cell its own group, so group sums are per-cell values.
    """
    from scdeconv._module.saliency import StreamOptions, stream_attributions

    labels = np.zeros(counts.shape[0], dtype=np.int64) if labels is None else np.asarray(labels)
    options = StreamOptions(batch_size=batch_size, device="cpu", progress=False)
    stream_attributions(module, counts, reducers, labels=labels, method=method, options=options)
    return reducers
