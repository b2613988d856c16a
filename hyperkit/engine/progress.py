"""A training progress bar (tqdm) showing the loss and steps/s, silent where it would be noise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import torch
from tqdm import tqdm

__all__ = ["ProgressBar"]

# tqdm's own rate flips to "s/step" when slow; the rate goes into the postfix as steps/s instead.
_BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


class ProgressBar:
    """Thin wrapper around ``tqdm`` for a step-based training loop.

    The bar is hidden on non-main ranks (eight interleaved bars are unreadable), when
    ``disable=True``, and — with the default ``disable=None`` — when the output is not a
    terminal, so log files of batch jobs do not fill with carriage returns.

    Args:
        total: the step the run ends at.
        initial: the step the run starts from (non-zero when resuming).
        desc: the label in front of the bar (default ``"train"``).
        is_main: whether this is rank 0; other ranks never show a bar.
        disable: ``True`` hides it, ``False`` forces it even off a terminal, ``None`` decides by
            whether ``file`` is a terminal.
        file: where the bar goes (default ``sys.stderr``).
        **tqdm_kwargs: passed on to ``tqdm`` (e.g. ``mininterval``).

    Example:
        >>> import io
        >>> stream = io.StringIO()
        >>> with ProgressBar(total=2, disable=False, file=stream, mininterval=0) as bar:
        ...     bar.update(loss=0.5)
        ...     bar.update(loss=0.25)
        >>> "loss=0.25" in stream.getvalue() and "steps/s" in stream.getvalue()
        True
    """

    def __init__(
        self,
        total: int,
        initial: int = 0,
        desc: str = "train",
        is_main: bool = True,
        disable: bool | None = None,
        file: TextIO | None = None,
        **tqdm_kwargs: Any,
    ) -> None:
        self._file = file if file is not None else sys.stderr
        self._is_main = is_main
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit="step",
            dynamic_ncols=True,
            bar_format=_BAR_FORMAT,
            file=self._file,
            disable=True if not is_main else disable,
            **tqdm_kwargs,
        )
        # Kept here because tqdm neither counts while disabled nor keeps `disable` after close().
        self._enabled = not self._bar.disable
        self._step = initial

    @property
    def enabled(self) -> bool:
        """Whether the bar is drawn."""
        return self._enabled

    @property
    def step(self) -> int:
        """The current step (``initial`` plus all updates)."""
        return self._step

    def update(
        self, steps: int = 1, loss: float | torch.Tensor | None = None, **metrics: float
    ) -> None:
        """Advance by ``steps`` and show ``loss``, any extra ``metrics`` and the steps/s.

        A loss tensor is only read (``float``, which waits for the GPU) when the bar is about to be
        redrawn, at most every ``mininterval`` seconds, so passing it every step costs nothing.
        """
        self._step += steps
        if not self._enabled:
            return
        if self._redraw_due():
            self._set_postfix(loss, metrics)
        self._bar.update(steps)

    def _redraw_due(self) -> bool:
        # The same clock test tqdm.update() applies before it redraws.
        return time.time() - self._bar.last_print_t >= self._bar.mininterval

    def _set_postfix(self, loss: float | torch.Tensor | None, metrics: dict[str, float]) -> None:
        postfix = {} if loss is None else {"loss": f"{float(loss):.4g}"}
        postfix.update({name: f"{float(value):.4g}" for name, value in metrics.items()})
        rate = self._bar.format_dict["rate"]
        if rate is not None:
            postfix["steps/s"] = f"{rate:.3g}"
        # refresh=False: the update() that follows redraws the bar.
        self._bar.set_postfix(postfix, refresh=False)

    def write(self, message: str) -> None:
        """Print a line above the bar without breaking it (main rank only)."""
        if self._is_main:
            tqdm.write(message, file=self._file)

    def close(self) -> None:
        """Finish the bar's line."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
