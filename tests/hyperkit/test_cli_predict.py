"""`hyperkit predict` on CSV files as a new user has them: an id column, text, booleans and dates
with empty cells, the test file's columns in another order and with its labels, the output piped
into `head`."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from hyperkit.cli import main

TEST_COLUMNS = ["label", "signup", "comment", "member", "region", "customer", "plan", "age"]


def write_messy_tables(folder, train_rows: int = 200, test_rows: int = 4000) -> pd.DataFrame:
    """train.csv and test.csv in ``folder``; returns the test table. Churn depends on the plan (text),
    membership (a boolean), the signup date and the age; 4000 test rows make the output larger
    than a pipe's buffer (64 KiB), so `| head` closes it before the writer is done."""
    rng = np.random.default_rng(0)
    n = train_rows + test_rows
    plan = rng.choice(["basic", "pro", "team"], n)
    member = rng.random(n) < 0.5
    age = rng.integers(18, 80, n).astype(float)
    days = rng.integers(0, 1500, n)
    score = (1.5 * (plan == "pro") + 0.8 * (plan == "team") + member + (age - 50) / 15 + days / 500
             + rng.normal(0, 0.5, n))
    frame = pd.DataFrame({
        "customer": [f"c{i:05d}" for i in range(n)], "age": age, "plan": plan,
        "member": pd.Series(member, dtype=object),
        "signup": (pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
        "comment": [f"called on day {d}" for d in days],
        "label": np.where(score > np.median(score), "churned", "stayed")})
    frame.loc[::7, "age"] = np.nan
    frame.loc[::11, "member"] = None
    frame.loc[::13, "plan"] = None
    frame[:train_rows].to_csv(folder / "train.csv", index=False)
    test = frame[train_rows:].assign(region="north")[TEST_COLUMNS]
    test.to_csv(folder / "test.csv", index=False)
    return test.reset_index(drop=True)


COMMAND = ["predict", "--train", "train.csv", "--test", "test.csv", "--target", "label", "--id", "customer",
           "--drop", "comment", "--fine-tune", "0"]


def test_ids_pass_through_columns_match_by_name_and_the_labelled_test_file_is_scored(tmp_path, monkeypatch,
                                                                                     capsys):
    test = write_messy_tables(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main([*COMMAND, "--out", "predictions.csv"]) == 0
    out = pd.read_csv(tmp_path / "predictions.csv")
    assert list(out.columns) == ["customer", "label", "probability_churned", "probability_stayed"]
    assert out["customer"].tolist() == test["customer"].tolist()
    np.testing.assert_allclose(out["probability_churned"] + out["probability_stayed"], 1, atol=2e-6)
    err = capsys.readouterr().err
    for notice in ("train.csv: column 'plan': 3 levels → one-hot", "train.csv: column 'member': booleans → 1/0",
                   "train.csv: column 'signup': dates → days since 1970-01-01",
                   "test.csv: not in train.csv, ignored: 'region'", "wrote 4000 predictions to predictions.csv"):
        assert notice in err
    scores = re.search(r"test.csv: 4000 labelled rows: accuracy ([\d.]+), ROC AUC ([\d.]+)", err)
    accuracy = (out["label"] == test["label"]).mean()
    auc = roc_auc_score(test["label"] == "stayed", out["probability_stayed"])
    assert float(scores[1]) == round(accuracy, 4) and abs(float(scores[2]) - auc) < 1e-3  # 6-digit outputs
    assert accuracy > 0.8 and auc > 0.9


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX shell")
def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """`hyperkit predict … | head -2` in a folder of the user's own, as a separate process."""
    write_messy_tables(tmp_path)
    command = " ".join(["hyperkit", *COMMAND]) + ' 2> errors.txt | head -2; echo "${PIPESTATUS[0]}" > status.txt'
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=True)
    err = (tmp_path / "errors.txt").read_text()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert (tmp_path / "status.txt").read_text().strip() == "1"  # as Python exits on a closed pipe
    assert done.stdout.splitlines() == ["customer,label,probability_churned,probability_stayed",
                                        done.stdout.splitlines()[1]]
    assert done.stdout.splitlines()[1].startswith("c00200,")  # the first test row's id
    assert re.search(r"test.csv: 4000 labelled rows: accuracy 0\.\d+, ROC AUC 0\.\d+", err)


def test_every_problem_with_a_file_is_reported_at_once(tmp_path, monkeypatch, capsys):
    write_messy_tables(tmp_path, train_rows=40, test_rows=10)
    monkeypatch.chdir(tmp_path)
    train = pd.read_csv("train.csv").astype({"age": object})
    train.loc[3, "age"] = "forty"  # a word among the numbers
    train.drop(columns="label").to_csv("no_label.csv", index=False)
    assert main([*COMMAND[:2], "no_label.csv", *COMMAND[3:], "--drop", "commment"]) == 2
    err = capsys.readouterr().err
    assert "hyperkit predict: error: 3 problems with the columns of no_label.csv:" in err
    for problem in ("--drop: no column 'commment' in either file", "no column 'label' (the --target)",
                    f"column 'age': 'forty' (1 of {train['age'].notna().sum()} values) is not a number"):
        assert problem in err
    test = pd.read_csv("test.csv").drop(columns=["plan", "customer"])
    test.loc[2, "member"] = "maybe"
    test.to_csv("test.csv", index=False)
    assert main(COMMAND) == 2
    err = capsys.readouterr().err
    assert "3 problems with the columns of test.csv:" in err
    for problem in ("no column 'customer' (the --id) to pass through",
                    "missing column 'plan' (seen in training; the table has columns training did not: 'region')",
                    "column 'member': 'maybe' cannot be read as a boolean"):
        assert problem in err


def test_fine_tune_takes_blend_auto_or_a_number_and_refuses_anything_else(tmp_path, monkeypatch, capsys):
    write_messy_tables(tmp_path, test_rows=50)
    monkeypatch.chdir(tmp_path)
    default = [c for c in COMMAND if c not in ("--fine-tune", "0")]
    for extra in ([], ["--fine-tune", "blend"], ["--fine-tune", "auto"], ["--fine-tune", "12"]):
        assert main([*default, *extra, "--out", "p.csv"]) == 0
        assert len(pd.read_csv(tmp_path / "p.csv")) == 50
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*default, "--fine-tune", "many"])
    assert "argument --fine-tune: 'many' is not 'blend', 'auto' or a number of steps" in capsys.readouterr().err
