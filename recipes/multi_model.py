"""``multi_model``: one generator for a whole architecture family, evaluated on held-out members.

    hyperkit run multi_model/digits_mlp

Every step samples ``models_per_step`` training architectures of the family, generates all their
weights in one :meth:`~hyperkit.Generator.generate_many` call and averages their losses on the
same minibatch. The structure encoder and the global descriptors tell the generator which
architecture it is generating for; the normalisation ranges come from every member of the family
declaration (held-out ones included), so they are fixed before training and saved with the
generator. Evaluation reports the mean test accuracy of the seen architectures, of held-out
architectures inside the training choices (interpolation) and outside them (extrapolation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

import hyperkit
from hyperkit.config import ConfigError
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.tensorboard import Logger
from hyperkit.families import FAMILIES, Member
from hyperkit.recipes import register_recipe
from hyperkit.engine.trainer import Network, TrainConfig
from hyperkit.generated import GeneratedTargets, GeneratorConfig, InitConfig, build_generator, match_init
from hyperkit.supervised import LABEL_SMOOTHING, TARGET_WEIGHT_DECAY, SupervisedRecipe
from hyperkit.tasks import build_target, check_feed, classification_loss, load_task, resolve_target


@dataclass
class MultiModelConfig:
    """The ``multi_model`` recipe.

    Args:
        family: a registered family (``hyperkit.families.FAMILIES``).
        held_out: members held out for interpolation (every extrapolation member is held out too).
        split_seed: seed of the choice of held-out members; kept apart from ``train.seed`` so
            that runs with different training seeds are scored on the same held-out members.
        stratify: choices over which the held-out members are spread evenly (e.g. ``[depth]``),
            so that seen and held-out members mix easy and hard architectures alike.
        models_per_step: training architectures per optimiser step.
        label_smoothing: the cross-entropy's label smoothing (0 for none), as in ``uhn``.
        target_weight_decay: L2 decay of the generated matrices (0 for none), as in ``uhn``.
    """

    recipe: str = "multi_model"
    out: str = "runs/multi_model"
    data: dict = field(default_factory=lambda: {"name": "digits"})
    family: str = "mlp_digits_family"
    held_out: int = 2
    split_seed: int = 0
    stratify: list = field(default_factory=list)
    models_per_step: int = 4
    label_smoothing: float = 0.0
    target_weight_decay: float = 0.0
    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(structure_encoder=True))
    init: InitConfig = field(default_factory=InitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    checks = {"label_smoothing": LABEL_SMOOTHING, "target_weight_decay": TARGET_WEIGHT_DECAY}


@register_recipe
class MultiModel(SupervisedRecipe):
    """One generator trained on sampled members of an architecture family."""

    name = "multi_model"
    config_class = MultiModelConfig
    # One target builder makes every member of a family, so every step uses the same generator
    # parameters (checked for each member of the packaged families); a family whose members mix
    # layer kinds (with and without convolutions, say) would need False, as multi_task.
    static_graph = True

    def setup(self, device: torch.device) -> nn.Module:
        cfg = self.config
        self.task = load_task(cfg.data)
        try:
            family = FAMILIES.get(cfg.family)()
        except KeyError as err:
            raise ConfigError(f"family: {err.args[0]}") from None
        try:
            split = family.split(cfg.held_out, seed=cfg.split_seed, stratify=cfg.stratify)
        except ValueError as err:
            raise ConfigError(f"held_out / stratify: {err}") from None
        self.groups = {"seen": split.train, "interpolation": split.interpolation, "extrapolation": split.extrapolation}
        members: list[Member] = [m for group in self.groups.values() for m in group]
        targets = [self._build(m) for m in members]
        specs = [hyperkit.describe(t, task=self.task.descriptor()) for t in targets]
        # Normalisation ranges from the whole declared family, held-out members included.
        generator = build_generator(specs, cfg.generator, cfg.train.seed)
        self.index = {name: [members.index(m) for m in group] for name, group in self.groups.items()}
        self.task.to(device)
        return GeneratedTargets(generator, targets, specs, cfg.target_weight_decay)

    def _build(self, member: Member) -> nn.Module:
        target = build_target({"name": member.target, **dict(member.arguments)}, self.task)
        check_feed(target, self.task, f"family member {member.name}")
        return target

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        seen = [module.specs[i] for i in self.index["seen"]]
        match_init(module.generator, seen, self.config.init, self.config.train.seed, logger)

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        cfg = self.config
        rng = np.random.default_rng([cfg.train.seed, step])
        seen = self.index["seen"]
        members = [seen[i] for i in rng.choice(len(seen), min(cfg.models_per_step, len(seen)), replace=False)]
        batch = self.batch(step, info)
        outputs = module(members, [batch.inputs] * len(members))
        losses, correct = zip(*(classification_loss(logits, batch, cfg.label_smoothing) for logits in outputs))
        accuracy = torch.stack(correct).float().sum() / (len(batch) * len(members))
        return torch.stack(losses).mean(), {"accuracy": accuracy}

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        metrics = {}
        for group, indices in self.index.items():
            if indices:
                accuracies = module.evaluate(indices, [self.task] * len(indices), self.config.train.eval_batch_size)
                metrics[f"{group}_accuracy"] = float(np.mean(accuracies))
                if group == "interpolation":  # which held-out architecture fails, when one does
                    for member, accuracy in zip(self.groups[group], accuracies):
                        metrics[f"interpolation_accuracy/{member.label}"] = float(accuracy)
        metrics["accuracy"] = metrics["seen_accuracy"]
        return metrics

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Generated weights of the first seen architecture."""
        first = self.index["seen"][0]
        return {name: value.detach() for name, value in module.generator(module.specs[first]).items()}

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """Every member of the family, seen and held out, by its name, in the order of
        ``module.targets`` (seen, interpolation, extrapolation)."""
        members = [m for group in self.groups.values() for m in group]
        return {m.name: Network(network, *resolve_target({"name": m.target, **dict(m.arguments)}, self.task),
                                self.task.input_format())
                for m, network in zip(members, module.materialize())}
