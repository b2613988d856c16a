"""``recursive``: a root generator emits generators that emit the task network (H0 → … → f).

Only H0 is trained, end to end through every level H1 … HK.

    hyperkit run recursive/k2

Before training, the top-down init (:func:`hyperkit.recursive.init_chain`) matches each level's
generated tensors to their default-init statistics, one level after the other; without it deep
chains diverge (UHN's finding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

import hyperkit
from hyperkit.binding import decay_generated
from hyperkit.config import NON_NEGATIVE, ConfigError, signature_config, to_dict
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.tensorboard import Logger
from hyperkit.initialization import tensor_statistics
from hyperkit.recipes import register_recipe
from hyperkit.generated import GeneratorConfig
from hyperkit.supervised import SupervisedConfig, SupervisedRecipe, TARGET_WEIGHT_DECAY
from hyperkit.recursive import GeneratorChain, init_chain
from hyperkit.engine.trainer import Network
from hyperkit.tasks import Task, classification_loss


ChainInitConfig = signature_config(
    "ChainInitConfig", init_chain, skip=["chain", "tolerance", "grid", "seed", "on_step"], module=__name__,
    doc="Arguments of :func:`hyperkit.recursive.init_chain` (``steps_per_level``, ``lr``, ``decorrelate``, "
        "with its defaults); ``steps_per_level: 0`` skips the phase.")


@dataclass
class RecursiveConfig(SupervisedConfig):
    """The supervised config plus the chain: ``depth`` = K intermediate generators, every level
    built with ``generator``; ``lr_depth_scale``: the run uses ``train.lr · lr_depth_scale^K``;
    ``target_weight_decay``: L2 decay of the task network's generated matrices, as in ``uhn``;
    ``stats_weight``: the init's statistics loss on the intermediate levels H1 … HK, kept in the
    training loss with this weight (0: off) so that training does not drive the generated
    generators away from their default-init mean and spread (see ``docs/recursive.md``)."""

    recipe: str = "recursive"
    out: str = "runs/recursive"
    depth: int = 1
    lr_depth_scale: float = 1.0
    target_weight_decay: float = 0.0
    stats_weight: float = 0.0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    init: ChainInitConfig = field(default_factory=ChainInitConfig)

    checks = {"depth": NON_NEGATIVE, "target_weight_decay": TARGET_WEIGHT_DECAY, "stats_weight": NON_NEGATIVE}


class ChainModel(nn.Module):
    """The task network run with the weights the chain generates.

    ``model(*inputs)`` gives the task network's outputs; ``model(*inputs, level_stats=True)`` gives
    ``(outputs, GeneratorChain.level_stats(levels))`` from the same forward pass (shape ``(K,)``:
    the statistics loss of H1 … HK).
    """

    def __init__(self, chain: GeneratorChain, target: nn.Module, weight_decay: float = 0.0):
        super().__init__()
        self.chain, self.target, self.weight_decay = chain, target.requires_grad_(False), weight_decay

    def forward(self, *inputs, level_stats: bool = False):
        levels = self.chain.generate()
        decay_generated(levels[-1], self.weight_decay)
        outputs = hyperkit.call(self.target, levels[-1], *inputs)
        if not level_stats:
            return outputs
        return outputs, self.chain.level_stats(levels)


@register_recipe
class Recursive(SupervisedRecipe):
    """Supervised training of a :class:`~hyperkit.recursive.GeneratorChain`'s root."""

    name = "recursive"
    config_class = RecursiveConfig

    def build_module(self, target: nn.Module, task: Task) -> nn.Module:
        cfg = self.config
        try:
            chain = GeneratorChain(target, cfg.depth, task.descriptor(), **to_dict(cfg.generator), seed=cfg.train.seed)
        except ValueError as err:
            raise ConfigError(f"generator: {err}") from None
        return ChainModel(chain, target, cfg.target_weight_decay)

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        """The classification loss plus ``stats_weight`` × the summed statistics loss of the
        intermediate levels; each level's term is logged as ``train/level<k>_stats``."""
        cfg = self.config
        batch = self.batch(step, info)
        logits, drift = module(*batch.inputs, level_stats=True)
        loss, correct = classification_loss(logits, batch, cfg.label_smoothing)
        if cfg.stats_weight and drift.numel():
            loss = loss + cfg.stats_weight * drift.sum()
        metrics = {f"level{k}_stats": term.detach() for k, term in enumerate(drift, start=1)}
        return loss, {"accuracy": correct.float() / len(batch), **metrics}

    def lr_multiplier(self) -> float:
        return self.config.lr_depth_scale ** self.config.depth

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        cfg = self.config.init
        if cfg.steps_per_level == 0:
            return
        reports = init_chain(module.chain, **to_dict(cfg), seed=self.config.train.seed,
                             on_step=lambda level, step, loss: logger.scalar(f"init/level{level}/loss", loss, step))
        for report in reports:
            logger.scalar(f"init/level{report.level}/max_error", report.max_error, 0)

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        metrics = super().evaluate(module)
        # Generated-weight statistics per level: the worst |Δmean| or |Δstd| against each tensor's
        # default init, in units of its init scale (level K + 1 is the task network).
        for level, values in enumerate(module.chain.generate(), start=1):
            stats = tensor_statistics(module.chain.specs[level - 1], values, level)
            metrics[f"level{level}_max_stat_error"] = max(s.error() for s in stats)
        return metrics

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The generated task-network weights (histograms ``weights/<parameter>``)."""
        return {name: value.detach() for name, value in module.chain().items()}

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """The task network holding the weights the chain generates."""
        with torch.no_grad():
            return {"target": self.network(hyperkit.materialize(module.target, module.chain()))}
