"""Joining and leaving a ``torch.distributed`` process group started by ``torchrun``."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(backend: str = "auto") -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment.

    Parameters
    ----------
    backend
        ``"nccl"`` (GPUs), ``"gloo"`` (CPU) or ``"auto"``: nccl when CUDA is available.

    Returns
    -------
    This process's rank, the world size and its device (``cuda:LOCAL_RANK`` under nccl). On
    CPU, torch threads are set to the cores per local process, so ranks do not oversubscribe.
    """
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return dist.get_rank(), dist.get_world_size(), device


def finish() -> None:
    """Wait for every rank, then leave the process group."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
