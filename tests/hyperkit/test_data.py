"""Tests of the offline dataset loaders in ``hyperkit.data``, on tiny files written here."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from hyperkit.data import (
    GraphData,
    ImageData,
    SequenceData,
    build_label_map,
    build_vocabulary,
    cifar10,
    digits,
    encode_texts,
    karate,
    list_datasets,
    load_dataset,
    mnist,
    planetoid,
    read_idx,
    register_dataset,
    sbm,
    sequence,
    text_csv,
    tokenize,
)

# ---------------------------------------------------------------- helpers that write tiny files


def write_idx(path, array: np.ndarray, type_code: int = 0x08) -> None:
    """Write ``array`` as IDX: 0, 0, type code, ndim, big-endian dims, then big-endian data."""
    dtype = {0x08: ">u1", 0x0C: ">i4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    payload = header + array.astype(dtype).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as file:
            file.write(payload)
    else:
        path.write_bytes(payload)


def write_mnist(folder, rng, num_train=20, num_test=8, suffix=""):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (num_train, 5, 4)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, num_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (num_test, 5, 4)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, num_test),
    }
    for name, array in arrays.items():
        write_idx(folder / f"{name}{suffix}", array)
    return arrays


def write_cifar(folder, rng, rows_per_batch=4, num_test=3, byte_keys=True):
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        rows = num_test if name == "test_batch" else rows_per_batch
        data = rng.integers(0, 256, (rows, 3072)).astype(np.uint8)
        labels = rng.integers(0, 10, rows).tolist()
        # The official batches use byte-string keys; accept plain str keys as well.
        keys = (b"data", b"labels") if byte_keys else ("data", "labels")
        with open(folder / name, "wb") as file:
            pickle.dump({keys[0]: data, keys[1]: labels}, file)
        written[name] = (data, labels)
    return written


def standardized(train: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Expected loader output: per-channel (axis 1) standardisation with training statistics."""
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    return (other - mean) / std


# ---------------------------------------------------------------- IDX / MNIST


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_reads_exactly_the_written_pixels_and_labels(tmp_path, suffix):
    arrays = write_mnist(tmp_path, np.random.default_rng(0), suffix=suffix)
    data = mnist(tmp_path)
    train = arrays["train-images-idx3-ubyte"][:, None].astype(np.float64)
    test = arrays["t10k-images-idx3-ubyte"][:, None].astype(np.float64)

    assert isinstance(data, ImageData)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.input_shape == (1, 5, 4) and data.num_classes == 10
    np.testing.assert_allclose(data.train_x.numpy(), standardized(train, train), atol=1e-5)
    np.testing.assert_allclose(data.test_x.numpy(), standardized(train, test), atol=1e-5)
    assert data.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert data.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_limit_keeps_the_first_rows_and_their_statistics(tmp_path):
    arrays = write_mnist(tmp_path, np.random.default_rng(1))
    data = mnist(tmp_path, limit=5)
    first = arrays["train-images-idx3-ubyte"][:5, None].astype(np.float64)

    assert data.train_x.shape == (5, 1, 5, 4) and data.test_x.shape == (5, 1, 5, 4)
    np.testing.assert_allclose(data.train_x.numpy(), standardized(first, first), atol=1e-5)
    assert data.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"][:5].tolist()


def test_mnist_finds_torchvision_layout(tmp_path):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", np.random.default_rng(2))
    assert mnist(tmp_path).train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()


def test_read_idx_is_big_endian_and_checks_the_header(tmp_path):
    values = np.array([[1, -2, 70000], [2**30, 0, -1]])
    write_idx(tmp_path / "ints", values, type_code=0x0C)
    assert read_idx(tmp_path / "ints").tolist() == values.tolist()
    assert read_idx(tmp_path / "ints", limit=1).tolist() == values[:1].tolist()

    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "ints").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


def test_mnist_missing_file_is_named(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(3))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing t10k-labels-idx1-ubyte") as error:
        mnist(tmp_path)
    assert str(tmp_path) in str(error.value)


# ---------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("byte_keys", [True, False])
def test_cifar10_reads_exactly_the_written_pixels_and_labels(tmp_path, byte_keys):
    written = write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(4),
                          byte_keys=byte_keys)
    data = cifar10(tmp_path)
    train = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train = train.reshape(-1, 3, 32, 32).astype(np.float64)
    test = written["test_batch"][0].reshape(-1, 3, 32, 32).astype(np.float64)

    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (3, 3, 32, 32)
    assert data.input_shape == (3, 32, 32)
    np.testing.assert_allclose(data.train_x.numpy(), standardized(train, train), atol=1e-5)
    np.testing.assert_allclose(data.test_x.numpy(), standardized(train, test), atol=1e-5)
    expected_labels = [label for i in range(1, 6) for label in written[f"data_batch_{i}"][1]]
    assert data.train_y.tolist() == expected_labels
    assert data.test_y.tolist() == written["test_batch"][1]
    # Channel-major rows: pixel (row 1, column 2) of the green plane is byte 1024 + 32 + 2.
    assert train[0, 1, 1, 2] == written["data_batch_1"][0][0, 1024 + 32 + 2]


def test_cifar10_limit_spans_batches(tmp_path):
    written = write_cifar(tmp_path, np.random.default_rng(5))
    data = cifar10(tmp_path, limit=6)
    assert data.train_y.tolist() == written["data_batch_1"][1] + written["data_batch_2"][1][:2]
    assert data.test_x.shape[0] == 3  # fewer test rows than the limit: all of them


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    write_cifar(tmp_path, np.random.default_rng(6))

    class Exploit:
        def __reduce__(self):
            return (os.getcwd, ())

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        cifar10(tmp_path)


def test_cifar10_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1") as error:
        cifar10(tmp_path / "nowhere")
    assert "folder does not exist" in str(error.value)


# ---------------------------------------------------------------- digits


def test_digits_split_is_stratified_and_standardised_with_training_statistics():
    data = digits(test_fraction=0.25, seed=0)
    assert data.train_x.shape[1:] == (1, 8, 8) and data.num_classes == 10
    assert data.train_x.shape[0] + data.test_x.shape[0] == 1797
    assert abs(data.train_x.mean().item()) < 1e-5
    assert data.train_x.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)
    # Each class keeps a quarter (rounded) of its ~180 images for testing.
    all_counts = torch.bincount(torch.cat([data.train_y, data.test_y]), minlength=10)
    test_counts = torch.bincount(data.test_y, minlength=10)
    assert torch.all((test_counts - 0.25 * all_counts).abs() <= 1)


def test_digits_is_deterministic_for_a_seed():
    first, again, other = digits(seed=3), digits(seed=3), digits(seed=4)
    assert torch.equal(first.test_x, again.test_x) and torch.equal(first.test_y, again.test_y)
    assert not torch.equal(first.test_x, other.test_x)


# ---------------------------------------------------------------- graphs


def assert_valid_graph(graph: GraphData, num_nodes: int) -> None:
    assert graph.x.dtype == torch.float32 and graph.x.shape[0] == num_nodes
    assert graph.edge_index.dtype == torch.int64 and graph.y.dtype == torch.int64
    assert not (graph.train_mask & graph.test_mask).any()
    assert (graph.train_mask | graph.test_mask).all()
    edges = set(map(tuple, graph.edge_index.t().tolist()))
    assert all((target, source) in edges for source, target in edges), "missing reverse edge"


def test_karate_split_is_stratified_and_deterministic():
    graph = karate(seed=0)
    assert_valid_graph(graph, 34)
    assert graph.x.shape == (34, 34) and graph.edge_index.shape == (2, 156)
    assert graph.num_classes == 4
    # Classes of 13, 12, 4 and 5 nodes: half of each (rounded half up) trains.
    assert torch.bincount(graph.y[graph.train_mask]).tolist() == [7, 6, 2, 3]
    assert torch.equal(karate(seed=0).train_mask, graph.train_mask)
    assert not torch.equal(karate(seed=1).train_mask, graph.train_mask)


def test_sbm_shapes_and_block_structure():
    graph = sbm(num_nodes=300, num_classes=3, p_in=0.1, p_out=0.01, seed=0)
    assert_valid_graph(graph, 300)
    assert graph.x.shape == (300, 16) and graph.num_classes == 3
    assert torch.bincount(graph.y).tolist() == [100, 100, 100]
    assert torch.bincount(graph.y[graph.train_mask]).tolist() == [50, 50, 50]
    source, target = graph.edge_index
    assert not (source == target).any()
    # Expected edges: 3·C(100, 2)·0.1 within + 3·100²·0.01 across = 1785, ×2 directions.
    assert 3300 < graph.edge_index.shape[1] < 3850
    same_class = (graph.y[source] == graph.y[target]).float().mean().item()
    assert same_class == pytest.approx(1485 / 1785, abs=0.04)


def nearest_centroid_accuracy(graph: GraphData, features: torch.Tensor) -> float:
    centroids = torch.stack([features[graph.train_mask & (graph.y == c)].mean(0)
                             for c in range(graph.num_classes)])
    predicted = torch.cdist(features[graph.test_mask], centroids).argmin(1)
    return (predicted == graph.y[graph.test_mask]).float().mean().item()


def test_sbm_features_are_informative_and_neighbours_help():
    graph = sbm(seed=0)
    adjacency = torch.eye(300)
    adjacency[graph.edge_index[0], graph.edge_index[1]] = 1.0
    neighbour_mean = adjacency @ graph.x / adjacency.sum(1, keepdim=True)
    own = nearest_centroid_accuracy(graph, graph.x)
    aggregated = nearest_centroid_accuracy(graph, neighbour_mean)
    assert 0.5 < own < 0.8  # above chance (1/3) but far from solved by features alone
    assert aggregated > own + 0.2  # what makes a GCN beat an MLP here


def test_sbm_is_deterministic_for_a_seed():
    first, again, other = sbm(seed=7), sbm(seed=7), sbm(seed=8)
    assert torch.equal(first.x, again.x) and torch.equal(first.edge_index, again.edge_index)
    assert torch.equal(first.train_mask, again.train_mask)
    assert not torch.equal(first.x, other.x)


def test_sbm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="probabilities"):
        sbm(p_in=1.5)
    with pytest.raises(ValueError, match="two nodes per class"):
        sbm(num_nodes=5, num_classes=3)


def test_planetoid_without_raw_files_does_not_download(tmp_path):
    (tmp_path / "Cora" / "raw").mkdir(parents=True)
    (tmp_path / "Cora" / "raw" / "ind.cora.x").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"ind\.cora\.graph") as error:
        planetoid(tmp_path, "Cora")
    assert str(tmp_path / "Cora" / "raw") in str(error.value)
    assert "missing ind.cora.x" not in str(error.value)
    assert not (tmp_path / "Cora" / "processed").exists()


# ---------------------------------------------------------------- generated sequences


def unnegated_keyword_counts(data: SequenceData, tokens: torch.Tensor) -> torch.Tensor:
    marker = data.num_classes + 1
    after_marker = torch.zeros_like(tokens, dtype=torch.bool)
    after_marker[:, 1:] = tokens[:, :-1] == marker
    return torch.stack([((tokens == k) & ~after_marker).sum(1)
                        for k in range(1, data.num_classes + 1)], dim=1)


def test_sequence_label_is_the_unique_most_frequent_unnegated_keyword():
    data = sequence(num_train=400, num_test=100, seed=0)
    counts = unnegated_keyword_counts(data, data.train_tokens)
    top2 = counts.topk(2, dim=1).values
    assert torch.equal(counts.argmax(1), data.train_y)
    assert torch.all(top2[:, 0] > top2[:, 1])  # no ties


def test_sequence_shapes_padding_and_balance():
    data = sequence(num_train=2000, num_test=500, seq_len=32, vocab_size=64, num_classes=4)
    assert data.train_tokens.shape == (2000, 32) and data.test_tokens.shape == (500, 32)
    assert data.train_tokens.dtype == torch.int64 and data.train_y.dtype == torch.int64
    assert torch.bincount(data.train_y).tolist() == [500] * 4
    assert torch.bincount(data.test_y).tolist() == [125] * 4
    tokens = data.train_tokens
    assert 0 <= tokens.min() and tokens.max() < 64
    lengths = (tokens != 0).sum(1)
    assert lengths.min() >= 24  # 3·32 // 4
    assert torch.all(tokens[torch.arange(32) >= lengths[:, None]] == 0)  # padding only at the end


def test_sequence_raw_counts_are_misleading_unless_negation_is_off():
    def raw_count_accuracy(data):
        counts = torch.stack([(data.test_tokens == k).sum(1) for k in range(1, 5)], dim=1)
        return (counts.argmax(1) == data.test_y).float().mean().item()

    assert 0.6 < raw_count_accuracy(sequence(seed=0)) < 0.9
    assert raw_count_accuracy(sequence(seed=0, max_negated=0)) == 1.0


def test_sequence_is_deterministic_for_a_seed():
    first, again, other = (sequence(num_train=50, num_test=10, seed=seed) for seed in (5, 5, 6))
    assert torch.equal(first.train_tokens, again.train_tokens)
    assert torch.equal(first.test_y, again.test_y)
    assert not torch.equal(first.train_tokens, other.train_tokens)


def test_sequence_rejects_too_short_sequences():
    with pytest.raises(ValueError, match="seq_len >= 12"):
        sequence(seq_len=8, num_classes=4, max_negated=3)


# ---------------------------------------------------------------- text CSV


def write_csv(path, rows, header=("text", "label")):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def test_tokenize_vocabulary_and_encoding():
    assert tokenize("The CAT's hat, the cat!") == ["the", "cat's", "hat", "the", "cat"]
    vocabulary = build_vocabulary(["b a b", "c a b", "d"], vocab_size=5)
    assert vocabulary == {"b": 2, "a": 3, "c": 4}  # by frequency, ties alphabetical
    encoded = encode_texts(["a d b c b", "", "zzz"], vocabulary, seq_len=4)
    assert encoded.tolist() == [[3, 1, 2, 4], [1, 0, 0, 0], [1, 0, 0, 0]]


def test_label_map_sorts_numbers_numerically():
    assert build_label_map(["10", "2", "1", "2"]) == {"1": 0, "2": 1, "10": 2}
    assert build_label_map(["pos", "neg"]) == {"neg": 0, "pos": 1}


def test_text_csv_with_a_test_file(tmp_path):
    train = write_csv(tmp_path / "train.csv", [
        ("Good movie, good plot.", "pos"), ("bad movie", "neg"), ("GOOD acting", "pos"),
        ("boring, bad, bad", "neg"),
    ])
    test = write_csv(tmp_path / "test.csv", [("good unseen words", "neg"), ("bad", "pos")])
    data = text_csv(train, test, seq_len=3, vocab_size=5)
    # Training counts: bad 3, good 3, movie 2, then acting/boring/plot 1; 5 ids keep 3 words.
    good, bad, movie, unknown = 3, 2, 4, 1
    assert data.vocab_size == 5 and data.num_classes == 2 and data.seq_len == 3
    assert data.train_tokens.tolist() == [[good, movie, good], [bad, movie, 0],
                                          [good, unknown, 0], [unknown, bad, bad]]
    assert data.train_y.tolist() == [1, 0, 1, 0]  # neg → 0, pos → 1
    assert data.test_tokens.tolist() == [[good, unknown, unknown], [bad, 0, 0]]
    assert data.test_y.tolist() == [0, 1]


def test_text_csv_split_and_vocabulary_from_training_rows_only(tmp_path):
    rows = [(f"word{i} common", str(i % 3 * 5)) for i in range(30)]
    path = write_csv(tmp_path / "all.csv", rows)
    data = text_csv(path, test_fraction=0.2, seed=0, seq_len=2)
    assert data.train_tokens.shape == (24, 2) and data.test_tokens.shape == (6, 2)
    assert torch.bincount(data.test_y).tolist() == [2, 2, 2]  # labels 0, 5, 10 → 0, 1, 2
    assert data.vocab_size == 2 + 1 + 24  # "common" and the 24 training-only word<i>
    assert torch.all(data.test_tokens[:, 0] == 1)  # test rows' word<i> is unknown
    assert torch.equal(text_csv(path, seed=0, seq_len=2).test_tokens, data.test_tokens)


def test_text_csv_headerless_columns_are_joined(tmp_path):
    # AG News' original CSV: class, title, description and no header.
    path = write_csv(tmp_path / "ag.csv", [("3", "Stocks up", "Markets rally"),
                                           ("1", "War news", "Talks fail")], header=None)
    data = text_csv(path, path, text_column=[1, 2], label_column=0, seq_len=4)
    assert data.num_classes == 2 and data.test_y.tolist() == [1, 0]
    assert (data.test_tokens != 0).sum(1).tolist() == [4, 4]


def test_text_csv_errors_say_what_is_wrong(tmp_path):
    train = write_csv(tmp_path / "train.csv", [("a", "x"), ("b", "y")])
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        text_csv(train, tmp_path / "missing.csv")
    with pytest.raises(KeyError, match="'review' is not in"):
        text_csv(train, text_column="review")
    test = write_csv(tmp_path / "test.csv", [("a", "z")])
    with pytest.raises(ValueError, match=r"labels \['z'\]"):
        text_csv(train, test)


# ---------------------------------------------------------------- registry and containers


def test_registry_lists_and_loads_every_loader():
    assert list_datasets() == ["cifar10", "digits", "karate", "mnist", "planetoid", "sbm",
                               "sequence", "text_csv"]
    assert list_datasets("*csv") == ["text_csv"]
    assert torch.equal(load_dataset("sbm", num_nodes=30, seed=2).x, sbm(num_nodes=30, seed=2).x)


def test_registry_errors():
    with pytest.raises(KeyError, match=r"unknown dataset 'cora'.*planetoid"):
        load_dataset("cora")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(lambda: None, name="sbm")


def test_to_moves_every_tensor_and_keeps_the_rest():
    data = sequence(num_train=8, num_test=4, seq_len=16)
    moved = data.to("cpu")
    assert moved is not data and torch.equal(moved.train_tokens, data.train_tokens)
    assert moved.vocab_size == data.vocab_size
    assert repr(moved).startswith("SequenceData(train_tokens=(8, 16) int64")
