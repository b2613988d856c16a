"""``continual``: tasks arrive one at a time; a generator conditioned on a learned embedding per task
emits each task's network, and an output regulariser keeps earlier tasks' networks where they were.

    hyperkit run continual/split_digits
    hyperkit run continual/split_digits method=finetune     # baseline: plain fine-tuning in sequence
    hyperkit run continual/split_digits method=joint        # baseline: every task at once

von Oswald et al., "Continual learning with hypernetworks" (ICLR 2020). The run trains task
``s // steps_per_task`` at global step ``s``. On task ``t`` the loss is

    L = CE(task t's batch; weights gen(e_t)) + beta / t · Σ_{t' < t} ‖gen(e_t') − W*_t'‖²

where ``e_t`` is task ``t``'s embedding (the generator's condition), ``W*_t'`` the weights the
generator emitted for task ``t'`` just before task ``t`` began (stored in the module's buffers, so a
checkpoint resumes exactly), and ``‖·‖²`` the sum of squares over every generated weight — the
paper's regulariser, averaged over earlier tasks. Earlier embeddings are frozen: they enter the
regulariser detached, so they get no gradient and Adam leaves them alone.

Task identity is given at test time (the paper's CL1). ``tasks.kind: split`` makes task ``t`` the
classes ``{k t, …, k t + k − 1}`` of the data (``k = classes_per_task``) as its own ``k``-way
problem; ``permuted`` makes task ``t`` the whole data under a fixed, seeded pixel permutation (task
0 unpermuted with ``identity_first``). Evaluation reports every seen task's test accuracy with its
own weights (``eval/task<k>_accuracy``), their mean (``eval/accuracy``), and forgetting: each
earlier task's best accuracy at any evaluation minus its accuracy now (``eval/task<k>_forgetting``,
and ``eval/forgetting``, their mean over the tasks before the current one).

``method: finetune`` trains one network directly, task after task, with no protection: for
``split`` it has one output head per task (rows ``k t … k t + k − 1`` of its last layer), for
``permuted`` one shared 10-way head. ``method: joint`` trains the same network on a batch of every
task at each step: the multi-task upper bound.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn

import hyperkit
from hyperkit.config import NON_NEGATIVE, Check, ConfigError, at_least, to_dict
from hyperkit.data.types import ImageData
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.tensorboard import Logger
from hyperkit.engine.trainer import Network, Recipe, TrainConfig
from hyperkit.generated import GeneratorConfig, InitConfig, match_init
from hyperkit.recipes import register_recipe
from hyperkit.supervised import LABEL_SMOOTHING
from hyperkit.tasks import TensorTask, build_target, check_feed, classification_loss, evaluate_classifier, load_task, \
    resolve_target


@dataclass
class TaskSequence:
    """The ``tasks:`` section: how the data becomes a sequence of tasks.

    Args:
        kind: ``split`` (disjoint groups of classes, each its own problem) or ``permuted`` (all
            classes under a fixed pixel permutation per task).
        num_tasks: tasks in the sequence.
        classes_per_task: ``split``: classes per task (``num_tasks × classes_per_task`` must not
            exceed the data's classes).
        identity_first: ``permuted``: task 0 sees the images unpermuted.
        seed: seed of the permutations (fixed across runs of different ``train.seed``, so every
            seed meets the same sequence).
    """

    kind: Literal["split", "permuted"] = "split"
    num_tasks: int = 5
    classes_per_task: int = 2
    identity_first: bool = True
    seed: int = 0

    checks = {"num_tasks": at_least(1), "classes_per_task": at_least(1)}


def _steps_fit(value: int, c) -> bool:
    return c.train.steps <= value * c.tasks.num_tasks


def _evaluated_at_each_task_end(value: int, c) -> bool:
    return c.train.eval_every > 0 and value % c.train.eval_every == 0


@dataclass
class ContinualConfig:
    """The ``continual`` recipe.

    Args:
        data: the dataset (``{name: digits}``), split into tasks by ``tasks``.
        tasks: the task sequence (:class:`TaskSequence`).
        method: ``hypernetwork`` (the paper's), ``finetune`` or ``joint`` (the baselines).
        steps_per_task: optimiser steps on each task; ``train.steps`` may stop earlier in the
            sequence but not run past ``num_tasks × steps_per_task``.
        embedding_size: size of each task's learned embedding (the generator's condition).
        beta: weight of the output regulariser (the paper's ``β_output``); 0 switches it off.
        generate: which target parameters the generator emits: ``"*"`` for all, or a glob (or list
            of globs) over parameter names, e.g. ``"net.2.*"`` for the digits MLP's output layer.
            The rest is trained directly and shared by every task, with no regulariser: it is
            where a partially generated network forgets.
        target: the per-task network (``{name: mlp_digits, hidden: [100]}``); its number of
            classes comes from the tasks.
        generator: the generator (``hypernetwork`` only).
        init: its statistics-matching phase, over every task's initial embedding.
        label_smoothing: the cross-entropy's label smoothing.
        train: optimisation; a constant learning rate (``warmup_steps: 0``, ``min_lr_ratio: 1``)
            treats every task alike, as the paper's constant-lr Adam does.
    """

    recipe: str = "continual"
    out: str = "runs/continual"
    data: dict = field(default_factory=lambda: {"name": "digits"})
    tasks: TaskSequence = field(default_factory=TaskSequence)
    method: Literal["hypernetwork", "finetune", "joint"] = "hypernetwork"
    steps_per_task: int = 300
    embedding_size: int = 32
    beta: float = 0.01
    generate: str | list[str] = "*"
    target: dict = field(default_factory=lambda: {"name": "mlp_digits", "hidden": [100]})
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    init: InitConfig = field(default_factory=InitConfig)
    label_smoothing: float = 0.0
    train: TrainConfig = field(default_factory=TrainConfig)

    checks = {
        "steps_per_task": (
            at_least(1),
            Check(_steps_fit, "× tasks.num_tasks ({value} × {tasks.num_tasks}) is less than train.steps "
                              "({train.steps}); set train.steps to at most their product"),
            Check(_evaluated_at_each_task_end, "({value}) must be a multiple of train.eval_every "
                  "({train.eval_every}, which must be positive) so that every task is evaluated when it ends "
                  "(forgetting is measured from those evaluations)")),
        "embedding_size": at_least(1), "beta": NON_NEGATIVE, "label_smoothing": LABEL_SMOOTHING,
        "train": Check(lambda train, _: train.ema_decay is None,
                       "must have ema_decay: null (got {train.ema_decay}): a moving average over steps mixes "
                       "the weights of successive tasks"),
    }


def task_sequence(data: ImageData, tasks: TaskSequence) -> tuple[list[TensorTask], list[torch.Tensor | None]]:
    """The tasks of the sequence and, for ``permuted``, each task's pixel permutation (``None`` for
    ``split``): task ``t`` feeds ``x.flatten(1)[:, permutation]`` in the image's shape."""
    if tasks.kind == "split":
        k = tasks.classes_per_task
        if tasks.num_tasks * k > data.num_classes:
            raise ConfigError(f"tasks: {tasks.num_tasks} tasks of {k} classes need {tasks.num_tasks * k} classes; "
                              f"the data has {data.num_classes}: lower tasks.num_tasks or tasks.classes_per_task")

        def subset(x: torch.Tensor, y: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
            keep = (y >= k * t) & (y < k * (t + 1))
            return x[keep], y[keep] - k * t

        out = []
        for t in range(tasks.num_tasks):
            (train_x, train_y), (test_x, test_y) = subset(data.train_x, data.train_y, t), subset(data.test_x, data.test_y, t)
            out.append(TensorTask(dataclasses.replace(data, train_x=train_x, train_y=train_y, test_x=test_x,
                                                      test_y=test_y, num_classes=k)))
        return out, [None] * tasks.num_tasks
    size = data.train_x[0].numel()
    permutations = [torch.arange(size) if t == 0 and tasks.identity_first else
                    torch.randperm(size, generator=torch.Generator().manual_seed(tasks.seed * 1_000_003 + t))
                    for t in range(tasks.num_tasks)]

    def permute(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, p].view_as(x)

    return [TensorTask(dataclasses.replace(data, train_x=permute(data.train_x, p), test_x=permute(data.test_x, p)))
            for p in permutations], permutations


class _Progress(nn.Module):
    """Buffers every continual module keeps, so a checkpoint resumes exactly: ``seen`` (tasks
    trained so far) and ``best`` (each task's best test accuracy at any evaluation; -1: none yet)."""

    def __init__(self, num_tasks: int):
        super().__init__()
        self.num_tasks = num_tasks
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("best", torch.full((num_tasks,), -1.0))


class TaskConditioned(_Progress):
    """A generator, one learned embedding per task and the target template: task ``t``'s network
    runs with the weights ``gen(e_t)`` (parameters outside ``spec`` are the template's own,
    trained directly and shared). ``stored[t]`` holds task ``t``'s weights as the generator
    emitted them at the start of the latest task after ``t`` (the regulariser's targets).

    Shapes:
        forward: ``inputs`` of the target → ``(logits (batch, classes), regulariser ())``.
    """

    def __init__(self, generator: hyperkit.Generator, target: nn.Module, spec, num_tasks: int, embedding_size: int):
        super().__init__(num_tasks)
        self.generator, self.target, self.spec = generator, target, spec
        for name, parameter in target.named_parameters():
            parameter.requires_grad_(name not in spec.params)
        # One parameter per task: a task's embedding is left out of every later step's graph, so
        # AdamW (which skips parameters without a gradient) neither moves nor decays it.
        self.embeddings = nn.ParameterList([nn.Parameter(torch.randn(embedding_size)) for _ in range(num_tasks)])
        self.register_buffer("stored", torch.zeros(num_tasks, spec.num_weights))

    def flat(self, tasks: list[int], frozen: bool = False) -> torch.Tensor:
        """The generated weights of ``tasks``, ``(len(tasks), num_weights)``."""
        conditions = torch.stack([self.embeddings[t] for t in tasks])
        return self.generator.flat(self.spec, conditions.detach() if frozen else conditions)

    def store(self, before: int) -> None:
        """Keep the weights the generator now emits for tasks ``0 … before − 1``."""
        with torch.no_grad():
            self.stored[:before] = self.flat(list(range(before)))

    def forward(self, task: int, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The current task and, detached, every earlier one in one batched generator pass.
        earlier = self.flat(list(range(task)), frozen=True) if task else None
        own = self.flat([task])[0]
        logits = hyperkit.call(self.target, self.spec.unflatten(own), *inputs)
        if earlier is None:
            return logits, own.new_zeros(())
        return logits, (earlier - self.stored[:task]).square().sum(-1).mean()

    def networks(self) -> list[nn.Module]:
        """Every task's network as a standalone copy of the target holding its weights."""
        with torch.no_grad():
            flat = self.flat(list(range(self.num_tasks)))
        return [hyperkit.materialize(self.target, self.spec.unflatten(w)).requires_grad_(True) for w in flat]


class MultiHead(_Progress):
    """One network trained directly (the baselines). With ``heads`` > 1 its output holds one head
    of ``classes`` logits per task (task ``t``: logits ``classes·t … classes·t + classes − 1``);
    with one head every task shares the output.

    Shapes:
        forward: ``[inputs of task t for t in tasks]`` → ``[logits (batch, classes)]``.
    """

    def __init__(self, network: nn.Module, num_tasks: int, classes: int, heads: int):
        super().__init__(num_tasks)
        self.network, self.classes, self.heads = network, classes, heads

    def head(self, logits: torch.Tensor, task: int) -> torch.Tensor:
        return logits if self.heads == 1 else logits[:, self.classes * task:self.classes * (task + 1)]

    def forward(self, tasks: list[int], inputs: list[tuple]) -> list[torch.Tensor]:
        return [self.head(self.network(*x), t) for t, x in zip(tasks, inputs)]

    def networks(self, template: nn.Module) -> list[nn.Module]:
        """Every task's network: ``template`` (the architecture with one head) holding the shared
        weights and that task's rows of every output tensor."""
        out = []
        for task in range(self.num_tasks):
            state = {}
            for name, value in self.network.state_dict().items():
                shape = template.state_dict()[name].shape
                state[name] = value if value.shape == shape else value[self.classes * task:self.classes * (task + 1)]
            network = copy.deepcopy(template)
            network.load_state_dict(state)
            out.append(network)
        return out


@register_recipe
class Continual(Recipe):
    """Tasks in sequence: a task-conditioned generator with the output regulariser, or a directly
    trained network fine-tuned in sequence or trained on every task at once."""

    name = "continual"
    config_class = ContinualConfig
    # Each task's embedding takes part only in its own task's steps: DDP looks for unused ones.
    static_graph = False

    def setup(self, device: torch.device) -> nn.Module:
        cfg = self.config
        data = load_task(cfg.data).data
        if not isinstance(data, ImageData):
            raise ConfigError(f"data {cfg.data.get('name')!r}: continual splits or permutes images; "
                              "give an image dataset such as {name: digits}")
        self.tasks, self.permutations = task_sequence(data, cfg.tasks)
        first = self.tasks[0]
        self.template = build_target(cfg.target, first)  # one task's network
        check_feed(self.template, first, f"target {cfg.target.get('name')!r}")
        if cfg.method == "hypernetwork":
            include = None if cfg.generate == "*" else cfg.generate
            try:
                spec = hyperkit.describe(self.template, task=first.descriptor(), include=include)
            except ValueError as err:
                raise ConfigError(f"generate: {err}") from None
            try:
                generator = hyperkit.Generator(spec, **to_dict(cfg.generator), condition_size=cfg.embedding_size,
                                               seed=cfg.train.seed)
            except ValueError as err:
                raise ConfigError(f"generator: {err}") from None
            module = TaskConditioned(generator, copy.deepcopy(self.template), spec, cfg.tasks.num_tasks,
                                     cfg.embedding_size)
        else:
            heads = cfg.tasks.num_tasks if cfg.tasks.kind == "split" else 1
            classes = first.num_classes
            network = build_target({**cfg.target, "num_classes": classes * heads}, first)
            module = MultiHead(network, cfg.tasks.num_tasks, classes, heads)
        for task in self.tasks:
            task.to(device)
        self.module = module
        return module

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        if isinstance(module, TaskConditioned):
            with torch.no_grad():
                conditions = torch.stack(list(module.embeddings))
            match_init(module.generator, module.spec, self.config.init, self.config.train.seed, logger,
                       condition=conditions)

    def task_of(self, step: int) -> int:
        """The task global step ``step`` trains (``method: joint``: every task)."""
        return step // self.config.steps_per_task

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        cfg, train = self.config, self.config.train
        if cfg.method == "joint":
            self.module.seen.fill_(cfg.tasks.num_tasks)
            batches = [task.batch(step, train.batch_size, train.seed * 1_000_003 + t, info.rank, info.world_size)
                       for t, task in enumerate(self.tasks)]
            outputs = module(list(range(len(batches))), [b.inputs for b in batches])
            losses = [classification_loss(logits, b, cfg.label_smoothing) for logits, b in zip(outputs, batches)]
            correct = sum(c for _, c in losses)
            return (torch.stack([loss for loss, _ in losses]).mean(),
                    {"accuracy": correct.float() / sum(len(b) for b in batches)})
        task = self.task_of(step)
        self.module.seen.fill_(task + 1)
        # Each task starts its own pass over its data: the same batches whichever task came before.
        batch = self.tasks[task].batch(step - task * cfg.steps_per_task, train.batch_size,
                                       train.seed * 1_000_003 + task, info.rank, info.world_size)
        if cfg.method == "finetune":
            logits = module([task], [batch.inputs])[0]
            loss, correct = classification_loss(logits, batch, cfg.label_smoothing)
            return loss, {"accuracy": correct.float() / len(batch)}
        if task > 0 and step % cfg.steps_per_task == 0:
            self.module.store(task)  # the regulariser's targets: earlier tasks' weights as they are now
        logits, regulariser = module(task, *batch.inputs)
        loss, correct = classification_loss(logits, batch, cfg.label_smoothing)
        return loss + cfg.beta * regulariser, {"accuracy": correct.float() / len(batch), "task_loss": loss.detach(),
                                               "regulariser": regulariser.detach()}

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        """Each seen task's test accuracy with its own weights, their mean, and forgetting."""
        seen = int(module.seen)
        networks = self._callables(module, seen)
        accuracies = [evaluate_classifier(network, task, self.config.train.eval_batch_size)["accuracy"]
                      for network, task in zip(networks, self.tasks)]
        current = torch.tensor(accuracies, dtype=module.best.dtype, device=module.best.device)
        module.best[:seen] = torch.maximum(module.best[:seen], current)
        metrics = {f"task{k}_accuracy": a for k, a in enumerate(accuracies)}
        metrics["accuracy"] = sum(accuracies) / max(seen, 1)
        drops = (module.best[:seen] - current).tolist()
        metrics.update({f"task{k}_forgetting": d for k, d in enumerate(drops)})
        earlier = drops[:seen - 1] if self.config.method != "joint" else drops
        metrics["forgetting"] = sum(earlier) / len(earlier) if earlier else 0.0
        return metrics

    def _callables(self, module: nn.Module, count: int) -> list:
        """Functions running task ``k``'s network, for ``k < count``."""
        if isinstance(module, TaskConditioned):
            flat = module.flat(list(range(count))) if count else []
            return [lambda *x, w=w: hyperkit.call(module.target, module.spec.unflatten(w), *x) for w in flat]
        return [lambda *x, t=t: module([t], [x])[0] for t in range(count)]

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """Every task's standalone network (``task0``, ``task1``, …). A permuted task's ``inputs``
        carry its ``permutation``: feed ``x.flatten(1)[:, permutation]`` in the image's shape."""
        networks = module.networks() if isinstance(module, TaskConditioned) else module.networks(self.template)
        builder, arguments = resolve_target(self.config.target, self.tasks[0])
        out = {}
        for k, (network, task, permutation) in enumerate(zip(networks, self.tasks, self.permutations)):
            inputs = task.input_format()
            if permutation is not None:
                inputs["permutation"] = permutation.tolist()
            out[f"task{k}"] = Network(network, builder, arguments, inputs)
        return out

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The seen tasks' generated weights (``weights/task<k>/<parameter>``) or the network's own."""
        if not isinstance(module, TaskConditioned):
            return super().weights(module)
        seen = max(int(module.seen), 1)
        return {f"task{k}/{name}": value.detach() for k, w in enumerate(module.flat(list(range(seen))))
                for name, value in module.spec.unflatten(w).items()}
