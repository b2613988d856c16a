"""Tasks: batches as a pure function of (seed, step), sharding, target sizes, feed checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperkit.config import ConfigError
from hyperkit.data import digits, sbm, sequence
from hyperkit.engine.trainer import train
from hyperkit.recipes import load_recipe
from hyperkit.tasks import build_target, check_feed, epoch_indices, make_task
from test_data import write_csv, write_mnist  # tests/hyperkit is on sys.path (rootdir-relative imports)


def test_each_epoch_visits_every_item_once_and_batches_are_reproducible():
    batches = [epoch_indices(step, 7, 20, seed=3) for step in range(6)]  # 42 items: two epochs and 2
    flat = torch.cat(batches)
    assert sorted(flat[:20].tolist()) == list(range(20)) and sorted(flat[20:40].tolist()) == list(range(20))
    assert not torch.equal(flat[:20], flat[20:40])  # a fresh permutation per epoch
    assert torch.equal(epoch_indices(4, 7, 20, seed=3), batches[4])
    assert not torch.equal(epoch_indices(0, 7, 20, seed=4), batches[0])


def test_ranks_split_the_global_batch_evenly():
    task = make_task(digits())
    whole = task.batch(5, 8, seed=0)
    shards = [task.batch(5, 8, seed=0, rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat([s.labels for s in shards]), whole.labels)
    with pytest.raises(ConfigError, match="divisible by the number of processes"):
        task.batch(0, 9, seed=0, rank=0, world_size=2)


def test_graph_batches_score_training_nodes_only():
    graph = sbm(num_nodes=60, num_classes=3)
    task = make_task(graph)
    full = task.batch(0, 10_000, seed=0)
    assert sorted(full.index.tolist()) == graph.train_mask.nonzero().flatten().tolist()
    mini = task.batch(0, 8, seed=0)
    assert len(mini) == 8 and bool(graph.train_mask[mini.index].all())
    test = next(task.test_batches())
    assert bool(graph.test_mask[test.index].all()) and len(test) == int(graph.test_mask.sum())


@pytest.mark.parametrize("data, target, sizes", [
    (lambda: digits(), "mlp_digits", {"in_features": 64, "num_classes": 10}),
    (lambda: sbm(num_nodes=40, feature_dim=5, num_classes=4), "gcn_small", {"in_channels": 5, "num_classes": 4}),
    (lambda: sequence(num_train=16, num_test=8, vocab_size=30), "transformer_tiny", {"vocab_size": 30}),
])
def test_build_target_takes_its_sizes_from_the_data(data, target, sizes):
    task = make_task(data())
    module = build_target({"name": target}, task)
    check_feed(module, task)
    assert task.target_arguments().items() >= sizes.items()


def test_check_feed_names_the_data_kind_and_the_fix():
    task = make_task(sbm(num_nodes=30))
    with pytest.raises(ConfigError, match="cannot be fed graph data.*pick a target for graph inputs"):
        check_feed(build_target("mlp_digits", task), task, "target 'mlp_digits'")


def test_uhn_trains_on_mnist_files_in_a_user_folder(tmp_path):
    write_mnist(tmp_path / "mnist", np.random.default_rng(0), num_train=40, num_test=10)
    recipe = load_recipe("uhn/digits_mlp-debug", [
        f"out={tmp_path / 'run'}", f"data={{name: mnist, root: {tmp_path / 'mnist'}}}",
        "target={name: mlp_mnist, hidden: [32]}", "train.steps=4", "train.batch_size=8", "init.steps=5"])
    result = train(recipe)
    assert result["step"] == 4 and 0 <= result["eval/accuracy"] <= 1


def test_direct_trains_on_a_text_csv(tmp_path):
    rows = [(f"good fine great {i}", "pos") for i in range(12)] + [(f"bad awful poor {i}", "neg") for i in range(12)]
    write_csv(tmp_path / "train.csv", rows)
    recipe = load_recipe("direct/transformer-debug", [
        f"out={tmp_path / 'run'}", f"data={{name: text_csv, train_path: {tmp_path / 'train.csv'}, seq_len: 8}}",
        "train.steps=30", "train.batch_size=8", "train.lr=3e-3"])
    assert train(recipe)["eval/accuracy"] > 0.6


def test_label_smoothing_penalises_overconfident_logits():
    from hyperkit.tasks import Batch, classification_loss

    labels = torch.tensor([0, 1])
    batch = Batch((torch.zeros(2, 1),), labels)
    confident, moderate = torch.tensor([[20.0, -20.0], [-20.0, 20.0]]), torch.tensor([[2.0, -2.0], [-2.0, 2.0]])
    plain = [classification_loss(x, batch)[0] for x in (confident, moderate)]
    smooth = [classification_loss(x, batch, label_smoothing=0.1)[0] for x in (confident, moderate)]
    assert plain[0] < plain[1] and smooth[0] > smooth[1]  # smoothing prefers the moderate logits
    assert classification_loss(confident, batch, 0.1)[1] == 2
