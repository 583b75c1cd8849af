"""The collectives of data-parallel training, without DDP wrappers (starting the processes is
:mod:`ganx.launch`'s job).

Each rank holds the full G and D, draws its own noise (its RNG is offset by its rank) and its own
disjoint share of every epoch's batches; before each optimiser step the gradients are averaged
over the ranks (one all-reduce per player), so every rank applies the same update and the
weights stay identical. A plain all-reduce rather than ``DistributedDataParallel`` because D is
called several times per step (real, fake, penalties with a double backward, G's step), which
DDP's one-forward-one-backward bookkeeping does not allow. BatchNorm statistics are per rank and
are made equal again (broadcast from rank 0) after every iteration. Backend: NCCL on CUDA, gloo
on CPU.

Every collective must be entered by every rank in the same order, so each decision that leads
to one (flush the logs, skip a non-finite step, stop on a signal) is either a pure function of
the step and the config or agreed with :func:`any_rank` first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_environment(device_type: str) -> Ranks:
    """Join the process group torchrun describes (WORLD_SIZE > 1); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_state(module: nn.Module) -> None:
    """Make every rank's parameters and buffers equal to rank 0's."""
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_buffers(module: nn.Module) -> None:
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def average_gradients(params, world: int) -> None:
    """All-reduce the gradients of ``params`` as one flat buffer and divide by ``world``."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_values(values: torch.Tensor, world: int) -> torch.Tensor:
    dist.all_reduce(values)
    return values / world


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (one all-reduce); the flag itself with
    one process. How every rank reaches the same stop or skip decision."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def broadcast_object(obj):
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
