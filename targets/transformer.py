"""Transformer encoder for sequence classification (token + learned position embeddings)."""

from __future__ import annotations

import torch
import torch.nn as nn

from hyperkit.registry import register_target


class TransformerClassifier(nn.Module):
    """Embedding → ``nn.TransformerEncoderLayer`` × L → masked mean pool → LayerNorm → linear.

    Token id 0 is padding: it is masked out of attention and of the pooling.

    Args:
        vocab_size: number of token ids (0 = padding).
        num_classes: output size.
        embedding_size: model width.
        num_heads: attention heads.
        num_layers: encoder layers.
        feedforward_size: hidden size of the feed-forward blocks.
        max_len: longest sequence (size of the position embedding).
        dropout: dropout inside the encoder layers.

    Shapes:
        tokens ``(batch, seq_len)`` int64 → ``(batch, num_classes)``.

    Example:
        >>> TransformerClassifier(20, 3, 16, 2, 1, 32, 10)(torch.randint(1, 20, (2, 10))).shape
        torch.Size([2, 3])
    """

    def __init__(self, vocab_size: int, num_classes: int, embedding_size: int = 64, num_heads: int = 4,
                 num_layers: int = 2, feedforward_size: int = 128, max_len: int = 128, dropout: float = 0.0):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, embedding_size)
        self.positions = nn.Embedding(max_len, embedding_size)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(embedding_size, num_heads, feedforward_size, dropout=dropout,
                                       batch_first=True, norm_first=True)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embedding_size)
        self.classifier = nn.Linear(embedding_size, num_classes)
        self.vocab_size, self.max_len = vocab_size, max_len

    def example_inputs(self, batch: int = 4) -> tuple[torch.Tensor]:
        tokens = torch.randint(1, self.vocab_size, (batch, min(16, self.max_len)))
        tokens[:, -3:] = 0  # some padding, so the mask path runs
        return (tokens,)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        padding = tokens == 0
        positions = torch.arange(tokens.shape[-1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(-2) / keep.sum(-2).clamp_min(1.0)
        return self.classifier(self.norm(pooled))


@register_target
def transformer_tiny(vocab_size: int = 64, num_classes: int = 4, **kw) -> TransformerClassifier:
    """One layer, width 32, 2 heads: for tests and debug runs."""
    kw = {"embedding_size": 32, "num_heads": 2, "num_layers": 1, "feedforward_size": 64, "max_len": 64, **kw}
    return TransformerClassifier(vocab_size, num_classes, **kw)


@register_target
def transformer_small(vocab_size: int = 64, num_classes: int = 4, **kw) -> TransformerClassifier:
    """Two layers, width 64, 4 heads."""
    kw = {"embedding_size": 64, "num_heads": 4, "num_layers": 2, "feedforward_size": 128, "max_len": 128, **kw}
    return TransformerClassifier(vocab_size, num_classes, **kw)
