"""Mixed precision: one name ("fp32", "bf16", "fp16") gives the autocast context and grad scaler."""

from __future__ import annotations

import contextlib
import functools
import warnings
from contextlib import AbstractContextManager

import torch

__all__ = ["PRECISIONS", "autocast_context", "make_grad_scaler"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
        )


def autocast_context(precision: str, device: str | torch.device) -> AbstractContextManager:
    """The context to run the forward pass and loss in.

    ``"bf16"`` and ``"fp16"`` give ``torch.autocast`` on CUDA. Everywhere else training runs in
    fp32 (``contextlib.nullcontext()``): CPU autocast is slow for most ops, so a recipe that
    asks for half precision on a CPU-only machine still runs, with a one-time warning.

    Args:
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: the device the model runs on.

    Example:
        >>> with autocast_context("fp32", "cpu"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    _check_precision(precision)
    device_type = torch.device(device).type
    if precision == "fp32":
        return contextlib.nullcontext()
    if device_type != "cuda":
        _warn_no_cuda(precision, device_type)
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=PRECISIONS[precision])


@functools.cache
def _warn_no_cuda(precision: str, device_type: str) -> None:
    # Cached so a training loop that enters the context every step warns only once.
    warnings.warn(
        f"precision {precision!r} needs CUDA but the device is {device_type!r}; training runs in "
        "fp32. Set precision: fp32 to silence this, or run on a GPU",
        stacklevel=3,
    )


def make_grad_scaler(precision: str, device: str | torch.device) -> torch.amp.GradScaler:
    """A ``GradScaler`` that is active only for fp16 on CUDA, and a pass-through otherwise.

    fp16's narrow exponent range lets small gradients underflow to zero, so the loss is scaled up
    before ``backward``; bf16 and fp32 have fp32's range and need no scaling. A disabled scaler
    returns the loss unchanged and just calls ``optimizer.step()``, so the loop is the same for
    every precision: ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()``.

    Args:
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        device: the device the model runs on.

    Example:
        >>> make_grad_scaler("fp16", "cpu").is_enabled()
        False
    """
    _check_precision(precision)
    device_type = torch.device(device).type
    enabled = precision == "fp16" and device_type == "cuda" and torch.cuda.is_available()
    return torch.amp.GradScaler(device_type, enabled=enabled)
