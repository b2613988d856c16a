"""The adapters recipe: a frozen pretrained target, generated adapters over a family of tasks."""

from __future__ import annotations

import shutil

import pytest
import torch

import hyperkit
from hyperkit.config import ConfigError
from hyperkit.engine import load_checkpoint
from hyperkit.engine.distributed import DistributedInfo
from hyperkit.engine.tensorboard import Logger
from hyperkit.engine.trainer import train
from hyperkit.tasks import build_target
from hyperkit.recipes import load_recipe
from hyperkit.recipes.adapters import keyword_permutation, rotate
from hyperkit.recipes.runs import export_run
from test_recipes import train_through_cli  # tests/recipes is on sys.path

DEBUG = "adapters/rotated_digits_mlp-debug"
CPU = torch.device("cpu")
INFO = DistributedInfo(rank=0, local_rank=0, world_size=1, device=CPU)


def prepared(tmp_path, *overrides: str):
    """The debug recipe and its module after ``setup`` and ``prepare`` (pretrained, init matched)."""
    recipe = load_recipe(DEBUG, [f"out={tmp_path / 'run'}", *overrides])
    torch.manual_seed(0)
    module = recipe.setup(CPU)
    recipe.prepare(module, Logger(None, 0))
    return recipe, module


def checkpoint(out, step: int) -> dict:
    return load_checkpoint(out / "checkpoints" / f"step_{step:08d}.pt")


def test_debug_config_trains_and_reports_seen_held_out_and_each_task(tmp_path):
    scalars = train_through_cli(DEBUG, tmp_path / "run", "train.lr=1e-2")
    last = {tag: values[-1][1] for tag, values in scalars.items()}
    for tag in ("seen_accuracy", "held_out_accuracy", "base_seen_accuracy", "base_held_out_accuracy",
                "task_accuracy/rotate_-30", "task_accuracy/rotate_15"):
        assert 0 <= last[f"eval/{tag}"] <= 1, tag
    assert last["eval/seen_accuracy"] > last["eval/base_seen_accuracy"] + 0.05  # the adapters help
    assert last["pretrain/accuracy"] > 0.85 and len(scalars["pretrain/loss"]) == 60
    seen = [last[f"eval/task_accuracy/rotate_{p}"] for p in (-30, 0, 30)]
    assert last["eval/seen_accuracy"] == pytest.approx(sum(seen) / 3)


def test_base_weights_are_frozen_saved_and_unchanged_by_training(tmp_path):
    out = tmp_path / "run"
    train(load_recipe(DEBUG, [f"out={out}", "train.steps=6", "train.checkpoint_every=3", "train.lr=1e-2"]))
    early, late = checkpoint(out, 3), checkpoint(out, 6)
    frozen = [k for k in late["module"] if k.startswith("model.")]
    assert "model.net.0.base.weight" in frozen
    for key in frozen:  # the pretrained target (and the adapters' templates) never move
        assert torch.equal(early["module"][key], late["module"][key]), key
    assert any(not torch.equal(early["module"][k], late["module"][k]) for k in late["module"] if k.startswith("generator."))
    # the optimiser holds the generator's parameters alone
    recipe = load_recipe(DEBUG, [f"out={out}"])
    module = recipe.setup(CPU)
    in_optimizer = sum(len(group["params"]) for group in late["optimizer"]["param_groups"])
    assert in_optimizer == len(list(module.generator.parameters()))
    assert all(not p.requires_grad for p in module.model.parameters())


def test_the_adapted_model_starts_as_the_pretrained_one(tmp_path):
    recipe, module = prepared(tmp_path)
    tasks = torch.arange(4)
    inputs = recipe.test_inputs[:, :64]
    with torch.no_grad():
        adapted = module(tasks, inputs)
        base = torch.stack([module.model(x) for x in inputs])
    generated_b = module.adapters(0)["net.0.lora_b"]
    assert generated_b.abs().max() < 0.05  # LoRA's B generated near its zero init
    assert (adapted - base).abs().max() < 0.05 * base.abs().max()
    assert (adapted.argmax(-1) == base.argmax(-1)).float().mean() > 0.95  # the same predictions, nearly all


def test_held_out_tasks_are_never_trained_on(tmp_path):
    recipe = load_recipe(DEBUG, [f"out={tmp_path}", "tasks_per_step=2"])
    recipe.setup(CPU)
    assert recipe.task_names() == ["rotate_-30", "rotate_0", "rotate_30", "rotate_15"]
    drawn = {task for step in range(200) for task in recipe.step_tasks(step)}
    assert drawn == {0, 1, 2}  # every seen task, never the held-out one (3)
    assert all(len(recipe.step_tasks(step)) == 2 for step in range(10))
    baseline = load_recipe(DEBUG, [f"out={tmp_path}", "method=per_task"])
    baseline.setup(CPU)
    assert baseline.step_tasks(7) == [0, 1, 2, 3]  # a baseline trains every task, held-out ones too


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    args = ["train.steps=12", "train.checkpoint_every=4", "train.eval_every=4"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    train(load_recipe(DEBUG, [f"out={full}", *args]))
    shutil.copytree(full, killed)
    for step in (8, 12):
        (killed / "checkpoints" / f"step_{step:08d}.pt").unlink()
    assert train(load_recipe(DEBUG, [f"out={killed}", *args]), resume=True)["step"] == 12
    expected, resumed = checkpoint(full, 12)["module"], checkpoint(killed, 12)["module"]
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def test_export_gives_each_task_a_plain_target_with_its_adapters_folded_in(tmp_path):
    out = tmp_path / "run"
    train(load_recipe(DEBUG, [f"out={out}", "train.steps=5", "train.lr=1e-2"]))
    run = hyperkit.load_run(out)
    exported = hyperkit.load_exported(export_run(out, tmp_path / "run.pt"))
    assert list(run.targets) == list(exported.targets) == ["rotate_-30", "rotate_0", "rotate_30", "rotate_15"]
    recipe = load_recipe(out / "config.yaml", [f"out={out}"])
    recipe.setup(CPU)
    x = recipe.test_inputs[3, :32]  # the held-out task's images
    with torch.no_grad():
        expected = run.module(torch.tensor([3]), x[None])[0]
        adapters = run.module.adapters(3)  # plain tensors: this task's generated LoRA
        assert sorted(adapters) == sorted(run.module.names) and adapters["net.0.lora_b"].shape == (64, 4)
        torch.testing.assert_close(hyperkit.call(run.module.model, adapters, x), expected)
        for network in (run.targets["rotate_15"], exported.targets["rotate_15"]):
            assert type(network.net[0]) is torch.nn.Linear  # no adapter left
            torch.testing.assert_close(network(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method, per_task", [("per_task", 64 * 4 * 2 + 64 * 4 * 2 + 64 * 4 + 10 * 4),
                                              ("finetune", 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10)])
def test_baselines_train_one_set_of_values_per_task(method, per_task, tmp_path):
    recipe, module = prepared(tmp_path, f"method={method}")
    assert module.generator is None and module.trainable_parameters() == 4 * per_task
    before = [v.detach().clone() for v in module.values]
    loss, _ = recipe.loss(module, 0, INFO)
    loss.backward()
    # every task's values, the held-out task's (3) too, get a gradient (LoRA's A not while B is 0)
    assert all(v.grad[3].abs().sum() > 0 for n, v in zip(module.names, module.values) if "lora_a" not in n)
    if method == "finetune":  # every task starts from the pretrained weights
        pretrained = dict(module.model.named_parameters())
        assert all(torch.equal(v[2], pretrained[n]) for n, v in zip(module.names, before))
    else:  # LoRA's A drawn afresh per task, B at zero
        assert not torch.equal(before[0][0], before[0][1]) and before[1].abs().sum() == 0


def test_pretrained_weights_can_be_loaded_from_a_file(tmp_path):
    _, module = prepared(tmp_path)
    plain = hyperkit.merge_adapters(module.model)  # the pretrained target, adapters at identity
    torch.save(plain.state_dict(), tmp_path / "base.pt")
    _, loaded = prepared(tmp_path, f"pretrain.weights={tmp_path / 'base.pt'}", "pretrain.steps=0")
    for (name, a), b in zip(module.model.state_dict().items(), loaded.model.state_dict().values()):
        if "lora" not in name:
            assert torch.equal(a, b), name


def test_rotation_turns_the_image_about_its_centre():
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 1, 3:5] = 1.0  # a bar at the top
    turned = rotate(image, 90)  # counter-clockwise: the bar goes to the left
    assert turned[0, 0, 3:5, 1].min() > 0.9 and turned[0, 0, 1, 3:5].max() < 0.1


KEYWORDS = "adapters/sequence_keywords-debug"


def test_a_keywords_task_labels_by_its_own_keywords_and_is_conditioned_on_them(tmp_path):
    recipe = load_recipe(KEYWORDS, [f"out={tmp_path}"])
    module = recipe.setup(CPU)
    sets = recipe.task_parameters
    assert recipe.task_names()[1] == "keywords_" + "-".join(map(str, sets[1]))
    for inputs, labels in ((recipe.train_inputs, recipe.task.train_y), (recipe.test_inputs, recipe.task.test_y)):
        for task, keywords in enumerate(sets):
            counts = torch.stack([(inputs[task] == token).sum(1) for token in keywords], 1)
            assert torch.equal(counts.argmax(1), labels), keywords  # the label: which of its keywords occurs most
            assert torch.equal(inputs[task] == 0, inputs[0] == 0)  # padding stays
    pool = sorted({t for keywords in sets for t in keywords})
    hot = module.conditions.view(len(sets), len(sets[0]), len(pool))
    for task, keywords in enumerate(sets):  # class k's one-hot marks the set's k-th token
        assert [pool[i] for i in hot[task].argmax(-1).tolist()] == keywords and hot[task].sum() == len(keywords)


def test_shared_adapter_parameters_train_once_and_the_generator_emits_the_rest(tmp_path):
    recipe = load_recipe(KEYWORDS, [f"out={tmp_path}", "adapter.shared=['*.lora_a']"])
    module = recipe.setup(CPU)
    assert module.names and all(n.endswith("lora_b") for n in module.names)
    trainable = [n for n, p in module.named_parameters() if p.requires_grad and not n.startswith("generator.")]
    assert trainable and all(n.startswith("model.") and n.endswith("lora_a") for n in trainable)
    recipe.prepare(module, Logger(None, 0))
    loss, _ = recipe.loss(module, 0, INFO)
    loss.backward()
    assert all(dict(module.named_parameters())[n].grad is not None for n in trainable)
    baseline = load_recipe(KEYWORDS, [f"out={tmp_path}", "adapter.shared=['*.lora_a']", "method=per_task"])
    assert all(n in baseline.setup(CPU).names for n in module.names + [n[len("model."):] for n in trainable])


def test_drawn_keyword_sets_join_the_training_sets_seeded_and_new(tmp_path):
    recipe = load_recipe(KEYWORDS, [f"out={tmp_path}", "tasks.draw=5"])
    recipe.setup(CPU)
    listed = [[1, 2, 3, 4], [2, 1, 4, 6], [6, 4, 1, 2]]
    drawn = [recipe.task_parameters[i] for i in recipe.seen[3:]]
    assert [recipe.task_parameters[i] for i in recipe.seen[:3]] == listed and len(drawn) == 5
    assert recipe.task_parameters[recipe.held_out[0]] == [4, 6, 2, 1]  # held out stays held out
    keys = {tuple(k) for k in listed + drawn + [[4, 6, 2, 1]]}
    assert len(keys) == 9 and all(set(k) <= {1, 2, 3, 4, 6} for k in drawn)
    again = load_recipe(KEYWORDS, [f"out={tmp_path}", "tasks.draw=5"])
    again.setup(CPU)
    assert again.task_parameters == recipe.task_parameters
    other = load_recipe(KEYWORDS, [f"out={tmp_path}", "tasks.draw=5", "tasks.seed=1"])
    other.setup(CPU)
    assert other.task_parameters != recipe.task_parameters
    # the baselines can train a few of them: a per-task adapter learns from its own task alone
    baseline = load_recipe(KEYWORDS, [f"out={tmp_path}", "tasks.draw=5", "method=per_task", "baseline_seen=2"])
    module = baseline.setup(CPU)
    assert baseline.task_parameters == listed[:2] + [[4, 6, 2, 1]] and baseline.held_out == [2]
    assert module.trainable_parameters() == 3 * load_recipe(KEYWORDS, [f"out={tmp_path}", "method=per_task"]).setup(
        CPU).trainable_parameters() // 4
    # ... and for fewer steps than the generator: it sees a few of hundreds of tasks a step
    steps = {method: load_recipe(KEYWORDS, [f"out={tmp_path}", f"method={method}", "train.steps=40",
                                            "baseline_steps=15"]).config.train.steps
             for method in ("generated", "per_task", "finetune")}
    assert steps == {"generated": 40, "per_task": 15, "finetune": 15}
    assert load_recipe(KEYWORDS, [f"out={tmp_path}", "method=per_task", "train.steps=40"]).config.train.steps == 40
    # full fine-tuning has no adapters, so the config's adapter.shared does not apply to it
    assert load_recipe(KEYWORDS, [f"out={tmp_path}"]).config.adapter.shared
    finetune = load_recipe(KEYWORDS, [f"out={tmp_path}", "tasks.draw=5", "method=finetune", "baseline_seen=2"])
    assert finetune.setup(CPU).trainable_parameters() == 3 * sum(p.numel() for p in build_target(
        finetune.config.target, finetune.task).parameters())


def test_the_keyword_map_is_a_permutation_that_keeps_padding_and_the_marker():
    perm = keyword_permutation([7, 2, 9, 5], vocab_size=16, marker=5 + 1)
    assert sorted(perm.tolist()) == list(range(16)) and perm[0] == 0 and perm[6] == 6
    assert perm[1:5].tolist() == [7, 2, 9, 5]


@pytest.mark.parametrize("overrides, message", [
    (["tasks.train=[[1, 2, 3]]"], r"tasks.train: a keyword set needs 4 distinct token ids.*got \[1, 2, 3\]"),
    (["tasks.train=[[1, 2, 2, 3]]"], r"a keyword set needs 4 distinct token ids"),
    (["tasks.train=[[1, 2, 3, 64]]"], r"keyword set \[1, 2, 3, 64\] has token ids outside 1..63"),
    (["tasks.held_out=[[1, 2, 3, 9]]"], r"tasks.held_out uses tokens \[9\] that no training set has"),
    (["tasks.held_out=[[1, 2, 3, 4]]"], r"tasks.held_out shares parameters with train"),
    (["tasks.train=[0, 1]", "tasks.held_out=[]"], r"kind 'keywords' takes keyword sets"),
    (["tasks.kind=shift"], r"kind 'shift' takes numbers"),
    (["adapter.shared=['*.lora_*']"], r"adapter.shared \['\*.lora_\*'\] must pick some but not all"),
    (["data.max_negated=1", "tasks.train=[[1, 2, 3, 5]]", "tasks.held_out=[]"], r"or the 'not' marker 5"),
    (["tasks.draw=200"], r"tasks.draw: 200 more keyword sets asked, but the 5 tokens of the train sets make only 116"),
])
def test_keyword_set_errors_say_what_is_wrong(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_recipe(KEYWORDS, [f"out={tmp_path}", *overrides]).setup(CPU)


@pytest.mark.parametrize("overrides, message", [
    (["data={name: sequence}"], r"tasks.kind 'rotate' needs image data; data 'sequence' gives sequence"),
    (["tasks.held_out=[0]"], r"tasks.held_out shares parameters with train"),
    (["tasks.train=[]"], r"tasks.train needs at least one task parameter"),
    (["pretrain.steps=0"], r"pretrain.weights and steps \(0\) choose how the target gets its weights"),
    (["pretrain.weights=/nonexistent/base.pt", "pretrain.steps=0"], r"pretrain.weights: no file /nonexistent/base.pt"),
    (["adapter.targets=[classifier]"], r"adapter: targets=\['classifier'\] select no Linear.*candidates: net.0"),
    (["adapter.kind=prefix"], r"adapter.kind"),
    (["tasks.draw=3"], r"tasks.draw draws keyword sets: it needs kind 'keywords', got 'rotate'"),
    (["method=distill"], r"method"),
    (["data={name: sequence}", "target={name: transformer_tiny}", "tasks.kind=shift", "tasks.train=[0.5]"],
     r"shift parameters must be whole numbers"),
])
def test_config_errors_say_what_is_wrong(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_recipe(DEBUG, [f"out={tmp_path}", *overrides]).setup(CPU)


def test_a_wrong_weights_file_is_refused_naming_the_mismatch(tmp_path):
    torch.save({"net.0.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pt")
    recipe = load_recipe(DEBUG, [f"out={tmp_path}", f"pretrain.weights={tmp_path / 'wrong.pt'}", "pretrain.steps=0"])
    with pytest.raises(ConfigError, match=r"(?s)does not fit target.*net.0.weight"):
        recipe.setup(CPU)
