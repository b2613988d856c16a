"""Tests for hyperkit.engine.progress: when the bar shows, and what it shows."""

import io

from hyperkit.engine import ProgressBar


def test_forced_bar_shows_step_loss_metrics_and_rate():
    stream = io.StringIO()
    with ProgressBar(total=10, initial=5, disable=False, file=stream, mininterval=0) as bar:
        for loss in (0.5, 0.25):
            bar.update(loss=loss, lr=0.001)
    output = stream.getvalue()
    assert bar.enabled and bar.step == 7
    assert "7/10" in output
    assert "loss=0.25" in output and "lr=0.001" in output and "steps/s=" in output


def test_bar_is_hidden_off_a_terminal_by_default_but_messages_still_print():
    stream = io.StringIO()  # not a TTY, like a batch job's log file
    with ProgressBar(total=3, file=stream, mininterval=0) as bar:
        bar.update(loss=1.0)
        bar.write("evaluated: accuracy 0.9")
    assert not bar.enabled and bar.step == 1
    assert stream.getvalue() == "evaluated: accuracy 0.9\n"


def test_non_main_rank_and_disable_true_print_nothing():
    for options in ({"is_main": False, "disable": False}, {"disable": True}):
        stream = io.StringIO()
        with ProgressBar(total=3, file=stream, mininterval=0, **options) as bar:
            bar.update(steps=2, loss=1.0)
            if not options.get("is_main", True):
                bar.write("only rank 0 prints")
        assert not bar.enabled and bar.step == 2
        assert stream.getvalue() == ""


class _CountingLoss:
    """Stands in for a CUDA loss tensor: counts the reads that would wait for the GPU."""

    def __init__(self):
        self.reads = 0

    def __float__(self):
        self.reads += 1
        return 0.5


def test_loss_is_read_only_when_the_bar_redraws():
    loss = _CountingLoss()
    with ProgressBar(total=100, disable=False, file=io.StringIO(), mininterval=3600) as bar:
        for _ in range(100):
            bar.update(loss=loss)
    assert bar.step == 100
    assert loss.reads <= 1
