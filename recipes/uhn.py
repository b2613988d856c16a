"""``uhn``: a generator emits every weight of a fixed target; only the generator is trained.

Each training step generates all weights from their descriptors, runs the target with them and
back-propagates into the generator. Before the first step, the statistics-matching phase
(``init``) makes every generated tensor start with the mean and spread of PyTorch's default
initialisation of that tensor.

    hyperkit run uhn/digits_mlp
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

import hyperkit
from hyperkit.engine.tensorboard import Logger
from hyperkit.recipes import register_recipe
from hyperkit.engine.trainer import Network
from hyperkit.generated import GeneratorConfig, InitConfig, build_generator, match_init
from hyperkit.supervised import SupervisedConfig, SupervisedRecipe, TARGET_WEIGHT_DECAY
from hyperkit.tasks import Task


@dataclass
class UHNConfig(SupervisedConfig):
    """:class:`~hyperkit.supervised.SupervisedConfig` plus the generator and its init."""

    recipe: str = "uhn"
    out: str = "runs/uhn"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    init: InitConfig = field(default_factory=InitConfig)
    # L2 decay of the generated matrices (hyperkit.Generated's weight_decay), the counterpart of
    # direct training's weight decay; train.weight_decay decays the generator's own parameters.
    target_weight_decay: float = 0.0

    checks = {"target_weight_decay": TARGET_WEIGHT_DECAY}


@register_recipe
class UHN(SupervisedRecipe):
    """The trainable module is :class:`hyperkit.Generated`: generator + frozen target template."""

    name = "uhn"
    config_class = UHNConfig

    def build_module(self, target: nn.Module, task: Task) -> nn.Module:
        spec = hyperkit.describe(target, task=task.descriptor())
        generator = build_generator(spec, self.config.generator, self.config.train.seed)
        return hyperkit.Generated(generator, target, spec, weight_decay=self.config.target_weight_decay)

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        match_init(module.generator, module.spec, self.config.init, self.config.train.seed, logger)

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The generated target weights (histogram tags ``weights/<target parameter>``)."""
        return {name: value.detach() for name, value in module.weights().items()}

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """The target holding the generated weights."""
        return {"target": self.network(module.materialize())}
