"""Plumbing for structured pruning in notebook 03 (Part 4): whole attention heads and FFN neurons.

No exercise answer lives here: the learner slices heads and neurons out (``prune_heads``,
``prune_ffn_neurons``). This module scores them, chooses what to keep, builds the references the tests
compare with, and runs the recovery fine-tune:

* :func:`encoder_layers`, :func:`head_counts`, :func:`ffn_sizes`: a BERT classifier's layers and what is left
  in them (read from the Linear layers, so they are right before and after slicing);
* :func:`zero_heads`, :func:`zero_neurons`: copies of a layer whose output projections ignore some heads /
  neurons (columns set to 0): the same function as removing them, with the shapes unchanged;
* :func:`head_gates`, :func:`head_importance`: Michel et al. (2019) gate gradients, since transformers 5
  has no ``head_mask``; :func:`ffn_activation_importance`: activation x output-norm scores;
* :func:`keep_top`, :func:`removed`: what to keep, per layer or by one global ranking;
* :func:`plot_importance`: the two importance maps with what is removed marked;
* :func:`recover`: a short fine-tune of the pruned model (frozen word embeddings, as in notebook 01);
* :func:`layer_output`: a layer's output on a fixed probe batch (what the tests compare);
  :func:`structured_copy`: a pruned copy of the whole model, sliced by the learner's two functions;
  :func:`compare_accuracy`: several models on one split, side by side.

Works on transformers' BERT classifiers (``model.bert.encoder.layer[i]`` is a ``BertLayer``).
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from .data import SentimentData, make_loader
from .train import MODEL_INPUTS, History, cross_entropy, model_device, train


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


def zero_heads(layer: nn.Module, heads) -> nn.Module:
    """A deep copy of a ``BertLayer`` whose attention-output projection ignores ``heads``.

    The attention output is ``sum_h head_h @ W_O[:, cols_h].T + b_O`` with ``cols_h = h*d .. (h+1)*d - 1``
    (``d = attention_head_size``), so setting those columns of ``attention.output.dense.weight`` to 0 computes
    exactly what the layer computes with the heads removed, with every shape unchanged: the reference that
    the tests of ``prune_heads`` compare with. ``layer`` is not modified.

    Raises:
        ValueError: a head index outside ``0 .. H - 1``.
    """
    layer = copy.deepcopy(layer)
    d = layer.attention.self.attention_head_size
    n_heads = layer.attention.self.query.out_features // d
    heads = [int(h) for h in heads]
    if any(not 0 <= h < n_heads for h in heads):
        raise ValueError(f"heads must be in 0..{n_heads - 1}, got {heads}")
    with torch.no_grad():
        for h in heads:
            layer.attention.output.dense.weight[:, h * d:(h + 1) * d] = 0
    return layer


def zero_neurons(layer: nn.Module, keep) -> nn.Module:
    """A deep copy of a ``BertLayer`` whose second FFN matrix ignores every neuron not in ``keep``.

    ``FFN(x) = sum_j GELU(x @ W1[j] + b1[j]) * W2[:, j] + b2``: with the columns ``W2[:, j]`` of the other
    neurons set to 0 the layer computes exactly what it computes with only ``keep`` left, shapes unchanged (the
    reference of the ``prune_ffn_neurons`` tests). ``layer`` is not modified.

    Raises:
        ValueError: an index of ``keep`` outside ``0 .. F - 1``.
    """
    layer = copy.deepcopy(layer)
    n = layer.output.dense.in_features
    kept = {int(j) for j in keep}
    if any(not 0 <= j < n for j in kept):
        raise ValueError(f"keep must hold indices in 0..{n - 1}, got {sorted(kept)[:10]}")
    with torch.no_grad():
        layer.output.dense.weight[:, [j for j in range(n) if j not in kept]] = 0
    return layer


@contextlib.contextmanager
def head_gates(model: nn.Module):
    """Multiply every head's output by a gate ξ (1.0: the output is unchanged), for gradients w.r.t. heads.

    transformers 5 removed ``head_mask``; a forward pre-hook on each layer's ``attention.output.dense``
    reshapes its input, the concatenated head outputs ``(B, T, H * d)``, to ``(B, T, H, d)`` and
    multiplies head ``h`` by ``gates[layer][h]``. Yields the list of gate tensors (one ``(H_l,)`` float32
    tensor with ``requires_grad=True`` per layer, on the model's device); the hooks are removed on exit.
    Michel et al. (2019), "Are Sixteen Heads Really Better than One?", section 4.1 (arXiv:1905.10650).
    """
    device = model_device(model)
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
    device = model_device(model)
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
    device = model_device(model)
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


def plot_importance(head_scores: torch.Tensor, neuron_scores: torch.Tensor, heads_kept, neurons_kept: int):
    """Two panels: the ``(L, H)`` head importance map with removed heads marked "×" (``heads_kept``: the
    ``L`` tensors of :func:`keep_top`), and each layer's ``(F,)`` neuron scores sorted, with a line at
    ``neurons_kept``. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    head_scores = torch.as_tensor(head_scores).detach().float().cpu().numpy()       # (L, H)
    neuron_scores = torch.as_tensor(neuron_scores).detach().float().cpu()            # (L, F)
    n_layers, n_heads = head_scores.shape
    fig, (ax_h, ax_f) = plt.subplots(1, 2, figsize=(12, 3.6))
    image = ax_h.imshow(head_scores, cmap="viridis")
    for layer_index, kept in enumerate(heads_kept):
        for h in removed(kept, n_heads):
            ax_h.text(h, layer_index, "×", ha="center", va="center", color="white", fontsize=12)
    ax_h.set(xlabel="head", ylabel="layer", title="head importance (Michel et al.); × = removed",
             xticks=range(n_heads), yticks=range(n_layers))
    fig.colorbar(image, ax=ax_h, fraction=0.03)
    for layer_index, row in enumerate(neuron_scores):
        ax_f.plot(row.sort(descending=True).values.numpy(), label=f"layer {layer_index}")
    ax_f.axvline(neurons_kept, color="black", linestyle="--", label=f"keep {neurons_kept}")
    ax_f.set(yscale="log", xlabel="neurons, most important first", ylabel="importance (log scale)",
             title="FFN neuron importance (activation × output norm)")
    ax_f.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig



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


def layer_output(layer: nn.Module, seed: int = 0) -> torch.Tensor:
    """Output ``(2, 7, hidden)`` float32 (on the CPU) of a ``BertLayer`` on a fixed probe, in inference mode: hidden
    states ``randn(2, 7, hidden)`` (generator seeded with ``seed``), the second sentence with its last 2 tokens
    padding (additive attention mask ``(2, 1, 1, 7)``, ``finfo.min`` on padding). The tests of notebook 03 compare a
    pruned layer with a zeroed one (:func:`zero_heads`, :func:`zero_neurons`) on it."""
    param = next(layer.parameters())
    x = torch.randn(2, 7, layer.attention.output.dense.out_features, generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(2, 1, 1, 7)
    mask[1, ..., 5:] = torch.finfo(torch.float32).min
    with torch.inference_mode():
        return torch.as_tensor(layer(x.to(param), attention_mask=mask.to(param))).float().cpu()


def structured_copy(model: nn.Module, heads_kept, neurons_kept, *, prune_heads, prune_ffn_neurons) -> nn.Module:
    """A CPU deep copy of a BERT classifier (eval mode) that keeps, in layer ``i``, only the heads ``heads_kept[i]``
    and the FFN neurons ``neurons_kept[i]`` (index tensors, as :func:`keep_top` returns them), sliced in place by the
    learner's ``prune_heads(layer, heads_to_remove)`` and ``prune_ffn_neurons(layer, keep)``. Both are first tried on
    a copy of layer 0, so an unfinished one fails in a second. ``model`` is not modified.

    Raises:
        ValueError: ``heads_kept`` or ``neurons_kept`` does not have one entry per encoder layer.
    """
    layers = encoder_layers(model)
    if not len(heads_kept) == len(neurons_kept) == len(layers):
        raise ValueError(f"heads_kept and neurons_kept need one entry per layer ({len(layers)}), "
                         f"got {len(heads_kept)} and {len(neurons_kept)}")
    prune_heads(copy.deepcopy(layers[0]), [0]), prune_ffn_neurons(copy.deepcopy(layers[0]), [0])   # fail fast
    pruned = copy.deepcopy(model).cpu().eval()
    for layer, n_heads, heads, neurons in zip(encoder_layers(pruned), head_counts(pruned), heads_kept, neurons_kept):
        prune_heads(layer, removed(heads, n_heads))
        prune_ffn_neurons(layer, neurons)
    return pruned


def compare_accuracy(models: dict, split, tokenizer, batch_size: int = 64) -> dict[str, float]:
    """Accuracy (0..1) of each of ``models`` (``{name: model}``) on the whole ``split`` (one loader for all, each model
    on its own device), printed with each one's difference to the first, in points. Returns ``{name: accuracy}``.
    Raises ValueError if ``models`` is empty."""
    from .train import evaluate

    if not models:
        raise ValueError("models must be a non-empty dict {name: model}")
    loader = make_loader(split, tokenizer, batch_size)
    accuracies = {name: evaluate(model, loader) for name, model in models.items()}
    first = next(iter(accuracies.values()))
    print(f"accuracy on {len(split):,} sentences:",
          ", ".join(f"{name} {100 * acc:.1f}% ({100 * (acc - first):+.1f} points)" for name, acc in accuracies.items()))
    return accuracies
