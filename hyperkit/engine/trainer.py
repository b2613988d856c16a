"""The training loop every recipe shares: optimiser, schedule, precision, logging, checkpoints,
exact resume and torch.distributed.

A recipe (:class:`Recipe`) says *what* is trained — it builds the module, computes a step's loss
and evaluates; :func:`train` does the rest the same way for every recipe:

- AdamW (:func:`~hyperkit.engine.build_optimizer`) with a cosine schedule and linear warm-up,
  gradient clipping, bf16/fp16 autocast on CUDA;
- a step whose loss is not finite on any rank is skipped on all of them and counted; more than
  ``train.max_nonfinite`` skips abort the run;
- TensorBoard: train/eval loss and metrics, learning rate, gradient norm, steps per second,
  histograms of the (generated) weights, the resolved config as text and the hparams;
- atomic checkpoints of module, optimiser, schedule, gradient scaler, step and RNG states every
  ``train.checkpoint_every`` steps; ``resume=True`` continues from the newest one and ends with
  the same weights as an uninterrupted run (batches are a pure function of seed and step);
- under ``torchrun`` the module is wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on
  CUDA), every rank takes an equal share of each global batch, and only rank 0 logs and writes.

Example:
    >>> import tempfile
    >>> from hyperkit.recipes import load_recipe
    >>> recipe = load_recipe("direct/digits_mlp-debug", [f"out={tempfile.mkdtemp()}", "train.progress=false"])
    >>> result = train(recipe)
    >>> result["step"], result["eval/accuracy"] > 0.5
    (40, True)
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.distributed as dist
import torch.nn as nn

from hyperkit.config import NON_NEGATIVE, POSITIVE, Check, ConfigError, at_least, check_values, save_config, to_dict, to_yaml
from hyperkit.engine.checkpoint import (
    checkpoint_path,
    ensure_writable,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from hyperkit.engine.distributed import (
    DistributedInfo,
    all_reduce_mean,
    barrier,
    cleanup_distributed,
    seed_everything,
    setup_distributed,
)
from hyperkit.engine.precision import autocast_context, make_grad_scaler
from hyperkit.engine.progress import ProgressBar
from hyperkit.engine.schedule import build_optimizer, cosine_with_warmup
from hyperkit.engine.tensorboard import Logger

__all__ = ["Network", "NonFiniteLoss", "Recipe", "TrainConfig", "train"]


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings shared by every recipe (the ``train:`` block).

    Args:
        steps: optimiser steps of the whole run.
        batch_size: global batch size (split evenly over distributed processes).
        lr: peak learning rate of AdamW.
        weight_decay: decoupled weight decay of matrices (biases and norms are not decayed).
        betas: Adam's moment coefficients.
        warmup_steps: linear warm-up steps before the cosine decay.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        grad_clip: clip the global gradient norm to this value; ``null`` disables clipping.
        ema_decay: keep an exponential moving average of the weights with this decay (e.g.
            0.999) and evaluate, log and export it instead of the raw weights; ``null``: off.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; half precision needs CUDA).
        max_nonfinite: abort after more than this many steps with a non-finite loss.
        eval_every: evaluate every this many steps (0: only at the end).
        log_every: log training scalars every this many steps.
        histogram_every: log weight histograms every this many steps (0: at every evaluation).
        checkpoint_every: write a checkpoint every this many steps (0: only at the end).
        keep_checkpoints: how many of the newest checkpoints to keep.
        eval_batch_size: batch size of evaluation passes.
        seed: seed of initialisation, batches and dropout.
        device: ``cpu``, ``cuda`` or ``null`` (CUDA when available).
        threads: torch CPU threads per process (``null``: torch's default).
        progress: show a progress bar (``null``: when writing to a terminal).
    """

    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    max_nonfinite: int = 20
    eval_every: int = 0
    log_every: int = 10
    histogram_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    eval_batch_size: int = 1024
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    progress: bool | None = None

    # Values no run can use, refused when the config is read (hyperkit.config.Check).
    checks = {
        "steps": at_least(1), "batch_size": at_least(1), "log_every": at_least(1),
        "eval_batch_size": at_least(1), "keep_checkpoints": at_least(1),
        "warmup_steps": (NON_NEGATIVE, Check(lambda value, c: value <= c.steps,
                                             "({value}) exceeds steps ({steps})")),
        "eval_every": NON_NEGATIVE, "histogram_every": NON_NEGATIVE, "checkpoint_every": NON_NEGATIVE,
        "max_nonfinite": NON_NEGATIVE,
        "lr": POSITIVE,
        "min_lr_ratio": Check(lambda value, _: 0 <= value <= 1, "must lie in [0, 1], got {value}"),
        "ema_decay": Check(lambda value, _: value is None or 0 < value < 1, "must lie in (0, 1) or be null, got {value}"),
        "grad_clip": Check(lambda value, _: value is None or value > 0, "must be positive or null, got {value}"),
    }

    def check(self, source: str = "train") -> None:
        """Raise :class:`ConfigError` for values no run can use (the declared ``checks``; a config
        read from YAML has passed them already)."""
        check_values(self, source)


# Settings a resumed run may change: they do not alter the weights a step produces. The thread
# count and the device do (the order of a sum's terms changes its rounding), so they are refused.
_RESUMABLE_CHANGES = {"out", "train.steps", "train.eval_every", "train.log_every", "train.histogram_every",
                      "train.checkpoint_every", "train.keep_checkpoints", "train.progress",
                      "train.max_nonfinite", "train.eval_batch_size"}


@dataclass
class Network:
    """One standalone network a run yields (what :meth:`Recipe.targets` returns per name; :func:`hyperkit.load_run`
    and ``hyperkit export`` read it).

    Args:
        module: the network holding its trained or generated weights.
        builder: the target builder, a registered name or an import path:
            ``create_target(builder, **arguments)`` rebuilds the architecture.
        arguments: the builder's keyword arguments, the sizes taken from the data included.
        inputs: how raw data becomes the network's inputs (:meth:`hyperkit.tasks.Task.input_format`).
    """

    module: nn.Module
    builder: str
    arguments: dict
    inputs: dict


class NonFiniteLoss(RuntimeError):
    """Too many training steps had a NaN or infinite loss."""


class Recipe:
    """What :func:`train` needs from an experiment. Subclass it and register it in
    :data:`hyperkit.recipes.RECIPES`.

    The config must have ``out`` (the run folder) and ``train`` (a :class:`TrainConfig`).

    Methods to implement: :meth:`setup`, :meth:`loss`, :meth:`evaluate`; optionally
    :meth:`prepare`, :meth:`weights`, :meth:`hparams`, :meth:`targets`.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    # Whether every step uses the same parameters. Set False where steps differ (multi-task: the
    # tasks a step draws pick which generator parameters take part); see `_Run._wrap`.
    static_graph: ClassVar[bool] = True

    def __init__(self, config: Any):
        self.config = config

    def setup(self, device: torch.device) -> nn.Module:
        """Load data and build the trainable module on ``device``; raise ``ConfigError`` for input
        that cannot work. Called once per process, before anything is written."""
        raise NotImplementedError

    def prepare(self, module: nn.Module, logger: Logger) -> None:
        """One-off work on a fresh run before the first step (e.g. statistics-matching init);
        skipped on resume, whose checkpoint holds the result."""

    def loss(self, module: nn.Module, step: int, info: DistributedInfo) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This rank's loss for global step ``step`` and extra metrics to log (``train/<key>``).
        ``module`` may be wrapped in ``DistributedDataParallel``: call it once, do not reach
        inside, and compute the loss from what the call returns."""
        raise NotImplementedError

    def evaluate(self, module: nn.Module) -> dict[str, float]:
        """Metrics on held-out data, logged as ``eval/<key>``; ``module`` is unwrapped."""
        raise NotImplementedError

    def weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """Tensors to log as histograms (tag prefix ``weights/``); default: the module's parameters."""
        return {name: p.detach() for name, p in module.named_parameters() if p.requires_grad}

    def lr_multiplier(self) -> float:
        """Factor on ``train.lr`` (e.g. a smaller step for a deeper recursive chain); default 1."""
        return 1.0

    def hparams(self) -> dict[str, Any]:
        """Hyperparameters for TensorBoard's HPARAMS tab; default: the whole config."""
        return to_dict(self.config)

    def targets(self, module: nn.Module) -> dict[str, Network]:
        """The standalone networks a trained ``module`` yields, by name, each with the builder and
        arguments that rebuild it (``hyperkit export``, :func:`hyperkit.load_run`); called after
        :meth:`setup`, on the unwrapped module. Default: none."""
        return {}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _check_resume_config(saved: dict, current: dict, path: Path) -> None:
    old, new = _flatten(saved), _flatten(current)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in _RESUMABLE_CHANGES)
    if changed:
        details = "; ".join(f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in changed)
        raise ConfigError(f"cannot resume from {path}: the config differs in {details}. Resume with the run's "
                          f"own config ({path.parent.parent / 'config.yaml'}) or start a new run with another out=")


def _find_previous(recipe: Recipe, resume: bool) -> tuple[Path, Path | None]:
    """The run folder and the checkpoint to resume from; refuses to overwrite a finished run."""
    out = Path(recipe.config.out)
    previous = latest_checkpoint(out / "checkpoints") if (out / "checkpoints").is_dir() else None
    if previous is not None and not resume:
        raise ConfigError(f"{out} already holds a run (checkpoint {previous.name}); pass --resume to "
                          "continue it, or set out= to a new folder")
    return out, previous if resume else None


def train(recipe: Recipe, resume: bool = False) -> dict[str, float]:
    """Train ``recipe`` to ``recipe.config.train.steps``; returns the final evaluation metrics.

    Args:
        recipe: the experiment, holding its checked config.
        resume: continue from the newest checkpoint in ``<out>/checkpoints`` (a fresh start if
            there is none).

    Returns:
        ``{"eval/<metric>": value, ..., "step": steps, "train_seconds": wall time of this call's
        loop, "total_train_seconds": the same summed over every stretch of a resumed run,
        "skipped_steps": non-finite steps}`` (the same on every rank).

    Raises:
        ConfigError: bad config or input, found before any file is written; also a resume whose
            config differs from the run's in anything that changes the result.
        NonFiniteLoss: more than ``train.max_nonfinite`` steps had a non-finite loss.
    """
    cfg: TrainConfig = recipe.config.train
    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    info = setup_distributed(cfg.device)
    try:
        return _train(recipe, cfg, info, resume)
    finally:
        cleanup_distributed()


def _train(recipe: Recipe, cfg: TrainConfig, info: DistributedInfo, resume: bool) -> dict[str, float]:
    return _Run(recipe, cfg, info, resume).run()


class _Run:
    """One training run: its module, optimiser, schedule and logger, and the steps of its loop."""

    def __init__(self, recipe: Recipe, cfg: TrainConfig, info: DistributedInfo, resume: bool):
        self.recipe, self.cfg, self.info = recipe, cfg, info
        self.out, previous = _find_previous(recipe, resume)
        seed_everything(cfg.seed)
        self.module = recipe.setup(info.device).to(info.device)  # bad data or target fail here, before any file
        if info.is_main:
            ensure_writable(self.out)
        self.parameters = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.module.named_parameters(), cfg.lr * recipe.lr_multiplier(),
                                         cfg.weight_decay, cfg.betas)
        self.schedule = cosine_with_warmup(self.optimizer, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)
        self.scaler = make_grad_scaler(cfg.precision, info.device)
        self.config_dict = to_dict(recipe.config)
        self.ema = None if cfg.ema_decay is None else torch.optim.swa_utils.AveragedModel(
            self.module, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay))
        self.step, self.skipped, self.seconds_before = 0, 0, 0.0
        if previous is not None:
            self._restore(previous)
        if info.is_main and resume:
            print(f"resumed from step {self.step} ({previous}), training to step {cfg.steps}" if previous else
                  f"--resume: no checkpoint in {self.out / 'checkpoints'}; starting a fresh run", flush=True)
        # Events a killed run logged after its last checkpoint are hidden (those at `step` came before it).
        self.logger = Logger(self.out if info.is_main else None, info.rank,
                             purge_step=self.step + 1 if previous else 0)
        if info.is_main:
            save_config(recipe.config, self.out / "config.yaml")
        if previous is None:
            self.logger.text("config", to_yaml(recipe.config))
            recipe.prepare(self.module, self.logger)  # identical on every rank: same seed so far
            torch.manual_seed(cfg.seed + info.rank)  # from here ranks draw different dropout masks
        self.wrapped = self._wrap()
        self.started = time.perf_counter()

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.info.device)
        _check_resume_config(state["config"], self.config_dict, path)
        self.module.load_state_dict(state["module"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.skipped = state["step"], state["skipped"]
        self.seconds_before = state.get("train_seconds", 0.0)
        set_rng_state(state["rng"][min(self.info.rank, len(state["rng"]) - 1)])

    def _wrap(self) -> nn.Module:
        """The module in ``DistributedDataParallel`` under torchrun; as it is otherwise.

        A generator has parameters a given target never uses (e.g. kernel-position encodings for
        an MLP), whose gradients DDP must not wait for. With ``Recipe.static_graph`` that set is
        the same every step and DDP records it in the first one. Otherwise
        ``find_unused_parameters`` walks each step's graph back from the module's outputs: a
        parameter unused on one rank adds a zero gradient to the average, and one unused on every
        rank keeps ``grad=None``, as in a single process, so AdamW leaves it alone. That
        bookkeeping is why DDP is kept rather than an all-reduce of the gradients after
        ``backward``, which would need it too and would lose DDP's overlap of communication with
        the backward pass; the walk costs little beside a step.
        """
        if not self.info.is_distributed:
            return self.module
        device_ids = [self.info.device.index] if self.info.device.type == "cuda" else None
        static = self.recipe.static_graph
        return nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids, static_graph=static,
                                                   find_unused_parameters=not static)

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are evaluated, logged and exported: the average with ``ema_decay``."""
        return self.ema.module if self.ema is not None else self.module

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def checkpoint(self) -> None:
        states = _gather(rng_state(), self.info)
        if self.info.is_main:
            extra = {"ema": self.ema.state_dict()} if self.ema is not None else {}
            folder = self.out / "checkpoints"
            save_checkpoint(checkpoint_path(folder, self.step), module=self.module.state_dict(), **extra,
                            optimizer=self.optimizer.state_dict(), schedule=self.schedule.state_dict(),
                            scaler=self.scaler.state_dict(), step=self.step, skipped=self.skipped, rng=states,
                            config=self.config_dict, train_seconds=self.seconds())
            prune_checkpoints(folder, self.cfg.keep_checkpoints)
        barrier()

    def evaluate(self) -> dict[str, float]:
        self.evaluated.eval()
        with torch.no_grad(), autocast_context(self.cfg.precision, self.info.device):
            metrics = {f"eval/{k}": float(v) for k, v in self.recipe.evaluate(self.evaluated).items()}
        self.module.train()
        self.logger.scalars(metrics, self.step)
        if self.cfg.histogram_every == 0:
            self.histograms()
        return metrics

    def histograms(self) -> None:
        with torch.no_grad():
            self.logger.weight_histograms(self.recipe.weights(self.evaluated), self.step, prefix="weights/")

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One optimiser step (or a skipped one); returns the loss, gradient norm and extra metrics."""
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(cfg.precision, self.info.device):
            loss, extra = self.recipe.loss(self.wrapped, self.step, self.info)
        # Backward runs even for a loss that will be skipped: under DDP every rank must finish the
        # gradient all-reduce it started in the forward pass.
        self.scaler.scale(loss).backward()
        finite = torch.isfinite(loss.detach()).float()
        if self.info.is_distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            self._skip()
            grad_norm = torch.tensor(float("nan"))
        else:
            self.scaler.unscale_(self.optimizer)
            limit = cfg.grad_clip if cfg.grad_clip is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, limit)
            self.scaler.step(self.optimizer)
            if self.ema is not None:
                self.ema.update_parameters(self.module)
            self.scaler.update()
        with warnings.catch_warnings():  # a skipped first step triggers "scheduler before optimizer"
            warnings.simplefilter("ignore", UserWarning)
            self.schedule.step()
        self.step += 1
        return loss, grad_norm, extra

    def _skip(self) -> None:
        self.skipped += 1
        self.logger.scalar("train/skipped_steps", self.skipped, self.step + 1)
        if self.skipped > self.cfg.max_nonfinite:
            raise NonFiniteLoss(
                f"the loss was NaN or infinite at {self.skipped} steps (last at step {self.step + 1}), more "
                f"than train.max_nonfinite={self.cfg.max_nonfinite}; lower train.lr (now {self.cfg.lr}), set "
                "train.grad_clip, or use train.precision=fp32. Checkpoints before the failure are in "
                f"{self.out / 'checkpoints'}")

    def run(self) -> dict[str, float]:
        cfg, started = self.cfg, time.perf_counter()
        self.module.train()
        disable = None if cfg.progress is None else not cfg.progress
        metrics: dict[str, float] = {}
        window: dict[str, list[torch.Tensor]] = {}
        window_start, window_steps = time.perf_counter(), 0
        with ProgressBar(cfg.steps, initial=self.step, is_main=self.info.is_main, disable=disable) as bar:
            while self.step < cfg.steps:
                loss, grad_norm, extra = self.train_step()
                window_steps += 1
                for key, value in {"loss": loss, "grad_norm": grad_norm, **extra}.items():
                    window.setdefault(key, []).append(value.detach().float())
                bar.update(loss=loss.item())
                step, last = self.step, self.step == cfg.steps
                if step % cfg.log_every == 0 or last:
                    self._log_window(window, window_steps / (time.perf_counter() - window_start))
                    window, window_start, window_steps = {}, time.perf_counter(), 0
                if cfg.histogram_every and step % cfg.histogram_every == 0:
                    self.histograms()
                if last or (cfg.eval_every and step % cfg.eval_every == 0):
                    metrics = self.evaluate()
                    bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                if last or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                    self.checkpoint()
        if not metrics:  # resumed at the last step: nothing ran, evaluate what the checkpoint holds
            metrics = self.evaluate()
        result = {**metrics, "step": self.step, "train_seconds": time.perf_counter() - started,
                  "total_train_seconds": self.seconds(), "skipped_steps": self.skipped}
        self.logger.hparams(self.recipe.hparams(),  # the logger flattens nested keys
                            {f"hparam/{k.split('/')[-1]}": v for k, v in metrics.items()}, self.step)
        self.logger.close()
        return result

    def _log_window(self, window: dict[str, list[torch.Tensor]], steps_per_second: float) -> None:
        logged = {key: all_reduce_mean(torch.stack(values).nanmean()).item() for key, values in window.items()}
        logged.update(lr=self.optimizer.param_groups[0]["lr"], steps_per_second=steps_per_second)
        self.logger.scalars(logged, self.step, prefix="train/")


def _gather(state: dict, info: DistributedInfo) -> list[dict]:
    """Every rank's RNG state, on rank 0 (a resumed rank continues its own dropout stream)."""
    if not info.is_distributed:
        return [state]
    states: list[Any] = [None] * info.world_size
    dist.all_gather_object(states, state)
    return states
