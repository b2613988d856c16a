"""Offline dataset loaders: images, node-classification graphs and token sequences.

Every loader returns a small dataclass of tensors (:class:`ImageData`, :class:`GraphData`,
:class:`SequenceData`) and is registered by name, so a config can say ``dataset: karate``.
Nothing downloads: loaders read bundled, generated or already-present files, and a loader whose
files are missing raises ``FileNotFoundError`` naming the folder and the expected files.

Example:
    >>> from hyperkit.data import list_datasets, load_dataset
    >>> "sbm" in list_datasets()
    True
    >>> load_dataset("sbm", num_nodes=30).num_classes
    3
"""

from hyperkit.data.graphs import karate, planetoid, sbm
from hyperkit.data.images import cifar10, digits, mnist, read_idx
from hyperkit.data.registry import list_datasets, load_dataset, register_dataset
from hyperkit.data.sequences import (
    build_label_map,
    build_vocabulary,
    encode_texts,
    read_text_csv,
    sequence,
    text_csv,
    tokenize,
)
from hyperkit.data.types import GraphData, ImageData, SequenceData

__all__ = [
    "GraphData", "ImageData", "SequenceData",
    "build_label_map", "build_vocabulary", "cifar10", "digits", "encode_texts", "karate",
    "list_datasets", "load_dataset", "mnist", "planetoid", "read_idx", "read_text_csv",
    "register_dataset", "sbm", "sequence", "text_csv", "tokenize",
]
