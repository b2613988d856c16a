"""What a new user does with their own things, run as they would: the ``hyperkit`` command in a
subprocess, from an empty folder outside the repository, with the user's files written by the test."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

MY_TARGETS = textwrap.dedent('''
    import torch.nn as nn
    from hyperkit import register_target
    from hyperkit.families import Family, register_family


    class ResMLP(nn.Module):
        """A residual MLP: not one of hyperkit's targets."""

        def __init__(self, in_features=64, num_classes=10, hidden=32):
            super().__init__()
            self.inp, self.mid, self.out = nn.Linear(in_features, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, num_classes)

        def forward(self, x):
            h = self.inp(x.flatten(1)).relu()  # digits arrive as 1x8x8 images
            return self.out(h + self.mid(h).relu())


    @register_target
    def res_mlp(in_features=64, num_classes=10, hidden=32):
        return ResMLP(in_features, num_classes, hidden)


    @register_family
    def res_family():
        # its members name the target by its registered name: importing this module registered it
        return Family("res_mlp", {"hidden": [16, 24, 32]}, lambda c: c)
''')

SMALL = ["train.steps=4", "train.warmup_steps=0", "train.eval_every=4", "train.checkpoint_every=2",
         "train.log_every=2", "train.threads=1", "init.steps=2"]


def hyperkit(folder, *arguments, ok=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "hyperkit", *map(str, arguments)], cwd=folder, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == ok, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "my_targets.py").write_text(MY_TARGETS)
    return tmp_path


def test_own_target_and_family_by_import_path(folder):
    (folder / "mine.yaml").write_text("base: uhn/digits_mlp-debug\ntarget: {name: my_targets.res_mlp, hidden: 24}\n"
                                      "generator: {rank: 4, width: 32, fourier_features: 64}\n")
    done = hyperkit(folder, "run", "mine.yaml", "out=runs/mine", *SMALL)
    assert "uhn: step 4" in done.stdout
    assert yaml.safe_load((folder / "runs/mine/config.yaml").read_text())["target"]["name"] == "my_targets.res_mlp"
    # the family names its members by the registered name `res_mlp`, known once its module imported
    hyperkit(folder, "run", "multi_model/debug", "family=my_targets.res_family", "stratify=[]",
             "out=runs/family", *SMALL)
    # a wrong path says what was tried
    done = hyperkit(folder, "run", "mine.yaml", "target.name=my_targets.res_mpl", "out=runs/typo", ok=False)
    assert "has no attribute 'res_mpl' (did you mean 'res_mlp'?)" in done.stderr
    done = hyperkit(folder, "run", "mine.yaml", "target.name=their_targets.res_mlp", "out=runs/typo", ok=False)
    assert "no module 'their_targets'" in done.stderr and str(folder) in done.stderr
    done = hyperkit(folder, "describe", "my_targets.res_mlp", "hidden=8")
    assert "mid.weight" in done.stdout


def test_resume_with_options_anywhere_prints_where_and_refuses_a_thread_change(folder):
    hyperkit(folder, "run", "direct/digits_mlp-debug", "out=run", "train.steps=4", "train.checkpoint_every=2",
             "train.threads=1")
    done = hyperkit(folder, "run", "direct/digits_mlp-debug", "--resume", "out=run", "train.steps=6",
                    "train.checkpoint_every=2", "train.threads=1")
    assert "resumed from step 4 (run/checkpoints/step_00000004.pt), training to step 6" in done.stdout
    done = hyperkit(folder, "run", "direct/digits_mlp-debug", "out=run", "train.steps=8", "train.threads=2",
                    "--resume", ok=False)
    assert "train.threads: 1 → 2" in done.stderr
    mode = stat.S_IMODE((folder / "run" / "config.yaml").stat().st_mode)
    assert mode == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_copied_config_travels(folder):
    done = hyperkit(folder, "cp", "uhn/digits_mlp-debug", "mine.yaml")
    assert "wrote mine.yaml" in done.stdout
    copied = yaml.safe_load((folder / "mine.yaml").read_text())
    assert "base" not in copied and copied["recipe"] == "uhn" and copied["target"] == {"name": "mlp_digits"}
    assert (folder / "mine.yaml").read_text().startswith("# hyperkit run mine.yaml\n")
    hyperkit(folder, "cp", "uhn/digits_mlp-debug", "mine.yaml", ok=False)  # no silent overwrite
    (folder / "sub").mkdir()
    hyperkit(folder / "sub", "validate", "../mine.yaml", "out=runs/v")
    # a packaged file copied by hand: its relative base is gone; the error names configs that exist
    (folder / "by_hand.yaml").write_text("base: digits_mlp.yaml\ntrain: {steps: 3, warmup_steps: 0}\n")
    done = hyperkit(folder, "validate", "by_hand.yaml", ok=False)
    assert "uhn/digits_mlp" in done.stderr and "hyperkit cp" in done.stderr
    (folder / "by_name.yaml").write_text("base: uhn/digits_mlp\ntrain: {steps: 3, warmup_steps: 0}\n")
    assert "# ok: recipe uhn" in hyperkit(folder, "validate", "by_name.yaml", "out=runs/v").stdout


def test_command_line_manners(folder):
    assert hyperkit(folder, "--version").stdout.strip().startswith("hyperkit ")
    done = hyperkit(folder, "run", "uhn/digits_mpl", ok=False)
    assert "did you mean 'uhn/digits_mlp'?" in done.stderr
    # help and ls need no torch: they start in a fraction of a second
    check = ("import sys\nfrom hyperkit.cli import main\nmain(['ls'])\n"
             "assert 'torch' not in sys.modules, 'ls imported torch'\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "assert 'torch' not in sys.modules, '--help imported torch'\n")
    done = subprocess.run([sys.executable, "-c", check], cwd=folder, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "uhn: a generator emits every weight" in done.stdout


def test_a_closed_pipe_ends_any_command_quietly(folder):
    for command in ("ls", "targets"):  # `true` reads nothing: every write meets a closed pipe
        done = subprocess.run(["bash", "-c", f"{sys.executable} -m hyperkit {command} | true; "
                               'echo "${PIPESTATUS[0]}"'], cwd=folder, env=ENV, capture_output=True, text=True)
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
        assert done.stdout.strip() in ("0", "1")  # 1 where it wrote into the closed pipe, as Python does


def test_every_positional_argument_has_help():
    from hyperkit.cli import build_parser

    for name, command in build_parser().commands.items():
        for action in command._actions:
            if not action.option_strings:
                assert action.help, f"`hyperkit {name}`: positional {action.dest!r} has no help"


def test_a_prior_family_by_import_path(folder):
    (folder / "my_prior.py").write_text(textwrap.dedent('''
        import numpy as np

        def ring(num_rows, num_features, rng, num_latents=1):
            x = rng.normal(size=(num_rows, num_features))
            radius = np.linalg.norm(x, axis=1)
            return x, radius if num_latents == 1 else x[:, :num_latents] + radius[:, None]
    '''))
    done = hyperkit(folder, "run", "mothernet/invariant_debug", "prior.weights={my_prior.ring: 1.0}",
                    "out=runs/ring", "train.steps=2", "train.eval_every=2", "train.log_every=1", "train.threads=1")
    assert "mothernet: step 2" in done.stdout


def test_adapters_for_my_own_pretrained_model(folder):
    """The user's own module and their own pretrained weights, adapted by generated LoRA over rotated
    digits; the export holds each task's plain network with its adapters folded in."""
    (folder / "pretrain.py").write_text(textwrap.dedent('''
        import torch
        from my_targets import res_mlp
        torch.manual_seed(0)
        torch.save(res_mlp(hidden=24).state_dict(), "res_mlp.pt")  # stands in for their trained model
    '''))
    subprocess.run([sys.executable, "pretrain.py"], cwd=folder, env=ENV, check=True, timeout=120)
    hyperkit(folder, "cp", "adapters/rotated_digits_mlp-debug", "mine.yaml")
    config = yaml.safe_load((folder / "mine.yaml").read_text())
    config.update(target={"name": "my_targets.res_mlp", "hidden": 24}, out="runs/mine",
                  pretrain={"steps": 0, "weights": "res_mlp.pt"})
    config["adapter"]["targets"] = ["mid", "out"]
    (folder / "mine.yaml").write_text(yaml.safe_dump(config))
    done = hyperkit(folder, "run", "mine.yaml", "train.steps=4", "train.eval_every=4", "init.steps=2")
    assert "adapters: step 4" in done.stdout
    hyperkit(folder, "export", "runs/mine", "result.pt")
    check = textwrap.dedent('''
        import torch, hyperkit
        from my_targets import ResMLP
        run = hyperkit.load_exported("result.pt")
        net = run.targets["rotate_15"]                 # a held-out angle
        assert type(net) is ResMLP, type(net)          # their class, adapters folded in
        base = torch.load("res_mlp.pt")
        assert torch.equal(net.inp.weight, base["inp.weight"])          # not adapted
        assert not torch.equal(net.out.weight, base["out.weight"])      # LoRA folded in
        print(net(torch.randn(2, 1, 8, 8)).shape)
    ''')
    done = subprocess.run([sys.executable, "-c", check], cwd=folder, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "torch.Size([2, 10])" in done.stdout, done.stderr[-3000:]


def test_continual_resumes_across_a_task_and_exports_every_task(folder):
    hyperkit(folder, "cp", "continual/split_digits-debug", "mine.yaml")
    small = ["steps_per_task=4", "train.eval_every=2", "train.checkpoint_every=2", "init.steps=2"]
    hyperkit(folder, "run", "mine.yaml", "out=runs/cl", "train.steps=6", *small)
    done = hyperkit(folder, "run", "mine.yaml", "--resume", "out=runs/cl", "train.steps=12", *small)
    assert "resumed from step 6" in done.stdout and "continual: step 12" in done.stdout
    hyperkit(folder, "export", "runs/cl", "tasks.pt")
    check = ("import hyperkit; run = hyperkit.load_exported('tasks.pt'); "
             "print(sorted(run.targets))")
    done = subprocess.run([sys.executable, "-c", check], cwd=folder, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert "['task0', 'task1', 'task2', 'task3', 'task4']" in done.stdout, done.stderr[-3000:]
