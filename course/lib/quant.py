"""Plumbing for the quantization notebook (02): containers and library calls, no exercise answers.

* :class:`PackedInt4Linear`: a drop-in ``nn.Linear`` that *stores* its weight as packed 4-bit
  integers (two per byte) with one scale and zero point per group of input columns, and
  unpacks + dequantizes it on every forward call with the functions it is given (the learner's
  ``unpack_int4``). Its ``state_dict`` holds only the packed bytes, the group scales and zero
  points and the bias, so ``course.lib.bench.serialized_size_bytes`` measures the real storage.
* :func:`linear_layers`: the ``(name, nn.Linear)`` pairs of a model.
* :func:`replace_module`: swap a submodule by its dotted name.
* :func:`int4_groupwise`: a copy of a model whose Linear layers are ``PackedInt4Linear``, built with the
  learner's ``quantize_per_channel`` and ``pack_int4`` / ``unpack_int4``.
* :func:`mse_by_bits`: per-tensor vs per-channel quantization error of one weight, with the learner's functions.
* :func:`torchao_quantized`: copies of a model quantized by torchao configs (``quantize_`` works in place).

The functions that take learner functions as arguments only call them: the answers live in notebook 02.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every ``(dotted name, module)`` of ``model`` that is an ``nn.Linear``, in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule called ``name`` (dotted, as in ``named_modules``) by ``new``, in place."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


class PackedInt4Linear(nn.Module):
    """A linear layer whose weight ``(out, in)`` is stored group-wise as packed signed 4-bit values.

    Buffers (all in the state dict):
        ``packed``: ``uint8`` ``(ceil(out * in / 2),)``, the row-major flattened weight codes
        (signed, -8..7) packed two per byte by ``pack_int4``;
        ``scale``: ``float16`` ``(out, in // group_size)``, one scale per group;
        ``zero_point``: ``int8`` ``(out, in // group_size)``, one signed zero point per group;
        ``bias``: ``float32`` ``(out,)`` or absent.

    Forward: ``w = (unpack(packed, out * in) - zero_point) * scale`` group by group, then
    ``F.linear(x, w, bias)``. The unpacking runs in Python on every call (no fused kernel), so
    this layer is about *storage*; production int4 kernels dequantize inside the matmul.

    Args:
        packed, scale, zero_point, bias: as above.
        shape: ``(out, in)`` of the original weight.
        group_size: input columns per group; ``in % group_size == 0``.
        unpack_int4: ``unpack_int4(packed, n) -> (n,) int tensor`` (the inverse of the packer used).

    Raises:
        ValueError: the shapes of ``scale`` / ``zero_point`` do not match ``shape`` and ``group_size``.
    """

    def __init__(self, packed: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                 bias: torch.Tensor | None, shape: tuple[int, int], group_size: int, unpack_int4):
        super().__init__()
        out_features, in_features = shape
        groups = (out_features, in_features // group_size)
        if in_features % group_size or tuple(scale.shape) != groups or tuple(zero_point.shape) != groups:
            raise ValueError(f"weight {tuple(shape)} with group_size {group_size} needs scale and zero_point of "
                             f"shape {groups}, got {tuple(scale.shape)} and {tuple(zero_point.shape)}")
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        self.unpack_int4 = unpack_int4
        self.register_buffer("packed", packed.to(torch.uint8).contiguous())
        self.register_buffer("scale", scale.to(torch.float16).contiguous())
        self.register_buffer("zero_point", zero_point.to(torch.int8).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight ``(out, in)`` this layer computes with."""
        n = self.out_features * self.in_features
        q = self.unpack_int4(self.packed, n).reshape(self.out_features, -1, self.group_size).float()
        w = (q - self.zero_point.float()[..., None]) * self.scale.float()[..., None]
        return w.reshape(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dequantized_weight().to(x.dtype)
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"


def int4_groupwise(model: nn.Module, group_size: int, *, quantize_per_channel, pack_int4, unpack_int4) -> nn.Module:
    """A CPU copy of ``model`` (eval mode) whose every ``nn.Linear`` is a :class:`PackedInt4Linear`.

    Each weight ``(out, in)`` is cut into groups of ``group_size`` consecutive input columns; each group
    (a row of the ``(out * in / group_size, group_size)`` view) gets its own unsigned 4-bit scale and zero
    point from ``quantize_per_channel(groups, 4, 0)``; codes 0..15 are shifted to signed -8..7 (zero points
    too) and packed two per byte by ``pack_int4``. Group-wise int4 as in GPTQ/AWQ-style weight-only
    quantization (Frantar et al. 2022, arXiv:2210.17323, section 4 "grouping"). ``model`` is not modified.

    Raises:
        ValueError: a Linear's input size is not a multiple of ``group_size``.
    """
    import copy

    model_q = copy.deepcopy(model).cpu()
    for name, linear in linear_layers(model_q):
        out_features, in_features = linear.weight.shape
        if in_features % group_size:
            raise ValueError(f"group_size must divide every Linear's input size: {name} has {in_features}, "
                             f"group_size={group_size}")
        groups = linear.weight.detach().reshape(-1, group_size)      # (out * in / G, G): one row per group
        q, scale, zero_point = quantize_per_channel(groups, 4, 0)   # codes 0..15, one (scale, zp) per row
        packed = pack_int4(q - 8)                                     # signed -8..7, two per byte
        replace_module(model_q, name, PackedInt4Linear(
            packed, scale.reshape(out_features, -1), (zero_point - 8).reshape(out_features, -1), linear.bias,
            (out_features, in_features), group_size, unpack_int4))
    return model_q.eval()


def mse_by_bits(weight: torch.Tensor, bits=(8, 4, 2), *, qparams, quantize, dequantize, quantize_per_channel):
    """A pandas DataFrame indexed by ``bits``: the mean squared error ``mean((dequantize(quantize(w)) - w)**2)``
    of ``weight`` quantized per tensor (``qparams`` + ``quantize``) and per channel (rows,
    ``quantize_per_channel(w, b, 0)``), asymmetric, unsigned codes. Columns ``per-tensor MSE`` and
    ``per-channel MSE``."""
    import pandas as pd

    w = torch.as_tensor(weight).detach().float()
    rows = []
    for b in bits:
        scale, zero_point = qparams(w, b)
        q, row_scale, row_zero = quantize_per_channel(w, b, 0)
        rows.append({"bits": b,
                     "per-tensor MSE": (dequantize(quantize(w, b, scale, zero_point), scale, zero_point) - w).pow(2).mean().item(),
                     "per-channel MSE": (dequantize(q, row_scale[:, None], row_zero[:, None]) - w).pow(2).mean().item()})
    return pd.DataFrame(rows).set_index("bits")


def torchao_quantized(model: nn.Module, configs: dict) -> tuple[dict, dict]:
    """``(models, errors)``: for each ``name: config`` of ``configs``, a deep copy of ``model`` (same device)
    quantized in place by ``torchao.quantization.quantize_(copy, config)``; ``model`` itself is never
    touched (``quantize_`` swaps weights for tensor subclasses in place). A config whose kernel package
    is missing (torchao raises ``ImportError``, e.g. ``Int4WeightOnlyConfig`` without ``mslk``/``fbgemm-gpu-genai``)
    lands in ``errors[name]`` as one line instead of in ``models``. Source: torchao's ``quantize_`` docs."""
    import copy

    from torchao.quantization import quantize_

    models, errors = {}, {}
    for name, config in configs.items():
        candidate = copy.deepcopy(model)
        try:
            quantize_(candidate, config)
        except ImportError as err:
            errors[name] = f"ImportError: {err}"
            continue
        models[name] = candidate.eval()
    return models, errors
