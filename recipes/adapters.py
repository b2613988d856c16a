"""``adapters``: a generator of adapters for a frozen, pretrained target, over a family of tasks.

    hyperkit run adapters/rotated_digits_mlp

The target is first trained directly on the base task (``pretrain``: the data as it is, task
parameter 0) or loaded from a state dict, then frozen. LoRA or FiLM adapters go into it
(:func:`hyperkit.add_adapters`) and a generator emits them from each task's condition — Fourier
features of the task parameter (the angle the digits are rotated by, the shift of the keyword
tokens), so a held-out parameter between trained ones is interpolated, or for ``keywords`` tasks
the one-hots of the task's keyword set, so a new combination of known tokens gets its adapter.
Every step draws ``tasks_per_step`` training tasks and averages their losses on one minibatch
seen through each task; held-out tasks are only evaluated.

``method`` runs the baselines through the same recipe: ``per_task`` trains one adapter per task
directly and ``finetune`` one full copy of the target per task, both on every task (held-out ones
included) at every step, as separate runs would.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import hyperkit
from hyperkit.config import NON_NEGATIVE, POSITIVE, Check, ConfigError, at_least, to_dict
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.schedule import build_optimizer, cosine_with_warmup
from hyperkit.engine.tensorboard import Logger
from hyperkit.engine.trainer import Network, Recipe, TrainConfig
from hyperkit.generated import GeneratorConfig, InitConfig, match_init
from hyperkit.recipes import register_recipe
from hyperkit.supervised import LABEL_SMOOTHING
from hyperkit.tasks import Task, build_target, check_feed, epoch_indices, load_task, resolve_target


@dataclass
class PretrainConfig:
    """How the frozen target gets its weights: trained directly on the base task (the data as it
    is) for ``steps`` with AdamW at ``lr`` (cosine decay, batches of ``batch_size``), or read from
    ``weights``, a file holding the target's ``state_dict()`` (then ``steps: 0``)."""

    steps: int = 500
    lr: float = 1e-2
    batch_size: int = 128
    weights: str | None = None

    checks = {"steps": NON_NEGATIVE, "lr": POSITIVE, "batch_size": at_least(1),
              "weights": Check(lambda value, c: (value is None) != (c.steps == 0),
                               "and steps ({steps}) choose how the target gets its weights: set steps > 0 to "
                               "train it, or weights to a state dict file and steps to 0; got weights={value}")}


@dataclass
class AdapterConfig:
    """The adapters :func:`hyperkit.add_adapters` puts into the frozen target: ``kind`` (``lora`` |
    ``film``), ``targets`` (globs over module names), LoRA's ``rank`` and ``alpha``, FiLM's
    ``channel_dim`` (1 after a convolution); ``shared``: globs over the adapters' parameter names
    (``"*.lora_a"``) trained once for every task instead of generated, so the generator emits the
    rest (LoRA's ``B``: the adapter is then linear in the generator's output); the baselines
    (``per_task``, ``finetune``) ignore it and train every adapter parameter per task."""

    kind: Literal["lora", "film"] = "lora"
    targets: list[str] = field(default_factory=lambda: ["*"])
    rank: int = 4
    alpha: float | None = None
    channel_dim: int = -1
    shared: list[str] = field(default_factory=list)

    checks = {"rank": at_least(1)}


@dataclass
class FamilyConfig:
    """The family of tasks: one per parameter value (a number, or a keyword set for ``keywords``).

    Args:
        kind: ``rotate`` (images rotated by the parameter, in degrees), ``shift`` (token
            sequences whose token ids ``t ≥ 1`` become ``1 + (t − 1 + s) mod (vocab_size − 1)``,
            so task ``s``'s keywords are tokens ``s + 1 … s + num_classes``; integer ``s``) or
            ``keywords`` (the parameter is the task's keyword set, ``num_classes`` distinct token
            ids: the ``sequence`` data's keyword ``k`` becomes the set's ``k``-th token, see
            :func:`keyword_permutation`).
        train: the parameters of the tasks the generator is trained on.
        held_out: parameters it never trains on, only evaluates (e.g. between the trained ones;
            for ``keywords``, new combinations or orders of tokens the training sets use).
        draw: ``keywords`` only: this many more training sets, drawn at random (seeded by ``seed``)
            from the tokens the listed ``train`` sets use, none equal to a listed or held-out set;
            new combinations are what teaches a generator to compose (49 listed sets: 66 % on
            held-out sets; 121: 78 %).
        seed: the seed of that draw.
        period: the parameter's period for the Fourier condition (360 for angles).
        harmonics: the Fourier condition is ``[cos(2πkp/period), sin(2πkp/period)]`` for
            ``k = 1..harmonics`` (``rotate``, ``shift``; ``keywords`` uses one-hots instead).
    """

    kind: Literal["rotate", "shift", "keywords"] = "rotate"
    train: list[float | list[int]] = field(default_factory=lambda: [0.0])
    held_out: list[float | list[int]] = field(default_factory=list)
    draw: int = 0
    seed: int = 0
    period: float = 360.0
    harmonics: int = 2

    checks = {"period": POSITIVE, "harmonics": at_least(1), "draw": at_least(0),
              "train": Check(lambda value, _: len(value) > 0, "needs at least one task parameter, got {value}"),
              "held_out": Check(lambda value, c: not {_key(v) for v in value} & {_key(v) for v in c.train},
                                "shares parameters with train ({train}): a task is either trained on or "
                                "held out, got {value}")}


def _key(parameter):
    """A task parameter as a hashable value (a keyword set as a tuple)."""
    return tuple(parameter) if isinstance(parameter, list) else parameter


@dataclass
class AdaptersConfig:
    """The ``adapters`` recipe.

    Args:
        data: the base dataset (``digits`` images for ``rotate``, ``sequence`` for ``shift``).
        target: the target spec, as in ``direct``.
        pretrain: how the target gets its (then frozen) weights.
        adapter: the adapters put into it.
        tasks: the family of tasks.
        method: ``generated`` (a generator of adapters from the task condition), ``per_task``
            (one adapter per task, trained directly) or ``finetune`` (every weight, per task).
        tasks_per_step: training tasks per step (``generated``; the baselines train every task).
        baseline_seen: the baselines (``per_task``, ``finetune``) train only the first this many
            seen tasks, and every held-out one (0: every task). A per-task adapter learns from its
            own task alone, so its accuracy does not depend on how many others there are, while
            hundreds of drawn tasks would cost hundreds of trainings.
        baseline_steps: the baselines' training steps (0: ``train.steps``). A baseline trains
            every one of its tasks at every step, a generator ``tasks_per_step`` of hundreds, so
            the generator may need more steps than the baselines do to converge.
        label_smoothing: the cross-entropy's label smoothing (0 for none).
    """

    recipe: str = "adapters"
    out: str = "runs/adapters"
    data: dict = field(default_factory=lambda: {"name": "digits"})
    target: dict = field(default_factory=lambda: {"name": "mlp_digits"})
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    tasks: FamilyConfig = field(default_factory=FamilyConfig)
    method: Literal["generated", "per_task", "finetune"] = "generated"
    tasks_per_step: int = 4
    baseline_seen: int = 0
    baseline_steps: int = 0
    label_smoothing: float = 0.0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    init: InitConfig = field(default_factory=InitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    checks = {"label_smoothing": LABEL_SMOOTHING, "tasks_per_step": at_least(1), "baseline_seen": at_least(0),
              "baseline_steps": at_least(0)}


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Images rotated by ``degrees`` counter-clockwise about their centre (bilinear; the border
    pixels fill the corners).

    Shapes:
        images ``(N, C, H, W)`` → ``(N, C, H, W)``.

    Example:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> torch.allclose(rotate(rotate(x, 90), -90), x, atol=1e-5), torch.allclose(rotate(x, 0), x)
        (True, True)
    """
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    matrix = images.new_tensor([[cos, -sin, 0.0], [sin, cos, 0.0]]).expand(len(images), 2, 3)
    grid = F.affine_grid(matrix, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def shift_tokens(tokens: torch.Tensor, shift: int, vocab_size: int) -> torch.Tensor:
    """Token ids ``t ≥ 1`` moved to ``1 + (t − 1 + shift) mod (vocab_size − 1)``; padding (0) stays.

    Shapes:
        tokens ``(N, L)`` int64 → the same.

    Example:
        >>> shift_tokens(torch.tensor([[1, 2, 63, 0]]), 2, vocab_size=64).tolist()
        [[3, 4, 2, 0]]
    """
    return torch.where(tokens > 0, 1 + (tokens - 1 + shift) % (vocab_size - 1), tokens)


def keyword_permutation(keywords: list[int], vocab_size: int, marker: int | None = None) -> torch.Tensor:
    """The token map of a ``keywords`` task: ``perm[t]`` is what token ``t`` becomes.

    Keyword ``k`` (token ``k``, ``k = 1..len(keywords)``) becomes ``keywords[k − 1]``; every other
    token ``≥ 1`` except ``marker`` goes, in order, to the tokens left over, so the map is a
    permutation of ``1..vocab_size − 1`` (padding 0 and the marker stay). The label — which keyword
    occurs most — is then which of the task's tokens occurs most, ``keywords[label]``.

    Shapes:
        ``(vocab_size,)`` int64.

    Example:
        >>> keyword_permutation([3, 1], vocab_size=6).tolist()
        [0, 3, 1, 2, 4, 5]
    """
    perm = torch.arange(vocab_size)
    fixed = {0} | ({marker} if marker is not None else set())
    count = len(keywords)
    rest = [t for t in range(count + 1, vocab_size) if t not in fixed]
    free = [t for t in range(1, vocab_size) if t not in fixed and t not in keywords]
    perm[1:count + 1] = torch.tensor(keywords)
    perm[rest] = torch.tensor(free, dtype=torch.int64)
    return perm


def keyword_condition(sets: list[list[int]], pool: list[int]) -> torch.Tensor:
    """The condition of ``keywords`` tasks: for each class ``k``, the one-hot of its token over
    ``pool``, concatenated (``len(set) · len(pool)`` values).

    Shapes:
        ``(len(sets), num_classes · len(pool))``.

    Example:
        >>> keyword_condition([[3, 1]], pool=[1, 2, 3]).tolist()
        [[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    index = {token: i for i, token in enumerate(pool)}
    hot = torch.zeros(len(sets), len(sets[0]), len(pool))
    for row, keywords in enumerate(sets):
        for k, token in enumerate(keywords):
            hot[row, k, index[token]] = 1.0
    return hot.flatten(1)


def draw_keyword_sets(family: FamilyConfig, num_classes: int) -> list[list[int]]:
    """``family.draw`` keyword sets of ``num_classes`` distinct tokens, drawn (seeded by
    ``family.seed``) from the tokens of ``family.train``'s sets, none equal to a listed one.

    Example:
        >>> sets = draw_keyword_sets(FamilyConfig(kind="keywords", train=[[1, 2], [3, 4]], draw=3), 2)
        >>> len(sets), all(len(set(s)) == 2 and set(s) <= {1, 2, 3, 4} for s in sets)
        (3, True)
    """
    if not family.draw:
        return []
    if family.kind != "keywords":
        raise ConfigError(f"tasks.draw draws keyword sets: it needs kind 'keywords', got {family.kind!r}")
    pool = sorted({t for keywords in family.train for t in keywords})
    taken = {_key(p) for p in [*family.train, *family.held_out]}
    available = math.perm(len(pool), num_classes) - len(taken)
    if family.draw > available:
        raise ConfigError(f"tasks.draw: {family.draw} more keyword sets asked, but the {len(pool)} tokens of the train "
                          f"sets make only {available} sets of {num_classes} not listed already")
    rng, drawn = np.random.default_rng(family.seed), []
    while len(drawn) < family.draw:
        keywords = [int(t) for t in rng.choice(pool, num_classes, replace=False)]
        if tuple(keywords) not in taken:
            taken.add(tuple(keywords))
            drawn.append(keywords)
    return drawn


def family_condition(family: FamilyConfig, parameters: list) -> torch.Tensor:
    """The generator's condition for each task of ``family``: Fourier features of the parameter
    (``rotate``, ``shift``) or the keyword sets' one-hots over the tokens they use (``keywords``)."""
    if family.kind == "keywords":
        return keyword_condition(parameters, sorted({t for keywords in parameters for t in keywords}))
    return condition(parameters, family.period, family.harmonics)


def condition(parameters: list[float], period: float, harmonics: int) -> torch.Tensor:
    """Fourier features of task parameters: ``[cos(2πkp/period), sin(2πkp/period)]``, ``k = 1..harmonics``.

    Shapes:
        ``(len(parameters), 2 · harmonics)``.

    Example:
        >>> condition([0.0, 90.0], 360.0, 1).round(decimals=6).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    phase = 2 * math.pi * torch.tensor(parameters, dtype=torch.float64)[:, None] / period
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)
    return torch.cat([torch.cos(phase * k), torch.sin(phase * k)], dim=1).float()


class TaskFamily(nn.Module):
    """A frozen model and what makes it one network per task: a generator of its adapters from
    each task's condition, or one set of trainable values per task (its adapters, or every weight).

    Args:
        model: the model with its adapters (or without, for ``finetune``); frozen here.
        names: the parameters that differ per task (the adapters', or all of them).
        conditions: the task conditions, in task order (a buffer).
        generator: emits ``names`` from a condition; ``None``: per-task values instead, started
            at ``initial`` (``{name: (num_tasks, *shape)}``).
        shared: parameters of ``model`` left trainable, one value for every task (with a generator).

    Shapes:
        forward: ``tasks`` ``(T,)`` task ids, ``inputs`` ``(T, B, ...)`` → logits ``(T, B, classes)``.
    """

    def __init__(self, model: nn.Module, names: list[str], conditions: torch.Tensor,
                 generator: hyperkit.Generator | None = None, initial: dict[str, torch.Tensor] | None = None,
                 shared: list[str] = ()):
        super().__init__()
        self.model, self.names, self.generator = model.requires_grad_(False), list(names), generator
        own = dict(model.named_parameters())
        for name in shared:
            own[name].requires_grad_(True)
        self.register_buffer("conditions", conditions)
        if generator is not None:
            self.spec = hyperkit.describe(model, include=self.names)
        else:
            self.values = nn.ParameterList([nn.Parameter(initial[name]) for name in self.names])

    def weights(self, tasks: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-task parameters of ``tasks``, ``{name: (len(tasks), *shape)}``."""
        if self.generator is not None:
            return self.generator(self.spec, self.conditions[tasks])
        return {name: values[tasks] for name, values in zip(self.names, self.values)}

    def forward(self, tasks: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        weights = self.weights(tasks)
        return torch.stack([hyperkit.call(self.model, {k: v[i] for k, v in weights.items()}, inputs[i])
                            for i in range(len(tasks))])

    def adapters(self, task: int) -> dict[str, torch.Tensor]:
        """Task ``task``'s per-task parameters as plain tensors (its adapters, generated or trained)."""
        with torch.no_grad():
            return {k: v[0].detach().clone() for k, v in self.weights(torch.tensor([task])).items()}

    def network(self, task: int) -> nn.Module:
        """Task ``task``'s network as a plain copy of the target, its adapters folded in."""
        return hyperkit.merge_adapters(self.model, self.adapters(task)).requires_grad_(True)

    def trainable_parameters(self) -> int:
        """Trainable numbers: the generator's (and shared adapter parameters), or every task's values
        (fixed Fourier matrices and the frozen model do not count)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


@register_recipe
class Adapters(Recipe):
    """A frozen, pretrained target adapted to a family of tasks by generated (or per-task) adapters."""

    name = "adapters"
    config_class = AdaptersConfig
    static_graph = True  # every step uses the whole generator (or every task's values)

    def __init__(self, config: AdaptersConfig):
        if config.method != "generated" and config.baseline_steps:
            config = replace(config, train=replace(config.train, steps=config.baseline_steps))
        super().__init__(config)

    def setup(self, device: torch.device) -> nn.Module:
        cfg = self.config
        self.task = load_task(cfg.data)
        family = cfg.tasks
        train = [*family.train, *draw_keyword_sets(family, self.task.num_classes)]
        if cfg.method != "generated" and cfg.baseline_seen:
            train = train[:cfg.baseline_seen]
        self.task_parameters = [*train, *family.held_out]
        self.seen = list(range(len(train)))
        self.held_out = list(range(len(train), len(self.task_parameters)))
        self.train_inputs, self.test_inputs = (self._transformed(x) for x in (self.task.train_x, self.task.test_x))
        target = build_target(cfg.target, self.task)
        check_feed(target, self.task, f"target {cfg.target.get('name')!r}")
        self.base_weights = self._read_weights(target)
        plain = [n for n, _ in target.named_parameters()] + [n for n, _ in target.named_buffers()]
        names = self._adapt(target)
        adapted = [n for n, _ in target.named_parameters() if n not in names or cfg.method == "finetune"]
        self.base_names = dict(zip(plain, adapted + [n for n, _ in target.named_buffers()]))
        conditions = family_condition(family, self.task_parameters)
        shared = []
        if cfg.method != "finetune":  # full fine-tuning has no adapters to share
            shared = [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in cfg.adapter.shared)]
            if cfg.adapter.shared and (not shared or len(shared) == len(names)):
                raise ConfigError(f"adapter.shared {cfg.adapter.shared} must pick some but not all of the adapters' "
                                  f"parameters {names}")
        if cfg.method != "generated":  # the baselines train every adapter parameter per task
            shared = []
        names = [n for n in names if n not in shared]
        if cfg.method == "generated":
            module = TaskFamily(target, names, conditions, self._generator(target, names, len(conditions[0])),
                                shared=shared)
        else:
            module = TaskFamily(target, names, conditions, initial=self._initial(target, names))
        self.task.to(device)
        self.train_inputs, self.test_inputs = self.train_inputs.to(device), self.test_inputs.to(device)
        return module

    def _transformed(self, data: torch.Tensor) -> torch.Tensor:
        """``data`` as every task sees it, ``(num_tasks, N, ...)``."""
        kind = self.config.tasks.kind
        needs = {"rotate": "image", "shift": "sequence", "keywords": "sequence"}[kind]
        if self.task.kind != needs:
            raise ConfigError(f"tasks.kind {kind!r} needs {needs} data; data {self.config.data.get('name')!r} gives "
                              f"{self.task.kind} data (use digits for rotate, sequence for shift and keywords)")
        sets = [p for p in self.task_parameters if isinstance(p, list)]
        if sets and kind != "keywords" or len(sets) != len(self.task_parameters) and kind == "keywords":
            raise ConfigError(f"tasks: kind {kind!r} takes " + ("keyword sets (lists of token ids)" if kind == "keywords"
                              else "numbers") + f" as train and held_out parameters, got {self.task_parameters}")
        if kind == "rotate":
            return torch.stack([rotate(data, p) for p in self.task_parameters])
        vocab = self.task.data.vocab_size
        if kind == "keywords":
            marker = self._check_keyword_sets(vocab)
            return torch.stack([keyword_permutation(p, vocab, marker)[data] for p in self.task_parameters])
        if any(p != int(p) for p in self.task_parameters):
            raise ConfigError(f"tasks: shift parameters must be whole numbers of tokens, got {self.task_parameters}")
        return torch.stack([shift_tokens(data, int(p), vocab) for p in self.task_parameters])

    def _check_keyword_sets(self, vocab: int) -> int | None:
        """Check ``keywords`` task parameters against the data; the marker token to keep (or None)."""
        classes, family = self.task.num_classes, self.config.tasks
        negated = self.config.data.get("max_negated", 3) if self.config.data.get("name") == "sequence" else 0
        marker = classes + 1 if negated else None
        allowed = [t for t in range(1, vocab) if t != marker]
        for group in ("train", "held_out"):
            for keywords in getattr(family, group):
                if len(keywords) != classes or len(set(keywords)) != classes:
                    raise ConfigError(f"tasks.{group}: a keyword set needs {classes} distinct token ids (one "
                                      f"per class), got {keywords}")
                if not set(keywords) <= set(allowed):
                    raise ConfigError(f"tasks.{group}: keyword set {keywords} has token ids outside 1.."
                                      f"{vocab - 1}" + (f" or the 'not' marker {marker}" if marker else ""))
        trained = {t for keywords in family.train for t in keywords}
        unseen = sorted({t for keywords in family.held_out for t in keywords} - trained)
        if unseen:
            raise ConfigError(f"tasks.held_out uses tokens {unseen} that no training set has: the generator "
                              "never learns what they mean; put them in some train set")
        return marker

    def _read_weights(self, target: nn.Module) -> dict[str, torch.Tensor] | None:
        """The state dict ``pretrain.weights`` names, checked against the target (or None)."""
        path = self.config.pretrain.weights
        if path is None:
            return None
        if not Path(path).is_file():
            raise ConfigError(f"pretrain.weights: no file {path}; save the target's weights with "
                              "torch.save(model.state_dict(), path), or train it with pretrain.steps > 0")
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            copy.deepcopy(target).load_state_dict(state)
        except (RuntimeError, AttributeError, TypeError) as err:
            raise ConfigError(f"pretrain.weights: {path} does not fit target {self.config.target}: {err}") from None
        return state

    def _adapt(self, target: nn.Module) -> list[str]:
        """Put the adapters into ``target``; the names of the per-task parameters."""
        cfg = self.config.adapter
        if self.config.method == "finetune":
            return [n for n, _ in target.named_parameters()]
        try:
            return hyperkit.add_adapters(target, cfg.kind, cfg.targets, rank=cfg.rank, alpha=cfg.alpha,
                                         channel_dim=cfg.channel_dim)
        except ValueError as err:
            raise ConfigError(f"adapter: {err}") from None

    def _generator(self, target: nn.Module, names: list[str], condition_size: int) -> hyperkit.Generator:
        spec = hyperkit.describe(target, include=names)
        try:
            return hyperkit.Generator(spec, **to_dict(self.config.generator), condition_size=condition_size,
                                      seed=self.config.train.seed)
        except ValueError as err:
            raise ConfigError(f"generator: {err}") from None

    def _initial(self, target: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
        """Per-task starting values: each task's adapters drawn as ``add_adapters`` draws them (LoRA's
        ``A`` afresh, ``B`` at zero); for ``finetune`` the target's weights (pretrained in prepare)."""
        count, own = len(self.task_parameters), dict(target.named_parameters())
        if self.config.method == "finetune":
            return {n: own[n].detach().expand(count, *own[n].shape).clone() for n in names}
        cfg, plain = self.config.adapter, build_target(self.config.target, self.task)
        draws = []
        for _ in range(count):
            fresh = copy.deepcopy(plain)
            hyperkit.add_adapters(fresh, cfg.kind, cfg.targets, rank=cfg.rank, alpha=cfg.alpha,
                                  channel_dim=cfg.channel_dim)
            draws.append(dict(fresh.named_parameters()))
        return {n: torch.stack([d[n].detach() for d in draws]) for n in names}

    # ------------------------------------------------------------------ before the first step

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        """Pretrain (or load) the target, copy it into the frozen model, then match the generator's
        init statistics under the training tasks' conditions."""
        with torch.random.fork_rng(devices=[]):  # the same pretrained target whatever the method
            torch.manual_seed(self.config.train.seed)
            plain = build_target(self.config.target, self.task).to(module.conditions.device)
            if self.base_weights is not None:
                plain.load_state_dict(self.base_weights)
            else:
                self._pretrain(plain, logger)
        state = dict(module.model.named_parameters()) | dict(module.model.named_buffers())
        with torch.no_grad():
            for name, value in plain.state_dict().items():
                state[self.base_names[name]].copy_(value)
            if self.config.method == "finetune":  # every task starts from the pretrained weights
                for name, values in zip(module.names, module.values):
                    values.copy_(state[name].expand_as(values))
        if module.generator is not None:
            match_init(module.generator, module.spec, self.config.init, self.config.train.seed, logger,
                       condition=module.conditions[self.seen])

    def _pretrain(self, plain: nn.Module, logger: Logger) -> None:
        """Train ``plain`` directly on the base task (the data as it is); every process alike."""
        cfg, seed = self.config.pretrain, self.config.train.seed
        optimizer = build_optimizer(plain.named_parameters(), cfg.lr, 0.0)
        schedule = cosine_with_warmup(optimizer, 0, cfg.steps)
        plain.train()
        for step in range(cfg.steps):
            batch = self.task.batch(step, cfg.batch_size, seed)
            loss = F.cross_entropy(plain(*batch.inputs), batch.labels, label_smoothing=self.config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            logger.scalar("pretrain/loss", loss.item(), step + 1)
        plain.eval()
        with torch.no_grad():
            correct = sum(int((plain(*b.inputs).argmax(-1) == b.labels).sum()) for b in self.task.test_batches())
        logger.scalar("pretrain/accuracy", correct / len(self.task.test_y), cfg.steps)

    # ------------------------------------------------------------------ training and evaluation

    def step_tasks(self, step: int) -> list[int]:
        """The tasks step ``step`` trains: ``tasks_per_step`` seen ones drawn afresh (``generated``),
        or every task (the baselines); the same on every process."""
        if self.config.method != "generated":
            return list(range(len(self.task_parameters)))
        rng = np.random.default_rng([self.config.train.seed, step])
        count = min(self.config.tasks_per_step, len(self.seen))
        return sorted(int(self.seen[i]) for i in rng.choice(len(self.seen), count, replace=False))

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        cfg = self.config.train
        ids = epoch_indices(step, cfg.batch_size, self.task.num_train, cfg.seed)
        if len(ids) % info.world_size:
            raise ConfigError(f"train.batch_size ({len(ids)}) must be divisible by the number of processes "
                              f"({info.world_size}) so every rank gets an equal share of the global batch")
        ids = ids.chunk(info.world_size)[info.rank].to(self.task.train_y.device)
        tasks = torch.tensor(self.step_tasks(step), device=ids.device)
        logits = module(tasks, self.train_inputs[tasks][:, ids])
        labels = self.task.train_y[ids].repeat(len(tasks))
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels, label_smoothing=self.config.label_smoothing)
        accuracy = (logits.flatten(0, 1).argmax(-1) == labels).float().mean()
        return loss, {"accuracy": accuracy}

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        """Test accuracy of every task's network and of the frozen model alone (``base_*``): the
        means over the seen and held-out tasks, and each task's (``task_accuracy/<kind>_<p>``)."""
        tasks = torch.arange(len(self.task_parameters), device=self.test_inputs.device)
        adapted, base = torch.zeros(len(tasks)), torch.zeros(len(tasks))
        size = self.config.train.eval_batch_size
        for start in range(0, len(self.task.test_y), size):
            labels = self.task.test_y[start:start + size]
            inputs = self.test_inputs[:, start:start + size]
            adapted += (module(tasks, inputs).argmax(-1) == labels).sum(-1).cpu()
            base += torch.stack([(module.model(x).argmax(-1) == labels).sum() for x in inputs]).cpu()
        adapted, base = adapted / len(self.task.test_y), base / len(self.task.test_y)
        metrics = {}
        for group, indices in (("seen", self.seen), ("held_out", self.held_out)):
            if indices:
                metrics[f"{group}_accuracy"] = float(adapted[indices].mean())
                metrics[f"base_{group}_accuracy"] = float(base[indices].mean())
        metrics["accuracy"] = metrics["seen_accuracy"]
        for name, value in zip(self.task_names(), adapted.tolist()):
            metrics[f"task_accuracy/{name}"] = value
        return metrics

    def task_names(self) -> list[str]:
        """``<kind>_<parameter>`` of every task, seen ones first (``rotate_30``, ``keywords_7-2-9-4``)."""
        return [f"{self.config.tasks.kind}_" + ("-".join(map(str, p)) if isinstance(p, list) else f"{p:g}")
                for p in self.task_parameters]

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The first seen task's adapters (histogram tags ``weights/<parameter>``)."""
        return module.adapters(self.seen[0])

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """Every task's network, seen and held out, by :meth:`task_names`: a plain target holding
        the pretrained weights with that task's adapters folded in (or its fine-tuned weights)."""
        builder, arguments = resolve_target(self.config.target, self.task)
        return {name: Network(module.network(i), builder, arguments, self.task.input_format())
                for i, name in enumerate(self.task_names())}
