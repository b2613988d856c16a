"""Generated targets and the config sections that build them: what the generator recipes
(``uhn``, ``multi_model``, ``multi_task``, ``recursive``) share.

:class:`GeneratorConfig` is the ``generator:`` section (the arguments of :class:`hyperkit.Generator`),
:class:`InitConfig` the ``init:`` section (those of :func:`hyperkit.init_statistics`);
:func:`build_generator` and :func:`match_init` turn them into a generator and its statistics-matching
phase, and :class:`GeneratedTargets` is the trainable module of one generator serving several targets.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

import hyperkit
from hyperkit.binding import decay_generated
from hyperkit.config import ConfigError, signature_config, to_dict
from hyperkit.engine.tensorboard import Logger
from hyperkit.generator import Generator
from hyperkit.initialization import init_statistics
from hyperkit.tasks import Task, evaluate_classifier

__all__ = ["GeneratedTargets", "GeneratorConfig", "InitConfig", "build_generator", "match_init"]


GeneratorConfig = signature_config(
    "GeneratorConfig", Generator.__init__, skip=["specs", "condition_size", "seed"], module=__name__,
    # lowrank: the head the recipes train with; the Literal lets a wrong name fail when the YAML is
    # read, naming generator.head and the choices.
    defaults={"head": "lowrank"}, types={"head": Literal["scalar", "lowrank", "flat"]},
    doc="The ``generator:`` section: the keyword arguments of :class:`hyperkit.Generator`, with its "
        "defaults (its docstring says what each does), except ``head``, ``lowrank`` here.")

InitConfig = signature_config(
    "InitConfig", init_statistics, skip=["generator", "specs", "condition", "check_every", "seed"], module=__name__,
    doc="The ``init:`` section, the statistics-matching phase: the keyword arguments of "
        ":func:`hyperkit.init_statistics`, with its defaults; ``steps: 0`` skips it.")


def build_generator(specs, config: GeneratorConfig, seed: int) -> hyperkit.Generator:
    """A :class:`hyperkit.Generator` on ``specs`` from the ``generator:`` section; a bad value is a
    :class:`ConfigError` naming that section."""
    try:
        return hyperkit.Generator(specs, **to_dict(config), seed=seed)
    except ValueError as err:
        raise ConfigError(f"generator: {err}") from None


def match_init(generator: hyperkit.Generator, specs, config: InitConfig, seed: int, logger: Logger,
               condition: torch.Tensor | None = None) -> None:
    """Run the ``init:`` phase on ``specs`` (skipped at ``steps: 0``) and log its curve and result;
    a conditional generator is matched under ``condition`` (a batch: over all of them)."""
    if config.steps == 0:
        return
    report = hyperkit.init_statistics(generator, specs, seed=seed, condition=condition, **to_dict(config))
    for i, value in enumerate(report.losses):
        logger.scalar("init/loss", value, i)
    logger.scalars({"init/max_error": report.max_error, "init/steps": report.steps,
                    "init/converged": float(report.converged)}, 0)
    if report.correlation:
        logger.scalar("init/max_row_correlation", max(report.correlation.values()), 0)


class GeneratedTargets(nn.Module):
    """A generator and the (frozen) templates of the targets it serves (family members, tasks).

    ``forward(indices, inputs)`` generates the weights of targets ``indices`` in one
    :meth:`~hyperkit.Generator.generate_many` call and runs target ``indices[k]`` on ``inputs[k]``;
    ``weight_decay`` decays the generated matrices (:func:`hyperkit.binding.decay_generated`),
    as the gradient of ``weight_decay / 2`` times the mean of the targets' ``‖W‖²``.
    """

    def __init__(self, generator: hyperkit.Generator, targets: list[nn.Module], specs: list,
                 weight_decay: float = 0.0):
        super().__init__()
        self.generator, self.targets, self.specs = generator, nn.ModuleList(targets).requires_grad_(False), specs
        self.weight_decay = weight_decay

    def forward(self, indices: list[int], inputs: list[tuple]) -> list[torch.Tensor]:
        params = self.generator.generate_many([self.specs[i] for i in indices])
        # The recipes average the targets' losses, so each target's decay is averaged too: the
        # decay's strength does not change with the number of targets per step. A target drawn
        # twice is decayed twice, as its loss counts twice.
        for p in params:
            decay_generated(p, self.weight_decay / len(indices))
        return [hyperkit.call(self.targets[i], p, *x) for i, p, x in zip(indices, params, inputs)]

    def materialize(self) -> list[nn.Module]:
        """Every target as a standalone copy holding its generated weights, in order."""
        with torch.no_grad():
            params = self.generator.generate_many(self.specs)
        return [hyperkit.materialize(target, p) for target, p in zip(self.targets, params)]

    def evaluate(self, indices: list[int], tasks: list[Task], batch_size: int) -> list[float]:
        """Test accuracy of targets ``indices``, target ``indices[k]`` on ``tasks[k]``."""
        params = self.generator.generate_many([self.specs[i] for i in indices])
        return [evaluate_classifier(lambda *x, i=i, p=p: hyperkit.call(self.targets[i], p, *x), task,
                                    batch_size)["accuracy"] for i, p, task in zip(indices, params, tasks)]
