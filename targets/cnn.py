"""Convolutional image classifiers (no BatchNorm running statistics: targets are stateless)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from hyperkit.registry import register_target
from hyperkit.targets.mlp import make_activation


class CNN(nn.Module):
    """Conv2d stack → global average pool → linear classifier.

    Each stage is ``Conv2d(k, padding=k//2) → activation → MaxPool2d(2)`` while the feature map is
    at least 2×2, so the same class serves 8×8, 28×28 and 32×32 images.

    Args:
        in_channels: image channels.
        image_size: height = width of the input.
        channels: output channels per conv stage.
        num_classes: output size.
        kernel_size: conv kernel size.
        activation: "relu" | "gelu" | "tanh" | "silu".

    Shapes:
        input ``(batch, in_channels, image_size, image_size)``; output ``(batch, num_classes)``.

    Example:
        >>> CNN(1, 8, [4, 8], 10)(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, image_size: int, channels: Sequence[int], num_classes: int,
                 kernel_size: int = 3, activation: str = "relu"):
        super().__init__()
        layers: list[nn.Module] = []
        size, prev = image_size, in_channels
        for c in channels:
            layers += [nn.Conv2d(prev, c, kernel_size, padding=kernel_size // 2), make_activation(activation)]
            if size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            prev = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(prev, num_classes)
        self.input_shape = (in_channels, image_size, image_size)

    def example_inputs(self, batch: int = 4) -> tuple[torch.Tensor]:
        return (torch.randn(batch, *self.input_shape),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(-2, -1)))


@register_target
def cnn_digits(channels: Sequence[int] = (16, 32), num_classes: int = 10, **kw) -> CNN:
    """CNN for scikit-learn's 8×8 digits."""
    return CNN(1, 8, channels, num_classes, **kw)


@register_target
def cnn_mnist(channels: Sequence[int] = (32, 64, 64), num_classes: int = 10, **kw) -> CNN:
    """CNN for 28×28 grayscale images (MNIST)."""
    return CNN(1, 28, channels, num_classes, **kw)


@register_target
def cnn_cifar(channels: Sequence[int] = (32, 64, 128), num_classes: int = 10, **kw) -> CNN:
    """CNN for 32×32 colour images (CIFAR-10)."""
    return CNN(3, 32, channels, num_classes, **kw)
