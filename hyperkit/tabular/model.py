"""MotherNet: a transformer reads a training table and emits, in one forward pass, the weights of a
small MLP that classifies new rows (Müller, Curino & Ramakrishnan, "MotherNet: Fast Training and
Inference via Hyper-Network Transformers", 2023).

In hyperkit it is the generator core specialised to tabular data: the *condition* is an embedding
of the training set, the *target* is the child MLP (:class:`~hyperkit.tabular.child.MotherNetChild`).

    rows (x_i, y_i) ──Linear(x) + Embedding(y)──► transformer (no positions) ──► per-class mean
        ──► [class means ‖ class fractions] = condition ──► Generator (flat | low-rank head) ──► child

Example:
    >>> model = MotherNet(max_features=8, max_classes=3, embedding_size=16, num_layers=1, num_heads=2,
    ...                   feedforward_size=32, decoder_width=32, child_hidden=16, child_rank=4)
    >>> x, y = torch.randn(2, 20, 8), torch.randint(0, 3, (2, 20))
    >>> model.logits(x[:, :15], y[:, :15], x[:, 15:]).shape
    torch.Size([2, 5, 3])
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
from torch.func import functional_call, vmap

from hyperkit.descriptors import describe
from hyperkit.generator import Generator
from hyperkit.tabular.child import MotherNetChild

__all__ = ["MotherNet", "prepare_tables"]


def prepare_tables(x: torch.Tensor, num_features: torch.Tensor, split: int, eps: float = 1e-6,
                   scale: bool = True) -> torch.Tensor:
    """Standardise each table with its training rows' statistics and rescale for padding.

    Each feature gets zero mean and unit variance over rows ``[:split]``; values are clipped to
    ``±10``; NaN becomes 0 (the training mean); columns ``>= num_features`` stay 0. With ``scale``,
    a table with ``d`` real features is scaled by ``sqrt(F / d)`` (``F`` the padded width) so the
    input's total energy does not depend on ``d`` — the square root is gentler than TabPFN's
    ``F / d``, which made inputs of one-feature tables reach ±100.

    Shapes:
        x ``(B, N, F)``, num_features ``(B,)`` → ``(B, N, F)``.
    """
    train = x[:, :split]
    mean = train.nanmean(1, keepdim=True)
    centred = torch.nan_to_num(x - mean)
    std = centred[:, :split].pow(2).mean(1, keepdim=True).sqrt()
    out = (centred / std.clamp_min(eps)).clamp(-10, 10)
    columns = torch.arange(x.shape[-1], device=x.device)
    real = columns < num_features[:, None]
    if not scale:
        return out * real[:, None, :]
    factor = torch.sqrt(x.shape[-1] / num_features.clamp_min(1).float())
    return out * (real * factor[:, None])[:, None, :]


class MotherNet(nn.Module):
    """Transformer hypernetwork for tabular classification.

    Args:
        max_features: tables are padded to this many features.
        max_classes: largest number of classes (output slots of the child).
        embedding_size: width of the row encoder.
        num_layers: transformer layers over the training rows.
        num_heads: attention heads.
        feedforward_size: transformer feed-forward width.
        dropout: transformer dropout.
        pooling: ``class_mean`` (mean of the encoded rows of each class, the paper's choice) or
            ``attention`` (one learned query per class slot attends over all rows).
        decoder_width: width of the generator trunk.
        decoder_blocks: residual blocks of the generator trunk.
        head: generator head: ``flat`` (a linear map to every child weight, the paper's decoder)
            or ``lowrank``.
        child_hidden: hidden width of the child MLP.
        child_rank: rank of the child's hidden weights (shared factor learned here).

    Shapes:
        x_train ``(B, n, F)``, y_train ``(B, n)`` → generated child parameters ``{name: (B, *shape)}``;
        logits for x_test ``(B, m, F)``: ``(B, m, max_classes)``.
    """

    # MotherNetClassifier's fine-tuning rate for this model's children (docs/mothernet-paper.md).
    fine_tune_lr = 0.03

    def __init__(self, max_features: int = 100, max_classes: int = 10, embedding_size: int = 128,
                 num_layers: int = 4, num_heads: int = 4, feedforward_size: int = 256, dropout: float = 0.0,
                 pooling: Literal["class_mean", "attention"] = "class_mean", decoder_width: int = 512,
                 decoder_blocks: int = 1, head: Literal["flat", "lowrank"] = "flat", child_hidden: int = 128,
                 child_rank: int = 16):
        super().__init__()
        if pooling not in ("class_mean", "attention"):
            raise ValueError(f"pooling must be 'class_mean' or 'attention', got {pooling!r}")
        self.max_features, self.max_classes, self.pooling = max_features, max_classes, pooling
        self.feature_in = nn.Linear(max_features, embedding_size)
        self.label_in = nn.Embedding(max_classes, embedding_size)
        layer = nn.TransformerEncoderLayer(embedding_size, num_heads, feedforward_size, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embedding_size)
        if pooling == "attention":
            self.queries = nn.Parameter(torch.randn(max_classes, embedding_size) / math.sqrt(embedding_size))
            self.attend = nn.MultiheadAttention(embedding_size, num_heads, batch_first=True)
        self.child = MotherNetChild(max_features, child_hidden, max_classes, child_rank).requires_grad_(False)
        spec = describe(self.child, task={"num_classes": max_classes, "input_size": max_features})
        condition_size = max_classes * (embedding_size + 1)
        self.generator = Generator(spec, head=head, condition_size=condition_size, width=decoder_width,
                                   num_blocks=decoder_blocks, fourier_features=256, rank=child_rank)
        # The child's shared factors V: learned with the model, the same for every table.
        self.shared = nn.ParameterList(nn.Parameter(b.clone()) for _, b in self.child.named_buffers())
        self._shared_names = [name for name, _ in self.child.named_buffers()]

    def condition(self, x_train: torch.Tensor, y_train: torch.Tensor) -> torch.Tensor:
        """The training-set embedding that conditions the generator, ``(B, max_classes · (E + 1))``."""
        h = self.feature_in(x_train) + self.label_in(y_train)
        h = self.norm(self.encoder(h))
        onehot = nn.functional.one_hot(y_train, self.max_classes).to(h.dtype)  # (B, n, C)
        counts = onehot.sum(1)  # (B, C)
        if self.pooling == "class_mean":
            pooled = onehot.transpose(1, 2) @ h / counts.clamp_min(1).unsqueeze(-1)
        else:
            queries = self.queries.expand(h.shape[0], -1, -1)
            pooled = self.attend(queries, h, h, need_weights=False)[0] * (counts > 0).unsqueeze(-1)
        # Means alone lose how common each class is; the fractions put class frequencies back.
        fractions = counts / counts.sum(1, keepdim=True)
        return torch.cat([pooled.flatten(1), fractions], dim=1)

    def forward(self, x_train: torch.Tensor, y_train: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated child parameters, ``{name: (B, *shape)}``."""
        return self.generator(condition=self.condition(x_train, y_train))

    def shared_buffers(self) -> dict[str, torch.Tensor]:
        """The child's shared low-rank factors, ``{buffer name: tensor}``."""
        return dict(zip(self._shared_names, self.shared))

    def run_child(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Run each generated child on its own rows: ``(B, m, F)`` → ``(B, m, max_classes)``."""
        shared = self.shared_buffers()

        def one(p, rows):
            return functional_call(self.child, (p, shared), (rows,))

        return vmap(one)(params, x)

    def logits(self, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor) -> torch.Tensor:
        """Generate a child per table from its training rows and classify its test rows."""
        return self.run_child(self(x_train, y_train), x_test)

    def child_module(self, params: dict[str, torch.Tensor], index: int = 0) -> MotherNetChild:
        """A standalone child holding table ``index``'s generated weights and the shared factors."""
        child = MotherNetChild(self.child.in_features, self.child.layers[0].out_features,
                               self.max_classes, self.child.layers[0].rank)
        state = {name: value[index].detach() for name, value in params.items()}
        state.update({name: value.detach() for name, value in self.shared_buffers().items()})
        child.load_state_dict(state)
        return child
