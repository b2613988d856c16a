"""Supervised tasks: how a dataset feeds a target, and how its outputs are scored.

A :class:`Task` wraps one dataset (:mod:`hyperkit.data`) and answers everything a training recipe
needs without knowing the data type: the sizes a target builder takes from the data
(``in_features``, ``num_classes`` …), the task descriptor fields for :func:`hyperkit.describe`,
minibatches for step ``s`` (sharded across distributed ranks) and the test batches. Batches are a
pure function of ``(seed, step)`` — one shuffled pass over the training set per epoch — so a
resumed run sees exactly the batches an uninterrupted one would, with no sampler state to save.

Example:
    >>> from hyperkit.data import digits
    >>> task = make_task(digits())
    >>> batch = task.batch(step=0, batch_size=32, seed=0)
    >>> [tuple(x.shape) for x in batch.inputs], tuple(batch.labels.shape)
    ([(32, 1, 8, 8)], (32,))
    >>> task.target_arguments()["in_features"]
    64
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hyperkit.config import ConfigError
from hyperkit.data.registry import load_dataset
from hyperkit.data.types import GraphData, ImageData, SequenceData
from hyperkit.registry import TARGETS, create_target

__all__ = ["Batch", "GraphTask", "Task", "TensorTask", "build_target", "check_feed", "classification_loss", "load_task",
           "epoch_indices", "evaluate_classifier",
           "make_task", "resolve_target"]


@dataclass
class Batch:
    """Inputs of one forward pass, the labels, and which output rows they score.

    Args:
        inputs: positional inputs of the target's forward.
        labels: class ids of the scored rows.
        index: output rows to score (graphs: node ids); ``None`` scores every row.
    """

    inputs: tuple[torch.Tensor, ...]
    labels: torch.Tensor
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """The rows of ``logits`` this batch is scored on."""
        return logits if self.index is None else logits[self.index]


def epoch_indices(step: int, batch_size: int, num_items: int, seed: int) -> torch.Tensor:
    """Item ids of global batch ``step``: consecutive slices of a fresh permutation per epoch.

    A batch that crosses an epoch boundary takes the tail of one permutation and the head of the
    next. Every rank computes the same ids, so sharding them needs no communication.

    Example:
        >>> torch.cat([epoch_indices(s, 2, 4, seed=0) for s in range(2)]).sort().values.tolist()
        [0, 1, 2, 3]
    """
    start, end = step * batch_size, (step + 1) * batch_size
    parts = []
    for epoch in range(start // num_items, (end - 1) // num_items + 1):
        perm = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        lo, hi = max(start - epoch * num_items, 0), min(end - epoch * num_items, num_items)
        parts.append(perm[lo:hi])
    return torch.cat(parts)


def _shard(ids: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    if len(ids) % world_size:
        raise ConfigError(f"train.batch_size ({len(ids)}) must be divisible by the number of processes "
                          f"({world_size}) so every rank gets an equal share of the global batch")
    return ids.chunk(world_size)[rank]


class Task:
    """Base class: a classification dataset seen through what training needs.

    Subclasses set ``kind``, ``num_classes``, ``num_train``, ``input_size`` and implement
    :meth:`target_arguments`, :meth:`batch`, :meth:`test_batches` and :meth:`to`.
    """

    kind: str
    num_classes: int
    num_train: int
    input_size: int

    def target_arguments(self) -> dict[str, int]:
        """Sizes a target builder may take from the data (passed only where it names them)."""
        raise NotImplementedError

    def descriptor(self) -> dict[str, float]:
        """Task descriptor fields for :func:`hyperkit.describe`."""
        return {"num_classes": self.num_classes, "input_size": self.input_size, "output_size": self.num_classes}

    def input_format(self) -> dict:
        """How raw data becomes a target's inputs, as plain data (saved by ``hyperkit export``):
        ``kind`` (``image``, ``sequence``, ``graph``) and what that kind needs."""
        raise NotImplementedError

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Batch:
        """This rank's share of global training batch ``step``."""
        raise NotImplementedError

    def test_batches(self, batch_size: int = 1024) -> Iterator[Batch]:
        """The whole test split, in batches."""
        raise NotImplementedError

    def example(self) -> Batch:
        """A batch of two training items, for checking that a target can be fed."""
        return self.batch(0, min(2, self.num_train), seed=0)

    def to(self, device: torch.device | str) -> "Task":
        raise NotImplementedError


class TensorTask(Task):
    """Images or token sequences: one input tensor per item, minibatches of items.

    Args:
        data: an :class:`~hyperkit.data.ImageData` or :class:`~hyperkit.data.SequenceData`.
    """

    def __init__(self, data: ImageData | SequenceData):
        self.data = data
        if isinstance(data, ImageData):
            self.kind = "image"
            self.train_x, self.test_x = data.train_x, data.test_x
            self.input_size = math.prod(data.input_shape)
        else:
            self.kind = "sequence"
            self.train_x, self.test_x = data.train_tokens, data.test_tokens
            self.input_size = data.seq_len
        self.train_y, self.test_y = data.train_y, data.test_y
        self.num_classes, self.num_train = data.num_classes, len(self.train_y)

    def target_arguments(self) -> dict[str, int]:
        if self.kind == "image":
            channels, height, _ = self.data.input_shape
            return {"in_features": self.input_size, "in_channels": channels, "image_size": height,
                    "num_classes": self.num_classes}
        return {"vocab_size": self.data.vocab_size, "num_classes": self.num_classes}

    def input_format(self) -> dict:
        """Images: ``shape`` ``[C, H, W]`` and the per-channel ``mean`` and ``std`` the loader
        standardised with (a raw image ``r`` is fed as ``(r - mean[c]) / std[c]``; ``None`` when
        the data did not record them). Sequences: token ids ``(N, seq_len)``, 0 is padding, ids
        below ``vocab_size``.

        Example:
            >>> from hyperkit.data import digits
            >>> fmt = make_task(digits()).input_format()
            >>> fmt["kind"], fmt["shape"], round(fmt["std"][0], 2)
            ('image', [1, 8, 8], 6.02)
        """
        if self.kind == "image":
            mean, std = self.data.mean, self.data.std
            return {"kind": "image", "shape": list(self.data.input_shape),
                    "mean": None if mean is None else list(mean), "std": None if std is None else list(std)}
        return {"kind": "sequence", "seq_len": self.data.seq_len, "vocab_size": self.data.vocab_size,
                "padding_id": 0}

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Batch:
        ids = _shard(epoch_indices(step, batch_size, self.num_train, seed), rank, world_size)
        ids = ids.to(self.train_y.device)
        return Batch((self.train_x[ids],), self.train_y[ids])

    def test_batches(self, batch_size: int = 1024) -> Iterator[Batch]:
        for start in range(0, len(self.test_y), batch_size):
            yield Batch((self.test_x[start:start + batch_size],), self.test_y[start:start + batch_size])

    def to(self, device: torch.device | str) -> "TensorTask":
        self.train_x, self.train_y = self.train_x.to(device), self.train_y.to(device)
        self.test_x, self.test_y = self.test_x.to(device), self.test_y.to(device)
        return self


class GraphTask(Task):
    """Transductive node classification: every forward pass sees the whole graph; a batch is a
    set of labelled training nodes to score (all of them when ``batch_size`` covers the split).

    Args:
        data: a :class:`~hyperkit.data.GraphData`.
    """

    kind = "graph"

    def __init__(self, data: GraphData):
        self.data = data
        self.x, self.edge_index, self.y = data.x, data.edge_index, data.y
        self.train_nodes = data.train_mask.nonzero().flatten()
        self.test_nodes = data.test_mask.nonzero().flatten()
        self.num_classes, self.num_train = data.num_classes, len(self.train_nodes)
        self.input_size = data.x.shape[1]

    def target_arguments(self) -> dict[str, int]:
        return {"in_channels": self.input_size, "in_features": self.input_size, "num_classes": self.num_classes}

    def input_format(self) -> dict:
        """Node features ``(N, num_features)`` as the loader gives them (not rescaled) and
        ``edge_index`` ``(2, E)`` with every edge in both directions."""
        return {"kind": "graph", "num_features": self.input_size}

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> Batch:
        if batch_size >= self.num_train:  # full batch: every training node, in a fixed order
            ids = torch.arange(self.num_train)
            if len(ids) % world_size == 0 or world_size == 1:
                ids = _shard(ids, rank, world_size)
            else:  # equal shares matter for exact gradient averaging; drop the remainder
                ids = ids[: len(ids) - len(ids) % world_size].chunk(world_size)[rank]
        else:
            ids = _shard(epoch_indices(step, batch_size, self.num_train, seed), rank, world_size)
        nodes = self.train_nodes[ids.to(self.train_nodes.device)]
        return Batch((self.x, self.edge_index), self.y[nodes], nodes)

    def test_batches(self, batch_size: int = 1024) -> Iterator[Batch]:
        yield Batch((self.x, self.edge_index), self.y[self.test_nodes], self.test_nodes)

    def to(self, device: torch.device | str) -> "GraphTask":
        self.x, self.edge_index, self.y = self.x.to(device), self.edge_index.to(device), self.y.to(device)
        self.train_nodes, self.test_nodes = self.train_nodes.to(device), self.test_nodes.to(device)
        return self


_TASKS: dict[type, Callable[..., Task]] = {ImageData: TensorTask, SequenceData: TensorTask, GraphData: GraphTask}


def make_task(data: ImageData | GraphData | SequenceData) -> Task:
    """The :class:`Task` for a dataset object from :mod:`hyperkit.data`."""
    for data_type, task in _TASKS.items():
        if isinstance(data, data_type):
            return task(data)
    raise ConfigError(f"no task knows data of type {type(data).__name__}; a dataset loader must return "
                      f"one of {', '.join(t.__name__ for t in _TASKS)}")


def load_task(spec: dict) -> Task:
    """Load the dataset a ``data:`` spec names and wrap it in a :class:`~hyperkit.tasks.Task`."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"data must be a mapping with a 'name' key (e.g. {{name: digits}}), got {spec!r}")
    try:
        return make_task(load_dataset(name, **spec))
    except KeyError as err:
        raise ConfigError(f"data: {err.args[0]}") from None
    except TypeError as err:
        raise ConfigError(f"data {name!r}: {err}") from None
    except (FileNotFoundError, NotADirectoryError) as err:
        raise ConfigError(f"data {name!r}: {err}") from None


def build_target(spec: str | Mapping, task: Task) -> nn.Module:
    """Build a registered target, filling in the sizes its builder takes from the data.

    Only arguments the builder names explicitly (``in_features``, ``in_channels``,
    ``image_size``, ``vocab_size``, ``num_classes``) are filled, and never one the spec sets.

    Raises:
        ConfigError: for an unknown target or arguments its builder does not take.

    Example:
        >>> from hyperkit.data import sbm
        >>> build_target({"name": "gcn_small", "hidden_channels": 8}, make_task(sbm(num_nodes=30)))
        GCN(...)
    """
    name, kwargs = resolve_target(spec, task)
    try:
        return create_target(name, **kwargs)
    except TypeError as err:
        raise ConfigError(f"target {name!r}: {err}; its builder takes {sorted(_named_arguments(name))} and "
                          "the target class's own arguments") from None


def resolve_target(spec: str | Mapping, task: Task) -> tuple[str, dict]:
    """The builder name and every keyword argument :func:`build_target` passes it: the spec's
    own plus the sizes taken from the data, so ``create_target(name, **kwargs)`` rebuilds the
    target without the data (what ``hyperkit export`` saves).

    Raises:
        ConfigError: for a malformed spec or an unknown target.

    Example:
        >>> from hyperkit.data import digits
        >>> resolve_target({"name": "mlp_digits", "hidden": [16]}, make_task(digits()))
        ('mlp_digits', {'hidden': [16], 'in_features': 64, 'num_classes': 10})
    """
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec.get("name"), {k: v for k, v in spec.items() if k != "name"})
    if not isinstance(name, str):
        raise ConfigError(f"target must be a name or a mapping with a 'name' key, got {spec!r}")
    named = _named_arguments(name)
    sizes = {k: v for k, v in task.target_arguments().items() if k in named and k not in kwargs}
    return name, {**kwargs, **sizes}


def _named_arguments(name: str) -> set[str]:
    """The arguments the builder of target ``name`` names (not its ``**kwargs``)."""
    try:
        builder = TARGETS.get(name)
    except KeyError as err:
        raise ConfigError(f"target: {err.args[0]}") from None
    return {p.name for p in inspect.signature(builder).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_feed(model: Callable[..., torch.Tensor], task: Task, name: str = "target") -> None:
    """Run ``model`` on two training items and check it returns one logit per class.

    Raises:
        ConfigError: if the forward pass fails or the output has the wrong shape, naming the data
            kind, so a mismatch (a GCN on images, 10 outputs for 3 classes) fails before training.
    """
    batch = task.example()
    try:
        with torch.no_grad():
            logits = batch.score(model(*batch.inputs))
    except Exception as err:  # noqa: BLE001 - any failure here means "cannot feed"
        raise ConfigError(f"{name} cannot be fed {task.kind} data: its forward pass on two training "
                          f"items raised {type(err).__name__}: {err}; pick a target for {task.kind} "
                          "inputs (see `hyperkit targets`)") from None
    expected = (len(batch), task.num_classes)
    if tuple(logits.shape) != expected:
        raise ConfigError(f"{name} returns shape {tuple(logits.shape)} on {task.kind} data but the task "
                          f"needs {expected} (one logit per class); set the target's num_classes to "
                          f"{task.num_classes} or leave it out so the data sets it")


def evaluate_classifier(model: Callable[..., torch.Tensor], task: Task, batch_size: int = 1024) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` over the task's test split."""
    total_loss, correct, count = 0.0, 0, 0
    for batch in task.test_batches(batch_size):
        loss, right = classification_loss(model(*batch.inputs), batch)
        total_loss += loss.item() * len(batch)
        correct += int(right)
        count += len(batch)
    return {"loss": total_loss / count, "accuracy": correct / count}


def classification_loss(logits: torch.Tensor, batch: Batch,
                        label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy (with optional label smoothing) over the batch's scored rows, and the number
    of correct predictions."""
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    scored = batch.score(logits)
    loss = F.cross_entropy(scored.float(), batch.labels, label_smoothing=label_smoothing)
    return loss, (scored.argmax(-1) == batch.labels).sum()
