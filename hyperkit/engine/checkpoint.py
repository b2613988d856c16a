"""Crash-safe checkpoints: atomic writes, safe loading, RNG state, and step-numbered files.

Checkpoints are plain dicts of tensors, dicts, lists, tuples, numbers, strings and ``None`` so that
they load with ``torch.load(weights_only=True)``, which cannot run code hidden in a pickle.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import tempfile
import uuid
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["checkpoint_path", "ensure_writable", "latest_checkpoint", "load_checkpoint", "prune_checkpoints", "rng_state", "save_checkpoint", "set_rng_state", "trained_weights"]

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
# What torch.load(weights_only=True) accepts. Exact types, because it refuses subclasses such as
# numpy.float64 (a float), namedtuples and defaultdicts.
_SAFE_MAPPINGS = (dict, OrderedDict)
_SAFE_SEQUENCES = (list, tuple, set)
_SAFE_LEAVES = (
    str, bytes, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Size,
)


def save_checkpoint(path: str | os.PathLike, **state: Any) -> Path:
    """Write ``state`` to ``path`` atomically: readers see the old file or the new one, never half.

    The dict is written to a temporary file in the same folder (so the final rename stays on one
    file system), flushed and ``fsync``-ed, then moved over ``path`` with ``os.replace``, which is
    atomic on POSIX and Windows. If the process dies mid-write only a hidden
    ``.<name>.*.tmp`` file is left behind, which :func:`latest_checkpoint` ignores.

    Args:
        path: destination file, e.g. ``checkpoint_path(folder, step)``; parent folders are created.
        **state: what to store, e.g. ``model=model.state_dict(), step=step, rng=rng_state()``.
            Only tensors, dicts, lists, tuples, numbers, strings and ``None`` are allowed.

    Returns:
        The path written.

    Raises:
        TypeError: if ``state`` holds a value ``torch.load(weights_only=True)`` would refuse.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> path = save_checkpoint(checkpoint_path(folder, 10), step=10, weight=torch.ones(2))
        >>> load_checkpoint(path)["step"]
        10
    """
    _check_weights_only_safe(state, "state")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with 0o666 honours the umask, so the checkpoint gets the permissions of any other
    # file (tempfile's 0o600 would hide it from collaborators on a shared cluster).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the partial file lying next to good checkpoints.
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself survive a power cut; folders cannot be opened this way on Windows.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _check_weights_only_safe(value: Any, where: str) -> None:
    kind = type(value)
    if kind in _SAFE_MAPPINGS:
        for key, item in value.items():
            _check_weights_only_safe(key, f"{where} key {key!r}")
            _check_weights_only_safe(item, f"{where}[{key!r}]")
    elif kind in _SAFE_SEQUENCES:
        for index, item in enumerate(value):
            _check_weights_only_safe(item, f"{where}[{index}]")
    elif not (isinstance(value, torch.Tensor) or kind in _SAFE_LEAVES):
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
            "torch.load(weights_only=True) refuses to load; store tensors, dicts, lists, numbers "
            "or strings instead (e.g. torch.as_tensor(array), array.tolist(), str(path))"
        )


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", weights_only: bool = True
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.
        map_location: where tensors land (default ``"cpu"``; move them after building the model).
        weights_only: keep ``torch.load``'s safe unpickler (default ``True``). Pass ``False``
            only for files from a trusted source that hold arbitrary Python objects.

    Returns:
        The dict of keyword arguments given to :func:`save_checkpoint`.

    Example:
        >>> import tempfile
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "a.pt", rng=rng_state())
        >>> sorted(load_checkpoint(path)["rng"])
        ['cuda', 'numpy', 'python', 'torch']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint file at {path}; use latest_checkpoint(folder) to find the newest "
            "step_*.pt in a run folder"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as error:
        if not weights_only:
            raise
        raise pickle.UnpicklingError(
            f"{path} holds objects that torch.load(weights_only=True) refuses. If you trust the "
            "file, load it with load_checkpoint(path, weights_only=False); then re-save it with "
            f"plain tensors/dicts/lists. Original error: {error}"
        ) from error


def rng_state() -> dict[str, Any]:
    """Capture the state of Python's ``random``, NumPy's global RNG, torch CPU and all CUDA RNGs.

    Every value is a tensor, list, number or string so the result can go into a checkpoint that
    loads with ``weights_only=True``. In distributed runs each rank has its own state; save one per
    rank if exact per-rank reproducibility after a resume matters.

    Returns:
        ``{"python": ..., "numpy": ..., "torch": ByteTensor, "cuda": [ByteTensor per device]}``;
        ``"cuda"`` is an empty list when CUDA is unavailable.

    Example:
        >>> state = rng_state()
        >>> first = torch.rand(2)
        >>> set_rng_state(state)
        >>> torch.equal(torch.rand(2), first)
        True
    """
    version, internal, gauss_next = random.getstate()
    algorithm, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "algorithm": algorithm,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators captured by :func:`rng_state`.

    Args:
        state: the dict returned by :func:`rng_state` (possibly after a save/load round trip).
            CUDA states are restored only when CUDA is available; a warning says when they are
            dropped.

    Example:
        >>> state = rng_state()
        >>> first = random.random()
        >>> set_rng_state(state)
        >>> random.random() == first
        True
    """
    python, numpy_state = state["python"], state["numpy"]
    internal = tuple(int(value) for value in python["internal"])
    random.setstate((python["version"], internal, python["gauss_next"]))
    np.random.set_state((
        numpy_state["algorithm"],
        np.asarray(numpy_state["keys"], dtype=np.int64).astype(np.uint32),
        numpy_state["position"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    torch.set_rng_state(state["torch"].cpu())
    _set_cuda_rng_state(state.get("cuda", []))


def _set_cuda_rng_state(cuda_states: list[torch.Tensor]) -> None:
    if not cuda_states:
        return
    if not torch.cuda.is_available():
        warnings.warn(
            f"the RNG state holds {len(cuda_states)} CUDA generator(s) but CUDA is not available; "
            "they were not restored, so GPU randomness will differ from the original run",
            stacklevel=3,
        )
        return
    count = min(len(cuda_states), torch.cuda.device_count())
    for index in range(count):
        torch.cuda.set_rng_state(cuda_states[index].cpu(), index)


def checkpoint_path(folder: str | os.PathLike, step: int) -> Path:
    """The file name for step ``step``: ``folder/step_00001234.pt``.

    Zero padding keeps a plain ``ls`` in step order; :func:`latest_checkpoint` parses the number,
    so runs longer than 10^8 steps still sort correctly.

    Example:
        >>> checkpoint_path("runs/a", 1234).name
        'step_00001234.pt'
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return Path(folder) / f"step_{step:08d}.pt"


def _step_files(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _STEP_FILE.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The ``step_*.pt`` file with the highest step number in ``folder``, or ``None``.

    Temporary files of an interrupted :func:`save_checkpoint` are ignored. A missing folder
    counts as empty, so a fresh run and a resumed one share the same code path.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> latest_checkpoint(folder) is None
        True
        >>> _ = [save_checkpoint(checkpoint_path(folder, s), step=s) for s in (9, 100, 20)]
        >>> latest_checkpoint(folder).name
        'step_00000100.pt'
    """
    files = _step_files(folder)
    return files[-1][1] if files else None


def prune_checkpoints(folder: str | os.PathLike, keep: int = 3) -> list[Path]:
    """Delete all but the ``keep`` newest ``step_*.pt`` files in ``folder``.

    Args:
        folder: the run folder holding the checkpoints.
        keep: how many of the highest-step checkpoints survive (default 3, at least 1 so the
            checkpoint just written is never removed).

    Returns:
        The deleted paths, oldest first.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = [save_checkpoint(checkpoint_path(folder, s), step=s) for s in (1, 2, 3)]
        >>> [p.name for p in prune_checkpoints(folder, keep=2)]
        ['step_00000001.pt']
    """
    if keep < 1:
        raise ValueError(
            f"keep must be >= 1 so the newest checkpoint survives, got {keep}; "
            "delete the folder itself to remove every checkpoint"
        )
    stale = [path for _, path in _step_files(folder)[:-keep]]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def ensure_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check a file can be written there, before training starts.

    Better to fail in the first second than after hours of training at the first checkpoint.

    Args:
        folder: the output folder (checkpoints, logs).

    Returns:
        ``folder`` as a ``Path``.

    Raises:
        PermissionError: naming the folder, if it cannot be created or written to.

    Example:
        >>> import tempfile
        >>> ensure_writable(Path(tempfile.mkdtemp()) / "run").is_dir()
        True
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".write_test."):
            pass
    except OSError as error:
        raise PermissionError(
            f"output folder {str(folder)!r} is not writable ({error.strerror or error}); choose "
            "another output folder or fix its permissions/free space"
        ) from error
    return folder


def trained_weights(state: dict) -> dict[str, torch.Tensor]:
    """The module state a checkpoint's run produced: the moving average (checkpoint key ``ema``,
    an ``AveragedModel`` state) when it trained with ``train.ema_decay``, else ``module``."""
    if "ema" not in state:
        return state["module"]
    return {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
