"""Process-group setup for ``torchrun`` and collectives that also work in a single process.

Every helper here is a no-op (or returns its input) when no process group is initialised, so
training code reads the same for ``python train.py`` and ``torchrun --nproc_per_node=8 train.py``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "DistributedInfo",
    "all_reduce_mean",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "seed_everything",
    "setup_distributed",
]


@dataclass(frozen=True)
class DistributedInfo:
    """Where this process sits in the job.

    Args:
        rank: global rank, 0 … ``world_size - 1``.
        local_rank: rank on this machine; picks the GPU.
        world_size: number of processes in the job.
        device: the device this process computes on.

    Example:
        >>> info = DistributedInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
        >>> info.is_main, info.is_distributed
        (True, False)
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, saves checkpoints and prints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1


def setup_distributed(device: str | torch.device | None = None) -> DistributedInfo:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and join the process group if needed.

    With ``WORLD_SIZE > 1`` the default process group is initialised from the environment
    (``MASTER_ADDR``/``MASTER_PORT``, set by torchrun) with NCCL on CUDA or Gloo on CPU, and on
    CUDA this process's GPU becomes ``cuda:LOCAL_RANK``. Without those variables (plain
    ``python train.py``) it returns a single-process info and creates no group.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``N`` only in single-process runs);
            default CUDA when available, else CPU.

    Returns:
        The :class:`DistributedInfo` of this process.

    Example:
        >>> info = setup_distributed("cpu")  # not under torchrun: one process, no group
        >>> info.world_size, info.device
        (1, device(type='cpu'))
    """
    rank, local_rank, world_size = (
        _env_int("RANK", 0), _env_int("LOCAL_RANK", 0), _env_int("WORLD_SIZE", 1)
    )
    resolved = _resolve_device(device, local_rank, world_size)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if world_size > 1 and not dist.is_initialized():
        _check_rendezvous_env()
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=resolved)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} is not an integer; launch with torchrun, "
            "or unset it for a single-process run"
        ) from None


def _resolve_device(
    device: str | torch.device | None, local_rank: int, world_size: int
) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} was requested but CUDA is not available (CPU build of torch "
            "or no visible GPU); pass device='cpu'"
        )
    if world_size > 1 and device.index not in (None, local_rank):
        raise ValueError(
            f"device {str(device)!r} conflicts with LOCAL_RANK={local_rank}; pass device='cuda' "
            "and each process uses cuda:LOCAL_RANK"
        )
    index = local_rank if world_size > 1 else (device.index or 0)
    return torch.device("cuda", index)


def _check_rendezvous_env() -> None:
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE > 1 but {', '.join(missing)} is not set; launch with torchrun, which sets "
            "it, or export MASTER_ADDR and MASTER_PORT yourself"
        )


def cleanup_distributed() -> None:
    """Destroy the default process group if one exists (call at the end of training)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over all processes; returns a new tensor and leaves the input alone.

    Use it for logging (loss, accuracy), not for gradients, which DDP already averages. Integer
    tensors are averaged in float32.

    Args:
        tensor: same shape on every rank, on this process's device (CUDA for NCCL).

    Returns:
        The element-wise mean over ranks (a detached copy when there is a single process).

    Example:
        >>> all_reduce_mean(torch.tensor([1.0, 3.0]))  # one process: the values themselves
        tensor([1., 3.])
    """
    mean = tensor.detach().clone()
    if not mean.is_floating_point():
        mean = mean.float()
    world_size = _world_size()
    if world_size > 1:
        dist.all_reduce(mean, op=dist.ReduceOp.SUM)
        mean /= world_size
    return mean


def barrier() -> None:
    """Wait until every process reaches this point (no-op in a single process)."""
    if _world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any) -> Any:
    """Return rank 0's ``obj`` on every rank (any picklable object, e.g. a run folder name).

    Example:
        >>> broadcast_object({"run": "a"})  # one process: returned as is
        {'run': 'a'}
    """
    if _world_size() == 1:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and all GPUs).

    Args:
        seed: the seed; add the rank (``seed + info.rank``) when ranks must draw different data
            augmentation or dropout masks.
        deterministic: also ask torch for deterministic algorithms (default ``True``). Ops
            without a deterministic version warn instead of failing (``warn_only=True``). With
            ``False`` the global determinism settings are left as they are.

    Example:
        >>> seed_everything(0, deterministic=False)
        >>> first = torch.rand(1)
        >>> seed_everything(0, deterministic=False)
        >>> torch.equal(torch.rand(1), first)
        True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic; it is read when cuBLAS starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
