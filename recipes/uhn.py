"""``uhn``: a generator emits every weight of a fixed target; only the generator is trained.

Each training step generates all weights from their descriptors, runs the target with them and
back-propagates into the generator. Before the first step, the statistics-matching phase
(``init``) makes every generated tensor start with the mean and spread of PyTorch's default
initialisation of that tensor.

    hyperkit run uhn/digits_mlp
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn

import hyperkit
from hyperkit.config import ConfigError, to_dict
from hyperkit.engine.tensorboard import Logger
from hyperkit.recipes import register_recipe
from hyperkit.recipes.supervised import SupervisedConfig, SupervisedRecipe, check_target_weight_decay
from hyperkit.runs import Network
from hyperkit.tasks import Task


@dataclass
class GeneratorConfig:
    """Arguments of :class:`hyperkit.Generator` (see its docstring)."""

    head: Literal["scalar", "lowrank", "flat"] = "lowrank"
    width: int = 128
    num_blocks: int = 2
    fourier_features: int = 2048
    sigma: float = 1.0
    context_sigma: float | None = None
    rank: int = 8
    structure_encoder: bool = False
    chunk_size: int | None = 65536
    checkpoint: bool = False
    scale_by_init: bool = True
    center: bool = False
    shared_trunk: bool = False


@dataclass
class InitConfig:
    """The statistics-matching phase (:func:`hyperkit.init_statistics`, whose arguments these are);
    ``steps: 0`` skips it."""

    steps: int = 500
    lr: float = 1e-3
    tolerance: float = 0.1
    sample: int = 4096
    decorrelate: float = 0.1
    correlation_tolerance: float = 1.0


@dataclass
class UHNConfig(SupervisedConfig):
    """:class:`~hyperkit.recipes.supervised.SupervisedConfig` plus the generator and its init."""

    recipe: str = "uhn"
    out: str = "runs/uhn"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    init: InitConfig = field(default_factory=InitConfig)
    # L2 decay of the generated matrices (hyperkit.Generated's weight_decay), the counterpart of
    # direct training's weight decay; train.weight_decay decays the generator's own parameters.
    target_weight_decay: float = 0.0


def build_generator(specs, config: GeneratorConfig, seed: int) -> hyperkit.Generator:
    """A :class:`hyperkit.Generator` on ``specs`` from the ``generator:`` section; a bad value is a
    :class:`ConfigError` naming that section."""
    try:
        return hyperkit.Generator(specs, **to_dict(config), seed=seed)
    except ValueError as err:
        raise ConfigError(f"generator: {err}") from None


def match_init(generator: hyperkit.Generator, specs, config: InitConfig, seed: int, logger: Logger) -> None:
    """Run the ``init:`` phase on ``specs`` (skipped at ``steps: 0``) and log its curve and result."""
    if config.steps == 0:
        return
    report = hyperkit.init_statistics(generator, specs, seed=seed, **to_dict(config))
    for i, value in enumerate(report.losses):
        logger.scalar("init/loss", value, i)
    logger.scalars({"init/max_error": report.max_error, "init/steps": report.steps,
                    "init/converged": float(report.converged)}, 0)
    if report.correlation:
        logger.scalar("init/max_row_correlation", max(report.correlation.values()), 0)


@register_recipe
class UHN(SupervisedRecipe):
    """The trainable module is :class:`hyperkit.Generated`: generator + frozen target template."""

    name = "uhn"
    config_class = UHNConfig

    def build_module(self, target: nn.Module, task: Task) -> nn.Module:
        check_target_weight_decay(self.config.target_weight_decay)
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
