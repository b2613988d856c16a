"""Helpers shared by the loaders: file checks, stratified splits, standardisation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def find_files(folders: Sequence[Path], names: Sequence[str], what: str,
               suffixes: Sequence[str] = ("",)) -> dict[str, Path]:
    """Locate every file of ``names`` in the first folder of ``folders`` that holds them all.

    A name matches ``name + suffix`` for any of ``suffixes`` (e.g. ``("", ".gz")``).

    Raises:
        FileNotFoundError: naming the folders searched, the missing files and what was expected.
    """
    missing_by_folder = {}
    for folder in folders:
        found = {name: _first_existing(folder, name, suffixes) for name in names}
        missing = [name for name, path in found.items() if path is None]
        if not missing:
            return found
        missing_by_folder[folder] = missing
    searched = "; ".join(
        f"{folder} ({'missing ' + ', '.join(m) if folder.is_dir() else 'folder does not exist'})"
        for folder, m in missing_by_folder.items()
    )
    variants = " or ".join(repr(s) if s else "no suffix" for s in suffixes)
    raise FileNotFoundError(
        f"{what}: expected files {', '.join(names)} (suffix {variants}) in one folder, searched "
        f"{searched}. Nothing is downloaded: place the files there or pass the right folder."
    )


def _first_existing(folder: Path, name: str, suffixes: Sequence[str]) -> Path | None:
    for suffix in suffixes:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def require_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path; raise FileNotFoundError naming it and ``what`` if it is absent."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file {path} does not exist; pass an existing file")
    return path


def stratified_split(labels: np.ndarray, train_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class keeps ``train_fraction`` of its members in training (rounded).

    A class with at least two members keeps at least one on each side, so every class is both
    learned and evaluated; a singleton goes to training.

    Shapes:
        labels ``(N,)`` → sorted train indices ``(N_train,)`` and test indices ``(N - N_train,)``.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        num_train = int(len(members) * train_fraction + 0.5)
        num_train = max(1, min(len(members) - 1, num_train)) if len(members) > 1 else 1
        train.append(members[:num_train])
        test.append(members[num_train:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def standardize_images(train: np.ndarray, test: np.ndarray
                       ) -> tuple[torch.Tensor, torch.Tensor, tuple[float, ...], tuple[float, ...]]:
    """Standardise both splits per channel with the training split's mean and std; also return
    that mean and std (raw images for a trained network need the same transform).

    Shapes:
        train ``(N_train, C, H, W)``, test ``(N_test, C, H, W)`` of any numeric dtype → float32;
        mean and std: ``C`` floats each.
    """
    train64 = train.astype(np.float64)
    mean = train64.mean(axis=(0, 2, 3), keepdims=True)
    # A constant channel has std 0; flooring it keeps the output finite (it becomes all zeros).
    std = np.maximum(train64.std(axis=(0, 2, 3), keepdims=True), 1e-8)
    train_out, test_out = (((images - mean) / std).astype(np.float32) for images in (train64, test))
    statistics = tuple(float(v) for v in mean.ravel()), tuple(float(v) for v in std.ravel())
    return torch.from_numpy(train_out), torch.from_numpy(test_out), *statistics


def int64_tensor(values: np.ndarray) -> torch.Tensor:
    """Labels or token ids as a contiguous int64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))
