"""Tests for hyperkit.engine.checkpoint: atomic saves, safe loads, RNG state, file management."""

import pickle
import random
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

from hyperkit.engine import (
    build_optimizer,
    checkpoint_path,
    cosine_with_warmup,
    ensure_writable,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _partial_save_then(error):
    """A torch.save stand-in that writes half a file and then fails, like a full disk or a kill."""

    def failing_save(obj, file):
        file.write(b"PK\x03\x04 half of a zip archive")
        raise error

    return failing_save


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_save_checkpoint_failure_keeps_old_checkpoint_and_leaves_no_temp_file(
    tmp_path, monkeypatch, error
):
    path = checkpoint_path(tmp_path, 100)
    save_checkpoint(path, step=100, weight=torch.arange(4.0))

    monkeypatch.setattr(torch, "save", _partial_save_then(error))
    with pytest.raises(type(error)):
        save_checkpoint(path, step=200, weight=torch.zeros(4))
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    old = load_checkpoint(path)
    assert old["step"] == 100
    torch.testing.assert_close(old["weight"], torch.arange(4.0))


def test_save_checkpoint_creates_folders_and_replaces_existing_file(tmp_path):
    path = tmp_path / "run" / "nested" / "last.pt"
    save_checkpoint(path, step=1)
    save_checkpoint(path, step=2)
    assert load_checkpoint(path) == {"step": 2}
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_save_checkpoint_rejects_values_weights_only_load_refuses(tmp_path):
    with pytest.raises(TypeError, match=r"state\['metrics'\]\['loss'\] is a numpy.float64"):
        save_checkpoint(tmp_path / "a.pt", metrics={"loss": np.float64(0.5)})
    with pytest.raises(TypeError, match="numpy.ndarray"):
        save_checkpoint(tmp_path / "a.pt", data=[np.zeros(2)])
    assert not list(tmp_path.iterdir())


def test_full_training_state_round_trips_with_weights_only(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    optimizer = build_optimizer(model, lr=0.01, weight_decay=0.1)
    scheduler = cosine_with_warmup(optimizer, warmup_steps=2, total_steps=10)
    model(torch.randn(5, 3)).pow(2).mean().backward()
    optimizer.step()
    scheduler.step()
    path = save_checkpoint(
        checkpoint_path(tmp_path, 1),
        model=model.state_dict(), optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(), step=1, rng=rng_state(), config="lr: 0.01\n",
    )

    loaded = torch.load(path, weights_only=True)  # what load_checkpoint does, spelled out
    assert loaded["step"] == 1 and loaded["config"] == "lr: 0.01\n"
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded["model"][name], tensor)
    assert loaded["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]
    assert loaded["scheduler"]["last_epoch"] == 1
    assert set(load_checkpoint(path)["rng"]) == {"python", "numpy", "torch", "cuda"}


def _draw_random_numbers():
    return (
        random.random(), random.gauss(0, 1), np.random.rand(3).tolist(),
        np.random.randn(3).tolist(), torch.rand(3).tolist(), torch.randn(2).tolist(),
    )


def test_rng_state_round_trip_through_a_file_reproduces_all_generators(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    # Leave a cached Gaussian in Python's and NumPy's generators: it is part of the state too.
    random.gauss(0, 1)
    np.random.randn(1)
    path = save_checkpoint(tmp_path / "rng.pt", rng=rng_state())
    expected = _draw_random_numbers()

    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(load_checkpoint(path)["rng"])

    assert _draw_random_numbers() == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
def test_set_rng_state_warns_when_cuda_states_cannot_be_restored():
    state = rng_state()
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    with pytest.warns(UserWarning, match="1 CUDA generator"):
        set_rng_state(state)


def test_load_checkpoint_explains_missing_files_and_unsafe_contents(tmp_path):
    with pytest.raises(FileNotFoundError, match="latest_checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")

    path = tmp_path / "legacy.pt"
    torch.save({"rng": np.random.get_state()}, path)  # numpy arrays need the unsafe unpickler
    with pytest.raises(pickle.UnpicklingError, match="weights_only=False"):
        load_checkpoint(path)
    assert load_checkpoint(path, weights_only=False)["rng"][0] == "MT19937"


def test_checkpoint_path_pads_the_step_number(tmp_path):
    assert checkpoint_path(tmp_path, 42) == tmp_path / "step_00000042.pt"
    with pytest.raises(ValueError, match="step"):
        checkpoint_path(tmp_path, -1)


def test_latest_checkpoint_orders_by_step_number_and_ignores_other_files(tmp_path):
    assert latest_checkpoint(tmp_path / "not_created_yet") is None
    assert latest_checkpoint(tmp_path) is None
    for step in (9, 100, 20):
        save_checkpoint(checkpoint_path(tmp_path, step), step=step)
    for name in ("step_abc.pt", ".step_00000500.pt.x1y2.tmp", "step_00000600.pt.bak", "best.pt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "step_00000700.pt").mkdir()

    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 100)
    # Numbers past the zero padding must still sort by value, not by name.
    save_checkpoint(tmp_path / "step_123456789.pt", step=123456789)
    assert latest_checkpoint(tmp_path).name == "step_123456789.pt"


def test_prune_checkpoints_keeps_the_newest_and_nothing_else_is_touched(tmp_path):
    for step in (1, 2, 3, 4, 5):
        save_checkpoint(checkpoint_path(tmp_path, step), step=step)
    (tmp_path / "config.yaml").write_text("lr: 0.1\n")

    deleted = prune_checkpoints(tmp_path, keep=2)

    assert deleted == [checkpoint_path(tmp_path, step) for step in (1, 2, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.yaml", "step_00000004.pt", "step_00000005.pt"
    ]
    assert prune_checkpoints(tmp_path, keep=3) == []
    with pytest.raises(ValueError, match="keep must be >= 1"):
        prune_checkpoints(tmp_path, keep=0)


def test_ensure_writable_creates_the_folder(tmp_path):
    folder = ensure_writable(tmp_path / "runs" / "exp1")
    assert folder.is_dir() and not list(folder.iterdir())


def test_ensure_writable_names_the_folder_it_cannot_write(tmp_path):
    # A path below a regular file: unwritable even for root, unlike a chmod-ed folder.
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    folder = blocker / "run"
    with pytest.raises(PermissionError, match=re.escape(str(folder))):
        ensure_writable(folder)


def test_saved_checkpoint_gets_ordinary_file_permissions(tmp_path):
    # Temporary files are usually private (0o600); a checkpoint must be as readable as any file.
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("")
    path = save_checkpoint(tmp_path / "step_00000001.pt", step=1)
    assert path.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777
