"""Plumbing for the pruning notebook (03): masks applied, sweeps, sparse storage (Parts 1-3), and importance
scores, choosing what to keep and recovery (Part 4, structured pruning).

No exercise answer lives here. The learner writes the mask functions (``magnitude_mask``,
``global_magnitude_masks``), the byte counts of sparse formats, and the slicing of heads and FFN neurons
(``prune_heads`` / ``prune_ffn_neurons``); the functions below take them as arguments or only measure.

Unstructured pruning (Parts 1-3):

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
"""

from __future__ import annotations

import contextlib
import copy
import re

import torch
import torch.nn.functional as F
from torch import nn

from .data import SentimentData, make_loader
from .train import MODEL_INPUTS, History, cross_entropy, train

# --- unstructured pruning (Parts 1-3): masks, sweeps, sparse formats --------------------------

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


# --- structured pruning (Part 4): head and FFN-neuron importance, what to keep, recovery fine-tune
#
# Works on transformers' BERT classifiers (``model.bert.encoder.layer[i]`` is a ``BertLayer``),
# before or after heads / neurons were sliced out: sizes are read from the Linear layers, not the config.


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The ``BertLayer`` modules of a BERT classifier (``model.bert.encoder.layer``), in order.

    Raises:
        TypeError: ``model`` has no ``bert.encoder.layer`` (not a transformers BERT model).
    """
    layers = getattr(getattr(getattr(model, "bert", None), "encoder", None), "layer", None)
    if layers is None:
        raise TypeError(f"model must be a transformers BERT model with .bert.encoder.layer, got {type(model).__name__}")
    return list(layers)


def head_counts(model: nn.Module) -> list[int]:
    """Attention heads left in each layer: ``query.out_features // attention_head_size``."""
    return [layer.attention.self.query.out_features // layer.attention.self.attention_head_size
            for layer in encoder_layers(model)]


def ffn_sizes(model: nn.Module) -> list[int]:
    """FFN neurons left in each layer: ``intermediate.dense.out_features``."""
    return [layer.intermediate.dense.out_features for layer in encoder_layers(model)]


@contextlib.contextmanager
def head_gates(model: nn.Module):
    """Multiply every head's output by a gate ξ (1.0: the output is unchanged), for gradients w.r.t. heads.

    transformers 5 removed ``head_mask``; a forward pre-hook on each layer's ``attention.output.dense``
    reshapes its input, the concatenated head outputs ``(B, T, H * d)``, to ``(B, T, H, d)`` and
    multiplies head ``h`` by ``gates[layer][h]``. Yields the list of gate tensors (one ``(H_l,)`` float32
    tensor with ``requires_grad=True`` per layer, on the model's device); the hooks are removed on exit.
    Michel et al. (2019), "Are Sixteen Heads Really Better than One?", section 4.1 (arXiv:1905.10650).
    """
    device = next(model.parameters()).device
    gates, handles = [], []
    for layer, n_heads in zip(encoder_layers(model), head_counts(model)):
        gate = torch.ones(n_heads, device=device, requires_grad=True)
        d = layer.attention.self.attention_head_size

        def pre_hook(module, args, gate=gate, d=d):
            (x,) = args                                        # (B, T, H * d)
            gated = x.unflatten(-1, (-1, d)) * gate[:, None]   # (B, T, H, d)
            return (gated.flatten(-2).to(x.dtype),)
        handles.append(layer.attention.output.dense.register_forward_pre_hook(pre_hook))
        gates.append(gate)
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def _batches(loader, max_batches: int | None, device):
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        yield {k: v.to(device) for k, v in batch.items()}


def _stack(rows: list[torch.Tensor], what: str) -> torch.Tensor:
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"layers have different {what} counts {[len(r) for r in rows]}; score the model before pruning")
    return torch.stack(rows)


def head_importance(model: nn.Module, loader, max_batches: int | None = None, loss_fn=cross_entropy,
                    normalize: bool = True) -> torch.Tensor:
    """Michel et al. (2019) head importance: ``I_h = sum over batches of |dL/dξ_h|``, ξ_h a gate on head h.

    The model runs in eval mode (no dropout); ``torch.autograd.grad`` gives the gradient w.r.t. the gates
    only, so the model's ``.grad`` fields are untouched. With ``normalize`` each layer's scores are divided
    by their L2 norm, as in Michel et al.'s code (section 4.1 and footnote; the "bertology" example of
    transformers), so that heads of different layers can be ranked together.

    Args:
        loader: batches from :func:`course.lib.data.make_loader` (``labels`` included).
        max_batches: use only the first ones (calibration subset); None: all.
        loss_fn: ``loss_fn(logits (B, C), batch) -> scalar``; default cross-entropy on the labels.

    Returns:
        float32 tensor ``(L, H)`` on the CPU, one row per layer, >= 0.

    Raises:
        ValueError: ``max_batches`` < 1, or layers with different head counts (score before pruning).
    """
    device = next(model.parameters()).device
    model.eval()
    with head_gates(model) as gates:
        totals = [torch.zeros_like(g) for g in gates]
        for batch in _batches(loader, max_batches, device):
            logits = model(**{k: v for k, v in batch.items() if k in MODEL_INPUTS}).logits
            grads = torch.autograd.grad(loss_fn(logits, batch), gates)
            totals = [t + g.abs() for t, g in zip(totals, grads)]
    scores = _stack([t.detach().cpu() for t in totals], "head")
    if normalize:
        scores = scores / scores.norm(dim=1, keepdim=True).clamp_min(1e-20)
    return scores


@torch.no_grad()
def ffn_activation_importance(model: nn.Module, loader, max_batches: int | None = None,
                              weighted: bool = True) -> torch.Tensor:
    """FFN neuron importance from activations on calibration batches.

    Neuron ``j`` of a layer has activation ``a_j = GELU(x W1_j + b1_j)`` (the output of
    ``intermediate``); its contribution to the layer's output is ``a_j * W2[:, j]``. The score is the mean
    of ``|a_j|`` over the real (non-padding) tokens, times ``||W2[:, j]||_2`` when ``weighted``
    (the expected size of what the neuron adds to the residual stream; activation x weight-norm scores as in
    Wanda, Sun et al. 2023, arXiv:2306.11695, applied to whole neurons).

    Args:
        loader: batches from :func:`course.lib.data.make_loader` (``attention_mask`` used to skip padding).
        max_batches: use only the first ones; None: all.
        weighted: multiply by the norm of the neuron's output column (False: mean ``|a_j|`` only).

    Returns:
        float32 tensor ``(L, F)`` on the CPU, >= 0.

    Raises:
        ValueError: ``max_batches`` < 1, or layers with different FFN sizes (score before pruning).
    """
    device = next(model.parameters()).device
    model.eval()
    layers = encoder_layers(model)
    sums = [torch.zeros(n, dtype=torch.float64) for n in ffn_sizes(model)]
    state = {"mask": None, "tokens": 0}

    def make_hook(i):
        def hook(module, args, output):                        # output: (B, T, F)
            mask = state["mask"].to(output.dtype)[..., None]   # (B, T, 1)
            sums[i] += (output.abs() * mask).sum(dim=(0, 1)).double().cpu()
        return hook
    handles = [layer.intermediate.register_forward_hook(make_hook(i)) for i, layer in enumerate(layers)]
    try:
        for batch in _batches(loader, max_batches, device):
            state["mask"] = batch["attention_mask"]
            state["tokens"] += int(batch["attention_mask"].sum())
            model(**{k: v for k, v in batch.items() if k in MODEL_INPUTS})
    finally:
        for handle in handles:
            handle.remove()
    scores = _stack([(s / max(state["tokens"], 1)).float() for s in sums], "FFN neuron")
    if weighted:
        norms = _stack([layer.output.dense.weight.detach().float().norm(dim=0).cpu() for layer in layers], "FFN neuron")
        scores = scores * norms
    return scores


def keep_top(scores: torch.Tensor, keep: int | float, per_layer: bool = True, min_per_layer: int = 1) -> list[torch.Tensor]:
    """Which units (heads or neurons) to keep in each layer, the highest-scoring first chosen.

    Args:
        scores: ``(L, N)`` importance, higher = more important.
        keep: units to keep: an int count per layer (``per_layer``) or in total (global), or a float in
            ``(0, 1]``, the share to keep.
        per_layer: the same count in every layer (equal-size layers); False: one global ranking of all
            ``L * N`` scores (rows must be comparable, e.g. normalized), with at least ``min_per_layer``
            units kept in every layer.

    Returns:
        ``L`` sorted int64 tensors of kept indices (ties broken by the lower index).

    Raises:
        ValueError: ``scores`` not 2-D; ``keep`` not in ``(0, 1]`` as a share, or not in ``1..N``
            (per layer) / ``L * min_per_layer .. L * N`` (global) as a count; ``min_per_layer`` not in ``1..N``.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (layers, units), got shape {tuple(scores.shape)}")
    n_layers, n = scores.shape
    if not 1 <= min_per_layer <= n:
        raise ValueError(f"min_per_layer must be in 1..{n}, got {min_per_layer}")
    total = n if per_layer else n_layers * n
    if isinstance(keep, float):
        if not 0 < keep <= 1:
            raise ValueError(f"keep as a share must be in (0, 1], got {keep}")
        keep = max(round(keep * total), 1 if per_layer else n_layers * min_per_layer)
    low = 1 if per_layer else n_layers * min_per_layer
    if not low <= keep <= total:
        raise ValueError(f"keep must be in {low}..{total} ({'per layer' if per_layer else 'in total'}), got {keep}")
    scores = scores.detach().float().cpu()
    # stable descending order: ties keep the lower index
    order = torch.sort(-scores, dim=1, stable=True).indices             # (L, N)
    if per_layer:
        return [order[i, :keep].sort().values for i in range(n_layers)]
    chosen = torch.zeros(n_layers, n, dtype=torch.bool)
    chosen[torch.arange(n_layers)[:, None], order[:, :min_per_layer]] = True
    rest = scores.masked_fill(chosen, float("-inf")).flatten()
    extra = torch.sort(-rest, stable=True).indices[:keep - n_layers * min_per_layer]
    chosen.view(-1)[extra] = True
    return [row.nonzero().flatten() for row in chosen]


def removed(kept: torch.Tensor, n: int) -> list[int]:
    """The indices in ``0..n-1`` that are not in ``kept`` (what to pass to ``prune_heads``)."""
    kept_set = {int(k) for k in kept}
    return [i for i in range(n) if i not in kept_set]


def recover(model: nn.Module, data: SentimentData, tokenizer, *, epochs: int = 1, lr: float = 2e-4,
            batch_size: int = 32, max_length: int = 64, max_train_examples: int | None = None,
            loss_fn=cross_entropy, teacher_logits: torch.Tensor | None = None,
            freeze_word_embeddings: bool = True, seed: int = 0, device=None, progress: bool = True) -> History:
    """Short recovery fine-tune of a pruned classifier on the labels, in place (:func:`course.lib.train.train`).

    As for the students of notebook 01: the word-embedding table stays frozen (``requires_grad_(False)``;
    it is only a lookup but most of the parameters, and updating it with AdamW would cost most of the time),
    AdamW at ``lr`` with linear warm-up/decay, the epoch with the best validation accuracy kept.

    Args:
        data: train split used (its first ``max_train_examples`` sentences if given), validation for selection.
        loss_fn: ``loss_fn(logits (B, C), batch) -> scalar``; default cross-entropy on the labels.
        teacher_logits: optional ``(len(data.train), C)`` logits of the dense model for every training sentence
            (``course.lib.predict_logits``), carried in each batch as ``batch["teacher_logits"]`` for a
            distillation ``loss_fn`` (notebook 01); only the first ``max_train_examples`` rows are used.
        epochs, lr, batch_size, max_length, seed, device, progress: passed to :func:`course.lib.train.train`.

    Returns:
        the :class:`course.lib.train.History`; ``model`` is left in eval mode.

    Raises:
        ValueError: ``max_train_examples`` not in ``1..len(data.train)``, ``teacher_logits`` without one row per
            training sentence; see :func:`course.lib.train.train`.
    """
    split = data.train
    if teacher_logits is not None and len(teacher_logits) != len(data.train):
        raise ValueError(f"teacher_logits must have one row per training sentence ({len(data.train)}), "
                         f"got {len(teacher_logits)}")
    if max_train_examples is not None:
        if not 1 <= max_train_examples <= len(data.train):
            raise ValueError(f"max_train_examples must be in 1..{len(data.train)}, got {max_train_examples}")
        split = data.train.subset(max_train_examples)
    if freeze_word_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    extras = None if teacher_logits is None else {"teacher_logits": teacher_logits[:len(split)]}
    loader = make_loader(split, tokenizer, batch_size, shuffle=True, max_length=max_length, seed=seed, extras=extras)
    val_loader = make_loader(data.validation, tokenizer, 64, max_length=max_length)
    history = train(model, loader, val_loader, epochs=epochs, lr=lr, loss_fn=loss_fn, seed=seed, device=device,
                    progress=progress)
    model.eval()
    return history
