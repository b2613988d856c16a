"""The interface every generator head implements."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from hyperkit.spec import TargetSpec


class Head:
    """How a :class:`~hyperkit.generator.Generator` turns trunk outputs into weights.

    A head is a plain object, not a module: its layers are registered on the generator under the
    names :meth:`layers` gives them (``out``, ``out_u``, …), so state-dict keys and the parameter
    names a recursive hypernetwork generates do not depend on how heads are organised in code.
    Every method is handed the generator, whose trunk, descriptor encoding and plans it uses.

    Attributes:
        name: the name :func:`~hyperkit.heads.make_head` knows it by (``Generator(head=name)``).
        uses_descriptors: whether the trunk input comes from the descriptor encoding (Fourier
            features of every tensor's fields); ``False``: from the condition alone.
        generates_positions: whether :meth:`values_at` evaluates only the positions asked for, so
            that :func:`~hyperkit.init_statistics` estimates statistics from random positions
            instead of one full generation per step.
    """

    name: str = ""
    uses_descriptors: bool = True
    generates_positions: bool = False

    def layers(self, width: int, spec: TargetSpec) -> dict[str, nn.Module]:
        """The head's layers for trunk width ``width``, by attribute name, in creation order."""
        raise NotImplementedError

    def emit(self, generator, spec: TargetSpec, cond: torch.Tensor | None) -> torch.Tensor:
        """Every weight of ``spec``, before init scaling: ``(batch?, num_weights)``.

        ``cond`` is the projected condition ``(batch?, width)`` or ``None``."""
        raise NotImplementedError

    def emit_many(self, generator, specs: Sequence[TargetSpec],
                  conds: Sequence[torch.Tensor | None]) -> list[torch.Tensor] | None:
        """Flat, init-scaled weights of several distinct targets in one pass, or ``None`` where
        this head has no faster way than generating them in turn."""
        return None

    def values_at(self, generator, spec: TargetSpec, picks: list[torch.Tensor],
                  condition: torch.Tensor | None) -> list[torch.Tensor]:
        """Init-scaled values of each tensor at flat positions ``picks[t]``; by default from one
        full generation."""
        flat = generator.flat(spec, condition)
        return [flat[..., start + idx.to(flat.device)] for start, idx in zip(spec.offsets.values(), picks)]

    def extra_repr(self) -> str:
        """Options shown in the generator's repr beyond ``head=name``."""
        return ""
