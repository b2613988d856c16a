"""Supervised training of one target on one dataset: the half that the ``direct``, ``uhn`` and
``recursive`` recipes share (data → task, target construction and checks, loss, evaluation), and
the declared value checks that ``multi_model`` and ``multi_task`` share too.

It is library, not a recipe: it registers nothing, and recipes build on it without importing each
other (a recipe module imports the library, never another recipe).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from hyperkit.config import NON_NEGATIVE, Check
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.trainer import Recipe, TrainConfig
from hyperkit.engine.trainer import Network
from hyperkit.tasks import (Task, build_target, check_feed, classification_loss, evaluate_classifier, load_task,
                            resolve_target)

__all__ = ["LABEL_SMOOTHING", "TARGET_WEIGHT_DECAY", "SupervisedConfig", "SupervisedRecipe"]


# Declared checks (hyperkit.config.Check) that several recipes' configs share.
LABEL_SMOOTHING = Check(lambda value, _: 0 <= value < 1, "must be in [0, 1), got {value}")
# target_weight_decay: decay of the generated matrices (hyperkit.binding.decay_generated)
TARGET_WEIGHT_DECAY = NON_NEGATIVE


@dataclass
class SupervisedConfig:
    """Config shared by the supervised recipes.

    Args:
        recipe: the recipe name (``direct``, ``uhn``).
        out: run folder: ``config.yaml``, TensorBoard events, ``checkpoints/``.
        data: dataset spec, ``{name: digits, ...loader arguments}`` (see ``hyperkit.data``).
        target: target spec, ``{name: mlp_digits, ...builder arguments}``; sizes the builder
            takes from the data (``in_features``, ``num_classes`` …) are filled in.
        train: optimisation settings.
        label_smoothing: the cross-entropy's label smoothing (0 for none); it keeps the logits
            of a perfectly fitted training set from growing without bound.
    """

    recipe: str = "direct"
    out: str = "runs/direct"
    data: dict = field(default_factory=lambda: {"name": "digits"})
    target: dict = field(default_factory=lambda: {"name": "mlp_digits"})
    train: TrainConfig = field(default_factory=TrainConfig)
    label_smoothing: float = 0.0

    checks = {"label_smoothing": LABEL_SMOOTHING}


class SupervisedRecipe(Recipe):
    """Train a module that maps the target's inputs to logits; subclasses build that module."""

    config_class = SupervisedConfig

    def build_module(self, target: nn.Module, task: Task) -> nn.Module:
        raise NotImplementedError

    def setup(self, device: torch.device) -> nn.Module:
        cfg = self.config
        self.task = load_task(cfg.data)
        target = build_target(cfg.target, self.task)
        check_feed(target, self.task, f"target {cfg.target.get('name')!r}")
        module = self.build_module(target, self.task)
        self.task.to(device)
        return module

    def batch(self, step: int, info: DistributedInfo):
        """This rank's training batch for global step ``step``."""
        cfg = self.config.train
        return self.task.batch(step, cfg.batch_size, cfg.seed, info.rank, info.world_size)

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        batch = self.batch(step, info)
        loss, correct = classification_loss(module(*batch.inputs), batch, self.config.label_smoothing)
        return loss, {"accuracy": correct.float() / len(batch)}

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        return evaluate_classifier(module, self.task, self.config.train.eval_batch_size)

    def network(self, module: nn.Module) -> Network:
        """``module``, a network of this run's target architecture, with the builder, arguments and
        input format that go with it (what :meth:`targets` returns)."""
        return Network(module, *resolve_target(self.config.target, self.task), self.task.input_format())
