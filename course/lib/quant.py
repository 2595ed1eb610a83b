"""Plumbing for the quantization notebook (02): containers and library calls, no exercise answers.

* :class:`PackedInt4Linear`: a drop-in ``nn.Linear`` that *stores* its weight as packed 4-bit
  integers (two per byte) with one scale and zero point per group of input columns, and
  unpacks + dequantizes it on every forward call with the functions it is given (the learner's
  ``unpack_int4``). Its ``state_dict`` holds only the packed bytes, the group scales and zero
  points and the bias, so ``course.lib.bench.serialized_size_bytes`` measures the real storage.
* :func:`linear_layers`: the ``(name, nn.Linear)`` pairs of a model.
* :func:`replace_module`: swap a submodule by its dotted name.
* :func:`benchmark_quick`: ``bench.benchmark`` with a short timing, for models too slow to time fully.
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


def benchmark_quick(model, split, tokenizer, name: str = "model", *, device="cpu", warmup: int = 1,
                    repeats: int = 1, max_length: int = 64):
    """:func:`course.lib.bench.benchmark` for a model too slow to measure fully here: the same fields,
    measured cheaply. Accuracy on ``split`` (pass a small one, at least 32 sentences: that pass also
    warms up the batch-32 shapes); latency at batch 1 after ``warmup`` calls and at batch 32 with no
    further warm-up, each the mean of ``repeats`` timed calls (``torch.utils.benchmark.Timer.timeit``),
    so median and p90 are the same number. Returns a ``BenchResult``.

    Raises ValueError if ``split`` has fewer than 32 sentences.
    """
    from torch.utils import benchmark as tbench

    from .bench import BenchResult, _forward, count_params, example_batch, serialized_size_bytes
    from .data import make_loader
    from .train import accuracy, predict_logits

    if len(split) < 32:
        raise ValueError(f"split must hold at least 32 sentences, got {len(split)}")
    device = torch.device(device)
    threads = torch.get_num_threads()
    model.eval()
    acc = accuracy(predict_logits(model, make_loader(split, tokenizer, 32, max_length=max_length)), split.labels)
    latencies = []
    for b, warm in ((1, warmup), (32, 0)):
        batch = {k: v.to(device) for k, v in example_batch(split, tokenizer, b, max_length).items()}

        fn = _forward(model, batch, device)
        for _ in range(warm):
            fn()
        seconds = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).timeit(repeats).mean
        latencies += [1e3 * seconds, 1e3 * seconds]
    n_params, n_nonzero = count_params(model)
    return BenchResult(name, acc, n_params, n_nonzero, serialized_size_bytes(model) / 1e6, *latencies,
                       threads=threads, device=str(device))
