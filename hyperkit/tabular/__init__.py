"""Tabular in-context learning: the synthetic-table prior, MotherNet (the invariant model that ships,
and the paper's architecture), and its scikit-learn classifier.

``from hyperkit import MotherNetClassifier`` is the usual entry point; training your own MotherNet
is the ``mothernet`` recipe (``hyperkit run mothernet/invariant``). :class:`ColumnEncoder` is the
rule that turns a user's columns (text, booleans, dates, categories) into numbers.
"""

from hyperkit.tabular.classifier import (MotherNetClassifier, build_model, load_pretrained, predict_numpy,
                                         save_pretrained)
from hyperkit.tabular.columns import ColumnEncoder
from hyperkit.tabular.invariant import InvariantMotherNet
from hyperkit.tabular.model import MotherNet, prepare_tables
from hyperkit.tabular.prior import Prior, TaskBatch

__all__ = ["ColumnEncoder", "InvariantMotherNet", "MotherNet", "MotherNetClassifier", "Prior", "TaskBatch", "build_model",
           "load_pretrained", "predict_numpy", "prepare_tables", "save_pretrained"]
