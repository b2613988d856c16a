"""The ``hyperkit`` command line, run in-process through ``hyperkit.cli.main`` (the console script's
entry point): what each command prints, and exit code 2 with a message on stderr for a user's error.
(``predict`` has its own file, tests/hyperkit/test_cli_predict.py; ``run``, ``export`` and ``--resume`` are
exercised end to end in tests/test_user_paths.py and tests/recipes/.)"""

from __future__ import annotations

import pytest
import yaml

import hyperkit
from hyperkit.cli import main


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_targets_lists_matching_targets_with_their_sizes(capsys):
    assert main(["targets", "mlp*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["target", "parameters", "layers", "class"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert set(rows) == set(hyperkit.list_targets("mlp*")) >= {"mlp_tiny", "mlp_digits"}
    # mlp_tiny: Linear(4, 16) and Linear(16, 3): 4·16 + 16 + 16·3 + 3 weights in 2 layers
    assert rows["mlp_tiny"] == ["131", "2", "MLP"]
    assert rows["mlp_digits"][0] == "8,970"


def test_targets_with_no_match_says_so_and_exits_1(capsys):
    assert main(["targets", "no_such*"]) == 1
    assert "no registered target matches 'no_such*'" in capsys.readouterr().err


def test_describe_prints_the_descriptor_table_with_builder_arguments(capsys):
    assert main(["describe", "mlp_tiny", "hidden=[4]"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "shape", "layer"]
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert list(rows) == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"]
    assert "(4, 4)" in rows["net.0.weight"] and "(3, 4)" in rows["net.2.weight"]
    # PyTorch's default Linear init, U(-1/√fan_in, 1/√fan_in): std 1/√(3·4) = 0.289
    assert rows["net.0.weight"].split()[-1] == "0.289"
    assert out[-1] == "4 tensors, 35 weights, 2 layers (MLP)"  # 4·4 + 4 + 3·4 + 3


def test_ls_lists_every_recipe_and_its_packaged_configs(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    recipes = [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert {"direct", "uhn", "mothernet", "multi_model", "multi_task", "recursive"} <= set(recipes)
    assert "  direct/digits_mlp-debug\n" in out and "  uhn/digits_mlp-debug\n" in out


def test_validate_prints_the_resolved_config_and_the_model_size(folder, capsys):
    assert main(["validate", "direct/digits_mlp-debug", "train.lr=0.0025", f"out={folder / 'run'}"]) == 0
    out = capsys.readouterr().out
    config = yaml.safe_load(out)  # the comment line at the end is YAML too
    assert config["train"]["lr"] == 0.0025
    assert config["out"] == str(folder / "run")
    # direct trains the target itself: mlp_digits's 8,970 weights, as `hyperkit targets` lists them
    assert out.splitlines()[-1].startswith("# ok: recipe direct, 8,970 trainable parameters, image data")


def test_validate_names_an_unknown_key_and_exits_2(folder, capsys):
    assert main(["validate", "direct/digits_mlp-debug", "train.nope=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyperkit validate: error: ")
    assert "unknown key 'train.nope'" in err and "valid keys under 'train'" in err and "lr" in err


def test_cp_writes_one_self_contained_config_and_refuses_to_overwrite(folder, capsys):
    assert main(["cp", "uhn/digits_mlp-debug", "."]) == 0
    assert capsys.readouterr().out == ("wrote digits_mlp-debug.yaml; run it with: "
                                       "hyperkit run digits_mlp-debug.yaml\n")
    copied = yaml.safe_load((folder / "digits_mlp-debug.yaml").read_text())
    # the base: chain is resolved into the file: the base's keys, with the debug file's on top
    assert "base" not in copied and copied["generator"]["head"] == "lowrank"
    assert copied["train"]["steps"] == 40 and copied["train"]["batch_size"] == 256
    assert main(["cp", "uhn/digits_mlp-debug", "."]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["cp", "uhn/digits_mlp-debug", ".", "--force"]) == 0


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"hyperkit {hyperkit.__version__}\n"


def test_a_users_error_exits_2_with_the_message_on_stderr_not_a_traceback(capsys):
    assert main(["describe", "no_such_target"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hyperkit describe: error: unknown target 'no_such_target'; registered targets:")
    assert "mlp_tiny" in captured.err and "Traceback" not in captured.err


def test_an_unknown_command_exits_2_with_the_valid_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["trian"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'trian'" in err and "'run'" in err
