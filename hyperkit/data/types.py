"""Containers returned by the dataset loaders: plain dataclasses of tensors with ``.to(device)``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


class _TensorFields:
    """Shared behaviour: move every tensor field at once; a repr that shows shapes, not values."""

    def to(self, device: torch.device | str):
        """Return a copy whose tensor fields live on ``device``; other fields are shared.

        Example:
            >>> from hyperkit.data import sequence
            >>> sequence(num_train=8, num_test=4).to("cpu").train_tokens.device.type
            'cpu'
        """
        moved = {
            field.name: getattr(self, field.name).to(device)
            for field in dataclasses.fields(self)
            if isinstance(getattr(self, field.name), torch.Tensor)
        }
        return dataclasses.replace(self, **moved)

    def __repr__(self) -> str:
        # Printing the tensors themselves would flood a log; shapes and dtypes are what one checks.
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, torch.Tensor):
                dtype = str(value.dtype).removeprefix("torch.")
                value = f"{tuple(value.shape)} {dtype}"
            parts.append(f"{field.name}={value}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(repr=False)
class ImageData(_TensorFields):
    """An image-classification dataset split into train and test.

    Images are standardised per channel with the mean and standard deviation of the training
    split, so the test split is transformed exactly as a model would see unseen data.

    Args:
        train_x: training images.
        train_y: training labels in ``0 .. num_classes - 1``.
        test_x: test images, standardised with the training statistics.
        test_y: test labels.
        num_classes: number of classes.
        input_shape: ``(C, H, W)`` of one image.
        mean: per-channel mean of the raw training images, which the loader subtracted
            (``None``: not recorded, e.g. data built by hand).
        std: per-channel standard deviation it divided by: a raw image ``r`` is fed as
            ``(r - mean[c]) / std[c]`` in each channel ``c``.

    Shapes:
        - **train_x** ``(N_train, C, H, W)`` float32, **train_y** ``(N_train,)`` int64
        - **test_x** ``(N_test, C, H, W)`` float32, **test_y** ``(N_test,)`` int64

    Example:
        >>> from hyperkit.data import digits
        >>> data = digits()
        >>> data.input_shape, data.num_classes
        ((1, 8, 8), 10)
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(repr=False)
class GraphData(_TensorFields):
    """One graph for transductive node classification: all nodes are seen, masks pick the labels.

    Args:
        x: node features.
        edge_index: edges as (source, target) rows; every edge is present in both directions.
        y: node labels in ``0 .. num_classes - 1``.
        train_mask: nodes whose labels may be used for training.
        test_mask: nodes to evaluate on; disjoint from ``train_mask``.
        num_classes: number of classes.

    Shapes:
        - **x** ``(N, F)`` float32, **edge_index** ``(2, E)`` int64
        - **y**, **train_mask**, **test_mask** ``(N,)``: int64, bool, bool

    Example:
        >>> from hyperkit.data import sbm
        >>> graph = sbm(num_nodes=30, num_classes=3)
        >>> graph.x.shape, bool((graph.train_mask & graph.test_mask).any())
        (torch.Size([30, 16]), False)
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    test_mask: torch.Tensor
    num_classes: int


@dataclass(repr=False)
class SequenceData(_TensorFields):
    """A sequence-classification dataset of token ids, right-padded with id 0.

    Args:
        train_tokens: training token ids; 0 is padding, so ``tokens == 0`` is the padding mask.
        train_y: training labels in ``0 .. num_classes - 1``.
        test_tokens: test token ids.
        test_y: test labels.
        vocab_size: number of token ids, padding included (ids are ``0 .. vocab_size - 1``).
        num_classes: number of classes.
        seq_len: padded length ``L`` of every sequence.

    Shapes:
        - **train_tokens** ``(N_train, L)`` int64, **train_y** ``(N_train,)`` int64
        - **test_tokens** ``(N_test, L)`` int64, **test_y** ``(N_test,)`` int64

    Example:
        >>> from hyperkit.data import sequence
        >>> data = sequence(num_train=8, num_test=4, seq_len=16)
        >>> tuple(data.train_tokens.shape), data.vocab_size
        ((8, 16), 64)
    """

    train_tokens: torch.Tensor
    train_y: torch.Tensor
    test_tokens: torch.Tensor
    test_y: torch.Tensor
    vocab_size: int
    num_classes: int
    seq_len: int
