"""Columns as users have them (numbers, booleans, text, categories, dates) turned into the numbers
MotherNet reads, by one rule fitted on the training rows.

The rule (:class:`ColumnEncoder`), column by column:

- **numbers**: as they are; a missing value stays missing (``NaN``: the classifier imputes it).
  A text column whose every value reads as a number (``"12"``, ``"3.5"``) is a number column.
- **booleans** (``True``/``False``; also an object column of them with gaps): 1 and 0; a missing
  value stays missing.
- **dates** (``datetime64`` columns, and text columns whose every value is an ISO 8601 date such
  as ``2024-05-31`` or ``2024-05-31T14:30``): days since 1970-01-01 (UTC; a time of day is the
  fraction). **Durations** (``timedelta64``): days.
- **text and pandas categorical columns** with at most ``max_levels`` distinct values in the
  training rows: one-hot, a 0/1 column ``"name=level"`` per level seen in training. An unseen
  level, or a missing value, gives all zeros.
- **more levels than that**: the level's frequency rank in the training rows (0 the most common;
  an unseen level is missing), or, when more than half the rows have a level of their own (an
  identifier or free text), the column is dropped with a notice.

Refused, all reported at once in one :class:`ColumnError` naming each column: a text column whose
values are mostly numbers but not all (``"12"``, ``"n.a."``: a typo would otherwise turn it into
categories), infinite numbers, duplicate column names, values of other types (complex numbers,
intervals, lists); at transform time also missing columns and values the column's kind cannot
read (a word in a number column).

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [31, None, 45], "plan": ["basic", "pro", "basic"],
    ...                       "member": [True, False, True], "since": ["2024-01-01", "2024-01-03", None]})
    >>> encoder = ColumnEncoder().fit(frame)
    >>> list(encoder.get_feature_names_out())
    ['age', 'plan=basic', 'plan=pro', 'member', 'since']
    >>> encoder.transform(frame[["since", "member", "plan", "age"]])[1].tolist()
    [nan, 0.0, 1.0, 0.0, 19725.0]
"""

from __future__ import annotations

import datetime
import numbers
import warnings

import numpy as np
import pandas as pd

__all__ = ["ColumnEncoder", "ColumnError"]

# An ISO 8601 date, optionally with a time and a zone: only this text is read as a date (pandas'
# free-form parser reads "March" or "1/2" as dates too, in a locale's order).
_ISO_DATE = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_DAY = pd.Timedelta(days=1)


class ColumnError(ValueError):
    """Every problem found in a table's columns, one line each (``problems``), naming the column."""

    def __init__(self, problems: list[str], where: str = "the table"):
        self.problems = list(problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(f"{count} with the columns of {where}:\n  " + "\n  ".join(self.problems))


class ColumnEncoder:
    """Encode a pandas DataFrame's columns as numbers by the rule of this module, fitted on the
    training rows; at transform time columns are matched by name, in any order.

    Args:
        max_levels: a text or categorical column with at most this many distinct values in the
            training rows is one-hot encoded (default 20: beyond that, one-hot columns outnumber
            the features of most tables); one with more becomes its level's frequency rank, or is
            dropped when more than half the rows have a level of their own.

    Attributes:
        feature_names_in_: the training columns, in their order.
        n_features_in_: their number.
        kinds_: column → ``number``, ``boolean``, ``date``, ``duration``, ``one-hot``, ``rank`` or
            ``dropped``.
        levels_: column → its levels, most frequent first (``one-hot`` and ``rank`` columns).
        notices_: column → one line saying how it was converted or why it was dropped, for
            each column not used as its own numbers.

    Shapes:
        transform: a DataFrame of ``n`` rows → ``(n, len(get_feature_names_out()))`` float64.
    """

    def __init__(self, max_levels: int = 20):
        self.max_levels = max_levels

    def fit(self, frame: pd.DataFrame) -> ColumnEncoder:
        """Learn each column's kind (and levels) from the training rows ``frame``."""
        _require_frame(frame)
        problems = _duplicates(frame)
        kinds, levels, notices = {}, {}, {}
        for name in frame.columns.unique():
            column = frame[name]
            if isinstance(column, pd.DataFrame):  # a duplicated name; reported above
                continue
            kind, problem = _kind(column)
            if problem:
                problems.append(f"column {name!r}: {problem}")
                continue
            if kind in ("text", "category"):
                kind, levels[name] = self._levels(column)
            kinds[name] = kind
            if _notice(kind, levels.get(name)):
                notices[name] = f"column {name!r}: {_notice(kind, levels.get(name))}"
            if kind != "dropped":  # infinities, unreadable dates
                problems += [f"column {name!r}: {p}" for p in _convert(column, kind, levels.get(name))[1]]
        if problems:
            raise ColumnError(problems)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.kinds_, self.levels_, self.notices_ = kinds, {k: v for k, v in levels.items() if v}, notices
        return self

    def _levels(self, column: pd.Series) -> tuple[str, list]:
        """``one-hot``, ``rank`` or ``dropped``, and the levels (most frequent first; none when dropped)."""
        counts = column.value_counts(dropna=True)
        counts = counts[counts > 0]  # a categorical column counts its unused categories too
        order = sorted(range(len(counts)), key=lambda i: (-counts.iloc[i], str(counts.index[i])))
        levels = [counts.index[i] for i in order]
        if len(levels) <= self.max_levels:
            return "one-hot", levels
        if len(levels) > 0.5 * column.notna().sum():
            return "dropped", []
        return "rank", levels

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The encoded features of ``frame``, whose columns are matched by name (extra ones are
        ignored with a warning; missing ones are an error)."""
        if not hasattr(self, "kinds_"):
            raise ValueError("this ColumnEncoder is not fitted yet; call fit first")
        _require_frame(frame)
        problems = _duplicates(frame)
        known = set(self.feature_names_in_)
        missing = [name for name in self.feature_names_in_ if name not in frame.columns]
        extra = [name for name in frame.columns.unique() if name not in known]
        if not problems and not missing and not extra and self._plain_numbers(frame):
            values = frame.to_numpy(dtype=np.float64)
            if not np.isinf(values).any():  # else reported below, column by column
                return values
        if missing:
            unseen = f"; the table has columns training did not: {_names(extra)}" if extra else ""
            problems.append(f"missing column{'s' if len(missing) > 1 else ''} {_names(missing)} "
                            f"(seen in training{unseen})")
        elif extra:
            warnings.warn(f"columns not seen in training, ignored: {_names(extra)}", UserWarning, stacklevel=2)
        out = []
        for name, kind in self.kinds_.items():
            if kind == "dropped" or name not in frame.columns or isinstance(frame[name], pd.DataFrame):
                continue
            values, column_problems = _convert(frame[name], kind, self.levels_.get(name))
            problems += [f"column {name!r}: {p}" for p in column_problems]
            out.append(values)
        if problems:
            raise ColumnError(problems)
        if not out:
            return np.empty((len(frame), 0))
        return np.ascontiguousarray(np.column_stack(out), dtype=np.float64)

    def _plain_numbers(self, frame: pd.DataFrame) -> bool:
        """Whether ``frame`` holds the training columns, in order, all NumPy numbers: then it is
        read as NumPy reads it, memory layout included, as before this encoder existed (the column
        means that impute missing values are summed in the layout's order, and the generated child
        differs with their last bit)."""
        return (list(frame.columns) == list(self.feature_names_in_)
                and all(kind == "number" for kind in self.kinds_.values())
                and all(isinstance(dtype, np.dtype) and dtype.kind in "fiu" for dtype in frame.dtypes))

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    def get_feature_names_out(self) -> np.ndarray:
        """The names of the encoded columns: a column's own name, or ``"name=level"`` for one-hot."""
        names = []
        for name, kind in self.kinds_.items():
            if kind == "one-hot":
                names += [f"{name}={level}" for level in self.levels_[name]]
            elif kind != "dropped":
                names.append(str(name))
        return np.asarray(names, dtype=object)


def _require_frame(frame) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"ColumnEncoder reads a pandas DataFrame, got {type(frame).__name__}")


def _duplicates(frame: pd.DataFrame) -> list[str]:
    repeated = frame.columns[frame.columns.duplicated()].unique()
    return [f"column {name!r} appears more than once" for name in repeated]


def _names(names) -> str:
    return ", ".join(repr(n) for n in names)


def _examples(values: pd.Series) -> str:
    shown = list(dict.fromkeys(values.astype(str)))[:3]
    return ", ".join(repr(v) for v in shown) + (", …" if values.astype(str).nunique() > 3 else "")


def _kind(column: pd.Series) -> tuple[str, str | None]:
    """The kind of a training column: ``number``, ``boolean``, ``date``, ``duration``, ``text`` or
    ``category``, and a problem (or ``None``)."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", None
    if isinstance(dtype, pd.CategoricalDtype):
        return "category", None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date", None
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "duration", None
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "number", None
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return "", f"values of type {dtype} are not supported; convert or drop the column"
    present = column.dropna()
    if present.map(lambda v: isinstance(v, (bool, np.bool_))).all():  # also an empty column
        return ("boolean" if len(present) else "number"), None
    if present.map(lambda v: isinstance(v, (datetime.date, np.datetime64))).all():
        return "date", None
    strings = present.map(lambda v: isinstance(v, str))
    plain = present.map(lambda v: isinstance(v, (str, numbers.Real)) and not isinstance(v, bool))
    if not plain.all():
        return "", (f"values of type {type(present[~plain].iloc[0]).__name__} are not supported; "
                    "convert or drop the column")
    if strings.all() and present.str.fullmatch(_ISO_DATE).all():
        return "date", None
    parsed = pd.to_numeric(present, errors="coerce")
    if parsed.notna().all():
        return "number", None
    if parsed.notna().mean() >= 0.5:
        bad = present[parsed.isna()]
        return "", (f"{_examples(bad)} ({len(bad)} of {len(present)} values) "
                    f"{'is' if len(bad) == 1 else 'are'} not a number in a column of numbers; "
                    "fix them, empty those cells (an empty cell is missing) or drop the column")
    return "text", None


def _notice(kind: str, levels: list | None) -> str | None:
    levels = levels or []
    return {"boolean": "booleans → 1/0",
            "date": "dates → days since 1970-01-01",
            "duration": "durations → days",
            "one-hot": f"{len(levels)} levels → one-hot (an unseen level: all zeros)",
            "rank": f"{len(levels)} levels → frequency rank (0 the most common; an unseen level: missing)",
            "dropped": "dropped: more than half its rows have a level of their own (an identifier or free text?)",
            }.get(kind)


def _convert(column: pd.Series, kind: str, levels: list | None) -> tuple[np.ndarray, list[str]]:
    """A column as numbers by its fitted ``kind``, and the problems its values raise."""
    present = column.notna().to_numpy()
    if kind in ("one-hot", "rank"):
        codes = pd.Index(levels).get_indexer(column.astype(object))
        if kind == "rank":
            return np.where(codes >= 0, codes, np.nan).astype(np.float64), []
        return (codes[:, None] == np.arange(len(levels))).astype(np.float64), []
    if kind == "date":
        values = _days(column)
    elif kind == "duration":
        values = pd.to_timedelta(column, errors="coerce") / _DAY
    elif kind == "boolean":
        values = column.astype(object).map(_boolean)
    elif pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_complex_dtype(column.dtype):
        values = column  # numbers, and booleans, as they are
    else:
        readable = column.map(lambda v: isinstance(v, (str, numbers.Real)))
        values = pd.to_numeric(column.astype(object).where(readable), errors="coerce")
    values = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
    problems = []
    unread = present & np.isnan(values)
    if unread.any():
        problems.append(f"{_examples(column[unread])} cannot be read as {_READS[kind]}")
    if np.isinf(values).any():
        problems.append(f"{np.isinf(values).sum()} infinite value(s); use finite numbers (an empty cell or NaN "
                        "is missing)")
    return values, problems


_READS = {"number": "a number", "boolean": "a boolean (True/False, 1/0)",
          "date": "an ISO 8601 date (2024-05-31)", "duration": "a duration"}


def _boolean(value) -> float:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Real) and value in (0, 1)):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return float(value.strip().lower() == "true")
    return np.nan


def _days(column: pd.Series) -> pd.Series:
    """Days since 1970-01-01 UTC (a zone-less time counts as UTC); ``NaN`` where a value is missing
    or not a date."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return (pd.to_datetime(column, utc=True) - _EPOCH) / _DAY
    values = column.astype(object).to_numpy(copy=True)  # written below (pandas 3 hands out read-only views)
    text = np.array([isinstance(v, str) for v in values], dtype=bool)
    iso = pd.Series(values[text], dtype=object).str.fullmatch(_ISO_DATE).to_numpy(dtype=bool)
    values[np.flatnonzero(text)[~iso]] = None  # not ISO 8601: unread, as in fit
    readable = np.array([v is None or isinstance(v, (str, datetime.date, np.datetime64)) for v in values])
    values[~readable] = None
    # ISO strings alone parse fast by one format; dates as Python objects need element-wise parsing
    layout = "ISO8601" if all(v is None or isinstance(v, str) for v in values) else "mixed"
    stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True, errors="coerce", format=layout)
    return ((stamps - _EPOCH) / _DAY).to_numpy()
