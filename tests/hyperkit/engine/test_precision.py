"""Tests for hyperkit.engine.precision: autocast and grad scaler choices per device."""

import contextlib
import warnings

import pytest
import torch

from hyperkit.engine import autocast_context, make_grad_scaler
from hyperkit.engine import precision as precision_module


@pytest.fixture(autouse=True)
def fresh_warning_cache():
    precision_module._warn_no_cuda.cache_clear()
    yield
    precision_module._warn_no_cuda.cache_clear()


def test_fp32_is_a_null_context_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context = autocast_context("fp32", "cpu")
    assert isinstance(context, contextlib.nullcontext)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_on_cpu_falls_back_to_fp32_and_warns_once(precision):
    with pytest.warns(UserWarning, match=f"precision '{precision}' needs CUDA"):
        context = autocast_context(precision, torch.device("cpu"))
    with context:
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second request in the same process stays silent
        autocast_context(precision, "cpu")


def test_unknown_precision_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of fp32, bf16, fp16"):
        autocast_context("float16", "cpu")
    with pytest.raises(ValueError, match="'amp'"):
        make_grad_scaler("amp", "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_grad_scaler_on_cpu_is_a_disabled_pass_through(precision):
    scaler = make_grad_scaler(precision, "cpu")
    assert not scaler.is_enabled()
    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    loss = (weight * 2.0).sum()
    scaled = scaler.scale(loss)
    assert scaled is loss
    scaled.backward()
    scaler.step(optimizer)
    scaler.update()
    torch.testing.assert_close(weight.detach(), torch.tensor([0.0]))  # 1 - 0.5 * 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_on_cuda_autocasts_and_scales_only_fp16(precision, dtype):
    with autocast_context(precision, "cuda"):
        product = torch.ones(4, 4, device="cuda") @ torch.ones(4, 4, device="cuda")
    assert product.dtype == dtype
    assert make_grad_scaler(precision, "cuda").is_enabled() == (precision == "fp16")
