"""ColumnEncoder: each column kind by the documented rule, levels unseen in training, columns
matched by name, every problem reported at once; MotherNetClassifier on DataFrames."""

from __future__ import annotations

import datetime
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import check_array

from hyperkit.tabular.classifier import MotherNetClassifier
from hyperkit.tabular.columns import ColumnEncoder, ColumnError

nan = np.nan


def test_each_column_kind_is_encoded_by_the_rule():
    frame = pd.DataFrame({
        "age": [31.0, nan, 45.0],
        "member": [True, False, True],
        "gappy": [True, nan, False],  # how pandas reads a True/False column with an empty cell
        "nullable": pd.array([False, None, True], dtype="boolean"),
        "plan": ["pro", "basic", "pro"],
        "size": pd.Categorical(["s", None, "m"], categories=["s", "m", "xl"]),  # xl never seen
        "since": ["1970-01-02", "2024-01-01T12:00", None],
        "stamp": pd.to_datetime(["1970-01-01 06:00", None, "2000-01-01"], format="ISO8601"),
        "day": [datetime.date(1970, 1, 11), None, datetime.date(1969, 12, 31)],
        "wait": pd.to_timedelta(["1 day", "36h", None]),
        "count": ["1", "2.5", None],  # numbers written as text
    })
    encoder = ColumnEncoder().fit(frame)
    assert encoder.kinds_ == {"age": "number", "member": "boolean", "gappy": "boolean", "nullable": "boolean",
                              "plan": "one-hot", "size": "one-hot", "since": "date", "stamp": "date", "day": "date",
                              "wait": "duration", "count": "number"}
    assert list(encoder.get_feature_names_out()) == [
        "age", "member", "gappy", "nullable", "plan=pro", "plan=basic", "size=m", "size=s", "since", "stamp", "day",
        "wait", "count"]
    expected = np.array([
        [31, 1, 1, 0, 1, 0, 0, 1, 1, 0.25, 10, 1, 1],
        [nan, 0, nan, nan, 0, 1, 0, 0, 19723.5, nan, nan, 1.5, 2.5],
        [45, 1, 0, 1, 1, 0, 1, 0, nan, 10957, -1, nan, nan]])
    np.testing.assert_array_equal(encoder.transform(frame), expected)
    assert encoder.n_features_in_ == 11 and list(encoder.feature_names_in_) == list(frame.columns)
    assert sorted(encoder.notices_) == ["day", "gappy", "member", "nullable", "plan", "since", "size", "stamp", "wait"]
    assert encoder.notices_["since"] == "column 'since': dates → days since 1970-01-01"


def test_a_level_unseen_in_training_or_missing_gives_all_zeros():
    encoder = ColumnEncoder().fit(pd.DataFrame({"plan": ["basic", "pro", "pro", "team"]}))
    assert encoder.levels_["plan"] == ["pro", "basic", "team"]  # most frequent first
    rows = encoder.transform(pd.DataFrame({"plan": ["team", "enterprise", None, "pro"]}))
    np.testing.assert_array_equal(rows, [[0, 0, 1], [0, 0, 0], [0, 0, 0], [1, 0, 0]])


def test_many_levels_become_frequency_ranks_and_a_level_per_row_is_dropped():
    frame = pd.DataFrame({"city": list("babcdbaeabcb"),  # 5 levels in 12 rows
                          "name": [f"n{i}" for i in range(11)] + ["n0"]})  # 11 levels: nearly one per row
    encoder = ColumnEncoder(max_levels=4).fit(frame)
    assert encoder.kinds_ == {"city": "rank", "name": "dropped"}
    assert encoder.levels_["city"] == ["b", "a", "c", "d", "e"]
    assert "dropped" in encoder.notices_["name"] and "frequency rank" in encoder.notices_["city"]
    rows = encoder.transform(pd.DataFrame({"name": ["x", "y", "z"], "city": ["a", "unseen", "e"]}))
    np.testing.assert_array_equal(rows, [[1], [nan], [4]])  # unseen: missing, imputed by the classifier
    assert list(encoder.get_feature_names_out()) == ["city"]


def test_columns_are_matched_by_name_and_extra_ones_ignored_with_a_warning():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "c": [True, False]})
    encoder = ColumnEncoder().fit(frame)
    with pytest.warns(UserWarning, match="not seen in training, ignored: 'extra'"):
        shuffled = encoder.transform(frame[["c", "a", "b"]].assign(extra=[0, 0]))
    np.testing.assert_array_equal(shuffled, encoder.transform(frame))


def test_every_problem_in_a_table_is_reported_at_once_naming_its_column():
    bad = pd.DataFrame({"income": ["12", "13", "n.a.", "15"], "ratio": [1.0, np.inf, 2.0, 3.0],
                        "phase": [1j, 2j, 3j, 4j], "tags": [["a"], ["b"], "c", "d"], "fine": ["a", "b", "c", "d"]})
    with pytest.raises(ColumnError) as caught:
        ColumnEncoder().fit(bad)
    assert len(caught.value.problems) == 4
    message = str(caught.value)
    for expected in ("4 problems", "column 'income': 'n.a.' (1 of 4 values) is not a number",
                     "column 'ratio': 1 infinite value", "column 'phase': values of type complex128",
                     "column 'tags': values of type list"):
        assert expected in message

    train = pd.DataFrame({"age": [30.0, 40.0], "member": [True, False], "since": ["2024-01-01", "2024-02-01"],
                          "plan": ["a", "b"]})
    encoder = ColumnEncoder().fit(train)
    test = pd.DataFrame({"age": ["31", "forty"], "member": ["yes", True], "since": ["1 May", None],
                         "plna": ["a", "b"]})
    with pytest.raises(ValueError) as caught:
        encoder.transform(test)
    assert caught.value.problems == [
        "missing column 'plan' (seen in training; the table has columns training did not: 'plna')",
        "column 'age': 'forty' cannot be read as a number",
        "column 'member': 'yes' cannot be read as a boolean (True/False, 1/0)",
        "column 'since': '1 May' cannot be read as an ISO 8601 date (2024-05-31)"]


@pytest.fixture(scope="module")
def customers():
    """A table whose label depends on a text, a boolean and a date column (and a number)."""
    rng = np.random.default_rng(0)
    n = 240
    plan = rng.choice(["basic", "pro", "team"], n)
    member = rng.random(n) < 0.5
    days = rng.integers(0, 700, n)
    age = rng.normal(40, 10, n)
    score = 2 * (plan == "pro") - 2 * (plan == "team") + 1.5 * member + days / 200 + rng.normal(0, 0.3, n)
    frame = pd.DataFrame({"age": age, "plan": plan, "member": member,
                          "since": pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D")})
    frame.loc[::9, "age"] = nan
    frame.loc[::7, "plan"] = None
    return frame, np.where(score > np.median(score), "churned", "stayed")


def test_the_classifier_reads_a_mixed_dataframe_by_name_and_pickles(customers):
    frame, label = customers
    clf = MotherNetClassifier(fine_tune=5).fit(frame[::2], label[::2])
    proba = clf.predict_proba(frame[1::2])
    assert clf.score(frame[1::2], label[1::2]) > 0.85
    assert clf.n_features_in_ == 4 and list(clf.feature_names_in_) == ["age", "plan", "member", "since"]
    assert clf.preprocess(frame[:3]).shape == (3, 6)  # age, 3 one-hot, member, since
    np.testing.assert_array_equal(clf.predict_proba(frame[1::2][["since", "member", "age", "plan"]]), proba)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(frame[1::2]), proba)
    with pytest.warns(UserWarning, match="read in the training order"):
        np.testing.assert_array_equal(clf.predict_proba(frame[1::2].to_numpy()), proba)
    with pytest.raises(ValueError, match="missing column 'member'"):
        clf.predict(frame.drop(columns="member"))
    assert clf.fit(frame[["age"]].to_numpy(), label).encoder_ is None  # refitted on an array: no encoder


def test_a_numeric_dataframe_gives_exactly_the_numbers_it_gave_before_the_encoder(customers):
    """As scikit-learn's validation read it, memory layout included: the imputed column means are
    summed in the layout's order, and their last bit changes the generated child (here by 8e-4 in
    probability between a Fortran- and a C-ordered copy of the same array)."""
    frame, label = customers
    numeric = pd.DataFrame({"age": frame["age"], "day": frame["since"].dt.dayofyear})  # float and int
    before = check_array(numeric[::2], dtype=np.float64, ensure_all_finite="allow-nan")
    on_frame = MotherNetClassifier(fine_tune=5).fit(numeric[::2], label[::2]).predict_proba(numeric[1::2])
    on_array = MotherNetClassifier(fine_tune=5).fit(before, label[::2]).predict_proba(numeric[1::2].to_numpy())
    np.testing.assert_array_equal(on_frame, on_array)


def test_the_classifier_warns_when_it_drops_a_column(customers):
    frame, label = customers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = MotherNetClassifier(fine_tune=0).fit(frame.assign(email=[f"u{i}@x.org" for i in range(len(frame))]),
                                                  label)
    assert [str(w.message) for w in caught] == [("MotherNetClassifier: column 'email': dropped: more than half "
                                                 "its rows have a level of their own (an identifier or free text?)")]
    assert clf.encoder_.kinds_["email"] == "dropped"
