"""``mothernet``: meta-train MotherNet on synthetic tables, to emit a classifier per table.

From a table's training rows it learns to emit a child MLP that classifies the test rows.

    hyperkit run mothernet/cpu
    torchrun --nproc_per_node=8 -m hyperkit run mothernet/paper train.precision=bf16

Every step samples ``train.batch_size`` fresh tables (split over ranks), each with its own
features, classes and train/test split; the loss is the cross-entropy of the generated children
on the test rows. Tables are a pure function of ``(seed, step, rank)``, so resume is exact; with
``prefetch`` (default on CUDA) the next step's tables are sampled in a background thread while
the current step trains. ``train/sample_seconds`` is the time a step waited for its tables.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
import torch
import torch.nn as nn
import torch.nn.functional as F

from hyperkit.config import Check, ConfigError, from_dict, to_dict
from hyperkit.engine.checkpoint import latest_checkpoint, load_checkpoint
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.tensorboard import read_scalars
from hyperkit.engine.trainer import Recipe, TrainConfig
from hyperkit.recipes import register_recipe
from hyperkit.engine.checkpoint import trained_weights
from hyperkit.tabular.classifier import build_model, save_pretrained
from hyperkit.tabular.invariant import InvariantMotherNet
from hyperkit.tabular.model import prepare_tables
from hyperkit.tabular.prior import Prior, TaskBatch


@dataclass
class PriorConfig(Prior):
    """The prior a step samples from (:class:`hyperkit.tabular.prior.Prior`, whose arguments are
    the keys of the config's ``prior:``), plus the tables' row counts: each step draws one count in
    ``min_rows .. max_rows`` for all its tables."""

    min_rows: int = 64
    max_rows: int = 512

    checks = {"min_rows": Check(lambda rows, prior: 4 <= rows <= prior.max_rows,
                                "({value}) must be at least 4 and at most max_rows ({max_rows})")}


@dataclass
class ModelConfig:
    """The model: ``architecture`` picks the class, the other keys are its arguments.

    ``mothernet``: the paper's :class:`hyperkit.tabular.model.MotherNet` (tables padded to
    ``prior.max_features``, at most ``prior.max_classes`` classes); its keys are ``embedding_size``,
    ``num_layers``, ``num_heads``, ``feedforward_size``, ``dropout``, ``pooling``,
    ``decoder_width``, ``decoder_blocks``, ``head``, ``child_hidden``, ``child_rank``.
    ``invariant``: :class:`hyperkit.tabular.invariant.InvariantMotherNet` (any width, any number
    of classes); its keys are ``embedding_size``, ``num_heads``, ``num_blocks``, ``bins``,
    ``hinges``, ``child_hidden``. A key the chosen architecture does not read must keep its
    default.
    """

    architecture: Literal["mothernet", "invariant"] = "mothernet"
    embedding_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    feedforward_size: int = 256
    dropout: float = 0.0
    pooling: Literal["class_mean", "attention"] = "class_mean"
    decoder_width: int = 512
    decoder_blocks: int = 1
    head: Literal["flat", "lowrank"] = "flat"
    child_hidden: int = 128
    child_rank: int = 16
    num_blocks: int = 3
    bins: int = 16
    hinges: int = 4

    def arguments(self, prior: Prior) -> dict:
        """The constructor arguments of the chosen architecture, ``architecture`` included (what
        :func:`hyperkit.tabular.build_model` and saved model files take)."""
        if self.architecture == "invariant":
            keys = ("embedding_size", "num_heads", "num_blocks", "bins", "hinges", "child_hidden")
            sizes = {}
        else:
            keys = ("embedding_size", "num_layers", "num_heads", "feedforward_size", "dropout", "pooling",
                    "decoder_width", "decoder_blocks", "head", "child_hidden", "child_rank")
            sizes = {"max_features": prior.max_features, "max_classes": prior.max_classes}
        defaults, values = ModelConfig(), to_dict(self)
        unread = [k for k in values if k not in keys and k != "architecture" and values[k] != getattr(defaults, k)]
        if unread:
            raise ConfigError(f"model: {', '.join(unread)} not read by architecture {self.architecture!r}; "
                              f"its keys are {', '.join(keys)}")
        return {"architecture": self.architecture, **sizes, **{k: values[k] for k in keys}}


@dataclass
class MotherNetConfig:
    """The ``mothernet`` recipe: prior, model, optimisation (``train.batch_size`` = tables per step)."""

    recipe: str = "mothernet"
    out: str = "runs/mothernet"
    prior: PriorConfig = field(default_factory=PriorConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval_tables: int = 64
    # A MotherNet file (from `hyperkit export` or save_pretrained) whose weights start this run, to
    # train a model further; its sizes must equal prior.max_features/max_classes and model.
    init: str | None = None
    # Sample the next step's tables in a background thread. Off by default on CPU: the sampling
    # thread competes with torch's own threads for the same cores and slows the step more than
    # it saves (measured on 2 cores); on a GPU the CPU is otherwise idle.
    prefetch: bool | None = None
    train: TrainConfig = field(default_factory=TrainConfig)


def _inputs(model: nn.Module, batch: TaskBatch, device: torch.device) -> tuple:
    """A batch as its model reads it: prepared features ``(B, N, D)``, labels ``(B, N)``, and the
    sizes ``(num_features, num_classes)`` an invariant model also takes (empty for the paper's).

    The paper's model reads a fixed padded width, rescaled so a table's energy does not depend on
    its feature count; the invariant one reads the real features only and needs no rescaling."""
    invariant = isinstance(_unwrap(model), InvariantMotherNet)
    num_features = torch.from_numpy(batch.num_features).to(device)
    x = prepare_tables(torch.from_numpy(batch.x).to(device), num_features, batch.split, scale=not invariant)
    sizes = (num_features, torch.from_numpy(batch.num_classes).to(device)) if invariant else ()
    return x, torch.from_numpy(batch.y).to(device), sizes


def table_loss(model: nn.Module, batch: TaskBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each table's generated child on its test rows (the slots no class of the
    table occupies masked), and the number of correct test predictions."""
    x, y, sizes = _inputs(model, batch, device)
    logits = model(x[:, : batch.split], y[:, : batch.split], x[:, batch.split:], *sizes)
    absent = ~torch.from_numpy(batch.slots).to(device)[:, : logits.shape[-1]]  # an invariant model: C ≤ slots
    logits = logits.float().masked_fill(absent[:, None, :], float("-inf"))
    test = y[:, batch.split:]
    loss = F.cross_entropy(logits.flatten(0, 1), test.flatten())
    return loss, (logits.argmax(-1) == test).sum()


def _unwrap(module: nn.Module) -> nn.Module:
    """The MotherNet inside a :class:`_Classify`, itself perhaps inside DDP."""
    module = getattr(module, "module", module)
    return getattr(module, "model", module)


class _Classify(nn.Module):
    """MotherNet as ``(x_train, y_train, x_test[, num_features, num_classes]) → logits``: the
    module DDP wraps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x_train, y_train, x_test, *sizes):
        return self.model.logits(x_train, y_train, x_test, *sizes)


@register_recipe
class MotherNetRecipe(Recipe):
    """Meta-training on the prior; evaluation on a fixed set of prior tables."""

    name = "mothernet"
    config_class = MotherNetConfig

    def setup(self, device: torch.device) -> nn.Module:
        cfg = self.config
        self.prior = cfg.prior  # checked when the config was read
        arguments = cfg.model.arguments(cfg.prior)
        if cfg.prior.batch_width and cfg.model.architecture != "invariant":
            raise ConfigError("prior.batch_width: the 'mothernet' architecture reads tables padded to "
                              "prior.max_features; set prior.batch_width=false or model.architecture=invariant")
        try:
            model = build_model(arguments)
        except ValueError as err:
            raise ConfigError(f"mothernet: {err}") from None
        if cfg.init is not None:
            _load_init(model, cfg.init, arguments)
        prefetch = cfg.prefetch if cfg.prefetch is not None else device.type == "cuda"
        self.device, self._pool, self._pending = device, ThreadPoolExecutor(1) if prefetch else None, None
        return _Classify(model)

    def _tables(self, step: int, info: DistributedInfo) -> TaskBatch:
        cfg = self.config
        if cfg.train.batch_size % info.world_size:
            raise ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by the number of "
                              f"processes ({info.world_size})")
        rng = np.random.default_rng([cfg.train.seed, step, info.rank])
        num_rows = int(rng.integers(cfg.prior.min_rows, cfg.prior.max_rows + 1))
        return self.prior.sample(cfg.train.batch_size // info.world_size, num_rows, rng)

    def loss(self, module: nn.Module, step: int, info: DistributedInfo):
        start = time.perf_counter()
        if self._pending is not None and self._pending[0] == step:
            batch = self._pending[1].result()
        else:
            batch = self._tables(step, info)
        waited = time.perf_counter() - start
        if self._pool is not None:
            self._pending = (step + 1, self._pool.submit(self._tables, step + 1, info))
        loss, correct = table_loss(module, batch, self.device)
        test_rows = batch.y.shape[0] * (batch.y.shape[1] - batch.split)
        return loss, {"accuracy": correct.float() / test_rows, "sample_seconds": torch.tensor(waited)}

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        rng = np.random.default_rng([self.config.train.seed, 10**9])
        total, correct, rows = 0.0, 0, 0
        for _ in range(max(1, self.config.eval_tables // 16)):
            batch = self.prior.sample(16, 256, rng)
            loss, right = table_loss(module, batch, self.device)
            n = batch.y.shape[0] * (batch.y.shape[1] - batch.split)
            total, correct, rows = total + loss.item() * n, correct + int(right), rows + n
        return {"loss": total / rows, "accuracy": correct / rows}

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Generated child weights for a few prior tables (histograms ``weights/<child parameter>``)."""
        batch = self.prior.sample(4, 128, np.random.default_rng([self.config.train.seed, 10**9 + 1]))
        x, y, sizes = _inputs(module, batch, self.device)
        return {k: v.detach() for k, v in _unwrap(module)(x[:, : batch.split], y[:, : batch.split], *sizes).items()}

    @staticmethod
    def export(run: str | Path, path: str | Path, checkpoint: str | Path | None = None) -> Path:
        """Save the newest checkpoint of a ``mothernet`` run (or the given ``checkpoint`` file of
        it) as classifier weights: the model's arguments, its state, the run's config, step and
        total training time (read back with :func:`hyperkit.tabular.load_pretrained`,
        ``torch.load(weights_only=True)``)."""
        run = Path(run)
        if checkpoint is None and (run / "checkpoints").is_dir():
            checkpoint = latest_checkpoint(run / "checkpoints")
        if checkpoint is None:
            raise FileNotFoundError(f"no checkpoint in {run / 'checkpoints'}; is {run} a mothernet run folder?")
        checkpoint = Path(checkpoint)
        state = load_checkpoint(checkpoint)
        config = from_dict(MotherNetConfig, state["config"], source=str(checkpoint))
        arguments = config.model.arguments(config.prior)
        model = build_model(arguments)
        weights = trained_weights(state)  # the moving average when trained with train.ema_decay
        model.load_state_dict({k.removeprefix("model."): v for k, v in weights.items()})
        info = {"step": state["step"], "train_seconds": round(_logged_seconds(run, state["step"]), 1),
                "source": f"{run.name}/checkpoints/{checkpoint.name}", "config": state["config"]}
        if config.init is not None:  # trained further from another model: keep that model's record
            previous = torch.load(config.init, map_location="cpu", weights_only=True)["info"]
            info["init"] = {k: v for k, v in previous.items() if k != "config"}
            info["total_steps"] = info["step"] + previous.get("total_steps", previous["step"])
            info["total_train_seconds"] = round(
                info["train_seconds"] + previous.get("total_train_seconds", previous["train_seconds"]), 1)
        path = save_pretrained(model, arguments, path, **info)
        Path(path).with_suffix(".yaml").write_text(yaml.safe_dump(info, sort_keys=False))  # the record beside the weights
        return path


def _load_init(model: nn.Module, path: str, arguments: dict) -> None:
    """Start ``model`` from the weights in ``path`` (config key ``init``)."""
    if not Path(path).is_file():
        raise ConfigError(f"init: no MotherNet file at {path}; give a file written by `hyperkit export` "
                          "or hyperkit.tabular.save_pretrained")
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = {"architecture": "mothernet", **state["arguments"]}  # files from before architectures were named
    differ = sorted(k for k in set(saved) | set(arguments) if saved.get(k) != arguments.get(k))
    if differ:
        details = ", ".join(f"{k}: file {saved.get(k)!r}, config {arguments.get(k)!r}" for k in differ)
        raise ConfigError(f"init: {path} holds a MotherNet of other sizes ({details}); set the config's "
                          "prior.max_features/max_classes and model.* to the file's values")
    model.load_state_dict(state["model"])


def _logged_seconds(run: Path, last_step: int) -> float:
    """Training time up to ``last_step`` from the logged throughput (``train/steps_per_second``),
    summed over every stretch of a resumed run; evaluation and checkpoint time is not counted."""
    try:
        logged = read_scalars(run).get("train/steps_per_second", [])
    except FileNotFoundError:
        return float("nan")
    seconds, previous = 0.0, 0
    for step, rate in sorted(logged):
        if step > last_step:
            break
        seconds += (step - previous) / rate
        previous = step
    return seconds
