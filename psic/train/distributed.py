"""Multi-GPU training through ``torchrun`` (DDP); a plain single process otherwise."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def setup(device: str) -> tuple[int, int]:
    """(rank, world size); joins the process group that ``torchrun`` describes in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world


def device_for(device: str) -> torch.device:
    """Each process of a multi-GPU run takes the GPU of its local rank."""
    if device.startswith("cuda") and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(device)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    if not dist.is_initialized():
        return model
    # The quantiles only get gradients from the auxiliary loss, outside the forward pass.
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
    )


def average_gradients(parameter: torch.Tensor) -> None:
    """Keep parameters trained outside DDP's forward identical across processes."""
    if dist.is_initialized() and parameter.grad is not None:
        dist.all_reduce(parameter.grad)
        parameter.grad /= dist.get_world_size()
