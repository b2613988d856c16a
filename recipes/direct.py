"""``direct``: ordinary gradient descent on the target, the baseline for every generator.

    hyperkit run direct/digits_mlp
"""

from __future__ import annotations

import torch.nn as nn

from hyperkit.engine.trainer import Network
from hyperkit.recipes import register_recipe
from hyperkit.supervised import SupervisedConfig, SupervisedRecipe
from hyperkit.tasks import Task


@register_recipe
class Direct(SupervisedRecipe):
    """The target's own parameters are the trainable module."""

    name = "direct"
    config_class = SupervisedConfig

    def build_module(self, target: nn.Module, task: Task) -> nn.Module:
        return target

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """The trained target itself."""
        return {"target": self.network(module)}
