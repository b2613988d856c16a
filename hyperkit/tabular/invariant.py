"""A MotherNet invariant to the order of features and of classes, with no cap on either.

The paper's MotherNet (:class:`~hyperkit.tabular.model.MotherNet`) reads a table padded to a fixed
width and emits every child weight from one pooled vector, so a child depends on which column sits
in which slot (one member's ROC AUC moves by up to 0.12 between column orders of one table) and a
table may have at most ``max_features`` features and ``max_classes`` classes. Here the child's
weights are generated the way hyperkit generates any weight, from row and column descriptors, but
the descriptors come from the data:

- each **feature** ``j`` is a token ``t_j``, built from how its values are distributed in each
  class (soft histograms, class means and spreads) and from how it relates to the other features
  (their correlations overall and within each class, as attention biases);
- each **class** ``c`` is a token ``u_c``; each (feature, class) pair a cell ``z_jc``; a few blocks
  pass messages between the three (attention over features, attention over classes, an MLP on each
  cell), with no positions anywhere, so permuting features or classes permutes the tokens;
- the child is ``x → [x_j, relu(a_jk x_j + b_jk)]_jk → relu(· W1 + b1) → · W2 + b2``: each
  feature's hinges ``(a_j, b_j)`` and its block of ``W1`` come from ``t_j``, each class's row of
  ``W2`` and its bias from ``u_c``, ``b1`` from the pooled table.

A feature permutation therefore permutes the child's per-feature blocks and leaves its function
unchanged; a class permutation permutes its outputs. One member is as good as any ensemble over
orders, and a table may have any number of features and classes.

    rows ─► per-(feature, class) statistics ─► cells z_jc ─┬─► feature tokens t_j ─► hinges, W1 blocks
                   pairwise correlations ─► attention bias ┘─► class tokens u_c  ─► W2 rows, b2

Example:
    >>> model = InvariantMotherNet(embedding_size=16, num_blocks=1, num_heads=2, child_hidden=8)
    >>> x, y = torch.randn(2, 30, 5), torch.randint(0, 3, (2, 30))
    >>> model.logits(x[:, :20], y[:, :20], x[:, 20:], num_classes=3).shape
    torch.Size([2, 10, 3])
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["HingeFeatures", "InvariantMotherNet", "child_logits"]


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` where ``mask`` (broadcastable, 0/1) is set."""
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1)


def _masked_max(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    return x.masked_fill(mask == 0, -1e4).amax(dim) * (mask.sum(dim) > 0)


# Ridge penalties (on standardised features, per row) of the linear fits that describe each
# (feature, class) cell. Class-conditional histograms and moments are marginal: they cannot tell a
# feature's own effect from that of the features it correlates with, which a linear model's
# coefficients do (without them one child trailed the paper's model by 0.12 ROC AUC on a
# labour-participation table whose features are correlated).
RIDGE = (0.01, 0.1, 1.0)


def _ridge(x: torch.Tensor, onehot: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Coefficients of ridge regressions of each class indicator on all features, one set per
    penalty in :data:`RIDGE`: ``β = (XᵀX/n + λI)⁻¹ XᵀY/n`` with ``X`` and ``Y`` centred. Padding
    columns (all 0) get 0.

    Shapes:
        x ``(B, n, D)``, onehot ``(B, n, C)``, counts ``(B, C)`` → ``(B, D, C, len(RIDGE))``.
    """
    n, D = x.shape[1], x.shape[2]
    xc = x - x.mean(1, keepdim=True)
    yc = onehot - counts[:, None] / n
    gram, cross = xc.transpose(1, 2) @ xc / n, xc.transpose(1, 2) @ yc / n  # (B, D, D), (B, D, C)
    eye = torch.eye(D, dtype=x.dtype, device=x.device)
    return torch.stack([torch.linalg.solve(gram + penalty * eye, cross) for penalty in RIDGE], -1)


class _Attention(nn.Module):
    """Multi-head self-attention over a set with a key mask and an optional additive score bias.

    Shapes:
        x ``(B, S, E)``, mask ``(B, S)`` bool, bias ``(B, heads, S, S)`` → ``(B, S, E)``.
    """

    def __init__(self, size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(size, 3 * size)
        self.out = nn.Linear(size, size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        B, S, E = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.num_heads, E // self.num_heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(E // self.num_heads)
        if bias is not None:
            scores = scores + bias
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        out = scores.softmax(-1) @ v  # every set has at least one member, so no row is all -inf
        return self.out(out.transpose(1, 2).reshape(B, S, E))


def _mlp(size_in: int, size: int, size_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(size_in), nn.Linear(size_in, size), nn.GELU(), nn.Linear(size, size_out)
    )


class _Block(nn.Module):
    """One round of messages between cells ``z (B, D, C, E)``, feature tokens ``t (B, D, E)`` and
    class tokens ``u (B, C, E)``; every update is a sum or attention over a set."""

    def __init__(self, size: int, num_heads: int):
        super().__init__()
        self.cells_to_features = nn.Linear(2 * size, size)
        self.cells_to_classes = nn.Linear(2 * size, size)
        self.norm_t, self.norm_u = nn.LayerNorm(size), nn.LayerNorm(size)
        self.attend_features = _Attention(size, num_heads)
        self.attend_classes = _Attention(size, num_heads)
        self.ffn_t, self.ffn_u = _mlp(size, 2 * size, size), _mlp(size, 2 * size, size)
        # The cell update reads its cell, its feature's token and its class's token; three
        # projections summed instead of one on their concatenation: the (B, D, C, 3E) tensor and
        # its norm were a fifth of a training step.
        self.norm_z = nn.LayerNorm(size)
        self.cell_z, self.cell_t, self.cell_u = (nn.Linear(size, 2 * size) for _ in range(3))
        self.cell_out = nn.Linear(2 * size, size)

    def forward(self, z, t, u, features, classes, bias):
        fm, cm = features[:, :, None, None].float(), classes[:, None, :, None].float()
        t = t + self.cells_to_features(torch.cat([_masked_mean(z, cm, 2), _masked_max(z, cm, 2)], -1))
        t = t + self.attend_features(self.norm_t(t), features, bias)
        t = t + self.ffn_t(t)
        u = u + self.cells_to_classes(torch.cat([_masked_mean(z, fm, 1), _masked_max(z, fm, 1)], -1))
        u = u + self.attend_classes(self.norm_u(u), classes)
        u = u + self.ffn_u(u)
        hidden = (
            self.cell_z(self.norm_z(z))
            + self.cell_t(self.norm_t(t))[:, :, None]
            + self.cell_u(self.norm_u(u))[:, None]
        )
        return z + self.cell_out(F.gelu(hidden)), t, u


def child_logits(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Run generated children on their rows.

    The child is ``φ_jk = [x_j, relu(a_jk x_j + b_jk)]``, ``h = relu(Σ_jk φ_jk W1_jk + b1)``,
    ``logits = h W2ᵀ + b2``.

    Shapes:
        params: ``hinge_a, hinge_b (B, D, K)``, ``w1 (B, D, K + 1, H)``, ``b1 (B, H)``, ``w2 (B, C,
        H)``, ``b2 (B, C)``; x ``(B, m, D)`` → logits ``(B, m, C)``.
    """
    hinges = torch.relu(x[..., None] * params["hinge_a"][:, None] + params["hinge_b"][:, None])
    phi = torch.cat([x[..., None], hinges], -1).flatten(2)  # (B, m, D·(K+1))
    h = torch.relu(phi @ params["w1"].flatten(1, 2) + params["b1"][:, None])
    return h @ params["w2"].transpose(1, 2) + params["b2"][:, None]


class HingeFeatures(nn.Module):
    """The child's per-feature expansion ``φ_j = [x_j, relu(a_jk x_j + b_jk) for k < K]``.

    Args:
        hinge_a: slopes ``(d, K)``.
        hinge_b: offsets ``(d, K)``.

    Shapes:
        input ``(n, d)`` → ``(n, d·(K + 1))``, feature ``j``'s values at ``j·(K+1) … j·(K+1) + K``.

    Example:
        >>> expand = HingeFeatures(torch.ones(2, 1), torch.zeros(2, 1))
        >>> expand(torch.tensor([[-1.0, 2.0]])).detach()  # slopes and offsets are Parameters
        tensor([[-1.,  0.,  2.,  2.]])
    """

    def __init__(self, hinge_a: torch.Tensor, hinge_b: torch.Tensor):
        super().__init__()
        self.hinge_a = nn.Parameter(hinge_a)
        self.hinge_b = nn.Parameter(hinge_b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hinges = torch.relu(x[..., None] * self.hinge_a + self.hinge_b)
        return torch.cat([x[..., None], hinges], -1).flatten(-2)


class InvariantMotherNet(nn.Module):
    """Hypernetwork for tabular classification whose child is generated per feature and per class.

    Args:
        embedding_size: width of cells and tokens.
        num_blocks: rounds of messages between cells, feature tokens and class tokens.
        num_heads: attention heads (over features, over classes).
        bins: soft-histogram bins per (feature, class), on standardised values in ``[-2.5, 2.5]``.
        hinges: hinge units per feature in the child (``K``); the child also reads each raw value.
        child_hidden: the child's hidden width (``H``).

    Shapes:
        x_train ``(B, n, D)`` standardised (columns ``>= num_features`` ignored), y_train ``(B, n)``
        class ids ``< num_classes``; generated parameters as in :func:`child_logits`; logits for
        x_test ``(B, m, D)``: ``(B, m, C)`` with ``C = num_classes`` (its largest value for a batch).
    """

    # No caps: what the classifier reads to decide on PCA and on refusing many classes.
    max_features = None
    max_classes = None
    # MotherNetClassifier's fine-tuning rate for this model's children: the best of 0.03, 0.1 and
    # 0.3 (30 steps) on the benchmark's tuning half (docs/mothernet.md).
    fine_tune_lr = 0.1

    def __init__(
        self,
        embedding_size: int = 64,
        num_blocks: int = 3,
        num_heads: int = 4,
        bins: int = 16,
        hinges: int = 4,
        child_hidden: int = 64,
    ):
        super().__init__()
        if embedding_size % num_heads:
            raise ValueError(
                f"embedding_size ({embedding_size}) must be divisible by num_heads ({num_heads})"
            )
        E, K, H = embedding_size, hinges, child_hidden
        self.hinges, self.child_hidden = K, H
        self.register_buffer("centres", torch.linspace(-2.5, 2.5, bins), persistent=False)
        self.cell_in = nn.Linear(2 * bins + 4 + len(RIDGE), E)
        self.feature_in = nn.Linear(bins + 3, E)
        self.class_in = nn.Linear(2, E)
        self.pair_bias = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Linear(16, num_heads))
        self.blocks = nn.ModuleList(_Block(E, num_heads) for _ in range(num_blocks))
        self.table = _mlp(2 * E + 3, 2 * E, E)
        self.norm_t, self.norm_u = nn.LayerNorm(E), nn.LayerNorm(E)
        self.hinge_out = nn.Linear(E, 2 * K)
        self.w1_out = nn.Linear(E, (K + 1) * H)
        self.b1_out = nn.Linear(E, H)
        self.w2_out = nn.Linear(E, H + 1)
        self._init_heads()

    def _init_heads(self) -> None:
        """Start the child like a randomly initialised one: hinges with slopes ±1 and knots spread
        over ``[-1.5, 1.5]``, layers whose outputs have unit scale (see :meth:`forward`)."""
        K = self.hinges
        for head in (self.hinge_out, self.w1_out, self.b1_out, self.w2_out):
            nn.init.normal_(head.weight, std=0.1 / math.sqrt(head.in_features))
        with torch.no_grad():
            slopes = torch.where(torch.arange(K) % 2 == 0, 1.0, -1.0)
            knots = torch.linspace(-1.5, 1.5, K)
            self.hinge_out.bias.copy_(torch.cat([slopes, -slopes * knots]))
            self.w1_out.bias.normal_()
            self.b1_out.bias.zero_()
            self.w2_out.bias.normal_()

    def _statistics(self, x, y, features, classes):
        """Cells from class-conditional soft histograms and moments; feature tokens from marginal
        ones; pairwise correlations (overall and within classes) for the attention bias."""
        fmask = features.to(x.dtype)
        onehot = F.one_hot(y, classes.shape[1]).to(x.dtype)  # (B, n, C)
        counts = onehot.sum(1)  # (B, C)
        per_class = onehot / counts.clamp_min(1)[:, None]
        width = self.centres[1] - self.centres[0]
        soft = (-0.5 * ((x.clamp(-3.5, 3.5)[..., None] - self.centres) / width) ** 2).exp()
        soft = soft / soft.sum(-1, keepdim=True)  # (B, n, D, bins)
        marginal = soft.mean(1)  # (B, D, bins)
        conditional = torch.einsum("bnc,bndk->bdck", per_class, soft)
        mean = torch.einsum("bnc,bnd->bdc", per_class, x)
        spread = (torch.einsum("bnc,bnd->bdc", per_class, x * x) - mean**2).clamp_min(0).sqrt()
        fraction = (counts / counts.sum(1, keepdim=True))[:, None, :, None].expand_as(mean[..., None])
        cells = torch.cat(
            [
                conditional,
                conditional - marginal[:, :, None],
                mean[..., None],
                spread[..., None],
                fraction,
                (counts[:, None, :, None] > 0).expand_as(fraction).to(x.dtype),
                _ridge(x, onehot, counts),
            ],
            -1,
        )
        column_mean, column_std = x.mean(1), x.std(1, unbiased=False)
        tokens = torch.cat(
            [
                marginal,
                column_mean[..., None],
                column_std[..., None],
                (x == 0).to(x.dtype).mean(1)[..., None],
            ],
            -1,
        )
        n = x.shape[1]
        centred = (x - column_mean[:, None]) / column_std.clamp_min(1e-6)[:, None]
        correlation = centred.transpose(1, 2) @ centred / n  # (B, D, D)
        # Within-class correlation of the standardised columns (not re-standardised per class:
        # cheaper, and its difference across classes still shows interactions such as XOR).
        within = torch.einsum("bnc,bnj,bnk->bcjk", per_class, centred, centred)
        present = (counts > 0)[:, :, None, None].to(x.dtype)
        within_mean = (within * present).sum(1) / present.sum(1).clamp_min(1)
        absent = present == 0
        spread_within = within.masked_fill(absent, -1e4).amax(1) - within.masked_fill(absent, 1e4).amin(1)
        pairs = torch.stack([correlation, correlation.abs(), within_mean, spread_within], -1)
        pairs = pairs * (fmask[:, :, None, None] * fmask[:, None, :, None])
        return cells, tokens, counts, pairs

    def forward(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        num_features: torch.Tensor | None = None,
        num_classes: torch.Tensor | int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Generated child parameters (see :func:`child_logits`) for each table of the batch.

        Args:
            x_train: standardised training rows ``(B, n, D)``.
            y_train: class ids ``(B, n)``.
            num_features: real features of each table ``(B,)``; default ``D`` for all.
            num_classes: classes of each table, ``(B,)`` or one int; default ``y_train.max() + 1``.
        """
        B, n, D = x_train.shape
        device = x_train.device
        num_features = torch.full((B,), D, device=device) if num_features is None else num_features.to(device)
        if num_classes is None:
            num_classes = int(y_train.max()) + 1
        num_classes = torch.as_tensor(num_classes, device=device).expand(B)
        C = int(num_classes.max())
        features = torch.arange(D, device=device) < num_features[:, None]  # (B, D)
        classes = torch.arange(C, device=device) < num_classes[:, None]  # (B, C)
        x = x_train * features[:, None]
        cells, tokens, counts, pairs = self._statistics(x, y_train, features, classes)
        z = self.cell_in(cells)
        t = self.feature_in(tokens)
        u = self.class_in(torch.stack([counts / n, (counts + 1).log()], -1))
        bias = self.pair_bias(pairs).permute(0, 3, 1, 2)  # (B, heads, D, D)
        for block in self.blocks:
            z, t, u = block(z, t, u, features, classes, bias)
        fm, cm = features[..., None].float(), classes[..., None].float()
        sizes = torch.stack(
            [
                math.log(n) * torch.ones(B, device=device),
                num_features.float().log(),
                num_classes.float().log(),
            ],
            -1,
        )
        table = self.table(torch.cat([_masked_mean(t, fm, 1), _masked_mean(u, cm, 1), sizes], -1))
        return self._child(self.norm_t(t), self.norm_u(u), table, features, classes, num_features)

    def _child(self, t, u, table, features, classes, num_features) -> dict[str, torch.Tensor]:
        """The child's weights from the tokens. ``W1`` sums over ``d·(K+1)`` inputs and ``W2`` over
        ``H``; dividing by the square roots keeps their outputs at unit scale for any ``d``."""
        B, D, _ = t.shape
        K, H = self.hinges, self.child_hidden
        hinge_a, hinge_b = self.hinge_out(t).chunk(2, -1)
        fan_in = (num_features.float() * (K + 1)).sqrt()[:, None, None, None]
        w1 = self.w1_out(t).view(B, D, K + 1, H) * features[..., None, None] / fan_in
        w2 = self.w2_out(u) * classes[..., None]
        return {
            "hinge_a": hinge_a,
            "hinge_b": hinge_b,
            "w1": w1,
            "b1": self.b1_out(table),
            "w2": w2[..., :H] / math.sqrt(H),
            "b2": w2[..., H],
        }

    def logits(
        self,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_test: torch.Tensor,
        num_features: torch.Tensor | None = None,
        num_classes: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Generate a child per table from its training rows and classify its test rows."""
        params = self(x_train, y_train, num_features, num_classes)
        if num_features is not None:  # padding gets no weight; zero it too, so a NaN there cannot leak
            real = torch.arange(x_test.shape[-1], device=x_test.device) < num_features.to(x_test.device)[:, None]
            x_test = x_test * real[:, None]
        return child_logits(params, x_test)
