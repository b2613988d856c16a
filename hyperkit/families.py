"""Architecture families: declare a family by the choices of its structural arguments, then sample
members on the fly or take a fixed, de-duplicated set with held-out members.

One generator can serve a whole family (UHN's multi-model setting). Held-out members are either
*interpolation* (every value inside the training choices, a combination never trained on) or
*extrapolation* (a value outside them, e.g. a deeper network than any training member), reported
separately because the second is much harder.

Example:
    >>> family = FAMILIES.get("mlp_digits_family")()
    >>> split = family.split(num_held_out=2, seed=0)
    >>> len(split.train) + len(split.interpolation) == len(family.members()), len(split.extrapolation) > 0
    (True, True)
    >>> module = split.train[0].build(in_features=64, num_classes=10)
    >>> sum(p.numel() for p in module.parameters()) > 0
    True
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch.nn as nn

from hyperkit.registry import Registry, create_target

__all__ = ["FAMILIES", "Family", "Member", "Split", "register_family"]


@dataclass(frozen=True)
class Member:
    """One architecture of a family: the registered target and its structural arguments.

    Args:
        target: registered target builder name.
        choices: the sampled structural values, as sorted ``(name, value)`` pairs (hashable).
        arguments: the builder arguments they map to, as sorted pairs.
    """

    target: str
    choices: tuple[tuple[str, Any], ...]
    arguments: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        return self.target + "(" + ", ".join(f"{k}={v}" for k, v in self.choices) + ")"

    @property
    def label(self) -> str:
        """The choices alone, without spaces (a TensorBoard tag): ``channels=8,depth=2,kernel_size=3``."""
        return ",".join(f"{k}={v}" for k, v in self.choices)

    def build(self, **sizes: Any) -> nn.Module:
        """The target module; ``sizes`` are data-derived arguments (``in_features``, ``num_classes`` …)."""
        return create_target(self.target, **dict(self.arguments), **sizes)


@dataclass
class Split:
    """Members to train on, and held-out members inside (interpolation) and outside
    (extrapolation) the training choices."""

    train: list[Member]
    interpolation: list[Member]
    extrapolation: list[Member]


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass
class Family:
    """An architecture family.

    Args:
        target: registered target builder that every member uses.
        choices: structural argument → the values training members take.
        to_arguments: maps one combination of choices to builder arguments (default: as is),
            e.g. ``{"depth": 2, "width": 64}`` → ``{"hidden": [64, 64]}``.
        extrapolation: structural argument → values outside ``choices`` for held-out members only.
        valid: predicate on a combination (e.g. embedding size divisible by the heads).
    """

    target: str
    choices: Mapping[str, Sequence[Any]]
    to_arguments: Callable[[dict], dict] = field(default=lambda c: dict(c))
    extrapolation: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    valid: Callable[[dict], bool] = field(default=lambda c: True)

    def __post_init__(self):
        for name, values in self.extrapolation.items():
            if name not in self.choices:
                raise ValueError(f"extrapolation names {name!r}, which is not one of the family's choices "
                                 f"{sorted(self.choices)}")
            inside = set(map(_hashable, values)) & set(map(_hashable, self.choices[name]))
            if inside:
                raise ValueError(f"extrapolation values {sorted(inside)} of {name!r} are inside the training "
                                 "choices; extrapolation values must lie outside them")

    def _member(self, combination: dict) -> Member:
        arguments = self.to_arguments(dict(combination))
        return Member(self.target, tuple(sorted((k, _hashable(v)) for k, v in combination.items())),
                      tuple(sorted((k, _hashable(v)) for k, v in arguments.items())))

    def _grid(self, choices: Mapping[str, Sequence[Any]]) -> list[Member]:
        names = sorted(choices)
        members, seen = [], set()
        for values in itertools.product(*(choices[n] for n in names)):
            combination = dict(zip(names, values))
            if not self.valid(combination):
                continue
            member = self._member(combination)
            if member.arguments not in seen:  # different choices, same network: keep one
                seen.add(member.arguments)
                members.append(member)
        return members

    def members(self) -> list[Member]:
        """Every distinct valid member inside the training choices, in a fixed order."""
        return self._grid(self.choices)

    def sample(self, rng: np.random.Generator) -> Member:
        """A random member inside the training choices (on-the-fly sampling)."""
        members = self.members()
        return members[int(rng.integers(len(members)))]

    def split(self, num_held_out: int = 2, seed: int = 0, stratify: Sequence[str] = ()) -> Split:
        """A fixed split: ``num_held_out`` random members are held out for interpolation, and every
        member that uses an extrapolation value is held out for extrapolation.

        With ``stratify`` (names of choices), the held-out members are spread evenly over the
        combinations of those choices — with ``("depth",)``, as many one-layer as two-layer members,
        within one — so that held-out and training members mix architectures that are easier or
        harder in themselves alike, and their accuracies can be compared.
        """
        members = self.members()
        if not 0 <= num_held_out < len(members):
            raise ValueError(f"num_held_out must be in [0, {len(members) - 1}] for a family of {len(members)} members")
        unknown = sorted(set(stratify) - set(self.choices))
        if unknown:
            raise ValueError(f"stratify names {unknown}, which are not among the family's choices {sorted(self.choices)}")
        rng = np.random.default_rng(seed)
        if stratify:
            strata: dict[tuple, list[int]] = {}
            for i, m in enumerate(members):
                strata.setdefault(tuple(dict(m.choices)[k] for k in stratify), []).append(i)
            groups = [list(rng.permutation(indices)) for indices in strata.values()]  # in members() order
            groups = [groups[int(i)] for i in rng.permutation(len(groups))]
            # Round robin over the strata: the first of every stratum, then the second, ...
            order = [g[r] for r in range(max(map(len, groups))) for g in groups if r < len(g)]
        else:
            order = rng.permutation(len(members))
        held = {int(i) for i in order[:num_held_out]}
        train = [m for i, m in enumerate(members) if i not in held]
        interpolation = [m for i, m in enumerate(members) if i in held]
        outside = {**self.choices, **{k: list(self.choices[k]) + list(v) for k, v in self.extrapolation.items()}}
        inside = {m.arguments for m in members}
        extrapolation = [m for m in self._grid(outside) if m.arguments not in inside]
        return Split(train, interpolation, extrapolation)


FAMILIES = Registry("family")


def register_family(fn: Callable[[], Family] | None = None, *, name: str | None = None):
    """Register a function that returns a :class:`Family` (``FAMILIES.get(name)()``)."""
    return FAMILIES.register(fn, name=name)


@register_family
def mlp_digits_family() -> Family:
    """MLPs for the 8×8 digits: 1–3 hidden layers of width 32–128; held out beyond: depth 4."""
    return Family("mlp_digits", {"depth": [1, 2, 3], "width": [32, 64, 96, 128]},
                  lambda c: {"hidden": [c["width"]] * c["depth"]}, extrapolation={"depth": [4]})


@register_family
def cnn_digits_family() -> Family:
    """CNNs for the 8×8 digits: 1–2 conv layers, the first of any width from 8 to 32 channels and the
    second twice as wide, kernel 3 or 5 (100 members); beyond: 3 layers.

    Every channel count, not a few (as UHN's mixed-width family draws widths from a range): with
    only 8, 16 and 32, a held-out member's channels meant something the generator never saw.
    """
    return Family("cnn_digits", {"depth": [1, 2], "channels": list(range(8, 33)), "kernel_size": [3, 5]},
                  lambda c: {"channels": [c["channels"] * 2 ** i for i in range(c["depth"])],
                             "kernel_size": c["kernel_size"]},
                  extrapolation={"depth": [3]})


@register_family
def transformer_family() -> Family:
    """Transformers for the sequence task: 1–2 layers, 1–4 heads, width 32 or 64; beyond: 3 layers."""
    return Family("transformer_tiny", {"num_layers": [1, 2], "num_heads": [1, 2, 4], "embedding_size": [32, 64]},
                  lambda c: {**c, "feedforward_size": 2 * c["embedding_size"]},
                  extrapolation={"num_layers": [3]}, valid=lambda c: c["embedding_size"] % c["num_heads"] == 0)
