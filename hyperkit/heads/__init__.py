"""Generator heads — how trunk outputs become weights — and the one place that maps a head's name
to its class (:func:`make_head`).

  * ``"scalar"`` (:class:`ScalarHead`) — one value per weight from that weight's full descriptor (UHN).
  * ``"lowrank"`` (:class:`LowRankHead`) — ``W = U Vᵀ`` from row and column descriptors; cost grows
    with rows + columns.
  * ``"flat"`` (:class:`FlatHead`) — a linear map from a condition vector to every weight (classic
    hypernetwork, MotherNet's decoder).
"""

from __future__ import annotations

from collections.abc import Sequence

from hyperkit.heads.base import Head
from hyperkit.heads.flat import FlatHead
from hyperkit.heads.lowrank import LowRankHead
from hyperkit.heads.scalar import ScalarHead
from hyperkit.spec import TargetSpec

HEADS = ("scalar", "lowrank", "flat")

__all__ = ["HEADS", "FlatHead", "Head", "LowRankHead", "ScalarHead", "make_head"]


def make_head(name: str, specs: Sequence[TargetSpec], *, rank: int = 8, center: bool = False,
              shared_trunk: bool = False, condition_size: int = 0) -> Head:
    """The head called ``name`` for a generator built on ``specs``, with the generator's options.

    Raises:
        ValueError: an unknown name (listing the valid ones), or an option the head cannot take.
    """
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of {HEADS}")
    if name == "flat" and len(specs) != 1:
        raise ValueError("the flat head emits one fixed target; give exactly one spec")
    if shared_trunk and name != "lowrank":
        raise ValueError(f"shared_trunk needs head='lowrank' (got head={name!r}): the scalar head's "
                         "trunk rows are single weights, which targets never share")
    if name == "scalar":
        return ScalarHead(center=center)
    if name == "lowrank":
        return LowRankHead(rank=rank, shared_trunk=shared_trunk)
    return FlatHead(specs[0], condition_size)
