"""Data-parallel training under ``torchrun``: ``python -m scdeconv.distributed``.

Every process reads the same ``.h5ad`` (``--backed`` keeps ``X`` on disk and streams it in
chunks), trains with ``DistributedDataParallel`` (gloo on CPU, nccl on GPUs, one GPU per process)
and rank 0 writes the trained AnnData. Two processes on one machine::

    torchrun --standalone --nproc_per_node 2 -m scdeconv.distributed data.h5ad --out trained.h5ad --backed

Across machines, start the same command on each with ``--nnodes N --node_rank i
--rdzv_endpoint HOST:PORT`` instead of ``--standalone``. Each minibatch is split over the ranks
and their gradients averaged, so the model matches single-process training with the same seed and
``batch_size`` (the global batch) up to float rounding; more processes share each step's work.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, join the process group, train, and let rank 0 write the result."""
    parser = argparse.ArgumentParser(prog="python -m scdeconv.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("h5ad", help="input .h5ad with raw counts")
    parser.add_argument("--out", required=True, help="where rank 0 writes the trained AnnData")
    parser.add_argument("--backed", action="store_true", help="keep X on disk and stream it in chunks")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128, help="global minibatch, split over the ranks")
    parser.add_argument("--chunk-size", type=int, default=10_000, help="cells per chunk read from disk")
    parser.add_argument("--n-latent", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto", choices=["auto", "gloo", "nccl"])
    args = parser.parse_args(argv)

    import anndata

    from ._module.distributed import finish, init_from_env
    from .tl import train_autoencoder

    rank, _, device = init_from_env(args.backend)
    adata = anndata.read_h5ad(args.h5ad, backed="r" if args.backed else None)
    train_autoencoder(
        adata,
        layer=args.layer,
        n_latent=args.n_latent,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        seed=args.seed,
        device=str(device),
        distributed=True,
        progress=rank == 0,
    )
    if rank == 0:
        adata.write_h5ad(args.out)
    finish()


if __name__ == "__main__":
    main()
