"""Image-classification loaders: scikit-learn's digits, MNIST-format IDX files, CIFAR-10 batches.

Nothing here downloads: MNIST and CIFAR-10 read files already on disk.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np

from hyperkit.data._common import find_files, int64_tensor, standardize_images, stratified_split
from hyperkit.data.registry import register_dataset
from hyperkit.data.types import ImageData

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")

# IDX type codes (http://yann.lecun.com/exdb/mnist/): the third magic byte; data is big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@register_dataset
def digits(test_fraction: float = 0.25, seed: int = 0) -> ImageData:
    """scikit-learn's bundled handwritten digits (1,797 images, 8×8, 10 classes), split stratified.

    Args:
        test_fraction: share of each class held out for testing (default 0.25).
        seed: seed of the split.

    Shapes:
        train_x ``(≈1347, 1, 8, 8)``, test_x ``(≈450, 1, 8, 8)`` float32; labels int64.

    Example:
        >>> data = digits()
        >>> data.train_x.shape[1:], data.train_x.shape[0] + data.test_x.shape[0]
        (torch.Size([1, 8, 8]), 1797)
    """
    from sklearn.datasets import load_digits  # optional at import time: only this loader needs it

    bunch = load_digits()
    images, labels = bunch.images[:, None], bunch.target
    train, test = stratified_split(labels, 1.0 - test_fraction, np.random.default_rng(seed))
    return _image_data(images[train], labels[train], images[test], labels[test], num_classes=10)


@register_dataset
def mnist(root: str | Path, limit: int | None = None) -> ImageData:
    """MNIST (or any dataset in its IDX format, e.g. Fashion-MNIST) read from the four IDX files.

    Args:
        root: folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally ``.gz``;
            torchvision's layout ``root/MNIST/raw`` is also searched.
        limit: keep only the first ``limit`` rows of each split (default: all).

    Shapes:
        train_x ``(60000, 1, 28, 28)``, test_x ``(10000, 1, 28, 28)`` float32; labels int64.

    Raises:
        FileNotFoundError: if any of the four files is missing, before anything is read.

    Example:
        >>> data = mnist("~/data/mnist", limit=1000)  # doctest: +SKIP
    """
    root = Path(root).expanduser()
    paths = find_files([root, root / "MNIST" / "raw"], MNIST_FILES, "MNIST", suffixes=("", ".gz"))
    train_x, train_y, test_x, test_y = (read_idx(paths[name], limit) for name in MNIST_FILES)
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or len(images) != len(labels):
            raise ValueError(f"MNIST {split} files in {root} disagree: images {images.shape}, "
                             f"labels {labels.shape}; expected (N, H, W) images and N labels")
    return _image_data(train_x[:, None], train_y, test_x[:, None], test_y, num_classes=10)


def read_idx(path: str | Path, limit: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed, into a native-endian array.

    Format: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
    dimension, then the big-endian data in row-major order.

    Args:
        path: the file; a ``.gz`` suffix means gzip.
        limit: read only the first ``limit`` entries along the first dimension.

    Example:
        >>> read_idx("train-labels-idx1-ubyte").shape  # doctest: +SKIP
        (60000,)
    """
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path) as file:
            raw = file.read()
    else:
        raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: its magic number is {raw[:4].hex()}, "
                         "expected 0000 then a type code (08 for uint8) and the number of dims")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    dims = [int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4)]
    offset, row_size = 4 + 4 * ndim, int(np.prod(dims[1:], dtype=np.int64))
    if len(raw) - offset != dims[0] * row_size * dtype.itemsize:
        raise ValueError(f"{path} is truncated or corrupt: header says shape {tuple(dims)} of "
                         f"{dtype.itemsize}-byte values but {len(raw) - offset} data bytes follow")
    rows = dims[0] if limit is None else min(limit, dims[0])
    array = np.frombuffer(raw, dtype, count=rows * row_size, offset=offset)
    return array.reshape(rows, *dims[1:]).astype(dtype.newbyteorder("="))


@register_dataset
def cifar10(root: str | Path, limit: int | None = None) -> ImageData:
    """CIFAR-10 (60,000 32×32 colour images, 10 classes) from its python pickle batches.

    Args:
        root: folder holding ``data_batch_1`` … ``data_batch_5`` and ``test_batch``, or holding
            the ``cifar-10-batches-py`` folder that the official archive unpacks to.
        limit: keep only the first ``limit`` rows of each split (default: all).

    Shapes:
        train_x ``(50000, 3, 32, 32)``, test_x ``(10000, 3, 32, 32)`` float32; labels int64.

    Raises:
        FileNotFoundError: if any batch is missing, before anything is read.

    Example:
        >>> data = cifar10("~/data", limit=5000)  # doctest: +SKIP
    """
    root = Path(root).expanduser()
    paths = find_files([root, root / "cifar-10-batches-py"], CIFAR10_FILES, "CIFAR-10")
    train_x, train_y = _read_cifar_batches([paths[name] for name in CIFAR10_FILES[:-1]], limit)
    test_x, test_y = _read_cifar_batches([paths["test_batch"]], limit)
    return _image_data(train_x, train_y, test_x, test_y, num_classes=10)


def _read_cifar_batches(paths: list[Path], limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    images, labels, rows = [], [], 0
    for path in paths:
        if limit is not None and rows >= limit:
            break  # later batches are not needed, so they are not read
        batch_images, batch_labels = _read_cifar_batch(path)
        images.append(batch_images)
        labels.append(batch_labels)
        rows += len(batch_labels)
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit]


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as file:
        # latin1 decodes the Python 2 byte strings in the official batches (as torchvision does).
        batch = _NumpyOnlyUnpickler(file, encoding="latin1").load()
    batch = {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 batch: keys {sorted(batch)}, "
                         "expected 'data' and 'labels'")
    data = np.asarray(batch["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch["labels"]):
        raise ValueError(f"{path}: data {data.shape} and {len(batch['labels'])} labels; "
                         "expected (N, 3072) uint8 rows and N labels")
    # Each row is the red, then green, then blue 32×32 plane, row-major: exactly (3, 32, 32).
    return data.reshape(-1, 3, 32, 32), np.asarray(batch["labels"], dtype=np.int64)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays but refuses any other class, so a tampered batch file
    cannot run code the way a plain ``pickle.load`` would let it."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a dataset pickle; CIFAR batches hold "
                "only dicts, lists and numpy arrays"
            )
        return super().find_class(module, name)


def _image_data(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, num_classes: int) -> ImageData:
    for labels in (train_y, test_y):
        if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
            raise ValueError(f"labels range over [{labels.min()}, {labels.max()}], expected "
                             f"0 .. {num_classes - 1}; the files do not hold this dataset")
    train_x, test_x, mean, std = standardize_images(train_x, test_x)
    return ImageData(train_x, int64_tensor(train_y), test_x, int64_tensor(test_y),
                     num_classes=num_classes, input_shape=tuple(train_x.shape[1:]), mean=mean, std=std)
