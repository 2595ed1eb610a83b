"""Plumbing for unstructured pruning in notebook 03 (Parts 1-3): masks applied, sweeps, sparse storage.
Structured pruning (Part 4: heads and FFN neurons) is in :mod:`course.lib.structured`.

No exercise answer lives here. The learner writes the mask functions (``magnitude_mask``,
``global_magnitude_masks``) and the byte counts of sparse formats; the functions below take them as
arguments or only measure.

* :func:`encoder_linears` / :func:`encoder_weights` / :func:`module_kind`: the ``nn.Linear`` layers of a
  BERT encoder (MiniLM-L6: 6 layers x 6 kinds = 36 matrices), optionally of some kinds only;
* :func:`apply_masks`: a context manager that zeroes masked weights in place and restores them on exit
  (a sweep evaluates many sparsities without copying the model); :func:`masked_copy` does it for good;
* :func:`per_matrix`: lift a one-tensor mask function to a dict of tensors (local pruning);
* :func:`sweep_sparsities`: accuracy at several sparsities, filling a results dict that doubles as a cache;
* :func:`matrix_sparsity`, :func:`sparsity_by_kind`, :func:`plot_sparsity_curves`, :func:`plot_matrix_sparsity`;
* :class:`CSRLinear`, :func:`to_csr`: Linear layers stored and computed in CSR
  (``torch.sparse_csr_tensor``, PyTorch docs "torch.sparse");
* :func:`matmul_latency`: dense vs CSR matmul latency on one weight, measured in one run.
* notebook 03's measurement plumbing, given the learner's functions: :func:`local_global_sweep`,
  :func:`sensitivity_scan`, :func:`sweep_table`, :func:`plot_local_global`, :func:`describe_pruned`,
  :func:`measurer`, :func:`break_even_table`, :func:`sparse_matmul_table`, :func:`plot_tradeoffs`.
"""

from __future__ import annotations

import contextlib
import copy
import re

import torch
import torch.nn.functional as F
from torch import nn


# Module kinds of a BERT layer (transformers' BertLayer), by the suffix of the module name.
KINDS = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attention output",
    "intermediate.dense": "ffn intermediate",
    "output.dense": "ffn output",
}
ENCODER_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.(.+)$")
KIND_COLORS = dict(zip(KINDS.values(), ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")))


def module_kind(name: str) -> str:
    """The kind of an encoder Linear from its dotted name, e.g.
    ``"bert.encoder.layer.3.attention.self.key"`` -> ``"key"``; one of ``KINDS.values()``.

    Raises ValueError if ``name`` is not the name of an encoder Linear of a BERT layer.
    """
    match = ENCODER_LAYER.search(name)
    if not match or match.group(2) not in KINDS:
        raise ValueError(f"name must be an encoder Linear such as 'bert.encoder.layer.0.attention.self.query' "
                         f"(kinds: {sorted(KINDS)}), got {name!r}")
    return KINDS[match.group(2)]


def layer_index(name: str) -> int:
    """The encoder layer number in a dotted module name (``...encoder.layer.3...`` -> 3). ValueError if none."""
    match = ENCODER_LAYER.search(name)
    if not match:
        raise ValueError(f"name must contain 'encoder.layer.<i>.', got {name!r}")
    return int(match.group(1))


def encoder_linears(model: nn.Module, kinds=None) -> dict[str, nn.Linear]:
    """``{dotted name: nn.Linear}`` of every encoder Linear of ``model`` (query, key, value, attention
    output, FFN intermediate, FFN output of each layer), in definition order. The pooler and the
    classifier are not included.

    Args:
        kinds: keep only these kinds (a kind or an iterable of ``KINDS.values()``); default all.

    Raises:
        ValueError: an unknown kind, or ``model`` has no encoder Linear of those kinds.
    """
    wanted = set(KINDS.values()) if kinds is None else set([kinds] if isinstance(kinds, str) else kinds)
    unknown = wanted - set(KINDS.values())
    if unknown:
        raise ValueError(f"kinds must be among {list(KINDS.values())}, got {sorted(unknown)}")
    found = {}
    for name, module in model.named_modules():
        match = ENCODER_LAYER.search(name)
        if isinstance(module, nn.Linear) and match and KINDS.get(match.group(2)) in wanted:
            found[name] = module
    if not found:
        raise ValueError("model has no encoder Linear layers of the kinds asked for (expected a BERT-style "
                         "model with modules named '...encoder.layer.<i>.attention.self.query' etc.)")
    return found


def encoder_weights(model: nn.Module, kinds=None) -> dict[str, torch.Tensor]:
    """``{dotted module name: weight}`` of :func:`encoder_linears`: detached ``(out, in)`` float tensors
    that SHARE storage with the model (do not modify them; :func:`apply_masks` restores what it changes)."""
    return {name: linear.weight.detach() for name, linear in encoder_linears(model, kinds).items()}


def _check_masks(model: nn.Module, masks: dict) -> dict[str, nn.Module]:
    """The module of each mask key; TypeError / ValueError for a mask that is not a bool tensor of the
    weight's shape, or a key that is not a module with a ``weight``."""
    if not isinstance(masks, dict) or not masks:
        raise ValueError(f"masks must be a non-empty dict {{module name: bool tensor}}, got {type(masks).__name__}")
    modules = {}
    for name, mask in masks.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"masks: {name!r} is not a module of the model") from None
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"masks: module {name!r} has no weight tensor")
        if not torch.is_tensor(mask) or mask.dtype != torch.bool:
            raise TypeError(f"masks[{name!r}] must be a torch.bool tensor (True = keep), got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if tuple(mask.shape) != tuple(weight.shape):
            raise ValueError(f"masks[{name!r}] has shape {tuple(mask.shape)}, the weight has {tuple(weight.shape)}")
        modules[name] = module
    return modules


@contextlib.contextmanager
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]):
    """Within the ``with`` block, every ``model.get_submodule(name).weight`` has the entries where
    ``masks[name]`` is False set to 0 (in place, no copy of the model); the original weights are
    restored on exit, even after an error.

    ``masks``: ``{dotted module name: torch.bool tensor of the weight's shape}``, True = keep.

    Raises:
        TypeError: a mask is not a bool tensor. ValueError: an unknown module or a shape mismatch.
    """
    modules = _check_masks(model, masks)
    saved = {}
    try:
        with torch.no_grad():
            for name, module in modules.items():
                saved[name] = module.weight.detach().clone()
                module.weight.mul_(masks[name].to(module.weight.device, module.weight.dtype))
        yield model
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                modules[name].weight.copy_(original)


def masked_copy(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A deep copy of ``model`` whose masked weights (``masks[name]`` False) are 0 for good.
    Same checks as :func:`apply_masks`; ``model`` is not modified."""
    pruned = copy.deepcopy(model)
    modules = _check_masks(pruned, masks)
    with torch.no_grad():
        for name, module in modules.items():
            module.weight.mul_(masks[name].to(module.weight.device, module.weight.dtype))
    return pruned


def per_matrix(mask_fn):
    """Local pruning from a one-tensor mask function: returns ``fn(weights: dict, sparsity) ->
    {name: mask_fn(weight, sparsity)}``, the same sparsity in every matrix."""
    def masks_fn(weights: dict, sparsity: float) -> dict:
        return {name: mask_fn(weight, sparsity) for name, weight in weights.items()}

    masks_fn.__name__ = getattr(mask_fn, "__name__", "mask_fn")
    return masks_fn


def matrix_sparsity(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{name: fraction of entries pruned (mask False), 0..1}`` for each mask."""
    return {name: 1.0 - float(torch.as_tensor(mask).float().mean()) for name, mask in masks.items()}


def sparsity_by_kind(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{module kind: fraction of its entries pruned, 0..1}`` over the encoder-Linear masks given
    (``{name: bool mask}``, True = keep), weighted by size, in the order of ``KINDS``.
    Raises ValueError for a name that is not an encoder Linear (see :func:`module_kind`)."""
    pruned, total = {}, {}
    for name, mask in masks.items():
        kind = module_kind(name)
        mask = torch.as_tensor(mask)
        pruned[kind] = pruned.get(kind, 0) + int((~mask.bool()).sum())
        total[kind] = total.get(kind, 0) + mask.numel()
    return {kind: pruned[kind] / total[kind] for kind in KINDS.values() if kind in total}


def sweep_sparsities(model: nn.Module, loader, sparsities, masks_fn, *, kinds=None, results: dict | None = None,
                     progress: bool = False, desc: str = "sweep") -> dict[float, float]:
    """Accuracy (0..1) of ``model`` on ``loader``'s dataset with its encoder Linear weights pruned at each
    sparsity by ``masks_fn``.

    Args:
        masks_fn: ``masks_fn(weights: {name: (out, in) tensor}, sparsity) -> {name: bool mask}``, e.g. the
            learner's ``global_magnitude_masks`` or ``per_matrix(magnitude_mask)``; called once per sparsity.
        kinds: prune only these module kinds (see :func:`encoder_linears`); default all.
        results: a dict ``{sparsity: accuracy}`` to fill; sparsities already in it are not evaluated again
            (pass the same dict to re-run a cell cheaply).
        progress: a ``tqdm.auto`` bar over the sparsities.

    Returns ``results`` (a new dict if none was given). The model is unchanged afterwards.

    Raises:
        ValueError: a sparsity outside [0, 1) or a bad mask (see :func:`apply_masks`).
        TypeError: ``masks_fn`` returned something other than a dict of bool tensors.
    """
    from tqdm.auto import tqdm

    from .train import evaluate

    results = {} if results is None else results
    weights = encoder_weights(model, kinds)
    for sparsity in tqdm(list(sparsities), desc=desc, disable=not progress, leave=False):
        sparsity = float(sparsity)
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsities must be in [0, 1), got {sparsity}")
        if sparsity in results:
            continue
        masks = masks_fn(weights, sparsity)
        if not isinstance(masks, dict):
            raise TypeError(f"{getattr(masks_fn, '__name__', 'masks_fn')} must return a dict of masks, "
                            f"got {type(masks).__name__}")
        with apply_masks(model, masks):
            results[sparsity] = evaluate(model, loader)
    return results


def plot_sparsity_curves(curves: dict[str, dict[float, float]], ax=None, dense_accuracy: float | None = None,
                         title: str = "accuracy vs sparsity", ylabel: str = "accuracy (%)"):
    """One line per entry of ``curves`` (``{label: {sparsity 0..1: accuracy 0..1}}``), sparsity in % on x,
    accuracy in % on y, and the dense accuracy as a dashed line. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.8))[1]
    for (label, points), style in zip(curves.items(), ("o-", "s-", "^-", "v-", "d-", "p-", "h-", "x-")):
        xs = sorted(points)
        ax.plot([100 * s for s in xs], [100 * points[s] for s in xs], style, label=label, alpha=0.8)
    if dense_accuracy is not None:
        ax.axhline(100 * dense_accuracy, color="grey", ls="--", lw=0.8, label="dense")
    ax.set(xlabel="sparsity (% of the weights set to 0)", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return ax


def plot_matrix_sparsity(sparsity: dict[str, float], ax=None, title: str = "sparsity per matrix"):
    """Bar chart of ``{encoder Linear name: sparsity 0..1}`` (in %), one bar per matrix in the given order,
    coloured by module kind, layer numbers on the x axis. Returns ``(Axes, BarContainer)``.

    Raises ValueError if a name is not an encoder Linear (see :func:`module_kind`).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ax = ax or plt.subplots(figsize=(9, 3.2))[1]
    names = list(sparsity)
    kinds = [module_kind(n) for n in names]
    bars = ax.bar(range(len(names)), [100 * sparsity[n] for n in names], color=[KIND_COLORS[k] for k in kinds])
    layers = [layer_index(n) for n in names]
    starts = [i for i, layer in enumerate(layers) if i == 0 or layer != layers[i - 1]]
    ax.set_xticks(starts, [f"L{layers[i]}" for i in starts], fontsize=8)
    ax.set(ylim=(0, 110), ylabel="pruned (%)", xlabel="encoder layer (its matrices left to right)", title=title)
    ax.legend(handles=[Patch(color=KIND_COLORS[k], label=k) for k in KIND_COLORS if k in kinds],
              fontsize=7, ncol=6, loc="upper left")
    return ax, bars


class CSRLinear(nn.Module):
    """A linear layer whose weight ``(out, in)`` is stored in CSR (compressed sparse row) format.

    Buffers (all in the state dict, so ``torch.save`` measures the real storage):
        ``crow_indices``: ``(out + 1,)`` row pointers; ``col_indices``: ``(nnz,)`` column of each stored
        value (both int32 or int64); ``values``: ``(nnz,)`` float32 non-zero weights; ``bias``: ``(out,)``
        float32 or absent.

    Forward: ``x (..., in) -> (..., out)`` as ``torch.mm(W_csr, x.T).T + bias`` with PyTorch's CSR
    kernel (MKL on x86 CPUs). Build one with :meth:`from_linear`.
    """

    def __init__(self, crow_indices, col_indices, values, bias, shape: tuple[int, int]):
        super().__init__()
        self.out_features, self.in_features = shape
        self.register_buffer("crow_indices", crow_indices)
        self.register_buffer("col_indices", col_indices)
        self.register_buffer("values", values)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, index_dtype: torch.dtype = torch.int32) -> "CSRLinear":
        """CSR copy of ``linear``'s weight (its zeros are not stored). ``index_dtype``: torch.int32 or
        torch.int64 (the two PyTorch's CSR kernels accept); ValueError otherwise."""
        if index_dtype not in (torch.int32, torch.int64):
            raise ValueError(f"index_dtype must be torch.int32 or torch.int64, got {index_dtype}")
        csr = linear.weight.detach().float().cpu().to_sparse_csr()
        return cls(csr.crow_indices().to(index_dtype), csr.col_indices().to(index_dtype), csr.values().clone(),
                   linear.bias, tuple(linear.weight.shape))

    def weight_csr(self) -> torch.Tensor:
        """The weight as a ``torch.sparse_csr_tensor`` (shares memory with the buffers)."""
        return torch.sparse_csr_tensor(self.crow_indices, self.col_indices, self.values,
                                       (self.out_features, self.in_features), check_invariants=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)                     # (N, in)
        out = torch.mm(self.weight_csr(), flat.T).T                 # (N, out)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.values.numel()}"


def to_csr(model: nn.Module, names=None, index_dtype: torch.dtype = torch.int32) -> nn.Module:
    """A CPU deep copy of ``model`` with the Linear layers called ``names`` (default: every encoder Linear)
    replaced by :class:`CSRLinear`. ``model`` is not modified."""
    from .quant import replace_module

    sparse = copy.deepcopy(model).cpu()
    names = list(encoder_linears(sparse)) if names is None else list(names)
    for name in names:
        replace_module(sparse, name, CSRLinear.from_linear(sparse.get_submodule(name), index_dtype))
    return sparse.eval()


def matmul_latency(weight: torch.Tensor, rows: int, *, threads: int = 1, min_run_time: float = 0.3,
                   seed: int = 0) -> dict[str, float]:
    """Median latency in ms of ``x @ weight.T`` for a random ``x`` of shape ``(rows, in)``: dense
    (``F.linear``, what ``nn.Linear`` runs) and with the weight in CSR (``torch.mm(W_csr, x.T)``, int32
    indices), measured one after the other in this call with :func:`course.lib.bench.measure_latency`.

    Returns ``{"dense_ms", "csr_ms", "speedup"}`` (``speedup`` = dense / CSR; > 1: CSR is faster).
    Raises ValueError if ``weight`` is not 2-D or ``rows`` < 1.
    """
    from .bench import measure_latency

    weight = torch.as_tensor(weight).detach().float().cpu()
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    x = torch.randn(rows, weight.shape[1], generator=torch.Generator().manual_seed(seed))   # (rows, in)
    csr = weight.to_sparse_csr()
    csr = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape)
    with torch.inference_mode():
        dense_ms, _ = measure_latency(lambda: F.linear(x, weight), threads, min_run_time)
        csr_ms, _ = measure_latency(lambda: torch.mm(csr, x.T), threads, min_run_time)
    return {"dense_ms": dense_ms, "csr_ms": csr_ms, "speedup": dense_ms / csr_ms}



# ----------------------------------------------------------------------------- notebook 03 plumbing
# These take the learner's functions as arguments and only call them; the answers live in notebook 03.


def sweep_table(curves: dict[str, dict[float, float]]):
    """A pandas DataFrame, one row per curve of ``curves`` (``{label: {sparsity 0..1: accuracy 0..1}}``), one
    column per sparsity (``"30%"``), accuracy in % rounded to 0.1."""
    import pandas as pd

    return pd.DataFrame({label: {f"{100 * s:.0f}%": 100 * float(a) for s, a in sorted(points.items())}
                         for label, points in curves.items()}).T.round(1)


def local_global_sweep(model: nn.Module, loader, sparsities, dense_accuracy: float, *, magnitude_mask,
                       global_magnitude_masks, into: dict | None = None,
                       progress: bool = True) -> dict[str, dict[float, float]]:
    """Accuracy of ``model`` with its encoder matrices pruned **locally** (``per_matrix(magnitude_mask)``: each
    matrix at the sparsity) and **globally** (``global_magnitude_masks`` over all of them) at each of
    ``sparsities``, by :func:`sweep_sparsities` (masks applied in place, weights restored).

    Returns ``{"local": {sparsity: accuracy 0..1}, "global": {...}}``; sparsity 0 is ``dense_accuracy``, not
    re-evaluated. ``into``: a dict to fill and return instead (a widget can hold it before the sweep runs: if a
    learner function fails, it stays as it was). Both learner functions first run on a 4-entry tensor, so an
    unfinished one fails in a second.
    Prints how many weights are pruned (share of all the model's parameters) and the time taken.
    """
    import time

    magnitude_mask(torch.randn(4), 0.5), global_magnitude_masks({"w": torch.randn(4)}, 0.5)   # fail fast
    weights = encoder_weights(model)
    n_pruneable = sum(w.numel() for w in weights.values())
    print(f"{len(weights)} encoder matrices, {n_pruneable / 1e6:.1f} M weights = "
          f"{100 * n_pruneable / sum(p.numel() for p in model.parameters()):.0f}% of the model's parameters")
    start = time.perf_counter()
    sweep = into if into is not None else {}
    for mode, masks_fn in (("local", per_matrix(magnitude_mask)), ("global", global_magnitude_masks)):
        sweep[mode] = sweep_sparsities(model, loader, sparsities, masks_fn, results={0.0: dense_accuracy},
                                       progress=progress, desc=mode)
    print(f"{sum(len(points) - 1 for points in sweep.values())} evaluations in {time.perf_counter() - start:.0f} s")
    return sweep


def sensitivity_scan(model: nn.Module, loader, sparsities, masks_fn, dense_accuracy: float,
                     kinds=None) -> dict[str, dict[float, float]]:
    """Prune ONE module kind at a time (in every layer, with ``masks_fn``, e.g. ``per_matrix(magnitude_mask)``),
    every other matrix dense, as in the sensitivity scan of the MIT 6.5940 (TinyML) pruning lab.

    Returns ``{kind: {sparsity: accuracy 0..1}}`` for each of ``kinds`` (default all of ``KINDS``, in that
    order), with sparsity 0 -> ``dense_accuracy``. Prints one line per kind as it is measured.
    Raises ValueError for an unknown kind (see :func:`encoder_linears`).
    """
    import time

    start, scan = time.perf_counter(), {}
    for kind in (KINDS.values() if kinds is None else kinds):
        scan[kind] = sweep_sparsities(model, loader, sparsities, masks_fn, kinds=[kind], results={0.0: dense_accuracy})
        print(f"{kind:>17}:", *(f"{100 * s:.0f}% -> {100 * a:5.1f}%" for s, a in scan[kind].items()),
              f"({time.perf_counter() - start:.0f} s)")
    return scan


def plot_local_global(sweep: dict, sparsity: dict[str, float], dense_accuracy: float, *, ylabel: str = "accuracy (%)",
                      title: str = "global threshold: share pruned per matrix"):
    """Two panels: the ``"local"`` and ``"global"`` curves of ``sweep`` (:func:`local_global_sweep`), and the share
    of each matrix pruned by a global threshold (``sparsity``: ``{encoder Linear name: 0..1}``, as bars by
    :func:`plot_matrix_sparsity`). Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4), width_ratios=(2, 3))
    plot_sparsity_curves({"local (same sparsity per matrix)": sweep["local"], "global (one threshold)": sweep["global"]},
                         ax=ax1, dense_accuracy=dense_accuracy, ylabel=ylabel)
    plot_matrix_sparsity(sparsity, ax=ax2, title=title)
    fig.tight_layout()
    return fig


def describe_pruned(module: nn.Module) -> str:
    """One line on what ``torch.nn.utils.prune`` left in ``module`` (an ``nn.Linear``): the names of its parameters
    and buffers, its forward pre-hooks (class names), its state dict (shape and dtype of each entry) and the share
    of exact zeros in ``module.weight`` (%)."""
    state = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in module.state_dict().items()}
    return (f"parameters {[n for n, _ in module.named_parameters()]} | buffers {[n for n, _ in module.named_buffers()]}"
            f" | forward pre-hooks {[type(h).__name__ for h in module._forward_pre_hooks.values()]}"
            f" | state dict {state} | zeros in weight {100 * float((module.weight == 0).float().mean()):.1f}%")


def measurer(results: list, split, tokenizer, device="cpu"):
    """``measure(model, name, **kwargs)``: :func:`course.lib.bench.benchmark` of ``model`` on ``split`` on ``device``
    (accuracy, ``torch.save`` size, median latency at batch 1 and 32 on one thread; ``kwargs`` go to ``benchmark``,
    e.g. ``min_run_time``), appended to ``results`` and printed as one line. ``measure`` returns None, so that a
    cell ending with it shows only that line."""
    from .bench import benchmark

    def measure(model: nn.Module, name: str, **kwargs) -> None:
        result = benchmark(model, split, tokenizer, name, device=device, **kwargs)
        results.append(result)
        print(f"{name:34s} {100 * result.accuracy:5.1f}%  {result.size_mb:6.1f} MB  {result.latency_ms_b1:6.1f} ms b1  "
              f"{result.latency_ms_b32:7.1f} ms b32  nonzero {result.n_nonzero / 1e6:.1f} M")

    return measure


def break_even_table(rows: int, cols: int, *, csr_bytes, bitmask_bytes, break_even_sparsity):
    """Where sparse formats of a ``(rows, cols)`` matrix break even, with the learner's byte counts
    (``csr_bytes(rows, cols, nnz, value_bytes, index_bytes)``, ``bitmask_bytes(rows, cols, nnz, value_bytes)``) and
    ``break_even_sparsity(size_fn, numel, dense_bytes)``: a pandas DataFrame, one row per format (CSR with int64
    and int32 indices, bitmask + values), columns "vs dense fp32" (sparse values fp32) and "vs dense int8" (sparse
    values int8), the smallest sparsity at which the format is smaller, as text in % ("nan %": never). Prints the
    dense sizes first."""
    import pandas as pd

    numel = rows * cols
    print(f"({rows}, {cols}) matrix: dense fp32 {4 * numel / 1e6:.2f} MB, int8 {numel / 1e6:.2f} MB. "
          "Break-even sparsity (prune at least this share for the format to be smaller):")
    formats = {"CSR, int64 indices (PyTorch default)": lambda nnz, vb: csr_bytes(rows, cols, nnz, vb, 8),
               "CSR, int32 indices": lambda nnz, vb: csr_bytes(rows, cols, nnz, vb, 4),
               "bitmask + values": lambda nnz, vb: bitmask_bytes(rows, cols, nnz, vb)}
    table = pd.DataFrame({f"vs dense {label}": {name: break_even_sparsity(lambda nnz: size(nnz, vb), numel, vb * numel)
                                                for name, size in formats.items()}
                          for label, vb in (("fp32", 4), ("int8", 1))})
    return (100 * table.astype(float)).round(2).astype(str) + " %"


def sparse_matmul_table(weight: torch.Tensor, sparsities, *, magnitude_mask, rows=(1, 32), **kwargs):
    """Dense vs CSR matmul latency (:func:`matmul_latency`, ``kwargs`` passed on) of ``weight`` ``(out, in)`` pruned
    by the learner's ``magnitude_mask`` at each of ``sparsities``, for inputs of each number of ``rows``: a pandas
    DataFrame indexed by (sparsity, rows), columns ``dense_ms``, ``csr_ms``, ``speedup`` (> 1: CSR is faster)."""
    import pandas as pd

    table = []
    for s in sparsities:
        pruned = weight * magnitude_mask(weight, s)
        table += [{"sparsity": f"{100 * s:.0f}%", "rows": n, **matmul_latency(pruned, n, **kwargs)} for n in rows]
    return pd.DataFrame(table).set_index(["sparsity", "rows"]).round(3)


def plot_tradeoffs(results, batches=(1, 32)):
    """One :func:`course.lib.bench.plot_tradeoff` panel (accuracy vs latency) of ``results`` per batch size in
    ``batches``, side by side. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from .bench import plot_tradeoff

    fig, axes = plt.subplots(1, len(batches), figsize=(6.5 * len(batches), 4.5), squeeze=False)
    for ax, batch in zip(axes[0], batches):
        plot_tradeoff(results, ax=ax, batch=batch)
    fig.tight_layout()
    return fig
