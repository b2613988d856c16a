"""``multi_task``: one generator for several (task, target) pairs — e.g. a digits CNN, an SBM GCN and
a sequence transformer — each with its own data, sampling probability and task descriptor.

    hyperkit run multi_task/vision_graph_text

Every step draws ``tasks_per_step`` tasks by their probabilities, generates all their targets in
one :meth:`~hyperkit.Generator.generate_many` call and averages their losses. A task's descriptor
(``task`` id, classes, input size) reaches every weight it generates, so one generator tells the
tasks apart. Evaluation and TensorBoard report each task's accuracy (``eval/<task>_accuracy``).

To add a task, append an entry to ``tasks`` — a name, a ``data`` spec, a ``target`` spec and a
``probability`` — as for the single-task recipes; sizes come from the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

import hyperkit
from hyperkit.config import Check, ConfigError
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.tensorboard import Logger
from hyperkit.engine.trainer import Recipe, TrainConfig
from hyperkit.recipes import register_recipe
from hyperkit.engine.trainer import Network
from hyperkit.generated import GeneratedTargets, GeneratorConfig, InitConfig, build_generator, match_init
from hyperkit.supervised import LABEL_SMOOTHING, TARGET_WEIGHT_DECAY
from hyperkit.tasks import build_target, check_feed, classification_loss, load_task, resolve_target


@dataclass
class TaskConfig:
    """One task of a multi-task run: its name (for metrics), data, target, sampling weight and the
    label smoothing of its cross-entropy (0 for none)."""

    name: str
    data: dict
    target: dict
    probability: float = 1.0
    label_smoothing: float = 0.0

    checks = {"label_smoothing": LABEL_SMOOTHING}


@dataclass
class MultiTaskConfig:
    """The ``multi_task`` recipe; ``train.batch_size`` is each task's batch size;
    ``target_weight_decay`` decays the generated matrices (0 for none), as in ``uhn``."""

    recipe: str = "multi_task"
    out: str = "runs/multi_task"
    tasks: list[TaskConfig] = field(default_factory=list)
    tasks_per_step: int = 2
    target_weight_decay: float = 0.0
    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(structure_encoder=True))
    init: InitConfig = field(default_factory=InitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    checks = {"target_weight_decay": TARGET_WEIGHT_DECAY, "tasks": (
        Check(lambda tasks, _: len(tasks) > 0, "needs at least one task ({{name, data, target, probability}})"),
        Check(lambda tasks, _: len({t.name for t in tasks}) == len(tasks), "names must be unique (each names "
              "its metrics)"),
        Check(lambda tasks, _: not tasks or (min(t.probability for t in tasks) >= 0
                                             and sum(t.probability for t in tasks) > 0),
              "probabilities must be >= 0 with a positive sum"),
    )}


@register_recipe
class MultiTask(Recipe):
    """One generator trained on a mixture of tasks."""

    name = "multi_task"
    config_class = MultiTaskConfig
    # The tasks a step draws pick which generator parameters take part (the encoding of an axis
    # only one task's layers have), so under torchrun DDP looks for unused ones every step.
    static_graph = False

    def setup(self, device: torch.device) -> nn.Module:
        cfg = self.config
        self.tasks, targets, specs = [], [], []
        for index, task_cfg in enumerate(cfg.tasks):
            task = load_task(task_cfg.data)
            target = build_target(task_cfg.target, task)
            check_feed(target, task, f"task {task_cfg.name!r}: target {task_cfg.target.get('name')!r}")
            self.tasks.append(task.to(device))
            targets.append(target)
            specs.append(hyperkit.describe(target, task={"task": index, **task.descriptor()}))
        generator = build_generator(specs, cfg.generator, cfg.train.seed)
        p = np.array([t.probability for t in cfg.tasks], dtype=float)
        self.probabilities = p / p.sum()
        return GeneratedTargets(generator, targets, specs, cfg.target_weight_decay)

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        match_init(module.generator, module.specs, self.config.init, self.config.train.seed, logger)

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        cfg = self.config
        rng = np.random.default_rng([cfg.train.seed, step])
        count = min(cfg.tasks_per_step, int((self.probabilities > 0).sum()))
        chosen = sorted(rng.choice(len(self.tasks), count, replace=False, p=self.probabilities).tolist())
        batches = [self.tasks[i].batch(step, cfg.train.batch_size, cfg.train.seed, info.rank, info.world_size)
                   for i in chosen]
        outputs = module(chosen, [b.inputs for b in batches])
        losses, accuracies = [], {}
        for i, batch, logits in zip(chosen, batches, outputs):
            loss, correct = classification_loss(logits, batch, cfg.tasks[i].label_smoothing)
            losses.append(loss)
            accuracies[f"{cfg.tasks[i].name}_accuracy"] = correct.float() / len(batch)
        return torch.stack(losses).mean(), accuracies

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        accuracies = module.evaluate(list(range(len(self.tasks))), self.tasks, self.config.train.eval_batch_size)
        metrics = {f"{t.name}_accuracy": a for t, a in zip(self.config.tasks, accuracies)}
        metrics["accuracy"] = float(np.mean(accuracies))
        return metrics

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """Every task's target holding its generated weights, by task name."""
        return {t.name: Network(network, *resolve_target(t.target, task), task.input_format())
                for t, task, network in zip(self.config.tasks, self.tasks, module.materialize())}

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Generated weights of every task's target (tags ``weights/<task>/<parameter>``)."""
        params = module.generator.generate_many(module.specs)
        return {f"{t.name}/{name}": value.detach() for t, p in zip(self.config.tasks, params) for name, value in p.items()}
