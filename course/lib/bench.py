"""Measure any classifier the same way: accuracy, parameters, size, latency.

* accuracy: on a :class:`course.lib.data.Split`, argmax of the logits vs the labels (0..1);
* ``n_params`` / ``n_nonzero``: elements of every tensor in the state dict, packed quantized
  weights included (so int8 models count the same weights as fp32 ones); ``n_nonzero`` for pruning;
* ``size_mb``: bytes of the ``torch.save``-d state dict / 1e6 (as in the PyTorch quantization tutorials);
* latency in ms, median and p90, at batch 1 and batch 32 of real sentences, measured with
  ``torch.utils.benchmark.Timer`` (fixed thread count, warm-up, ``blocked_autorange``), or, with
  ``quick=True`` for a model too slow to time fully, one timed call per batch size;
* where: ``threads``, ``device`` and ``cpu`` (:func:`cpu_description`: the instruction set torch
  dispatches to and the CPU's int8 dot-product instructions, which decide how much int8 gains).

Compare models only within one run on one machine: :func:`compare` reports ratios against a
baseline measured in the same run, and :func:`results_table` shows where each row was measured.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils import benchmark as tbench

from .data import Split, make_loader
from .train import accuracy, forward_logits, model_device, predict_logits


@dataclass
class BenchResult:
    """One model's measurements. Units: accuracy 0..1, sizes in MB (1e6 bytes), latency in ms."""

    name: str
    accuracy: float
    n_params: int
    n_nonzero: int
    size_mb: float
    latency_ms_b1: float
    latency_ms_b1_p90: float
    latency_ms_b32: float
    latency_ms_b32_p90: float
    threads: int
    device: str
    cpu: str = ""
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def state_tensors(model) -> list[torch.Tensor]:
    """Every tensor in ``model.state_dict()``, unpacking the tuples that quantized modules
    store (``_packed_params``) and dequantizing quantized tensors (and tensor subclasses such as
    torchao's ``Int8Tensor``) so they can be counted."""
    out = []

    def visit(value):
        if isinstance(value, (tuple, list)):
            for v in value:
                visit(v)
        elif torch.is_tensor(value):
            if value.is_quantized:
                value = value.dequantize()
            elif type(value) not in (torch.Tensor, torch.nn.Parameter) and hasattr(value, "dequantize"):
                value = value.dequantize()  # tensor subclasses, e.g. torchao's Int8Tensor after quantize_
            out.append(value)
    for value in model.state_dict().values():
        visit(value)
    return out


def count_params(model) -> tuple[int, int]:
    """``(n_params, n_nonzero)`` over the floating-point weights of the state dict. Integer
    buffers (BERT's ``position_ids``) and 0-dim tensors (a quantized module's output ``scale``
    and ``zero_point``) are metadata, not parameters, and are skipped."""
    tensors = [t for t in state_tensors(model) if t.is_floating_point() and t.dim() > 0]
    return sum(t.numel() for t in tensors), sum(int(t.count_nonzero()) for t in tensors)


def serialized_size_bytes(model_or_state) -> int:
    """Bytes of ``torch.save(state_dict)`` written to memory (a module or a state dict)."""
    state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def example_batch(split: Split, tokenizer, batch_size: int, max_length: int = 64) -> dict[str, torch.Tensor]:
    """The first ``batch_size`` sentences of ``split``, tokenized and padded: ``(B, T)`` tensors."""
    if not 1 <= batch_size <= len(split):
        raise ValueError(f"batch_size must be in 1..{len(split)} (the split's size), got {batch_size}")
    enc = tokenizer(split.texts[:batch_size], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {k: enc[k] for k in ("input_ids", "attention_mask")}


def measure_latency(fn, threads: int = 1, min_run_time: float = 1.0, warmup: int = 3) -> tuple[float, float]:
    """``(median_ms, p90_ms)`` of calling ``fn()``, with ``torch.utils.benchmark.Timer``.

    Calls ``fn`` ``warmup`` times first, then ``blocked_autorange(min_run_time)`` seconds of
    timed blocks on ``threads`` threads; p90 is over the per-block mean times.
    Raises ValueError for ``threads`` < 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    for _ in range(warmup):
        fn()
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return 1e3 * measurement.median, 1e3 * float(np.percentile(measurement.times, 90))


def benchmark(model, split: Split, tokenizer, name: str = "model", *, threads: int = 1,
              min_run_time: float = 1.0, max_length: int = 64, device=None, quick: bool = False,
              note: str = "") -> BenchResult:
    """Measure ``model`` (any module returning ``.logits``) on ``split``.

    Args:
        threads: torch threads for the latency runs (default 1: the steadiest on a shared CPU;
            compare models only at the same count); the accuracy pass uses all of torch's threads.
        min_run_time: seconds of timing per batch size (more is steadier).
        device: where to run; default the model's own device.
        quick: for a model too slow to time fully (say a kernel-less torchao config on a CPU): one
            warm-up call at batch 1, then ONE timed call per batch size (median = p90 = that call).
            Pass a small ``split`` (accuracy is on all of it). The row's ``note`` says so.
        note: free text shown in :func:`results_table` (what is special about this row).

    Returns: a :class:`BenchResult`.

    Raises:
        ValueError: ``threads`` < 1, or ``split`` has fewer than 32 sentences (batch 32 is timed).
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if len(split) < 32:
        raise ValueError(f"split must hold at least 32 sentences (batch 32 is timed), got {len(split)}")
    device = torch.device(device) if device else model_device(model)
    model.eval()
    loader = make_loader(split, tokenizer, batch_size=64, max_length=max_length)
    acc = accuracy(predict_logits(model, loader), split.labels)  # all cores: accuracy does not depend on them
    latencies = []
    for b in (1, 32):
        batch = {k: v.to(device) for k, v in example_batch(split, tokenizer, b, max_length).items()}
        fn = _forward(model, batch, device)
        if quick:
            latencies += [measure_once(fn, threads, warmup=int(b == 1))] * 2
        else:
            latencies += measure_latency(fn, threads, min_run_time)
    if quick:
        note = "; ".join(filter(None, [note, f"quick: accuracy on {len(split)} sentences, latency of 1 call"]))
    n_params, n_nonzero = count_params(model)
    return BenchResult(name, acc, n_params, n_nonzero, serialized_size_bytes(model) / 1e6, *latencies,
                       threads=threads, device=str(device), cpu=cpu_description(), note=note)


def measure_once(fn, threads: int = 1, warmup: int = 1) -> float:
    """Milliseconds of ONE call of ``fn()`` after ``warmup`` calls (``torch.utils.benchmark.Timer.timeit(1)``
    on ``threads`` threads): for code too slow to repeat; noisier than :func:`measure_latency`."""
    for _ in range(warmup):
        fn()
    return 1e3 * tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).timeit(1).mean


def _forward(model, batch, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def fn():
        with torch.inference_mode():
            forward_logits(model, batch)
        sync()
    return fn


def compare(results: list[BenchResult], baseline: str) -> list[dict]:
    """Each result as a dict plus ratios against the result named ``baseline`` (same run):
    ``size_x`` (baseline size / size: ``2.0`` = half the bytes), ``speedup_b1`` / ``speedup_b32``
    (baseline latency / latency), ``accuracy_kept_pct`` (100 * accuracy / baseline accuracy).

    Raises ValueError if no result is named ``baseline``.
    """
    base = {r.name: r for r in results}.get(baseline)
    if base is None:
        raise ValueError(f"baseline must be one of {[r.name for r in results]}, got {baseline!r}")
    return [{**r.as_dict(),
             "size_x": base.size_mb / r.size_mb,
             "speedup_b1": base.latency_ms_b1 / r.latency_ms_b1,
             "speedup_b32": base.latency_ms_b32 / r.latency_ms_b32,
             "accuracy_kept_pct": 100 * r.accuracy / base.accuracy} for r in results]


TABLE_COLUMNS = {
    "accuracy": "accuracy %", "size_mb": "size MB", "size_x": "size ×",
    "latency_ms_b1": "ms b1", "speedup_b1": "speed× b1", "latency_ms_b32": "ms b32",
    "speedup_b32": "speed× b32", "accuracy_kept_pct": "acc kept %", "n_nonzero": "nonzero params",
    "threads": "threads", "device": "device", "cpu": "CPU", "note": "note",
}


def results_table(results: list[BenchResult], baseline: str, failed: dict[str, str] | None = None):
    """A pandas DataFrame, one row per model, with the measurements and ratios of :func:`compare` and
    where each row was measured (threads, device, CPU) with its note. ``failed``: ``{name: reason}`` of
    models that could not be measured, added as rows with missing values (``<NA>``) and the reason as
    their note. The ``note`` column is left out when no row has one; counts stay integers."""
    import pandas as pd

    frame = pd.DataFrame(compare(results, baseline)).set_index("name")
    frame["accuracy"] = 100 * frame["accuracy"]
    for name, reason in (failed or {}).items():
        frame.loc[name, "note"] = reason
    frame = frame.astype({"n_nonzero": "Int64", "threads": "Int64"})
    columns = [c for c in TABLE_COLUMNS if c != "note" or frame["note"].fillna("").astype(bool).any()]
    return frame[columns].rename(columns=TABLE_COLUMNS)


def format_table(results: list[BenchResult], baseline: str) -> str:
    """:func:`results_table` as fixed-width text, for terminals and logs."""
    frame = results_table(results, baseline)
    return frame.to_string(float_format=lambda x: f"{x:,.2f}")


def plot_tradeoff(results: list[BenchResult], ax=None, batch: int = 32):
    """Accuracy (%) vs latency (ms at ``batch`` 1 or 32), bubble area proportional to size in MB.

    Returns the matplotlib Axes. Raises ValueError for another ``batch``.
    """
    import matplotlib.pyplot as plt

    if batch not in (1, 32):
        raise ValueError(f"batch must be 1 or 32, got {batch}")
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    biggest = max(r.size_mb for r in results)
    for r in results:
        latency = r.latency_ms_b1 if batch == 1 else r.latency_ms_b32
        ax.scatter(latency, 100 * r.accuracy, s=1500 * r.size_mb / biggest, alpha=0.5)
        ax.annotate(f"{r.name}\n{r.size_mb:.1f} MB", (latency, 100 * r.accuracy), ha="center", va="center", fontsize=8)
    ax.set(xlabel=f"latency at batch {batch} (ms, median)", ylabel="test accuracy (%)",
           title="accuracy vs latency (bubble area = size)")
    ax.margins(0.25)
    return ax


INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_description() -> str:
    """One line for a results table: the instruction set torch's CPU kernels dispatch to
    (``torch.backends.cpu.get_cpu_capability()``: ``"AVX512"``, ``"AVX2"``, ``"DEFAULT"`` ...) and the
    CPU's int8 dot-product instructions (:func:`int8_dot_product_flags`), e.g. ``"AVX512, int8 dot:
    avx512_vnni"`` or ``"AVX2, no int8 dot"``. Int8 speed-ups depend on both (FBGEMM / oneDNN kernels)."""
    flags = int8_dot_product_flags()
    return f"{torch.backends.cpu.get_cpu_capability()}, " + (f"int8 dot: {'+'.join(flags)}" if flags else "no int8 dot")


def int8_dot_product_flags() -> list[str]:
    """The CPU's 8-bit dot-product instruction sets among ``INT8_DOT_FLAGS`` (x86 AVX-512 VNNI, AVX-VNNI, AMX-INT8;
    ARM ``asimddp`` = SDOT/UDOT, ``i8mm``), read from ``/proc/cpuinfo``; ``[]`` where it lacks them or the file
    does not exist (macOS, Windows). They decide how much faster int8 matmuls run than fp32 (FBGEMM, oneDNN)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {word for line in f if line.lower().startswith(("flags", "features")) for word in line.split()}
    except OSError:
        return []
    return [flag for flag in INT8_DOT_FLAGS if flag in flags]
