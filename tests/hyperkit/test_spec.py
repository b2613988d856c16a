import sys
import textwrap

import torch
import torch.nn as nn

import hyperkit
from hyperkit.spec import LayerDescription, ParamInfo, register_layer_lazily


def test_lazy_registration_imports_the_layer_class_only_when_describe_meets_its_package(tmp_path, monkeypatch):
    package = tmp_path / "lazy_layers_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "gain.py").write_text(textwrap.dedent("""
        import torch, torch.nn as nn

        class Gain(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.gain = nn.Parameter(torch.ones(n))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    register_layer_lazily("lazy_layers_pkg.gain.Gain", lambda m: LayerDescription(
        {"in_size": m.gain.numel(), "out_size": m.gain.numel()},
        {"gain": ParamInfo("norm_scale", ("row",), mean=1.0, std=0.0)}), "lazy_gain")
    register_layer_lazily("no_such_package_xyz.Layer", lambda m: None)  # never installed: dropped
    hyperkit.describe(nn.Linear(2, 3))  # a target without the package does not import it
    assert "lazy_layers_pkg" not in sys.modules

    from lazy_layers_pkg.gain import Gain

    spec = hyperkit.describe(nn.Sequential(nn.Linear(2, 4), Gain(4)))
    assert spec.params["1.gain"].layer_type == "lazy_gain"
    assert spec.params["1.gain"].init_mean == 1.0


def test_generation_leaves_the_spec_unchanged_and_plans_stay_with_the_generator():
    spec = hyperkit.describe(hyperkit.create_target("mlp_tiny"))
    before = dict(vars(spec))
    gens = [hyperkit.Generator(spec, head=head, width=16, fourier_features=32) for head in ("scalar", "lowrank")]
    for gen in gens:
        gen(spec)
    assert {k: v for k, v in vars(spec).items() if k != "_key"} == before  # key() is memoised, nothing else
    assert all(gen.plans.lookup(spec, "fourier") is not None for gen in gens)
    assert gens[0].plans.lookup(spec, "fourier") is not gens[1].plans.lookup(spec, "fourier")
    assert torch.equal(gens[1].flat(spec), gens[1].flat(spec))
