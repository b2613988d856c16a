"""Built-in layer describers: Linear, Conv1d/2d, Embedding, MultiheadAttention, LayerNorm,
GroupNorm, BatchNorm (without running statistics) and torch_geometric's Linear, GCNConv, GATConv.

Each describer names, for every parameter of its layer, the role, the index field(s) of each
dimension and the default-init statistics (analytic where PyTorch's init is simple, otherwise
measured by :func:`hyperkit.descriptors.measure_init`). torch_geometric's are registered with
:func:`~hyperkit.spec.register_layer_lazily`, so that describing a target without graph layers never
imports torch_geometric. The generator's own layer types register theirs beside themselves
(:mod:`hyperkit.blocks`).
"""

from __future__ import annotations

import math

import torch.nn as nn

from hyperkit.spec import (AxisMap, LayerDescription, ParamInfo, register_layer, register_layer_lazily)

_ROW_COL = ("row", "col")


def _kaiming_uniform_std(fan_in: int) -> float:
    # nn.Linear / nn.Conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    return 1.0 / math.sqrt(3.0 * fan_in)


@register_layer(nn.Linear, "linear")
def describe_linear(m: nn.Linear) -> LayerDescription:
    std = _kaiming_uniform_std(m.in_features)
    return LayerDescription(
        {"in_size": m.in_features, "out_size": m.out_features},
        {"weight": ParamInfo("weight", _ROW_COL, std=std), "bias": ParamInfo("bias", ("row",), std=std)},
    )


def _describe_conv(m: nn.Conv1d | nn.Conv2d) -> LayerDescription:
    kernel = tuple(m.kernel_size)
    fan_in = m.in_channels // m.groups * math.prod(kernel)
    std = _kaiming_uniform_std(fan_in)
    # Kernel taps as offsets from the centre: kernels of different sizes share their middle.
    weight_axes = ("row", "col", AxisMap("k0", centered=True), AxisMap("k1", centered=True))[: 2 + len(kernel)]
    return LayerDescription(
        {"in_size": m.in_channels, "out_size": m.out_channels, "kernel0": kernel[0],
         "kernel1": kernel[1] if len(kernel) > 1 else 0},
        {"weight": ParamInfo("conv_weight", weight_axes, std=std),
         "bias": ParamInfo("conv_bias", ("row",), std=std)},
    )


register_layer(nn.Conv1d, "conv1d")(_describe_conv)
register_layer(nn.Conv2d, "conv2d")(_describe_conv)


@register_layer(nn.Embedding, "embedding")
def describe_embedding(m: nn.Embedding) -> LayerDescription:
    return LayerDescription(
        {"in_size": m.num_embeddings, "out_size": m.embedding_dim},
        {"weight": ParamInfo("embedding", _ROW_COL, std=1.0)},
    )


def _describe_norm(size: int, ndim: int) -> LayerDescription:
    axes = (("row", "col", "k0", "k1") + (None,) * ndim)[:ndim]
    return LayerDescription(
        {"in_size": size, "out_size": size},
        {"weight": ParamInfo("norm_scale", axes, mean=1.0, std=0.0),
         "bias": ParamInfo("norm_shift", axes, mean=0.0, std=0.0)},
    )


@register_layer(nn.LayerNorm, "layernorm")
def describe_layernorm(m: nn.LayerNorm) -> LayerDescription:
    return _describe_norm(math.prod(m.normalized_shape), len(m.normalized_shape))


@register_layer(nn.GroupNorm, "groupnorm")
def describe_groupnorm(m: nn.GroupNorm) -> LayerDescription:
    return _describe_norm(m.num_channels, 1)


@register_layer(nn.modules.batchnorm._BatchNorm, "batchnorm")
def describe_batchnorm(m) -> LayerDescription:
    return _describe_norm(m.num_features, 1)


@register_layer(nn.MultiheadAttention, "attention")
def describe_attention(m: nn.MultiheadAttention) -> LayerDescription:
    """Rows of the q/k/v projections map to (block, head, row-in-head); the output projection's
    columns map to (head, column-in-head), so a head's weights share descriptors across layers."""
    e, h = m.embed_dim, m.num_heads
    hd = e // h
    per_head = (AxisMap("head", hd, h), AxisMap("row", 1, hd))
    qkv_rows = (AxisMap("block", e, 3),) + per_head
    params = {
        "in_proj_weight": ParamInfo("attn_in_weight", (qkv_rows, "col"), std=math.sqrt(1.0 / (2 * e))),
        "in_proj_bias": ParamInfo("attn_in_bias", (qkv_rows,), std=0.0),
        "out_proj.weight": ParamInfo("attn_out_weight", ("row", (AxisMap("head", hd, h), AxisMap("col", 1, hd))),
                                     std=_kaiming_uniform_std(e)),
        "out_proj.bias": ParamInfo("attn_out_bias", ("row",), std=0.0),
        "bias_k": ParamInfo("attn_bias_k", (None, None, per_head), std=math.sqrt(1.0 / e)),
        "bias_v": ParamInfo("attn_bias_v", (None, None, per_head), std=math.sqrt(1.0 / e)),
    }
    for proj, dim in (("q", e), ("k", m.kdim), ("v", m.vdim)):
        params[f"{proj}_proj_weight"] = ParamInfo(f"attn_{proj}_weight", (per_head, "col"),
                                                  std=math.sqrt(2.0 / (e + dim)))
    return LayerDescription({"in_size": e, "out_size": e, "heads": h}, params)


def _glorot_std(*shape: int) -> float:
    # PyG's glorot: U(-a, a), a = sqrt(6 / (size(-2) + size(-1))).
    return math.sqrt(2.0 / (shape[-2] + shape[-1]))


def _pyg_linear_std(m) -> float | None:
    """Std of a torch_geometric Linear's weight for its ``weight_initializer`` (None: measure it)."""
    if m.weight_initializer == "glorot":
        return _glorot_std(m.out_channels, m.in_channels)
    if m.weight_initializer in (None, "kaiming_uniform"):
        return _kaiming_uniform_std(m.in_channels)
    return None


def describe_pyg_linear(m) -> LayerDescription:
    return LayerDescription({"in_size": m.in_channels, "out_size": m.out_channels},
                            {"weight": ParamInfo("weight", _ROW_COL, std=_pyg_linear_std(m)),
                             "bias": ParamInfo("bias", ("row",))})


def describe_gcn(m) -> LayerDescription:
    return LayerDescription({"in_size": m.in_channels, "out_size": m.out_channels},
                            {"lin.weight": ParamInfo("weight", _ROW_COL, std=_pyg_linear_std(m.lin)),
                             "bias": ParamInfo("bias", ("row",), std=0.0)})


def describe_gat(m) -> LayerDescription:
    h, c = m.heads, m.out_channels
    rows = (AxisMap("head", c, h), AxisMap("row", 1, c))
    out_rows = rows if m.concat else "row"
    att = ParamInfo("attention", (None, "head", "row"), std=_glorot_std(h, c))
    params = {"att_src": att, "att_dst": att, "att_edge": att, "bias": ParamInfo("bias", (out_rows,), std=0.0)}
    for lin, role, axis in (("lin", "weight", rows), ("lin_src", "src_weight", rows),
                            ("lin_dst", "dst_weight", rows), ("lin_edge", "edge_weight", rows),
                            ("res", "residual_weight", out_rows)):
        module = getattr(m, lin, None)
        if module is not None:
            params[f"{lin}.weight"] = ParamInfo(role, (axis, "col"), std=_pyg_linear_std(module))
    in_size = m.in_channels if isinstance(m.in_channels, int) else m.in_channels[0]
    return LayerDescription({"in_size": in_size, "out_size": h * c if m.concat else c, "heads": h}, params)


register_layer_lazily("torch_geometric.nn.dense.linear.Linear", describe_pyg_linear, "pyg_linear")
register_layer_lazily("torch_geometric.nn.GCNConv", describe_gcn, "gcn")
register_layer_lazily("torch_geometric.nn.GATConv", describe_gat, "gat")

