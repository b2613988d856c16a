"""Tabular in-context learning: the synthetic-table prior, MotherNet, and its scikit-learn classifier.

``from hyperkit import MotherNetClassifier`` is the usual entry point; training your own MotherNet
is the ``mothernet`` recipe (``hyperkit run mothernet/cpu``).
"""

from hyperkit.tabular.classifier import MotherNetClassifier, load_pretrained, predict_numpy, save_pretrained
from hyperkit.tabular.model import MotherNet, prepare_tables
from hyperkit.tabular.prior import Prior, TaskBatch

__all__ = ["MotherNet", "MotherNetClassifier", "Prior", "TaskBatch", "load_pretrained", "predict_numpy",
           "prepare_tables", "save_pretrained"]
