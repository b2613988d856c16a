"""Tests for hyperkit.engine.distributed: single-process defaults and a 2-process Gloo group."""

import os
import random
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hyperkit.engine import (
    DistributedInfo,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup_distributed,
    seed_everything,
    setup_distributed,
)

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def single_process_env(monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_setup_distributed_without_torchrun_is_a_single_process(single_process_env):
    info = setup_distributed("cpu")
    assert info == DistributedInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
    assert info.is_main and not info.is_distributed
    assert not dist.is_initialized()
    default = setup_distributed()
    assert default.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_collectives_are_no_ops_in_a_single_process(single_process_env):
    values = torch.tensor([1.0, 2.0], requires_grad=True)
    mean = all_reduce_mean(values)
    torch.testing.assert_close(mean, torch.tensor([1.0, 2.0]))
    assert mean is not values and not mean.requires_grad
    assert all_reduce_mean(torch.tensor([3, 4])).dtype == torch.float32
    payload = {"run": "a"}
    assert broadcast_object(payload) is payload
    barrier()
    cleanup_distributed()


def test_setup_distributed_explains_bad_environments(monkeypatch, single_process_env):
    monkeypatch.setenv("RANK", "first")
    with pytest.raises(ValueError, match="RANK='first' is not an integer"):
        setup_distributed("cpu")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="MASTER_ADDR, MASTER_PORT is not set"):
        setup_distributed("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_setup_distributed_rejects_cuda_without_a_gpu(single_process_env):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        setup_distributed("cuda")


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)  # restored after the test
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark


def _draws():
    return random.random(), np.random.rand(2).tolist(), torch.randn(3).tolist()


def test_seed_everything_reproduces_python_numpy_and_torch(restore_determinism):
    torch.use_deterministic_algorithms(False)
    seed_everything(7, deterministic=False)
    first = _draws()
    assert not torch.are_deterministic_algorithms_enabled()

    seed_everything(7)
    assert _draws() == first
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    seed_everything(8, deterministic=False)
    assert _draws() != first


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gloo_worker(rank, world_size, port, out_dir):
    # What torchrun would export for this process.
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    info = setup_distributed("cpu")
    try:
        values = torch.tensor([rank + 1.0, 10.0 * (rank + 1)])
        results = {
            "info": (info.rank, info.local_rank, info.world_size, info.is_main),
            "mean": all_reduce_mean(values),
            "input_after": values,
            "int_mean": all_reduce_mean(torch.tensor([rank * 3])),
            "broadcast": broadcast_object({"run_name": f"chosen by rank {rank}"}),
        }
        barrier()
    finally:
        cleanup_distributed()
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))


def test_all_reduce_mean_across_two_gloo_processes(tmp_path):
    world_size = 2
    mp.spawn(_gloo_worker, args=(world_size, _free_port(), str(tmp_path)), nprocs=world_size)

    for rank in range(world_size):
        results = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert results["info"] == (rank, rank, world_size, rank == 0)
        torch.testing.assert_close(results["mean"], torch.tensor([1.5, 15.0]))
        expected_input = torch.tensor([rank + 1.0, 10.0 * (rank + 1)])
        torch.testing.assert_close(results["input_after"], expected_input)  # left untouched
        torch.testing.assert_close(results["int_mean"], torch.tensor([1.5]))
        assert results["broadcast"] == {"run_name": "chosen by rank 0"}
