import importlib

import pytest
import torch.nn as nn

import hyperkit
from hyperkit.cli import main as cli


def test_register_create_and_list():
    @hyperkit.register_target
    def registry_test_net(width=3):
        return nn.Linear(2, width)

    assert hyperkit.create_target("registry_test_net", width=5).out_features == 5
    assert hyperkit.list_targets("registry_test_*") == ["registry_test_net"]
    assert set(hyperkit.list_targets("gcn*")) == {"gcn_small", "gcn_deep"}
    with pytest.raises(ValueError, match="already registered"):
        hyperkit.register_target(registry_test_net)
    with pytest.raises(KeyError, match="unknown target 'gcn_huge'.*gcn_small"):
        hyperkit.create_target("gcn_huge")


def test_unregister_frees_the_name_and_every_registry_is_listed():
    from hyperkit.registry import TARGETS, Registry

    @hyperkit.register_target
    def registry_unregister_net():
        return nn.Linear(2, 2)

    assert TARGETS.unregister("registry_unregister_net") is registry_unregister_net
    assert hyperkit.list_targets("registry_unregister_*") == []
    hyperkit.register_target(registry_unregister_net)  # the name is free again
    TARGETS.unregister("registry_unregister_net")
    with pytest.raises(KeyError, match="unknown target 'registry_unregister_net'"):
        TARGETS.unregister("registry_unregister_net")
    for module in ("hyperkit.data.registry", "hyperkit.families", "hyperkit.recipes"):
        importlib.import_module(module)  # each creates its registry
    assert {r.kind for r in Registry.instances} >= {"target", "dataset", "family", "recipe"}


def test_cli_targets_and_describe(capsys):
    assert cli(["targets", "mlp*"]) == 0
    out = capsys.readouterr().out
    assert "mlp_mnist" in out and "669,706" in out
    assert cli(["describe", "mlp_tiny", "hidden=[8]"]) == 0
    assert "net.2.weight  (3, 8)" in capsys.readouterr().out
    assert cli(["describe", "no_such_target"]) == 2
    assert "unknown target" in capsys.readouterr().err
