"""hyperkit: a PyTorch toolkit for hypernetworks.

Describe any target network (:func:`describe`), generate all of its weights with one
descriptor-conditioned :class:`Generator`, run the target with them (:func:`call`, :func:`vcall`)
and start generation like PyTorch's default initialisation (:func:`init_statistics`).

The public names are imported on first use (PEP 562): ``import hyperkit`` alone does not load
torch, so the command line (``hyperkit --help``, ``hyperkit ls``) starts in a fraction of a second.
"""

from __future__ import annotations

from hyperkit.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Generated": "hyperkit.binding", "call": "hyperkit.binding", "materialize": "hyperkit.binding",
    "vcall": "hyperkit.binding",
    "AxisMap": "hyperkit.spec", "LayerDescription": "hyperkit.spec", "ParamInfo": "hyperkit.spec",
    "ParamSpec": "hyperkit.spec", "TargetSpec": "hyperkit.spec", "register_layer": "hyperkit.spec",
    "register_layer_lazily": "hyperkit.spec",
    "describe": "hyperkit.descriptors",
    "Generator": "hyperkit.generator",
    "InitReport": "hyperkit.initialization", "init_statistics": "hyperkit.initialization",
    # from the package of built-in targets, which registers them all (timm's package face)
    "create_target": "hyperkit.targets", "list_targets": "hyperkit.targets",
    "register_target": "hyperkit.registry",
    "MotherNetClassifier": "hyperkit.tabular",
    "add_adapters": "hyperkit.adapters", "merge_adapters": "hyperkit.adapters",
    # the recipes' floor: a run is rebuilt through its recipe (recipes/runs.py)
    "Run": "hyperkit.recipes.runs", "load_exported": "hyperkit.recipes.runs", "load_run": "hyperkit.recipes.runs",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
