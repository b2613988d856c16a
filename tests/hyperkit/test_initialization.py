"""hyperkit.initialization: statistics-matching initialisation (UHN's L_init) and the report it returns.
Only public names (hyperkit.describe, Generator, init_statistics, InitReport) are used."""

from __future__ import annotations

import pytest
import torch

import hyperkit

TOLERANCE = 0.1  # init_statistics' default, in units of each tensor's init scale


def _default_init_statistics(target: torch.nn.Module, draws: int = 200) -> dict[str, tuple[float, float]]:
    """Mean and std of every parameter over ``draws`` fresh PyTorch default initialisations."""
    values = {name: [] for name, _ in target.named_parameters()}
    for _ in range(draws):
        for module in target.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for name, p in target.named_parameters():
            values[name].append(p.detach().reshape(-1).clone())
    return {name: (torch.cat(v).mean().item(), torch.cat(v).std().item()) for name, v in values.items()}


@pytest.fixture(scope="module")
def initialised():
    torch.manual_seed(0)
    target = hyperkit.create_target("mlp_tiny")  # Linear(4, 16), ReLU, Linear(16, 3)
    spec = hyperkit.describe(target)
    generator = hyperkit.Generator(spec, head="lowrank", width=32, fourier_features=64)
    with torch.no_grad():
        before = {name: w.clone() for name, w in generator(spec).items()}
    report = hyperkit.init_statistics(generator, spec)
    with torch.no_grad():
        after = generator(spec)
    return target, spec, before, report, after


def test_the_targets_are_pytorchs_default_init_statistics(initialised):
    target, spec, *_ = initialised
    measured = _default_init_statistics(target)
    # nn.Linear: U(-1/√fan_in, 1/√fan_in) for weight and bias, std 1/√(3·fan_in)
    expected_std = {"net.0.weight": 0.2887, "net.0.bias": 0.2887, "net.2.weight": 0.1443, "net.2.bias": 0.1443}
    for name, p in spec.params.items():
        assert p.init_mean == 0.0
        assert p.init_std == pytest.approx(expected_std[name], abs=1e-4)
        mean, std = measured[name]
        assert abs(mean) < 0.02 and std == pytest.approx(p.init_std, rel=0.03)


def test_generated_tensors_match_the_default_init_within_the_reported_tolerance(initialised):
    _, spec, before, report, after = initialised
    assert report.tolerance == TOLERANCE
    for stats in report.stats:
        weights = after[stats.name].double()
        mean, std = weights.mean().item(), weights.std(unbiased=False).item()
        # the report measures the tensors the generator now emits, against the spec's targets
        assert stats.mean == pytest.approx(mean, abs=1e-6) and stats.std == pytest.approx(std, abs=1e-6)
        p = spec.params[stats.name]
        assert (stats.target_mean, stats.target_std, stats.scale) == (p.init_mean, p.init_std, p.scale)
        assert abs(mean - p.init_mean) <= TOLERANCE * p.scale
        assert abs(std - p.init_std) <= TOLERANCE * p.scale
        assert stats.error() == pytest.approx(max(abs(mean - p.init_mean), abs(std - p.init_std)) / p.scale)
    # not vacuous: before init_statistics the generated tensors were off by more than the tolerance
    errors_before = [max(abs(w.mean().item() - spec.params[n].init_mean),
                         abs(w.std(unbiased=False).item() - spec.params[n].init_std)) / spec.params[n].scale
                     for n, w in before.items()]
    assert max(errors_before) > TOLERANCE


def test_init_report_fields(initialised):
    _, spec, _, report, _ = initialised
    assert [s.name for s in report.stats] == list(spec.params)
    assert {s.spec_index for s in report.stats} == {0}
    assert report.converged and report.max_error <= TOLERANCE
    assert report.max_error == max(s.error() for s in report.stats)
    # stops early, once within tolerance: one loss per step taken, falling
    assert 1 <= report.steps < 500 and len(report.losses) == report.steps
    assert report.losses[-1] < report.losses[0] / 10
    # the row correlation covers matrices with at least 8 rows: net.0.weight (16 rows), not net.2 (3)
    assert list(report.correlation) == ["net.0.weight"]
    assert report.decorrelated and report.correlation["net.0.weight"] <= 1 + report.correlation_tolerance
    text = str(report).splitlines()
    assert text[0].split() == ["tensor", "mean", "target", "std", "target", "err"]
    assert text[-1] == f"{report.steps} steps, max error {report.max_error:.3f} (tolerance 0.1), converged"


def test_init_statistics_is_deterministic_for_a_seeded_generator():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    reports = []
    for _ in range(2):
        torch.manual_seed(3)
        generator = hyperkit.Generator(spec, head="lowrank", width=16, fourier_features=32)
        reports.append(hyperkit.init_statistics(generator, spec, steps=10))
    assert reports[0].losses == reports[1].losses and reports[0].steps == 10
