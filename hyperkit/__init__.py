"""hyperkit: a PyTorch toolkit for hypernetworks.

Describe any target network (:func:`describe`), generate all of its weights with one
descriptor-conditioned :class:`Generator`, run the target with them (:func:`call`, :func:`vcall`)
and start generation like PyTorch's default initialisation (:func:`init_statistics`).
"""

from hyperkit.binding import Generated, call, materialize, vcall
from hyperkit.descriptors import (
    AxisMap,
    LayerDescription,
    ParamInfo,
    ParamSpec,
    TargetSpec,
    describe,
    register_layer,
)
from hyperkit.generator import Generator
from hyperkit.init import InitReport, init_statistics
from hyperkit.registry import create_target, list_targets, register_target

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: scikit-learn adds about half a second to `import hyperkit`.
    if name == "MotherNetClassifier":
        from hyperkit.tabular import MotherNetClassifier

        return MotherNetClassifier
    raise AttributeError(f"module 'hyperkit' has no attribute {name!r}")


__all__ = [
    "AxisMap", "Generated", "Generator", "MotherNetClassifier", "InitReport", "LayerDescription", "ParamInfo", "ParamSpec", "TargetSpec",
    "call", "create_target", "describe", "init_statistics", "list_targets", "materialize",
    "register_layer", "register_target", "vcall",
]
