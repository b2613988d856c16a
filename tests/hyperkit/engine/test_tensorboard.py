"""Tests for hyperkit.engine.tensorboard: what the Logger writes reads back exactly."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hyperkit.engine import (
    Logger,
    read_histogram_tags,
    read_histograms,
    read_hparams,
    read_scalars,
    read_text,
)

CONFIG_YAML = """\
# resolved config
model:
  hidden_sizes: [16, 16]
optim:
  lr: 0.001
note: "inline ``` fence and `code`"
"""


def test_scalars_read_back_exactly(tmp_path):
    with Logger(tmp_path) as logger:
        logger.scalar("loss", 2.5, step=0)
        logger.scalar("loss", torch.tensor(1.25), step=10)
        logger.scalars({"accuracy": 0.75, "lr": 0.0625}, step=10, prefix="val/")

    assert read_scalars(tmp_path) == {
        "loss": [(0, 2.5), (10, 1.25)],
        "val/accuracy": [(10, 0.75)],
        "val/lr": [(10, 0.0625)],
    }


def test_histograms_read_back_with_exact_statistics(tmp_path):
    generated = {
        "0.weight": torch.tensor([[1.0, -2.0], [3.0, 0.5]]),
        "0.bias": torch.tensor([0.25, 0.75], dtype=torch.bfloat16),
    }
    with Logger(tmp_path) as logger:
        logger.weight_histograms(generated, step=3)
        logger.weight_histograms(generated, step=4, prefix="target/")
        logger.histogram("activations", torch.arange(10.0).requires_grad_(), step=7)

    assert read_histogram_tags(tmp_path) == [
        "activations", "generated/0.bias", "generated/0.weight", "target/0.bias", "target/0.weight"
    ]
    histograms = read_histograms(tmp_path)
    assert histograms["generated/0.weight"] == [
        (3, {"min": -2.0, "max": 3.0, "num": 4.0, "sum": 2.5})
    ]
    assert histograms["target/0.bias"] == [(4, {"min": 0.25, "max": 0.75, "num": 2.0, "sum": 1.0})]
    assert histograms["activations"] == [(7, {"min": 0.0, "max": 9.0, "num": 10.0, "sum": 45.0})]


def test_histogram_of_diverged_weights_is_an_explicit_error(tmp_path):
    with Logger(tmp_path) as logger:
        with pytest.raises(ValueError, match=r"'generated/w' at step 5 has 2 NaN/inf"):
            logger.weight_histograms({"w": torch.tensor([1.0, float("nan"), float("inf")])}, step=5)
        with pytest.raises(ValueError, match="empty"):
            logger.histogram("empty", torch.zeros(0), step=0)


def test_text_is_stored_as_a_code_block_and_reads_back_verbatim(tmp_path):
    with Logger(tmp_path) as logger:
        logger.text("config", CONFIG_YAML)
        logger.text("notes", "resumed", step=50)

    assert read_text(tmp_path) == {"config": [(0, CONFIG_YAML)], "notes": [(50, "resumed")]}
    events = EventAccumulator(str(tmp_path)).Reload()
    stored = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    # The fence is longer than the ``` inside the text, so that text cannot end the block early.
    assert stored == f"````\n{CONFIG_YAML}\n````"


def test_hparams_go_into_the_same_run_not_a_sub_run(tmp_path):
    with Logger(tmp_path) as logger:
        logger.scalar("train/loss", 0.5, step=1)
        logger.hparams(
            {"optim": {"lr": 0.001, "betas": (0.9, 0.99)}, "model": "mlp_tiny", "layers": 2},
            {"hparam/val_loss": 0.125, "train/loss": None},
            step=1,
        )

    assert [p.is_file() for p in tmp_path.iterdir()] == [True]  # one event file, no sub-folder
    assert read_hparams(tmp_path) == {
        "layers": 2.0, "model": "mlp_tiny", "optim.betas": "(0.9, 0.99)", "optim.lr": 0.001
    }
    # Metrics given a value are logged as scalars; None ones are left to the run's own curves.
    assert read_scalars(tmp_path) == {"train/loss": [(1, 0.5)], "hparam/val_loss": [(1, 0.125)]}
    content = EventAccumulator(str(tmp_path)).Reload().PluginTagToContent("hparams")
    assert set(content) == {
        "_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"
    }


def _log_everything(logger):
    logger.scalar("loss", 1.0, step=0)
    logger.scalars({"a": 1.0}, step=0)
    logger.histogram("h", torch.ones(3), step=0)
    logger.weight_histograms({"w": torch.ones(2)}, step=0)
    logger.text("config", "lr: 1")
    logger.hparams({"lr": 1.0}, {"hparam/loss": 1.0})
    logger.flush()
    logger.close()


def test_non_zero_rank_writes_nothing(tmp_path):
    log_dir = tmp_path / "run"
    logger = Logger(log_dir, rank=1)
    _log_everything(logger)
    assert not logger.enabled
    assert not log_dir.exists()


def test_logger_without_log_dir_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # SummaryWriter(None) would create ./runs; make sure it is not used
    logger = Logger(None)
    _log_everything(logger)
    assert not logger.enabled
    assert not list(tmp_path.iterdir())


def test_resume_with_purge_step_drops_the_killed_runs_later_points(tmp_path):
    with Logger(tmp_path) as logger:
        for step in range(8):
            logger.scalar("loss", 1.0, step)
    # The run was killed after step 7 but its last checkpoint is from step 5.
    with Logger(tmp_path, purge_step=5) as logger:
        for step in range(5, 7):
            logger.scalar("loss", 0.5, step)

    assert read_scalars(tmp_path)["loss"] == [
        (0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0), (5, 0.5), (6, 0.5)
    ]


def test_readers_explain_a_folder_without_event_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        read_scalars(tmp_path)
