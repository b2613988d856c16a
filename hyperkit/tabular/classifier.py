"""``MotherNetClassifier``: scikit-learn's interface to MotherNet.

``fit`` is one forward pass of the hypernetwork over the training rows; it produces ``child_``, a
small plain MLP, and ``predict`` / ``predict_proba`` use only that child (with ``fine_tune=k``,
``k`` steps of gradient descent on the training rows then refine the generated child). The
preprocessing (imputation of missing values by the training mean, standardisation with training
statistics, optionally a quantile transform, PCA when there are more features than the model
reads) is fitted on the training rows and applied identically at predict time. A pandas
DataFrame's columns (text, booleans, dates, categories) are first turned into numbers by
:class:`~hyperkit.tabular.columns.ColumnEncoder`, fitted on the training rows too.

Example:
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MotherNetClassifier().fit(X[::2], y[::2])
    >>> clf.score(X[1::2], y[1::2]) > 0.8
    True
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from hyperkit.tabular.invariant import HingeFeatures, InvariantMotherNet
from hyperkit.tabular.model import MotherNet

__all__ = ["MotherNetClassifier", "load_pretrained", "predict_numpy", "save_pretrained"]

PRETRAINED = Path(__file__).parent / "pretrained" / "mothernet_invariant.pt"
# fine_tune="auto": folds of the training rows that choose the fine-tuning length, and its longest.
AUTO_FOLDS = 2
AUTO_MAX_STEPS = 90
AUTO_PATIENCE = 10
# Before the loss first falls below its start, patience is this many steps: it may rise before it
# falls (from a symmetric start, e.g. a label that is the XOR of two columns).
AUTO_MIN_STEPS = 30
# fine_tune="blend" (the default): the weights after the chosen length averaged with those after this
# many steps of the same descent.
BLEND_STEPS = 30
FINE_TUNE_CHOICES = ("auto", "blend")


def load_pretrained(path: str | Path | None = None, device: str = "cpu") -> MotherNet:
    """Load a MotherNet saved by :func:`save_pretrained` (``torch.load(weights_only=True)``).

    The last model loaded stays cached (keyed by file, modification time and device), so fitting
    many classifiers reads the file once. Treat it as read-only.

    Args:
        path: the file; default: the model that ships with hyperkit.
        device: where to put it.
    """
    path = Path(path) if path is not None else PRETRAINED
    key = (str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else None, str(device))
    if key not in _LOADED:
        _LOADED.clear()  # keep one model in memory
        _LOADED[key] = _load(path, device)
    return _LOADED[key]


_LOADED: dict[tuple, MotherNet] = {}


ARCHITECTURES = {"mothernet": MotherNet, "invariant": InvariantMotherNet}


def build_model(arguments: dict) -> nn.Module:
    """A MotherNet from saved constructor ``arguments``: ``architecture`` (``mothernet``, the
    default for files that do not name one, or ``invariant``) picks the class, the rest are its
    arguments."""
    arguments = dict(arguments)
    name = arguments.pop("architecture", "mothernet")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown MotherNet architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**arguments)


def _load(path: Path, device: str) -> nn.Module:
    if not path.is_file():
        raise FileNotFoundError(f"no MotherNet weights at {path}; train one with `hyperkit run mothernet/cpu` "
                                "and export it with hyperkit.tabular.save_pretrained, or pass model=<file>")
    state = torch.load(path, map_location=device, weights_only=True)
    model = build_model(state["arguments"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def save_pretrained(model: MotherNet, arguments: dict, path: str | Path, **info) -> Path:
    """Save ``model`` with the constructor ``arguments`` needed to rebuild it (plus ``info``:
    config, steps, training time), in a file :func:`load_pretrained` reads safely."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arguments": dict(arguments), "model": model.state_dict(), "info": info}, path)
    return path


def predict_numpy(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Class probabilities from :meth:`MotherNetClassifier.export` arrays, with NumPy only.

    Shapes:
        X ``(n, d)`` raw features (NaN allowed) → ``(n, num_classes)``.
    """
    with _single_threaded_blas():
        return _predict(arrays, np.asarray(X, dtype=np.float64))


@functools.cache
def _blas_libraries() -> list:
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController().select(user_api="blas").lib_controllers


@contextlib.contextmanager
def _single_threaded_blas():
    # The child's matrices are small: a threaded BLAS spends longer waking its threads than
    # multiplying (1000 rows: 3.0 ms threaded, 1.5 ms on one thread; far worse when the other
    # cores are busy). The BLAS libraries' own setters, not ThreadpoolController.limit, whose
    # bookkeeping cost about 0.1 ms a call: a fifth of a 500-row prediction.
    libraries = _blas_libraries()
    previous = [library.get_num_threads() for library in libraries]
    for library in libraries:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, threads in zip(libraries, previous):
            library.set_num_threads(threads)


# The child's arrays per member m, in the order they are applied: hidden layer i is
# x ↦ relu(x · a_i · c_i + b_i), factored as generated (rank r ≪ hidden keeps two thin products
# cheaper than one square one), or x ↦ relu(x · a_i + b_i) where c_i is absent: the first layer is
# stored dense when fine-tuned (see _fine_tune) or when its product costs less to apply than its
# factors (few features: d ≤ r·hidden / (hidden − r), 18 for the shipped model).
LAYERS = ("a0", "c0", "b0", "a1", "c1", "b1", "w2", "b2")

# The invariant model's child (hyperkit.tabular.invariant.child_logits), in the same order:
# φ = [x_j, relu(x_j · hinge_a_jk + hinge_b_jk)] per feature j, h = relu(φ · w1 + b1),
# logits = h · w2 + b2, with w1 (d·(K+1), H) and w2 (H, C) stored ready to multiply.
HINGE_LAYERS = ("hinge_a", "hinge_b", "w1", "b1", "w2", "b2")

# Ensemble members per transformer pass: at most this many rows in all (members × context rows).
# Batching saves the per-pass overhead of small tables (iris, 8 members: 67 → 30 ms) but slows
# large ones (digits' 899 rows, 8 members: 791 ms one at a time, 1408 ms in one pass, 1 thread).
_PASS_ROWS = 1024


def _predict(arrays: dict, X: np.ndarray) -> np.ndarray:
    x = _preprocess(arrays, X)
    proba = _proba(x, _member(arrays, 0))
    for m in range(1, arrays["num_members"]):
        proba += _proba(x, _member(arrays, m))
    if arrays["num_members"] > 1:
        proba /= arrays["num_members"]
    return proba


def _member(arrays: dict, m: int) -> tuple:
    """Member ``m``'s :data:`LAYERS` arrays (``None`` for the factor of a dense layer), or its
    :data:`HINGE_LAYERS` arrays where it is an invariant model's child."""
    names = HINGE_LAYERS if f"hinge_a_{m}" in arrays else LAYERS
    return tuple(arrays.get(f"{name}_{m}") for name in names)


def _proba(x: np.ndarray, member: tuple) -> np.ndarray:
    return _hinge_proba(x, *member) if len(member) == len(HINGE_LAYERS) else _child_proba(x, *member)


def _hinge_proba(x, hinge_a, hinge_b, w1, b1, w2, b2) -> np.ndarray:
    n, d = x.shape
    phi = np.empty((n, d, hinge_a.shape[1] + 1))
    phi[:, :, 0] = x
    np.multiply(x[:, :, None], hinge_a, out=phi[:, :, 1:])
    phi[:, :, 1:] += hinge_b
    np.maximum(phi[:, :, 1:], 0, out=phi[:, :, 1:])
    h = phi.reshape(n, -1) @ w1
    h += b1
    np.maximum(h, 0, out=h)
    return _softmax(h @ w2 + b2)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits -= logits.max(1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(1, keepdims=True)
    return logits


def _child_proba(x, a0, c0, b0, a1, c1, b1, w2, b2) -> np.ndarray:
    # The products are thin (rank r ≪ hidden) and their (n, hidden) outputs are what costs: each
    # pass over them is a trip through memory. So the bias rides in the product (a column of ones
    # beside the rank-r activations, or beside the inputs of a dense layer, the bias as an extra
    # row of the last matrix), and the rest is in place: 2000 rows, 8 features, one thread:
    # 1.38 ms with separate bias additions, 1.12 ms so.
    h = x
    for a, c, b in ((a0, c0, b0), (a1, c1, b1)):
        last = a if c is None else c
        low = np.empty((len(h), len(last) + 1))  # the last matrix's input, and a ones column
        low[:, -1] = 1
        if c is None:
            low[:, :-1] = h
        else:
            np.matmul(h, a, out=low[:, :-1])
        h = low @ np.vstack([last, b])
        np.maximum(h, 0, out=h)
    logits = h @ w2
    logits += b2
    return _softmax(logits)


def _preprocess(arrays: dict, x: np.ndarray) -> np.ndarray:
    """Impute, (quantile-transform), standardise and clip like the training tables."""
    missing = np.isnan(x)
    if missing.any():
        x = np.where(missing, arrays["impute"], x)
    if "quantile" in arrays:
        x = arrays["quantile"].transform(x)
    if "pca_components" in arrays:
        x = (x - arrays["pca_mean"]) @ arrays["pca_components"].T
    x = x - arrays["mean"]  # a new array: the caller's is left alone
    x /= arrays["std"]
    return np.clip(x, -10, 10, out=x)


def _fine_tune(members: list, x: np.ndarray, codes: np.ndarray, steps: int, lr: float,
               train: np.ndarray | None = None, watch: np.ndarray | None = None, patience: int = 0,
               blend: int | None = None):
    """Refine generated children by full-batch gradient descent with momentum on their
    cross-entropy, all members at once; a member whose weights stop being finite keeps its
    generated ones.

    A paper-model child's first layer is refined as one dense matrix ``a0 · c0``, free to leave
    the rank-``r`` subspace the generator chose (on digits, 64 features and ten classes: ROC AUC
    0.991 with the factors refined, 0.998 dense). Its steps are ``lr · (‖a0‖² + ‖c0‖²) / r``: the
    rate at which gradient descent on the two factors moved their product, since the gradient of
    ``a0`` is multiplied by ``c0`` and that of ``c0`` by ``a0`` (at ``lr`` alone, the dense matrix
    barely moves). An invariant model's child (:data:`HINGE_LAYERS`) is refined as it is.

    With ``blend``, the descent runs ``max(steps, blend)`` steps and every member's weights are the
    mean of its weights after ``steps`` and after ``blend`` steps (two points of one path).

    With ``watch``, returns instead the validation curve: member ``m`` learns from the rows where
    ``train[m]`` is true and its mean cross-entropy on the rows where ``watch[m]`` is true is
    recorded before each step and after the last; with ``patience``, descent stops once the
    members' mean of it has not improved for that many steps (for :data:`AUTO_MIN_STEPS` steps
    while it has not fallen below its start).

    Shapes:
        members: list of generated :data:`LAYERS` tuples (``a0 (d, r)``, ``c0 (r, h)``, ``b0
        (h,)``, …, ``w2 (h, C)``, ``b2 (C,)``) or of :data:`HINGE_LAYERS` tuples; x ``(n, d)``
        preprocessed features; codes ``(n,)`` class ids ``< C``; train, watch ``(members, n)``
        booleans → the same members refined, a paper-model child's first layer dense: ``a0 (d,
        h)``, ``c0`` ``None``; with ``watch``: the curve ``(steps_run + 1, members)``.
    """
    if len(members[0]) == len(HINGE_LAYERS):
        arrays, rates, grads = members, [lr] * len(HINGE_LAYERS), _hinge_grads
    else:
        arrays = [(a0 @ c0, b0, a1, c1, b1, w2, b2) for a0, c0, b0, a1, c1, b1, w2, b2 in members]
        first_lr = lr * torch.tensor([((m[0] ** 2).sum() + (m[1] ** 2).sum()) / len(m[1]) for m in members],
                                     dtype=torch.float32)[:, None, None]
        rates, grads = [first_lr] + [lr] * 6, _dense_grads
    tuned, curve = _descend(arrays, rates, grads, x, codes, steps, train=train, watch=watch, patience=patience,
                            blend=blend)
    if watch is not None:
        return curve
    if grads is _dense_grads:
        tuned = [(new[0], None, *new[1:]) for new in tuned]
    return [new if all(a is None or np.isfinite(a).all() for a in new) else old for new, old in zip(tuned, members)]


def _dense_grads(inputs, targets, rows, w0, b0, a1, c1, b1, w2, b2) -> tuple:
    """A paper-model child's cross-entropy per row ``(members, n)`` and the gradients of its sum
    weighted by ``rows (members, n)``, by autograd."""
    with torch.enable_grad():
        stacked = [t.detach().requires_grad_() for t in (w0, b0, a1, c1, b1, w2, b2)]
        w0, b0, a1, c1, b1, w2, b2 = stacked
        h = torch.relu(inputs @ w0 + b0[:, None])
        h = torch.relu(h @ a1 @ c1 + b1[:, None])
        out = h @ w2 + b2[:, None]
        losses = nn.functional.cross_entropy(out.transpose(1, 2), targets.expand(len(out), -1), reduction="none")
        return losses.detach(), torch.autograd.grad((losses * rows).sum(), stacked)


def _hinge_grads(inputs, targets, rows, hinge_a, hinge_b, w1, b1, w2, b2) -> tuple:
    """The same for an invariant model's child, differentiated by hand: a third less time a step
    than autograd on a table of a few hundred rows (0.47 against 0.70 ms), where the graph's
    bookkeeping outweighs the arithmetic."""
    m, (n, d), k = len(hinge_a), inputs.shape, hinge_a.shape[-1]
    x = inputs[None, :, :, None]
    z = torch.addcmul(hinge_b[:, None], x, hinge_a[:, None])  # (m, n, d, K)
    phi = torch.cat([x.expand(m, -1, -1, -1), z.clamp(min=0)], -1).view(m, n, -1)
    before = torch.baddbmm(b1[:, None], phi, w1)
    h = before.clamp(min=0)
    log_p = torch.log_softmax(torch.baddbmm(b2[:, None], h, w2), -1)
    losses = -log_p.gather(-1, targets.expand(m, -1)[..., None])[..., 0]
    g = log_p.exp_()  # d loss / d logits: (softmax − one-hot) · row weight
    g[:, torch.arange(n), targets] -= 1
    g *= rows[..., None]
    g_h = (g @ w2.transpose(1, 2)).mul_(before > 0)
    g_z = (g_h @ w1.transpose(1, 2)).view(m, n, d, k + 1)[..., 1:].mul_(z > 0)
    return losses, ((g_z * x).sum(1), g_z.sum(1), phi.transpose(1, 2) @ g_h, g_h.sum(1),
                    h.transpose(1, 2) @ g, g.sum(1))


def _descend(members: list, rates: list, grads, x: np.ndarray, codes: np.ndarray, steps: int,
             momentum: float = 0.9, train: np.ndarray | None = None, watch: np.ndarray | None = None,
             patience: int = 0, blend: int | None = None) -> tuple:
    """``steps`` of gradient descent with momentum on every member's mean cross-entropy, the
    members' arrays stacked; ``rates[i]`` is the step size of array ``i`` (a number, or a tensor
    broadcasting over the stack); ``grads(inputs, targets, rows, *stacked)`` gives the
    cross-entropy per row ``(members, n)`` and the gradients of its sum weighted by ``rows``.
    ``train``, ``watch``, ``patience`` and ``blend`` as in :func:`_fine_tune`. Returns the refined
    members and the curve (``None`` without ``watch``)."""
    stacked = [torch.tensor(np.stack(arrays), dtype=torch.float32) for arrays in zip(*members)]
    inputs, targets = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(codes, dtype=torch.long)
    # Each member's gradient is that of its own mean cross-entropy (over its training rows).
    rows = np.ones((len(members), len(codes))) if train is None else train
    rows = torch.as_tensor(rows / rows.sum(1, keepdims=True), dtype=torch.float32)
    watched = None if watch is None else torch.as_tensor(watch / watch.sum(1, keepdims=True), dtype=torch.float32)
    velocity = [torch.zeros_like(t) for t in stacked]
    curve, first = [], None
    total = steps if blend is None else max(steps, blend)
    for step in range(total + 1):
        if blend is not None and step == min(steps, blend):
            first = [t.clone() for t in stacked]
        if step == total and watched is None:
            break
        losses, gradients = grads(inputs, targets, rows, *stacked)
        if watched is not None:
            curve.append((losses * watched).sum(1).numpy())
            means = np.mean(curve, axis=1)
            best = _finite_argmin(means)
            if step == steps or (patience and step - best >= patience and (best or step >= AUTO_MIN_STEPS)):
                break
        # torch.optim.SGD's update, without its first-use cost (~1 s)
        for weight, v, grad, rate in zip(stacked, velocity, gradients, rates):
            v.mul_(momentum).add_(grad)
            weight.sub_(rate * v)
    if first is not None:
        stacked = [(a + b) / 2 for a, b in zip(first, stacked)]
    tuned = [tuple(t[m].double().numpy() for t in stacked) for m in range(len(members))]
    return tuned, np.array(curve) if watched is not None else None


def _finite_argmin(values: np.ndarray) -> int:
    """The index of the least finite value (a diverged step, NaN or inf, never wins)."""
    return int(np.where(np.isfinite(values), values, np.inf).argmin())


def _folds(codes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold id in ``0 .. k - 1`` per row: the rows in one random order, each class's dealt
    round-robin (so the folds do not depend on which ids the classes have); ``-1`` (never
    validated) for the rows of a class with fewer than ``k`` rows, so that every fold's training
    rows hold every class."""
    order = rng.permutation(len(codes))
    ranked = codes[order]
    rank = np.empty(len(codes), dtype=np.int64)  # each row's position among its class's rows in that order
    by_class = np.argsort(ranked, kind="stable")
    starts = np.searchsorted(ranked[by_class], ranked[by_class])
    rank[by_class] = np.arange(len(codes)) - starts
    folds = np.empty(len(codes), dtype=np.int64)
    folds[order] = rank % k
    return np.where(np.bincount(codes)[codes] >= k, folds, -1)


def _stratified(codes: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``share`` of the rows of each class (at least one each), sorted."""
    picks = [rng.choice(idx, max(1, int(round(len(idx) * share))), replace=False)
             for idx in (np.flatnonzero(codes == c) for c in np.unique(codes))]
    return np.sort(np.concatenate(picks))


def _cheaper_dense(member: tuple) -> tuple:
    """``member`` with its first layer stored as one matrix where applying that costs less than
    applying its two factors: ``(d + 1)·h ≤ d·r + (r + 1)·h`` multiply-adds a row."""
    a0, c0, *rest = member
    if len(member) == len(HINGE_LAYERS) or c0 is None or (len(a0) + 1) * c0.shape[1] > a0.size + c0.size + c0.shape[1]:
        return member
    return (a0 @ c0, None, *rest)


class _Ensemble(nn.Module):
    """Average of the members' class probabilities (members: dense child MLPs)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).softmax(-1) for m in self.members]).mean(0).log()


def _is_frame(X) -> bool:
    pandas = sys.modules.get("pandas")  # no DataFrame exists unless pandas was imported: no import here
    return pandas is not None and isinstance(X, pandas.DataFrame)


class MotherNetClassifier(ClassifierMixin, BaseEstimator):
    """Tabular classification by one forward pass of a pretrained hypernetwork (MotherNet).

    Args:
        model: an :class:`~hyperkit.tabular.invariant.InvariantMotherNet` or a
            :class:`~hyperkit.tabular.model.MotherNet`, a path to saved weights, or ``None`` for
            the pretrained model that ships with hyperkit (an invariant one).
        n_estimators: ensemble size; the probabilities of the members are averaged. With the
            paper's model, member ``k > 0`` sees the features and the class ids in a random order
            (a different child each); an invariant model's children do not depend on orders, so
            its member ``k > 0`` reads a stratified random 80 % of the rows instead.
        quantile: apply a quantile transform (to a normal) to each feature before standardising;
            helps with skewed, heavy-tailed columns.
        max_context_rows: at most this many training rows go through the transformer (a stratified
            random subset beyond that: attention cost grows with the square of the rows).
        device: ``cpu`` or ``cuda`` for the forward pass.
        fine_tune: how the generated children are refined by full-batch gradient descent (with
            momentum) on the context rows (a paper-model child's first layer as one dense matrix,
            free to leave the generator's low-rank subspace). A number: that many steps; 0 keeps
            ``fit`` one forward pass. ``"auto"``: the number chosen per table: the rows are dealt
            into :data:`AUTO_FOLDS` folds (stratified), each fold's child is generated from the
            other folds and refined on them, and the length with the least cross-entropy on the
            held-out folds (0 .. :data:`AUTO_MAX_STEPS`, stopping once it has not improved for
            :data:`AUTO_PATIENCE` steps) refines the child of all rows: little on noisy labels,
            long where the generated child is only a start. ``"blend"`` (the default): that
            length chosen as for ``"auto"``, and the child's weights after it averaged with its
            weights after :data:`BLEND_STEPS` steps of the same descent (one child, so predicting
            costs what it does after a fixed length). On the benchmark's tuning half, mean ROC AUC
            0.8547 against 0.8539 for ``"auto"`` and 0.8524 for 30 steps; held out 0.7838
            against 0.7815 for 30 steps, for about twice the fit time (docs/mothernet.md). Plain
            gradient steps, not Adam's: their size follows the gradient, so a child that already
            fits its table moves little, and one that fits it poorly moves much.
        fine_tune_lr: the learning rate of those steps; ``None``: the model's own
            (``model.fine_tune_lr``: 0.1 for the invariant model, 0.03 for the paper's, each the
            best measured for it).
        random_state: seed of the permutations and row subsets.

    Limits: an invariant model (the shipped one) reads any number of features and classes; the
    paper's model at most ``model.max_classes`` classes (more is an error) and reduces tables with
    more than ``model.max_features`` features to that many principal components fitted on the
    training rows.

    Input: a NumPy array of numbers (NaN means missing), or a pandas DataFrame with number,
    boolean, text, categorical and date columns, encoded by the rule of
    :mod:`hyperkit.tabular.columns` (text one-hot, dates as days, …) fitted on the training rows;
    a DataFrame's columns are then matched by name at predict time, in any order.

    Attributes:
        classes_: the class labels, sorted.
        child_: the generated classifier, a plain ``nn.Module`` mapping preprocessed features
            (:meth:`preprocess`) to log-probabilities over ``classes_``.
        n_features_in_: number of input features (a DataFrame's columns, before encoding).
        feature_names_in_: a DataFrame's column names (when they are all strings).
        encoder_: the fitted :class:`~hyperkit.tabular.columns.ColumnEncoder` of a DataFrame;
            ``None`` after fitting on an array.
        fine_tune_steps_: the fine-tuning steps taken: ``fine_tune``, or the length ``"auto"``
            and ``"blend"`` chose (``"blend"`` also runs :data:`BLEND_STEPS` steps and averages).
    """

    def __init__(self, model: MotherNet | str | Path | None = None, n_estimators: int = 1, quantile: bool = False,
                 max_context_rows: int = 2048, fine_tune: int | str = "blend", fine_tune_lr: float | None = None, device: str = "cpu",
                 random_state: int | None = 0):
        self.model = model
        self.n_estimators = n_estimators
        self.quantile = quantile
        self.max_context_rows = max_context_rows
        self.fine_tune = fine_tune
        self.fine_tune_lr = fine_tune_lr
        self.device = device
        self.random_state = random_state

    def _model(self) -> MotherNet:
        if isinstance(self.model, tuple(ARCHITECTURES.values())):
            return self.model.to(self.device).eval()
        return load_pretrained(self.model, self.device)

    def _validate(self, X, y="no_validation", reset: bool = False):
        try:
            return validate_data(self, X, y, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan")
        except ValueError as err:
            if "could not convert" in str(err) or "dtype" in str(err):
                raise ValueError(f"MotherNetClassifier needs numeric features in an array ({err}); pass a pandas "
                                 "DataFrame to have its text, boolean and date columns encoded, or encode them "
                                 "first, e.g. with sklearn.preprocessing.OrdinalEncoder") from None
            raise

    def fit(self, X, y) -> "MotherNetClassifier":
        """Generate the child from the training rows ``X (n, d)`` and labels ``y (n,)``."""
        if not isinstance(self.n_estimators, numbers.Integral) or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be a positive integer, got {self.n_estimators!r}")
        if self.fine_tune not in FINE_TUNE_CHOICES and (not isinstance(self.fine_tune, numbers.Integral)
                                                        or isinstance(self.fine_tune, bool) or self.fine_tune < 0):
            raise ValueError(f"fine_tune must be 'blend', 'auto' or a number of steps >= 0, got {self.fine_tune!r}")
        if self.fine_tune_lr is not None and not self.fine_tune_lr > 0:
            raise ValueError(f"fine_tune_lr must be positive or None (the model's own), got {self.fine_tune_lr!r}")
        X, y = self._validate(self._fit_columns(X), y, reset=True)
        if self.encoder_ is not None:
            self._name_columns()
        check_classification_targets(y)
        model = self._model()
        self.classes_, codes = np.unique(y, return_inverse=True)
        if model.max_classes is not None and len(self.classes_) > model.max_classes:
            raise ValueError(f"{len(self.classes_)} classes, but this MotherNet handles at most {model.max_classes}; "
                             "group rare classes, or use a one-vs-rest wrapper (sklearn.multiclass.OneVsRestClassifier)")
        rng = np.random.default_rng(self.random_state)
        arrays = self._fit_preprocessing(X, model.max_features)
        x = _preprocess(arrays, X)
        rows = self._context_rows(codes, rng)
        context, labels = x[rows], codes[rows]
        members = self._generate(model, context, labels, rng, self.n_estimators)
        lr = model.fine_tune_lr if self.fine_tune_lr is None else self.fine_tune_lr
        chosen = self.fine_tune in FINE_TUNE_CHOICES
        steps = self._auto_steps(model, context, labels, lr, rng) if chosen else self.fine_tune
        blend = BLEND_STEPS if self.fine_tune == "blend" else None
        if steps or blend:
            members = _fine_tune(members, context, labels, steps, lr, blend=blend)
        self.fine_tune_steps_ = steps
        members = [_cheaper_dense(member) for member in members]
        for m, member in enumerate(members):
            names = HINGE_LAYERS if len(member) == len(HINGE_LAYERS) else LAYERS
            arrays.update({f"{name}_{m}": value for name, value in zip(names, member) if value is not None})
        arrays["num_members"] = len(members)
        self.arrays_ = arrays
        self.child_ = self._child_module(members)
        return self

    def _fit_columns(self, X):
        """A DataFrame's encoded columns (the encoder fitted on them), anything else as it is."""
        self.encoder_ = None
        if not _is_frame(X):
            return X
        # imports pandas (0.6 s, unless scikit-learn already has, as 1.9 does): only for a DataFrame
        from hyperkit.tabular.columns import ColumnEncoder

        self.encoder_ = ColumnEncoder().fit(X)
        for name, kind in self.encoder_.kinds_.items():
            if kind == "dropped":  # the other conversions are the documented rule; this loses a column
                warnings.warn(f"MotherNetClassifier: {self.encoder_.notices_[name]}", UserWarning, stacklevel=3)
        return self.encoder_.transform(X)

    def _name_columns(self) -> None:
        """The input's width and names are the DataFrame's, not the encoded array's."""
        self.n_features_in_ = self.encoder_.n_features_in_
        names = self.encoder_.feature_names_in_
        if all(isinstance(name, str) for name in names):  # scikit-learn names string columns only
            self.feature_names_in_ = names

    def _fit_preprocessing(self, X: np.ndarray, max_features: int) -> dict:
        with np.errstate(all="ignore"):
            impute = np.nan_to_num(np.nanmean(X, axis=0)) if X.size else np.zeros(X.shape[1])
        arrays: dict = {"impute": impute}
        x = np.where(np.isnan(X), impute, X)
        if self.quantile:
            arrays["quantile"] = QuantileTransformer(n_quantiles=min(1000, len(x)), output_distribution="normal",
                                                     random_state=0).fit(x)
            x = arrays["quantile"].transform(x)
        if max_features is not None and x.shape[1] > max_features:
            pca = PCA(n_components=min(max_features, len(x)), random_state=0).fit(x)
            arrays["pca_mean"], arrays["pca_components"] = pca.mean_, pca.components_
            x = pca.transform(x)
        std = x.std(0)
        arrays["mean"], arrays["std"] = x.mean(0), np.where(std > 1e-12, std, 1.0)
        return arrays

    def _context_rows(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(codes) <= self.max_context_rows:
            return np.arange(len(codes))
        return _stratified(codes, self.max_context_rows / len(codes), rng)  # every class keeps its share

    def _generate(self, model: MotherNet, x: np.ndarray, codes: np.ndarray, rng: np.random.Generator,
                  count: int) -> list:
        """``count`` generated children of the rows ``x (n, d)`` with class ids ``codes (n,)``."""
        if isinstance(model, InvariantMotherNet):
            return self._hinge_members(model, x, codes, rng, count)
        return self._members(model, x, codes, rng, count)

    def _auto_steps(self, model: MotherNet, x: np.ndarray, codes: np.ndarray, lr: float,
                    rng: np.random.Generator) -> int:
        """The fine-tuning length with the least validation cross-entropy over
        :data:`AUTO_FOLDS` folds of the rows (each fold's child generated from the other folds
        and refined on them, all folds at once), between 0 and :data:`AUTO_MAX_STEPS`; 0 when no
        class has :data:`AUTO_FOLDS` rows."""
        folds = _folds(codes, AUTO_FOLDS, rng)
        if (folds < 0).all():
            return 0
        train = np.stack([folds != k for k in range(AUTO_FOLDS)])
        members = [self._generate(model, x[rows], codes[rows], rng, 1)[0] for rows in train]
        curve = _fine_tune(members, x, codes, AUTO_MAX_STEPS, lr, train=train, watch=~train,
                           patience=AUTO_PATIENCE).mean(1)
        return _finite_argmin(curve)

    @torch.no_grad()
    def _members(self, model: MotherNet, x: np.ndarray, codes: np.ndarray, rng: np.random.Generator,
                 count: int) -> list:
        """The ensemble's children over the real features and classes, as the arrays :data:`LAYERS`
        names: hidden layer ``i`` is ``x ↦ relu(x · a_i · c_i + b_i)`` with ``a_i · c_i = (U_i V_i)ᵀ``;
        the output layer is ``h · w2 + b2``. Member ``k > 0`` sees the features and class ids in a
        random order. Members go through the transformer together, ``_PASS_ROWS // rows`` (at least
        one) at a time."""
        (n, d), num_classes = x.shape, len(self.classes_)
        orders = [(np.arange(d), np.arange(num_classes))]
        orders += [(rng.permutation(d), rng.permutation(num_classes)) for _ in range(count - 1)]
        scale = math.sqrt(model.max_features / d)
        device = next(model.parameters()).device
        per_pass = max(1, _PASS_ROWS // max(n, 1))
        members = []
        for start in range(0, len(orders), per_pass):
            batch = orders[start:start + per_pass]
            padded = np.zeros((len(batch), n, model.max_features), dtype=np.float32)
            for b, (feature_order, _) in enumerate(batch):
                padded[b, :, :d] = x[:, feature_order] * scale
            labels = np.stack([label_order[codes] for _, label_order in batch])
            params = model(torch.from_numpy(padded).to(device), torch.from_numpy(labels).to(device))
            members += [self._arrays(model, params, b, scale, *order) for b, order in enumerate(batch)]
        return members

    @torch.no_grad()
    def _hinge_members(self, model: InvariantMotherNet, x: np.ndarray, codes: np.ndarray,
                       rng: np.random.Generator, count: int) -> list:
        """The invariant model's children as :data:`HINGE_LAYERS` arrays. Its children do not
        depend on the order of features or classes, so members differ by their rows instead:
        member ``k > 0`` reads a stratified random 80 % of the context rows."""
        device = next(model.parameters()).device
        members = []
        for k in range(count):
            rows = np.arange(len(codes)) if k == 0 else _stratified(codes, 0.8, rng)
            inputs = torch.from_numpy(x[rows]).float()[None].to(device)
            labels = torch.from_numpy(codes[rows])[None].to(device)
            params = model(inputs, labels, num_classes=len(self.classes_))
            p = {name: value[0].double().cpu().numpy() for name, value in params.items()}
            members.append((p["hinge_a"], p["hinge_b"], p["w1"].reshape(-1, p["w1"].shape[-1]), p["b1"],
                            np.ascontiguousarray(p["w2"].T), p["b2"]))
        return members

    @staticmethod
    def _arrays(model: MotherNet, params: dict, index: int, scale: float, feature_order: np.ndarray,
                label_order: np.ndarray) -> tuple:
        """Member ``index`` of a generated batch as the :data:`LAYERS` arrays, in the original
        feature and class order."""
        first, _, second, _, last = model.child_module(params, index).layers
        numpy = lambda t: t.double().cpu().numpy()  # noqa: E731
        a0 = numpy(first.v.T)[:len(feature_order)] * scale
        a0 = a0[np.argsort(feature_order)]  # back to the original column order
        w2 = numpy(last.weight)[label_order]  # row c: the slot class c was given
        return (np.ascontiguousarray(a0), numpy(first.u.T), numpy(first.bias), numpy(second.v.T), numpy(second.u.T),
                numpy(second.bias), np.ascontiguousarray(w2.T), numpy(last.bias)[label_order])

    @staticmethod
    def _child_module(members) -> nn.Module:
        def linear(a: np.ndarray, b: np.ndarray | None = None) -> nn.Linear:
            layer = nn.Linear(*a.shape, bias=b is not None)
            layer.weight.data = torch.from_numpy(a.T.copy()).float()
            if b is not None:
                layer.bias.data = torch.from_numpy(b).float()
            return layer

        def hidden(a: np.ndarray, c: np.ndarray | None, b: np.ndarray) -> list[nn.Module]:
            return ([linear(a, b)] if c is None else [linear(a), linear(c, b)]) + [nn.ReLU()]

        def child(a0, c0, b0, a1, c1, b1, w2, b2) -> nn.Sequential:
            return nn.Sequential(*hidden(a0, c0, b0), *hidden(a1, c1, b1), linear(w2, b2), nn.LogSoftmax(-1))

        def hinge_child(hinge_a, hinge_b, w1, b1, w2, b2) -> nn.Sequential:
            tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
            return nn.Sequential(HingeFeatures(tensor(hinge_a), tensor(hinge_b)), linear(w1, b1), nn.ReLU(),
                                 linear(w2, b2), nn.LogSoftmax(-1))

        nets = [hinge_child(*m) if len(m) == len(HINGE_LAYERS) else child(*m) for m in members]
        return nets[0] if len(nets) == 1 else _Ensemble(nets)

    def _rows(self, X) -> np.ndarray:
        """Rows to predict, checked. The common case — a float64 NumPy array of the fitted width,
        from an estimator fitted without feature names, with no infinities — passes on a few
        attribute reads; anything else goes through scikit-learn's checks, which also raise the
        errors. (Those checks cost 0.06 ms on warm caches and about 0.3 ms on cold ones, right after
        a fit: most of a small table's prediction.) After a fit on a DataFrame, rows go through its
        encoder."""
        if getattr(self, "encoder_", None) is not None:  # getattr: classifiers pickled before encoder_
            return self._encoded(X)
        if (type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2 and len(X) > 0
                and X.shape[1] == self.n_features_in_ and not hasattr(self, "feature_names_in_")
                and (np.isfinite(X.sum()) or not np.isinf(X).any())):  # NaN is missing, inf refused
            return X
        return self._validate(X)

    def _encoded(self, X) -> np.ndarray:
        """Rows encoded by the fitted ``encoder_``: a DataFrame's columns matched by name, an
        array's taken in the training order (with scikit-learn's warning)."""
        if not _is_frame(X):
            X = np.asarray(X)
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has shape {X.shape}, but MotherNetClassifier was fitted on a DataFrame with "
                                 f"{self.n_features_in_} columns")
            warnings.warn("X does not have valid feature names, but MotherNetClassifier was fitted with feature "
                          "names; its columns are read in the training order", UserWarning, stacklevel=4)
            X = sys.modules["pandas"].DataFrame(X, columns=self.encoder_.feature_names_in_)
        return check_array(self.encoder_.transform(X), dtype=np.float64, ensure_all_finite="allow-nan")

    def preprocess(self, X) -> np.ndarray:
        """The preprocessed features ``child_`` reads, ``(n, d')``."""
        check_is_fitted(self)
        return _preprocess(self.arrays_, self._rows(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))`` from the child alone."""
        check_is_fitted(self)
        return predict_numpy(self.arrays_, self._rows(X))

    def predict(self, X) -> np.ndarray:
        """Predicted class labels ``(n,)``."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[proba.argmax(1)]

    def export(self) -> dict:
        """Everything prediction needs, as NumPy arrays (and a fitted QuantileTransformer when
        ``quantile=True``), for :func:`predict_numpy` without torch. After a fit on a DataFrame,
        :func:`predict_numpy` reads the encoded rows, ``encoder_.transform(frame)``."""
        check_is_fitted(self)
        return {**self.arrays_, "classes": self.classes_}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
