"""Tabular in-context learning: the synthetic-table prior, MotherNet (the invariant model that ships,
and the paper's architecture), and its scikit-learn classifier.

``from hyperkit import MotherNetClassifier`` is the usual entry point; training your own MotherNet
is the ``mothernet`` recipe (``hyperkit run mothernet/invariant``). :class:`ColumnEncoder` is the
rule that turns a user's columns (text, booleans, dates, categories) into numbers.

The public names are imported on first use (PEP 562), so that importing one submodule — the
child network :mod:`hyperkit.tabular.child`, which the target registry loads — does not load
scikit-learn with the classifier.
"""

from __future__ import annotations

from hyperkit.lazy import lazy_exports

# public name -> the module that defines it
_LAZY = {
    "MotherNetClassifier": "hyperkit.tabular.classifier", "build_model": "hyperkit.tabular.classifier",
    "load_pretrained": "hyperkit.tabular.classifier", "predict_numpy": "hyperkit.tabular.classifier",
    "save_pretrained": "hyperkit.tabular.classifier",
    "ColumnEncoder": "hyperkit.tabular.columns",
    "InvariantMotherNet": "hyperkit.tabular.invariant",
    "MotherNet": "hyperkit.tabular.model", "prepare_tables": "hyperkit.tabular.model",
    "LowRankLinear": "hyperkit.tabular.child", "MotherNetChild": "hyperkit.tabular.child",
    "Prior": "hyperkit.tabular.prior", "TaskBatch": "hyperkit.tabular.prior",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
