"""Interactive widgets (ipywidgets + matplotlib) that show the learner's own implementations.

Each widget takes the learner's functions as arguments, draws into ONE matplotlib ``Figure`` and
updates it in place when a control moves (no new figure per move).

How a figure reaches the page: the figure is rendered to PNG bytes (``Figure.savefig`` into a
buffer, matplotlib's documented way to use a figure without pyplot, "Embedding in a web
application server") and shown in an ``ipywidgets.Image`` whose value is replaced on every move.
Unlike ``display(figure)`` inside an ``Output``, this does not depend on pyplot's inline backend
having been activated by an earlier cell (a bare ``Figure`` then displays as the text
``<Figure size ... with 1 Axes>``), and unlike ``%matplotlib widget`` (ipympl) it needs no
front-end extension: it renders the same in JupyterLab, Notebook 7, VS Code and nbconvert.

When a learner's function is not implemented yet (or raises), the widget shows one line naming
the function and what to do (an ``ipywidgets.HTML`` with CSS class ``course-widget-message``)
instead of a traceback through this module.
"""

from __future__ import annotations

import html
import io


def figure_png(figure, dpi: int = 100) -> bytes:
    """PNG bytes of a matplotlib ``Figure`` (``figure.savefig`` into memory; no pyplot involved)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class LearnerCodeError(Exception):
    """A learner's function raised (or is not implemented); ``str()`` is the one line to show."""


def call_learner(fn, *args, **kwargs):
    """Call the learner's ``fn``; turn any exception into a :class:`LearnerCodeError` whose text
    names the function and says what to do. ``KeyboardInterrupt`` is not caught."""
    name = getattr(fn, "__name__", repr(fn))
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise LearnerCodeError(f"{name}() is not implemented yet: write it in its exercise cell above "
                               f"(replace raise NotImplementedError()), run that cell, then run this cell again.") from None
    except Exception as error:  # noqa: BLE001 - any learner error becomes one readable line
        raise LearnerCodeError(f"{name}() raised {type(error).__name__}: {error}. Fix it in its exercise cell "
                               f"above, run that cell, then move the slider again.") from None


class FigureView:
    """One figure shown as an ``ipywidgets.Image`` plus a one-line message for learner errors.

    ``view.update(draw)`` calls ``draw()`` (which changes the figure in place); on success it
    re-renders the image and clears the message, on :class:`LearnerCodeError` it hides the image
    and shows the message. Handles: ``.figure``, ``.image`` (PNG bytes in ``.image.value``),
    ``.message`` (``ipywidgets.HTML``, empty when all is well), ``.widgets`` (both, for a VBox).
    """

    def __init__(self, figure):
        import ipywidgets as widgets

        self.figure = figure
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.message = widgets.HTML("")
        self.message.add_class("course-widget-message")
        self.widgets = [self.message, self.image]

    def update(self, draw) -> bool:
        """Run ``draw()`` and show the result; return False (message shown) if learner code failed."""
        try:
            draw()
        except LearnerCodeError as error:
            self.message.value = (f'<div style="color:#b00020;font-weight:600;padding:4px 0">&#9888; '
                                  f"{html.escape(str(error))}</div>")
            self.image.layout.display = "none"
            return False
        self.message.value = ""
        self.image.layout.display = None
        self.image.value = figure_png(self.figure)
        return True


# --- temperature slider (notebook 01) -------------------------------------------------------

def entropy_bits(probs):
    """Entropy in bits of each row of a ``(N, C)`` probability tensor: ``-sum p log2 p`` (0 log 0 = 0)."""
    import torch

    probs = torch.as_tensor(probs, dtype=torch.float64)
    return -(probs * torch.log2(probs.clamp_min(1e-300))).sum(-1)


def temperature_explorer(softmax_fn, model, tokenizer, sentences: list[str], temperature: float = 1.0,
                         labels=("negative", "positive"), your_sentence: str = "Not bad at all, but far too long.",
                         t_min: float = 0.5, t_max: float = 20.0):
    """A temperature slider over the teacher's class probabilities, computed by ``softmax_fn``.

    ``softmax_fn(logits (N, C), temperature) -> (N, C)`` is the learner's function. The model runs
    once per sentence (logits are cached); moving the slider only calls ``softmax_fn`` and updates
    the bars, entropies (bits) and title of ONE matplotlib figure in place, shown as a PNG image.
    A text box adds a sentence of your own as the last group of bars (re-run the model on Enter).
    If ``softmax_fn`` is not implemented or fails, the widget shows one line saying so.

    Returns an ``ipywidgets.VBox`` with handles for tests and tinkering: ``.slider``, ``.text``,
    ``.figure``, ``.bars`` (one matplotlib ``BarContainer`` per class), ``.probs`` (last ``(N, C)``
    probabilities drawn), ``.image`` (``ipywidgets.Image``) and ``.message`` (``ipywidgets.HTML``).

    Raises ValueError if ``sentences`` is empty or ``temperature`` is outside ``[t_min, t_max]``.
    """
    import textwrap

    import ipywidgets as widgets
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    if not sentences:
        raise ValueError("sentences must hold at least one sentence")
    if not t_min <= temperature <= t_max:
        raise ValueError(f"temperature must be in [{t_min}, {t_max}], got {temperature}")
    from .data import Split, make_loader
    from .train import predict_logits

    def logits_of(texts: list[str]) -> torch.Tensor:  # (len(texts), C) float32, one batch, dataset order
        return predict_logits(model, make_loader(Split(texts, [0] * len(texts)), tokenizer, batch_size=len(texts)))

    sentences = list(sentences)
    state = {"logits": logits_of([*sentences, your_sentence]), "your_sentence": your_sentence}
    n_groups, n_classes = state["logits"].shape
    width = 0.8 / n_classes
    x = np.arange(n_groups)

    figure = Figure(figsize=(9, 4.2), layout="constrained")
    ax = figure.add_subplot()
    bars = [ax.bar(x + (k - (n_classes - 1) / 2) * width, np.zeros(n_groups), width, label=labels[k])
            for k in range(n_classes)]
    entropy_text = [ax.text(i, 1.02, "", ha="center", va="bottom", fontsize=8) for i in range(n_groups)]
    uniform = ax.axhline(1 / n_classes, color="grey", lw=0.8, ls="--", label=f"uniform (1/{n_classes})")
    ax.set(ylim=(0, 1.12), xlim=(-0.6, n_groups - 0.4), ylabel="probability (0–1)",
           xlabel="sentence (H above each pair: entropy of its probabilities, in bits)")
    figure.legend(handles=[*bars, uniform], loc="outside right upper", fontsize=8)

    def wrap(text: str) -> str:
        lines = textwrap.wrap(text, 20) or [""]
        return "\n".join(lines[:3]) + ("…" if len(lines) > 3 else "")

    def tick_labels():
        names = [wrap(s) for s in sentences] + [wrap(f"you: {state['your_sentence']}")]
        ax.set_xticks(x, names, fontsize=8)

    slider = widgets.FloatSlider(value=temperature, min=t_min, max=t_max, step=0.5, description="temperature T",
                                 continuous_update=True, readout_format=".1f",
                                 style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))
    text = widgets.Text(value=your_sentence, description="your sentence", continuous_update=False,
                        style={"description_width": "initial"}, layout=widgets.Layout(width="460px"))
    view = FigureView(figure)
    box = widgets.VBox([widgets.HBox([slider, text]), *view.widgets])
    name = getattr(softmax_fn, "__name__", "softmax_fn")

    def draw():
        t = float(slider.value)
        probs = call_learner(softmax_fn, state["logits"].clone(), t)
        probs = torch.as_tensor(probs).detach().float()
        if probs.shape != state["logits"].shape:
            raise LearnerCodeError(f"{name}() returned shape {tuple(probs.shape)}, expected "
                                   f"{tuple(state['logits'].shape)} (one row of probabilities per sentence)")
        entropy = entropy_bits(probs)
        for k, container in enumerate(bars):
            for rect, p in zip(container.patches, probs[:, k].tolist()):
                rect.set_height(p)
        for label, h in zip(entropy_text, entropy.tolist()):
            label.set_text(f"H={h:.2f}")
        ax.set_title(f"teacher's class probabilities at T = {t:.1f} (max entropy {np.log2(n_classes):.0f} bit)",
                     fontsize=10)
        box.probs = probs

    def redraw(*_):
        view.update(draw)

    def new_sentence(change):
        state["your_sentence"] = change["new"] or " "
        state["logits"][-1] = logits_of([state["your_sentence"]])[0]
        tick_labels()
        redraw()

    box.slider, box.text, box.figure, box.bars = slider, text, figure, bars
    box.image, box.message, box.probs = view.image, view.message, None
    tick_labels()
    slider.observe(redraw, names="value")
    text.observe(new_sentence, names="value")
    redraw()
    return box

# --- bit-width slider (notebook 02) ---------------------------------------------------------

def plot_bit_sweep(sweep: dict, fp32_accuracy: float | None = None, ax=None, ylabel: str = "test accuracy (%)"):
    """Accuracy (%) vs bits per weight, one line per mode of ``sweep`` (``{"per-tensor": {bits: accuracy
    0..1}, "per-channel": {...}}``; empty modes are skipped), with fp32 as a dashed line. Returns the Axes
    (a new figure when ``ax`` is None). The bit-width slider draws its right panel with it."""
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(figsize=(6, 3.5))[1]
    for mode, style in zip(("per-tensor", "per-channel"), ("o-", "s-")):
        points = sorted((sweep or {}).get(mode, {}).items())
        if points:
            ax.plot([b for b, _ in points], [100 * a for _, a in points], style, label=mode, alpha=0.7)
    if fp32_accuracy is not None:
        ax.axhline(100 * fp32_accuracy, color="grey", ls="--", lw=0.8, label="fp32")
    ax.set(xlabel="bits per weight (Linear layers)", ylabel=ylabel, xticks=range(2, 9))
    ax.legend(fontsize=8, loc="lower right")
    return ax


def bitwidth_explorer(weight, sweep: dict, *, qparams, quantize, dequantize, quantize_per_channel,
                      bits: int = 4, per_channel: bool = False, row: int | None = None,
                      fp32_accuracy: float | None = None, title: str = "weight"):
    """A bit-width slider (2..8) and a per-tensor / per-channel toggle over one real weight matrix.

    Uses the learner's functions: ``qparams(x, bits) -> (scale, zero_point)`` (asymmetric,
    unsigned range ``0 .. 2**bits - 1``), ``quantize(x, bits, scale, zero_point)``,
    ``dequantize(q, scale, zero_point)`` and ``quantize_per_channel(w, bits, axis) -> (q, scale,
    zero_point)`` (per row, ``axis=0``). One figure, updated in place:

    * left: histogram of one row of ``weight`` (``row``; default the row with the smallest
      range, where per-tensor levels are coarsest) with the quantization levels it is rounded to
      drawn as vertical lines, and the mean squared error of the whole matrix;
    * right: test accuracy vs bits READ from ``sweep`` (nothing is re-evaluated, so moving the
      slider is instant), the current setting marked.

    ``sweep``: ``{"per-tensor": {bits: accuracy 0..1}, "per-channel": {bits: accuracy}}`` (a
    missing entry is shown as "not measured").

    Returns an ``ipywidgets.VBox`` with handles: ``.slider`` (IntSlider), ``.mode`` (ToggleButtons,
    ``"per-tensor"`` / ``"per-channel"``), ``.figure``, ``.levels`` (the LineCollection of level
    lines), ``.mse_text`` (matplotlib Text), ``.mse`` (last MSE, float), ``.level_values`` (last
    levels drawn, 1-D tensor), ``.image`` (``ipywidgets.Image``) and ``.message`` (``ipywidgets.HTML``:
    one line naming the learner function that is not implemented or failed, else empty).

    Raises ValueError if ``weight`` is not 2-D or ``bits`` is outside 2..8.
    """
    import ipywidgets as widgets
    import torch
    from matplotlib.figure import Figure

    weight = torch.as_tensor(weight).detach().float().cpu()
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    ranges = weight.amax(1).clamp_min(0) - weight.amin(1).clamp_max(0)
    row = int(ranges.argmin()) if row is None else int(row)
    values = weight[row].numpy()

    figure = Figure(figsize=(10, 4.0), layout="constrained")
    ax, ax_acc = figure.subplots(1, 2, width_ratios=(3, 2))
    heights, _, _ = ax.hist(values, bins=80, color="tab:blue", alpha=0.7)
    top = float(heights.max()) * 1.1
    levels = ax.vlines([], 0, top, colors="tab:red", lw=0.7, alpha=0.8, label="quantization levels")
    pad = 0.15 * float(values.max() - values.min())
    ax.set(xlim=(float(values.min()) - pad, float(values.max()) + pad), ylim=(0, top * 1.15),
           xlabel=f"{title}, row {row}: weight value", ylabel="count (weights in this row)")
    mse_text = ax.set_title(" \n \n ", loc="left", fontsize=9, family="monospace")  # 3 lines above the axes
    ax.legend(loc="upper right", fontsize=8)

    modes = ("per-tensor", "per-channel")
    (marker,) = ax_acc.plot([], [], "*", color="black", ms=16, label="current")
    plot_bit_sweep(sweep, fp32_accuracy, ax=ax_acc).set_title("from the cached sweep")

    slider = widgets.IntSlider(value=bits, min=2, max=8, step=1, description="bits", continuous_update=True)
    mode = widgets.ToggleButtons(options=list(modes), value=modes[int(bool(per_channel))])
    view = FigureView(figure)
    box = widgets.VBox([widgets.HBox([slider, mode]), *view.widgets])

    def draw():
        b, m = int(slider.value), mode.value
        if m == "per-channel":
            q, scale, zero_point = call_learner(quantize_per_channel, weight, b, 0)
            scale = torch.as_tensor(scale).reshape(-1, 1)
            zero_point = torch.as_tensor(zero_point).reshape(-1, 1)
            row_scale, row_zero = scale[row], zero_point[row]
        else:
            scale, zero_point = call_learner(qparams, weight, b)
            q = call_learner(quantize, weight, b, scale, zero_point)
            row_scale, row_zero = scale, zero_point
        mse = float(((call_learner(dequantize, q, scale, zero_point) - weight) ** 2).mean())
        codes = torch.arange(0, 2 ** b, dtype=torch.int32)
        level_values = torch.as_tensor(call_learner(dequantize, codes, row_scale, row_zero)).flatten().float()
        levels.set_segments([[(v, 0.0), (v, top)] for v in level_values.tolist()])
        in_view = int(((level_values >= float(values.min())) & (level_values <= float(values.max()))).sum())
        accuracy = (sweep or {}).get(m, {}).get(b)
        acc_text = "not measured" if accuracy is None else f"{100 * accuracy:.1f}%"
        mse_text.set_text(f"{m}, {b} bits: {2 ** b} levels ({in_view} inside this row's range)\n"
                          f"MSE (whole matrix) = {mse:.3e}\ntest accuracy (sweep) = {acc_text}")
        marker.set_data([b] if accuracy is not None else [], [100 * accuracy] if accuracy is not None else [])
        box.mse, box.level_values = mse, level_values

    def redraw(*_):
        view.update(draw)

    box.slider, box.mode, box.figure, box.levels, box.mse_text = slider, mode, figure, levels, mse_text
    box.image, box.message, box.row, box.mse, box.level_values = view.image, view.message, row, None, None
    slider.observe(redraw, names="value")
    mode.observe(redraw, names="value")
    redraw()
    return box

# --- sparsity slider (notebook 03) ----------------------------------------------------------

def sparsity_explorer(weights: dict, sweep: dict, *, magnitude_mask, global_magnitude_masks,
                      sparsity: float = 0.5, mode: str = "local", name: str | None = None,
                      dense_accuracy: float | None = None, max_sparsity: float = 0.95):
    """A sparsity slider (0 .. ``max_sparsity``, steps of 5 %) and a local / global toggle over real weights.

    Uses the learner's functions: ``magnitude_mask(weight, sparsity) -> bool mask`` (True = keep; local:
    the same sparsity in every matrix) and ``global_magnitude_masks(weights, sparsity) -> {name: bool
    mask}`` (one magnitude threshold across all matrices). One figure, updated in place:

    * top left: histogram of the weights of one matrix (``name``; default the first), with the cut-off
      ``|w| <= t`` that its mask implies drawn at ``-t`` and ``+t`` (everything between is pruned);
    * top right: accuracy vs sparsity READ from ``sweep`` (nothing is re-evaluated); between two
      measured sparsities the value shown is interpolated and says so;
    * bottom: the sparsity each matrix got (all equal for local pruning; chosen by the threshold for
      global pruning), coloured by module kind.

    Masks are cached per (mode, sparsity), so revisiting a setting is instant.

    Args:
        weights: ``{encoder Linear name: (out, in) float tensor}``, e.g. ``course.lib.prune.encoder_weights``.
        sweep: ``{"local": {sparsity 0..1: accuracy 0..1}, "global": {...}}`` (missing entries: "not measured").

    Returns an ``ipywidgets.VBox`` with handles: ``.slider`` (FloatSlider, sparsity 0..1), ``.mode``
    (ToggleButtons ``"local"`` / ``"global"``), ``.figure``, ``.bars`` (matplotlib ``BarContainer``, one bar
    per matrix, heights in %), ``.cutoff`` (LineCollection of the two cut-off lines), ``.info`` (the
    title Text), ``.matrix_sparsity`` (last ``{name: sparsity}``), ``.threshold`` (last cut-off of the
    histogram's matrix, float or None), ``.accuracy`` (last accuracy shown, or None), ``.image``
    (``ipywidgets.Image``) and ``.message`` (``ipywidgets.HTML``: one line naming the learner function
    that is not implemented or failed, else empty).

    Raises ValueError if ``weights`` is empty or holds a tensor that is not 2-D, ``name`` is not one of
    its keys, ``mode`` is not "local" / "global", or ``sparsity`` is outside ``[0, max_sparsity]``.
    """
    import ipywidgets as widgets
    import numpy as np
    import torch
    from matplotlib.figure import Figure

    from .prune import KIND_COLORS, KINDS, layer_index, module_kind

    modes = ("local", "global")
    if not isinstance(weights, dict) or not weights:
        raise ValueError("weights must be a non-empty dict {name: (out, in) tensor}")
    weights = {n: torch.as_tensor(w).detach().float().cpu() for n, w in weights.items()}
    bad = [n for n, w in weights.items() if w.dim() != 2]
    if bad:
        raise ValueError(f"weights must be 2-D (out, in) tensors; not 2-D: {bad[:3]}")
    name = next(iter(weights)) if name is None else name
    if name not in weights:
        raise ValueError(f"name must be one of the keys of weights, got {name!r}")
    if mode not in modes:
        raise ValueError(f"mode must be 'local' or 'global', got {mode!r}")
    if not 0.0 <= sparsity <= max_sparsity:
        raise ValueError(f"sparsity must be in [0, {max_sparsity}], got {sparsity}")
    names = list(weights)
    values = weights[name].flatten().numpy()

    def kind(n):
        try:
            return module_kind(n)
        except ValueError:
            return "other"

    figure = Figure(figsize=(11, 6.6), layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=(3, 2))
    ax_hist, ax_acc, ax_bars = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1]), figure.add_subplot(grid[1, :])
    heights, _, _ = ax_hist.hist(values, bins=120, color="tab:blue", alpha=0.7)
    top = float(heights.max()) * 1.1
    cutoff = ax_hist.vlines([], 0, top, colors="tab:red", lw=1.5, label="cut-off ±t (|w| ≤ t pruned)")
    lo, hi = np.percentile(values, [0.05, 99.95])       # a few outliers would squeeze the cut-off into the centre
    ax_hist.set(xlim=(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)), ylim=(0, top * 1.1),
                xlabel=f"{name}: weight value (0.05-99.95 percentile range)", ylabel="count (weights)")
    ax_hist.legend(loc="upper right", fontsize=8)
    info = ax_hist.set_title(" \n ", loc="left", fontsize=9, family="monospace")

    styles = {"local": "o-", "global": "s-"}
    for m in modes:
        points = sorted((sweep or {}).get(m, {}).items())
        if points:
            ax_acc.plot([100 * s for s, _ in points], [100 * a for _, a in points], styles[m], label=m, alpha=0.7)
    if dense_accuracy is not None:
        ax_acc.axhline(100 * dense_accuracy, color="grey", ls="--", lw=0.8, label="dense")
    (marker,) = ax_acc.plot([], [], "*", color="black", ms=16, label="current")
    ax_acc.set(xlabel="sparsity (%)", ylabel="accuracy (%)", xlim=(-3, 100 * max_sparsity + 3),
               title="from the cached sweep")
    ax_acc.legend(fontsize=8, loc="lower left")

    colors = [KIND_COLORS.get(kind(n), "tab:gray") for n in names]
    bars = ax_bars.bar(range(len(names)), np.zeros(len(names)), color=colors)
    try:
        layers = [layer_index(n) for n in names]
        starts = [i for i, layer in enumerate(layers) if i == 0 or layer != layers[i - 1]]
        ax_bars.set_xticks(starts, [f"L{layers[i]}" for i in starts], fontsize=8)
    except ValueError:
        ax_bars.set_xticks(range(len(names)), [str(i) for i in range(len(names))], fontsize=7)
    from matplotlib.patches import Patch
    present = [k for k in [*KINDS.values(), "other"] if k in {kind(n) for n in names}]
    ax_bars.legend(handles=[Patch(color=KIND_COLORS.get(k, "tab:gray"), label=k) for k in present],
                   fontsize=7, ncol=len(present), loc="upper left")
    bars_title = ax_bars.set_title("", fontsize=9)
    ax_bars.set(ylim=(0, 110), ylabel="pruned (%)", xlabel="matrix (grouped by encoder layer)")

    slider = widgets.FloatSlider(value=sparsity, min=0.0, max=max_sparsity, step=0.05, description="sparsity",
                                 continuous_update=False, readout_format=".0%")
    toggle = widgets.ToggleButtons(options=list(modes), value=mode)
    view = FigureView(figure)
    box = widgets.VBox([widgets.HBox([slider, toggle]), *view.widgets])
    cache = {}

    def masks_for(m, s):
        key = (m, round(s, 4))
        if key not in cache:
            if m == "global":
                masks = call_learner(global_magnitude_masks, weights, s)
                fn_name = getattr(global_magnitude_masks, "__name__", "global_magnitude_masks")
                if not isinstance(masks, dict) or set(masks) != set(names):
                    raise LearnerCodeError(f"{fn_name}() must return a dict with one mask per weight "
                                           f"({len(names)} names), got {type(masks).__name__}")
            else:
                masks = {n: call_learner(magnitude_mask, w, s) for n, w in weights.items()}
                fn_name = getattr(magnitude_mask, "__name__", "magnitude_mask")
            for n, mask in masks.items():
                if not torch.is_tensor(mask) or mask.dtype != torch.bool or mask.shape != weights[n].shape:
                    raise LearnerCodeError(f"{fn_name}() must return torch.bool masks of the weight's shape "
                                           f"{tuple(weights[n].shape)}; got {getattr(mask, 'dtype', type(mask).__name__)} "
                                           f"{tuple(getattr(mask, 'shape', ()))} for {n}")
            cache[key] = masks
        return cache[key]

    def sweep_accuracy(m, s):
        points = sorted((sweep or {}).get(m, {}).items())
        for x, a in points:
            if abs(x - s) < 1e-6:
                return a, "measured"
        for (x0, a0), (x1, a1) in zip(points, points[1:]):
            if x0 < s < x1:
                return a0 + (a1 - a0) * (s - x0) / (x1 - x0), f"interpolated between {100 * x0:.0f}% and {100 * x1:.0f}%"
        return None, "not measured"

    def draw():
        s, m = float(slider.value), toggle.value
        masks = masks_for(m, s)
        per_matrix = {n: 1.0 - float(masks[n].float().mean()) for n in names}
        for rect, n in zip(bars.patches, names):
            rect.set_height(100 * per_matrix[n])
        total = sum(int((~masks[n]).sum()) for n in names) / sum(weights[n].numel() for n in names)
        bars_title.set_text(f"{m} pruning at {100 * s:.0f}%: pruned share per matrix "
                            f"(all matrices together: {100 * total:.1f}%)")
        pruned = weights[name][~masks[name]].abs()
        threshold = float(pruned.max()) if pruned.numel() else None
        segments = [] if threshold is None else [[(-threshold, 0.0), (-threshold, top)], [(threshold, 0.0), (threshold, top)]]
        cutoff.set_segments(segments)
        accuracy, how = sweep_accuracy(m, s)
        acc_text = "not measured" if accuracy is None else f"{100 * accuracy:.1f}% ({how})"
        cut_text = "nothing pruned" if threshold is None else f"cut-off t = {threshold:.4f}"
        info.set_text(f"{m}, {100 * s:.0f}%: this matrix {100 * per_matrix[name]:.1f}% pruned, {cut_text}\n"
                      f"accuracy (sweep): {acc_text}")
        marker.set_data([100 * s] if accuracy is not None else [], [100 * accuracy] if accuracy is not None else [])
        box.matrix_sparsity, box.threshold, box.accuracy = per_matrix, threshold, accuracy

    def redraw(*_):
        view.update(draw)

    box.slider, box.mode, box.figure, box.bars, box.cutoff, box.info = slider, toggle, figure, bars, cutoff, info
    box.image, box.message, box.name = view.image, view.message, name
    box.matrix_sparsity, box.threshold, box.accuracy = None, None, None
    slider.observe(redraw, names="value")
    toggle.observe(redraw, names="value")
    redraw()
    return box
