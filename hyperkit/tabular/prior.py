"""Synthetic classification tasks for meta-training tabular in-context learners (MotherNet, TabPFN).

Every training step of MotherNet reads a batch of freshly sampled small classification tables. A
:class:`Prior` draws them from a configurable mixture of three families:

- ``mlp`` — a random structural causal model in the style of TabPFN's MLP prior (Hollmann et al.,
  2023): independent causes go through a random MLP (random depth, width, activation, sparse
  weights, Gaussian noise at every unit); the features are a random subset of the hidden units
  and the label thresholds a unit of the last layer, so features are causes, effects or
  siblings of the label.
- ``gp`` — features uniform in a box, the label latent a Gaussian-process sample with an RBF kernel
  (random Fourier features, Rahimi & Recht 2007) and a random length scale.
- ``boolean`` — binary features, the label an OR of random conjunctions of literals with label noise.
- ``tree`` — the label latent a sum of a few random axis-aligned decision trees: thresholds, steps
  and interactions, the structure on which gradient-boosted trees beat linear models.

A task's continuous label latent becomes ``C`` classes by thresholds at random quantiles (classes
shuffled): ordered bands of one direction. Many real multi-class tables (digits, species) are
unordered regions instead, so a share of the multi-class tasks (``argmax_fraction``) draws ``C``
latents and labels each row by the largest (:func:`argmax_classes`). Some columns are made
categorical (quantile bins with shuffled integer codes). Optional transforms teach what real
tables hold and probes test: columns replaced by irrelevant ones (a row-shuffled copy of a column
keeps its marginal and loses every relation), redundant noisy copies of columns, and skewed or
heavy-tailed monotone transforms of columns. Sampling is NumPy on the CPU; a training recipe
measures its share of a step.

Example:
    >>> prior = Prior(max_features=20, max_classes=5)
    >>> batch = prior.sample(batch_size=4, num_rows=64, rng=np.random.default_rng(0))
    >>> batch.x.shape, batch.y.shape, int(batch.num_classes.max()) <= 5
    ((4, 64, 20), (4, 64), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hyperkit.registry import Registry

__all__ = ["Prior", "TaskBatch", "argmax_classes", "boolean_task", "gp_task", "tree_task", "mlp_task", "to_classes"]

_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, 0.0),
    "leaky_relu": lambda h: np.where(h > 0, h, 0.1 * h),
    "sin": np.sin,
    "abs": np.abs,
    "identity": lambda h: h,
}


@dataclass
class TaskBatch:
    """A batch of classification tables of equal row count, features zero-padded to ``max_features``.

    Args:
        x: features; columns ``>= num_features[b]`` are zero.
        y: each row's output slot: its class id ``0 .. num_classes[b] - 1``, or, in a table whose
            classes were given random slots (``Prior.slot_fraction``), one of ``slots[b]``.
        num_features: real feature count of each table.
        num_classes: class count of each table.
        split: rows ``[:split]`` are the training rows, the rest the test rows.
        slots: the output slots each table's classes occupy (the others are masked in the loss).

    Shapes:
        x ``(B, N, F)`` float32, y ``(B, N)`` int64, num_features and num_classes ``(B,)`` int64,
        slots ``(B, max_classes)`` bool.
    """

    x: np.ndarray
    y: np.ndarray
    num_features: np.ndarray
    num_classes: np.ndarray
    split: int
    slots: np.ndarray


def to_classes(latent: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Cut a latent at ``num_classes - 1`` random quantiles; shuffle the class ids.

    Quantile levels are drawn from a Dirichlet so class sizes vary but no class is empty in
    expectation. Example: ``to_classes(np.arange(10.), 2, rng)`` gives two contiguous groups.
    """
    levels = np.cumsum(rng.dirichlet(np.full(num_classes, 2.0)))[:-1]
    cuts = np.quantile(latent, levels)
    classes = np.searchsorted(cuts, latent)
    return rng.permutation(num_classes)[classes]


def argmax_classes(latents: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Label each row by its largest latent (each standardised, plus a random offset so that class
    sizes vary): unordered regions rather than bands. Classes no row falls in are dropped.

    Shapes:
        latents ``(num_rows, C)`` → class ids ``(num_rows,)`` in ``0 .. k - 1``, and ``k <= C``.

    Example: ``argmax_classes(np.eye(3), rng)`` gives each row a class of its own unless the
    offsets (std 0.5) outweigh the standardised margin (2.1).
    """
    std = latents.std(0)
    z = (latents - latents.mean(0)) / np.where(std > 1e-12, std, 1.0)
    present, classes = np.unique((z + rng.normal(0.0, 0.5, latents.shape[1])).argmax(1), return_inverse=True)
    return rng.permutation(len(present))[classes], len(present)


def mlp_task(num_rows: int, num_features: int, rng: np.random.Generator,
             noise: tuple[float, float] = (0.003, 0.1), num_latents: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Features and label latent(s) from a random MLP structural causal model.

    With ``num_latents > 1`` the latents are random sparse combinations of the last layer's units
    (for :func:`argmax_classes`); with one, a unit of the last layer that is not a feature.

    Returns:
        ``x (num_rows, num_features)``, ``latent (num_rows,)``, or ``(num_rows, num_latents)``.
    """
    depth = int(rng.integers(1, 5))
    # Narrow layers and few causes: with wide layers, a handful of randomly chosen units is
    # nearly unrelated to the label unit (1-NN accuracy 0.56 on 5-feature binary tables; 0.78
    # with these ranges), and unlearnable tables only teach the class-frequency baseline.
    narrowest = int(np.ceil((num_features + 1) / depth)) + 1
    width = int(rng.integers(narrowest, max(narrowest + 1, 2 * num_features + 4)))
    activation = _ACTIVATIONS[rng.choice(list(_ACTIVATIONS))]
    sigma = np.exp(rng.uniform(np.log(noise[0]), np.log(noise[1])))
    num_causes = int(rng.integers(1, min(width, 8) + 1))
    h = rng.normal(size=(num_rows, num_causes)) if rng.random() < 0.7 else rng.uniform(-1.7, 1.7, (num_rows, num_causes))
    units = []
    for _ in range(depth):
        weight = rng.normal(size=(h.shape[1], width)) / np.sqrt(h.shape[1])
        weight *= rng.random(weight.shape) < rng.uniform(0.3, 1.0)  # sparse causal links
        h = activation(h @ weight + rng.normal(size=width) * 0.5) + sigma * rng.normal(size=(num_rows, width))
        units.append(h)
    hidden = np.concatenate(units, axis=1)
    if num_latents > 1:
        mixing = rng.normal(size=(width, num_latents)) * (rng.random((width, num_latents)) < 0.5)
        chosen = rng.choice(hidden.shape[1], size=num_features, replace=False)
        return hidden[:, chosen], h @ mixing
    target = hidden.shape[1] - width + int(rng.integers(width))  # a unit of the last layer
    candidates = np.delete(np.arange(hidden.shape[1]), target)
    chosen = rng.choice(candidates, size=num_features, replace=False)
    return hidden[:, chosen], hidden[:, target]


def gp_task(num_rows: int, num_features: int, rng: np.random.Generator,
            num_frequencies: int = 128, num_latents: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Uniform features and Gaussian-process (RBF kernel) label latent(s): ``(num_rows,)``, or
    ``(num_rows, num_latents)`` independent draws with one length scale."""
    x = rng.uniform(-1.0, 1.0, (num_rows, num_features))
    relevant = rng.random(num_features) < rng.uniform(0.3, 1.0)
    relevant[rng.integers(num_features)] = True
    length_scale = np.exp(rng.uniform(np.log(0.2), np.log(2.0))) * np.sqrt(relevant.sum())
    frequencies = rng.normal(size=(int(relevant.sum()), num_frequencies)) / length_scale
    phases = rng.uniform(0, 2 * np.pi, num_frequencies)
    shape = (num_frequencies,) if num_latents == 1 else (num_frequencies, num_latents)
    latent = np.cos(x[:, relevant] @ frequencies + phases) @ rng.normal(size=shape)
    return x, latent + 0.05 * latent.std(0) * rng.normal(size=latent.shape)


def boolean_task(num_rows: int, num_features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Binary features; the label is an OR of random conjunctions, with a few labels flipped.

    The returned latent is already the binary label (0/1)."""
    x = (rng.random((num_rows, num_features)) < rng.uniform(0.2, 0.8, num_features)).astype(np.float64)
    label = np.zeros(num_rows, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        literals = rng.choice(num_features, size=min(num_features, int(rng.integers(1, 4))), replace=False)
        negated = rng.random(len(literals)) < 0.5
        label |= np.all(x[:, literals].astype(bool) != negated, axis=1)
    flip = rng.random(num_rows) < rng.uniform(0.0, 0.1)
    return x, (label ^ flip).astype(np.float64)


def tree_task(num_rows: int, num_features: int, rng: np.random.Generator,
              num_latents: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Features and label latent(s) from a sum of 1–4 random decision trees of depth 1–4.

    Each tree splits on random features at random empirical quantiles; its leaves hold random
    values. Features are Gaussian, uniform or a Gaussian copula with random correlations.

    Returns:
        ``x (num_rows, num_features)``, ``latent (num_rows,)``, or ``(num_rows, num_latents)``.
    """
    kind = rng.integers(3)
    if kind == 0:
        x = rng.normal(size=(num_rows, num_features))
    elif kind == 1:
        x = rng.uniform(-1.0, 1.0, (num_rows, num_features))
    else:
        mixing = rng.normal(size=(num_features, num_features)) * (rng.random((num_features, num_features)) < 0.3)
        x = rng.normal(size=(num_rows, num_features)) @ (np.eye(num_features) + mixing)
    relevant = rng.choice(num_features, size=int(rng.integers(1, min(num_features, 6) + 1)), replace=False)
    latent = np.zeros((num_rows, num_latents))
    for _ in range(int(rng.integers(1, 5))):
        depth = int(rng.integers(1, 5))
        leaf = np.zeros(num_rows, dtype=np.int64)
        for _ in range(depth):  # an oblivious tree: one split per level, shared by the level's nodes
            column = x[:, rng.choice(relevant)]
            leaf = 2 * leaf + (column > np.quantile(column, rng.uniform(0.1, 0.9)))
        latent += rng.normal(size=(2 ** depth, num_latents))[leaf]
    latent += rng.uniform(0.0, 0.3) * latent.std(0) * rng.normal(size=latent.shape)
    return x, latent[:, 0] if num_latents == 1 else latent


def linear_task(num_rows: int, num_features: int, rng: np.random.Generator,
                num_latents: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mixed columns and a sparse linear label latent: the near-linear tables that surveys,
    clinical and economic data often are.

    Columns are Gaussian (some correlated), binary with a random rate, or groups of one-hot
    indicator columns (a categorical variable as a user's one-hot encoder leaves it). The latent
    is a sparse combination with heavy-tailed (Laplace) coefficients.

    Returns:
        ``x (num_rows, num_features)``, ``latent (num_rows,)``, or ``(num_rows, num_latents)``.
    """
    x = rng.normal(size=(num_rows, num_features))
    if num_features > 1 and rng.random() < 0.5:
        mixing = rng.normal(size=(num_features, num_features)) * (rng.random((num_features, num_features)) < 0.2)
        x = x @ (np.eye(num_features) + 0.5 * mixing)
    kinds = rng.choice(3, size=num_features, p=rng.dirichlet(np.ones(3)))
    column = 0
    while column < num_features:
        if kinds[column] == 1:
            x[:, column] = rng.random(num_rows) < rng.uniform(0.05, 0.95)
        elif kinds[column] == 2:
            levels = min(int(rng.integers(2, 8)), num_features - column)
            codes = rng.choice(levels, size=num_rows, p=rng.dirichlet(np.ones(levels)))
            x[:, column:column + levels] = np.eye(levels)[codes]
            column += levels
            continue
        column += 1
    relevant = rng.random(num_features) < rng.uniform(0.1, 1.0)
    relevant[rng.integers(num_features)] = True
    coefficients = rng.laplace(size=(num_features, num_latents)) * relevant[:, None]
    latent = x @ coefficients
    return x, latent[:, 0] if num_latents == 1 else latent


def _make_irrelevant(x: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Replace a share of the columns (never all) by row-shuffled copies of random columns."""
    d = x.shape[1]
    count = min(d - 1, int(round(share * d)))
    out = x.copy()
    for column in rng.choice(d, size=count, replace=False):
        out[:, column] = rng.permutation(x[:, rng.integers(d)])
    return out


def _make_redundant(x: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Replace a share of the columns by noisy rescaled copies of other columns."""
    d = x.shape[1]
    out = x.copy()
    for column in np.flatnonzero(rng.random(d) < share):
        source = x[:, rng.integers(d)]
        noise = rng.uniform(0.0, 0.5) * source.std() * rng.normal(size=len(source))
        out[:, column] = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0) * source + noise
    return out


def _make_skewed(x: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Apply random monotone transforms to a share of the columns: exponential (log-normal
    like), powers, and heavy-tailed ones (the inverse of a Student-t's tail), with a random
    offset and scale so no column keeps unit scale."""
    out = x.copy()
    for column in np.flatnonzero(rng.random(x.shape[1]) < share):
        v = x[:, column]
        std = v.std()
        if std < 1e-12 or len(np.unique(v)) < 3:
            continue
        v = (v - v.mean()) / std
        kind = rng.integers(4)
        if kind == 0:
            v = np.exp(rng.uniform(0.5, 2.0) * v)
        elif kind == 1:
            v = np.sign(v) * np.abs(v) ** rng.uniform(2.0, 4.0)
        elif kind == 2:
            v = np.sinh(rng.uniform(1.0, 3.0) * v)
        else:
            v = np.exp(v) ** rng.choice([1.0, -1.0])
        out[:, column] = v * np.exp(rng.uniform(-3, 3)) + rng.normal() * np.exp(rng.uniform(-3, 3))
    return out


TASK_FAMILIES = Registry("prior family")
for _name, _task in {"mlp": mlp_task, "gp": gp_task, "boolean": boolean_task, "tree": tree_task,
                     "linear": linear_task}.items():
    TASK_FAMILIES.register(_task, name=_name)


def register_task_family(fn=None, *, name: str | None = None):
    """Register a task family that :class:`Prior` ``weights`` can name (as ``mlp`` or ``tree``).

    A family is a function ``(num_rows, num_features, rng, num_latents=1) -> (x, latent)`` with
    ``x`` of shape ``(num_rows, num_features)`` and ``latent`` of shape ``(num_rows,)`` when
    ``num_latents`` is 1, else ``(num_rows, num_latents)``: the prior cuts the latent into classes
    (or labels each row by its largest latent). A config may also name a
    family by its import path (``my_prior.ring_task``) without registering it.

    Example:
        >>> @register_task_family
        ... def ring_doc_example(num_rows, num_features, rng, num_latents=1):
        ...     x = rng.normal(size=(num_rows, num_features))
        ...     radius = np.linalg.norm(x, axis=1)
        ...     return x, radius if num_latents == 1 else x[:, :num_latents] * radius[:, None]
        >>> Prior(weights={"ring_doc_example": 1.0}).sample(2, 32, np.random.default_rng(0)).x.shape
        (2, 32, 100)
        >>> _ = TASK_FAMILIES.unregister("ring_doc_example")
    """
    return TASK_FAMILIES.register(fn, name=name)


def _make_categorical(x: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Replace a random share of the columns by shuffled integer codes of quantile bins."""
    for column in np.flatnonzero(rng.random(x.shape[1]) < fraction):
        bins = int(rng.integers(2, 11))
        cuts = np.quantile(x[:, column], np.linspace(0, 1, bins + 1)[1:-1])
        x[:, column] = rng.permutation(bins)[np.searchsorted(cuts, x[:, column])]
    return x


@dataclass
class Prior:
    """A mixture of task families with random sizes.

    Args:
        max_features: features are padded to this many; a task has 1 .. ``max_features`` (drawn
            log-uniformly, so small tables are common, as in practice).
        max_classes: a task has 2 .. ``max_classes`` classes; ``binary_fraction`` of the
            multi-class-capable tasks are binary, the rest uniform over 3 .. ``max_classes`` (output
            slot ``c`` is only trained by tasks with more than ``c`` classes, so many-class tasks
            must be common).
        weights: sampling weights of the task families: ``mlp``, ``gp``, ``boolean``, ``tree``,
            ``linear``, one
            registered with :func:`register_task_family`, or the import path of one.
        binary_fraction: share of binary tasks among ``mlp`` and ``gp`` tasks.
        argmax_fraction: share of the multi-class ``mlp`` and ``gp`` tasks whose classes are the
            largest of ``C`` latents (unordered regions) instead of bands of one latent.
        categorical_probability: chance that a task has categorical columns at all.
        categorical_fraction: share of columns made categorical in such a task.
        train_fraction: range of the share of rows that are training rows.
        slot_fraction: share of tables whose ``C`` classes take ``C`` random output slots of the
            ``max_classes`` instead of the first ``C``. The classifier puts ``C`` classes in slots
            ``0 .. C - 1``, so slot ``c`` is otherwise trained only by the tables with more than
            ``c`` classes (slot 9: one table in 18 of the default prior); random slots train the
            high slots that ten-class tables need (a fine-tuning option: 0 trains as before).
        irrelevant_probability: chance that a table has a share (uniform in 0 .. 0.9) of its
            columns replaced by irrelevant ones (row-shuffled copies of its columns).
        redundant_probability: chance that a table has up to half its columns replaced by noisy
            rescaled copies of others.
        skew_probability: chance that a table has a share of its columns skewed or heavy-tailed
            by a random monotone transform.
        noise_probability: chance that a table's labels carry little signal: its latent(s) get
            Gaussian noise of a random share (up to 2×) of their spread before they are cut into
            classes, as the labels of real tables often do (a boolean task flips labels instead).
        batch_width: the tables of a batch share a width ``D`` drawn log-uniformly in 1 ..
            ``max_features``; each has between ``ceil(D / 2)`` and ``D`` features, and the arrays
            are ``D`` wide instead of ``max_features`` (for models that read any width: a
            batch of tables of 3 features is then not padded to 100).
    """

    max_features: int = 100
    max_classes: int = 10
    weights: dict = field(default_factory=lambda: {"mlp": 0.7, "gp": 0.2, "boolean": 0.1})
    binary_fraction: float = 0.3
    argmax_fraction: float = 0.5
    categorical_probability: float = 0.2
    categorical_fraction: float = 0.3
    train_fraction: tuple[float, float] = (0.5, 0.9)
    slot_fraction: float = 0.0
    irrelevant_probability: float = 0.0
    redundant_probability: float = 0.0
    skew_probability: float = 0.0
    noise_probability: float = 0.0
    batch_width: bool = False

    def __post_init__(self):
        for name in self.weights:
            try:
                TASK_FAMILIES.get(name)
            except KeyError as err:
                raise ValueError(f"prior weights: {err.args[0]}") from None
        if not self.weights or min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0:
            raise ValueError(f"prior weights must be non-negative numbers for {', '.join(map(repr, TASK_FAMILIES.names()))} "
                             f"with a positive sum; got {self.weights}")
        shares = {"binary_fraction": self.binary_fraction, "argmax_fraction": self.argmax_fraction,
                  "slot_fraction": self.slot_fraction, "irrelevant_probability": self.irrelevant_probability,
                  "redundant_probability": self.redundant_probability, "skew_probability": self.skew_probability,
                  "noise_probability": self.noise_probability}
        if not all(0 <= share <= 1 for share in shares.values()):
            raise ValueError(f"these shares and probabilities must lie in [0, 1]: {shares}")
        if self.max_classes < 2 or self.max_features < 1:
            raise ValueError(f"need max_classes >= 2 and max_features >= 1, got {self.max_classes}, {self.max_features}")

    def _width(self, rng: np.random.Generator) -> int:
        """A feature count drawn log-uniformly in 1 .. ``max_features`` (small tables are common)."""
        return min(max(int(np.exp(rng.uniform(0, np.log(self.max_features + 1)))), 1), self.max_features)

    def _task(self, num_rows: int, num_features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        x, y, num_classes = self._labelled(num_rows, num_features, rng)
        if num_features > 1 and rng.random() < self.irrelevant_probability:
            x = _make_irrelevant(x, rng, rng.uniform(0.0, 0.9))
        if num_features > 1 and rng.random() < self.redundant_probability:
            x = _make_redundant(x, rng, rng.uniform(0.0, 0.5))
        if rng.random() < self.skew_probability:
            x = _make_skewed(x, rng, rng.uniform(0.2, 1.0))
        return x, y, num_classes

    def _labelled(self, num_rows: int, num_features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        names = list(self.weights)
        p = np.array([self.weights[n] for n in names], dtype=float)
        family = names[rng.choice(len(names), p=p / p.sum())]
        # No draw at probability 0: a prior without noise samples the tables it always did.
        noisy = self.noise_probability > 0 and rng.random() < self.noise_probability
        if family == "boolean":
            x, latent = boolean_task(num_rows, num_features, rng)
            if noisy:
                latent = np.where(rng.random(num_rows) < rng.uniform(0.0, 0.3), 1.0 - latent, latent)
            return x, latent.astype(np.int64), 2
        binary = self.max_classes == 2 or rng.random() < self.binary_fraction
        num_classes = 2 if binary else int(rng.integers(3, self.max_classes + 1))
        argmax = not binary and rng.random() < self.argmax_fraction
        task = TASK_FAMILIES.get(family)
        x, latent = task(num_rows, num_features, rng, num_latents=num_classes if argmax else 1)
        if noisy:
            latent = latent + rng.uniform(0.0, 2.0) * latent.std(0) * rng.normal(size=latent.shape)
        if argmax:
            y, present = argmax_classes(latent, rng)
            if present < 2:  # one latent dominates every row: cut that one instead
                argmax, latent = False, latent[:, 0]
            else:
                num_classes = present
        if not argmax:
            y = to_classes(latent, num_classes, rng)
        if rng.random() < self.categorical_probability:
            x = _make_categorical(x, rng, self.categorical_fraction)
        return x, y, num_classes

    def sample(self, batch_size: int, num_rows: int, rng: np.random.Generator) -> TaskBatch:
        """``batch_size`` tables of ``num_rows`` rows (features unscaled, zero-padded)."""
        width = self._width(rng) if self.batch_width else self.max_features
        x = np.zeros((batch_size, num_rows, width), dtype=np.float32)
        y = np.zeros((batch_size, num_rows), dtype=np.int64)
        num_features = np.zeros(batch_size, dtype=np.int64)
        num_classes = np.zeros(batch_size, dtype=np.int64)
        slots = np.zeros((batch_size, self.max_classes), dtype=bool)
        for b in range(batch_size):
            width_b = int(rng.integers((width + 1) // 2, width + 1)) if self.batch_width else self._width(rng)
            features, labels, classes = self._task(num_rows, width_b, rng)
            slot = np.arange(classes)
            if self.slot_fraction and rng.random() < self.slot_fraction:
                slot = rng.choice(self.max_classes, size=classes, replace=False)
            x[b, :, : features.shape[1]] = features
            y[b], num_features[b], num_classes[b] = slot[labels], features.shape[1], classes
            slots[b, slot] = True
        split = int(num_rows * rng.uniform(*self.train_fraction))
        return TaskBatch(x, y, num_features, num_classes, min(max(split, 2), num_rows - 1), slots)
