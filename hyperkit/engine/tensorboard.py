"""TensorBoard logging that is safe to call from every rank, and helpers to read logs back."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "Logger",
    "read_histogram_tags",
    "read_histograms",
    "read_hparams",
    "read_scalars",
    "read_text",
]

_CODE_BLOCK = re.compile(r"\A(`{3,})\n(.*)\n\1\Z", re.DOTALL)


class Logger:
    """A ``SummaryWriter`` that only rank 0 owns; on other ranks every method does nothing.

    Training code can then log unconditionally instead of guarding every call with
    ``if rank == 0``. With ``log_dir=None`` logging is switched off on all ranks.

    Args:
        log_dir: the run folder for event files, or ``None`` to disable logging.
        rank: this process's distributed rank (default 0); only rank 0 writes.
        purge_step: when resuming from the checkpoint of this step, hide the events the killed
            run logged at this step or later, so curves do not fold back on themselves.
        flush_secs: how often pending events reach the disk (default 30 seconds).

    Example:
        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> with Logger(run) as logger:
        ...     logger.scalars({"loss": 0.5, "lr": 1e-3}, step=1, prefix="train/")
        >>> read_scalars(run)["train/loss"]
        [(1, 0.5)]
    """

    def __init__(
        self,
        log_dir: str | os.PathLike | None,
        rank: int = 0,
        purge_step: int | None = None,
        flush_secs: int = 30,
    ) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.rank = rank
        self._writer = None
        if self.log_dir is not None and rank == 0:
            # Imported here: it pulls in the TensorBoard stack (~1 s) that other ranks never need.
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                log_dir=str(self.log_dir), purge_step=purge_step, flush_secs=flush_secs
            )

    @property
    def enabled(self) -> bool:
        """Whether this process writes events (rank 0 with a ``log_dir``)."""
        return self._writer is not None

    def scalar(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        """Log one number; a one-element tensor is converted with ``float``."""
        if self._writer is not None:
            self._writer.add_scalar(tag, float(value), step)

    def scalars(
        self, values: Mapping[str, float | torch.Tensor], step: int, prefix: str = ""
    ) -> None:
        """Log each ``name: value`` pair as its own curve ``prefix + name`` (e.g. ``"train/"``)."""
        for name, value in values.items():
            self.scalar(prefix + name, value, step)

    def histogram(self, tag: str, values: torch.Tensor, step: int) -> None:
        """Log the distribution of all entries of ``values``.

        Raises:
            ValueError: if ``values`` is empty or holds NaN/inf (the weights diverged).
        """
        if self._writer is None:
            return
        values = values.detach().float().cpu()
        _check_histogram_values(tag, values, step)
        self._writer.add_histogram(tag, values, step)

    def weight_histograms(
        self, params: Mapping[str, torch.Tensor], step: int, prefix: str = "generated/"
    ) -> None:
        """Log one histogram per tensor, tagged ``prefix + name`` (e.g. generated target weights).

        Args:
            params: name → tensor, e.g. the dict a generator emits, or
                ``dict(model.named_parameters())``.
            step: the training step.
            prefix: tag prefix (default ``"generated/"``).
        """
        for name, values in params.items():
            self.histogram(prefix + name, values, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        """Log ``text`` verbatim (e.g. the resolved YAML config) as a Markdown code block.

        The block keeps indentation and line breaks, which TensorBoard's Markdown would otherwise
        reflow. :func:`read_text` returns the original text.
        """
        if self._writer is not None:
            self._writer.add_text(tag, _as_code_block(text), step)

    def hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, float | None],
        step: int = 0,
    ) -> None:
        """Record hyperparameters and metrics in the HPARAMS tab of *this* run.

        ``SummaryWriter.add_hparams`` writes into a new sub-folder (a second run per call); here
        the three summaries of ``torch.utils.tensorboard.summary.hparams`` go into the main event
        file instead, so the hyperparameters sit next to the run's own curves.

        Args:
            hparam_dict: hyperparameters; nested dicts are flattened to ``"a.b"`` keys, and values
                other than numbers and strings are logged as their ``str``.
            metric_dict: metric tag → value. A number is also logged as a scalar at ``step``;
                ``None`` declares a metric whose values the run logs itself (the tab shows the
                last value of that scalar tag).
            step: step of the metric scalars (default 0).

        Example:
            >>> import tempfile
            >>> run = tempfile.mkdtemp()
            >>> with Logger(run) as logger:
            ...     logger.hparams({"optim": {"lr": 0.001}, "model": "mlp"}, {"hparam/loss": 0.25})
            >>> read_hparams(run)
            {'model': 'mlp', 'optim.lr': 0.001}
        """
        if self._writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        experiment, session_start, session_end = hparams(
            _flatten_hparams(hparam_dict), dict(metric_dict)
        )
        for summary in (experiment, session_start, session_end):
            self._writer.file_writer.add_summary(summary, step)
        for tag, value in metric_dict.items():
            if value is not None:
                self.scalar(tag, value, step)

    def flush(self) -> None:
        """Write pending events to disk now (e.g. before reading them back)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; later calls do nothing."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_histogram_values(tag: str, values: torch.Tensor, step: int) -> None:
    if values.numel() == 0:
        raise ValueError(
            f"histogram {tag!r} at step {step} got an empty tensor; log non-empty tensors only"
        )
    non_finite = int((~torch.isfinite(values)).sum())
    if non_finite:
        raise ValueError(
            f"histogram {tag!r} at step {step} has {non_finite} NaN/inf values of "
            f"{values.numel()}; training diverged — lower the learning rate or check the loss"
        )


def _as_code_block(text: str) -> str:
    # The fence must be longer than any backtick run inside the text, or the text would close it.
    longest_run = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest_run + 1)
    return f"{fence}\n{text}\n{fence}"


def _flatten_hparams(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten_hparams(value, prefix=f"{name}."))
        elif isinstance(value, torch.Tensor) and value.numel() == 1:
            flat[name] = value.item()
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def _load_events(log_dir: str | os.PathLike):
    from tensorboard.backend.event_processing import event_accumulator

    log_dir = Path(log_dir)
    if not any(log_dir.glob("events.out.tfevents.*")):
        raise FileNotFoundError(
            f"no TensorBoard event files in {log_dir}; was the Logger created with this log_dir on "
            "rank 0, and flushed or closed before reading?"
        )
    # Size guidance 0 keeps every event; the default samples e.g. one histogram per tag.
    keep_all = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    return event_accumulator.EventAccumulator(str(log_dir), size_guidance=keep_all).Reload()


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve in ``log_dir``: tag → ``[(step, value), ...]`` in the order logged.

    Values come back as float32, as TensorBoard stores them.

    Example:
        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> with Logger(run) as logger:
        ...     logger.scalar("loss", 2.0, step=0)
        ...     logger.scalar("loss", 1.5, step=1)
        >>> read_scalars(run)
        {'loss': [(0, 2.0), (1, 1.5)]}
    """
    events = _load_events(log_dir)
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def read_histogram_tags(log_dir: str | os.PathLike) -> list[str]:
    """Sorted tags of the histograms in ``log_dir``.

    Example:
        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> with Logger(run) as logger:
        ...     logger.weight_histograms({"0.weight": torch.ones(3, 2)}, step=0)
        >>> read_histogram_tags(run)
        ['generated/0.weight']
    """
    return sorted(_load_events(log_dir).Tags()["histograms"])


def read_histograms(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, dict[str, float]]]]:
    """Summary statistics of every histogram: tag → ``[(step, {min, max, num, sum}), ...]``.

    Example:
        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> with Logger(run) as logger:
        ...     logger.histogram("w", torch.tensor([1.0, 2.0, 4.0]), step=3)
        >>> read_histograms(run)["w"]
        [(3, {'min': 1.0, 'max': 4.0, 'num': 3.0, 'sum': 7.0})]
    """
    events = _load_events(log_dir)
    fields = ("min", "max", "num", "sum")
    return {
        tag: [
            (event.step, {name: getattr(event.histogram_value, name) for name in fields})
            for event in events.Histograms(tag)
        ]
        for tag in events.Tags()["histograms"]
    }


def read_text(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, str]]]:
    """Every text entry in ``log_dir``: tag → ``[(step, text), ...]``.

    The code block added by :meth:`Logger.text` is removed, so the original text comes back.

    Example:
        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> with Logger(run) as logger:
        ...     logger.text("config", "lr: 0.001\\nmodel: mlp")
        >>> read_text(run)
        {'config': [(0, 'lr: 0.001\\nmodel: mlp')]}
    """
    events = _load_events(log_dir)
    texts = {}
    for tag in events.PluginTagToContent("text"):
        entries = []
        for event in events.Tensors(tag):
            stored = event.tensor_proto.string_val[0].decode("utf-8")
            block = _CODE_BLOCK.match(stored)
            entries.append((event.step, block.group(2) if block else stored))
        # add_text stores "<tag>/text_summary"; hand back the tag the caller logged.
        texts[tag.removesuffix("/text_summary")] = entries
    return texts


def read_hparams(log_dir: str | os.PathLike) -> dict[str, Any]:
    """The hyperparameters :meth:`Logger.hparams` recorded in ``log_dir`` itself (not sub-runs).

    Returns:
        Flattened name → value (numbers as float, strings as str), the latest record winning;
        an empty dict if none was recorded.
    """
    from tensorboard.plugins.hparams import metadata

    events = _load_events(log_dir)
    try:
        content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:
        return {}
    if metadata.SESSION_START_INFO_TAG not in content:
        return {}
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return {
        name: getattr(value, value.WhichOneof("kind"))
        for name, value in sorted(start.hparams.items())
    }
