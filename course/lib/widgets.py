"""Interactive widgets (ipywidgets + matplotlib) that show the learner's own implementations.

Each widget takes the learner's functions as arguments, draws into one figure and updates it
in place when a control moves (no new figure per move).
"""

from __future__ import annotations

# --- temperature slider (notebook 01) -------------------------------------------------------

def class_logits(model, tokenizer, sentences: list[str], max_length: int = 64):
    """The model's ``(N, C)`` float32 logits for ``sentences`` (one padded batch, no gradient)."""
    import torch

    from .train import forward_logits

    device = next(model.parameters()).device
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return forward_logits(model, {k: v.to(device) for k, v in enc.items()}).float().cpu()


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
    the bars, entropies and title of ONE matplotlib figure in place. A text box adds a sentence of
    your own as the last group of bars (re-run the model on Enter).

    Returns an ``ipywidgets.VBox`` with handles for tests and tinkering: ``.slider``, ``.text``,
    ``.figure``, ``.bars`` (one matplotlib ``BarContainer`` per class), ``.probs`` (last ``(N, C)``
    probabilities drawn) and ``.output`` (the ``ipywidgets.Output`` showing the figure).

    Raises ValueError if ``sentences`` is empty or ``temperature`` is outside ``[t_min, t_max]``.
    """
    import ipywidgets as widgets
    import numpy as np
    import torch
    from IPython.display import clear_output, display
    from matplotlib.figure import Figure

    if not sentences:
        raise ValueError("sentences must hold at least one sentence")
    if not t_min <= temperature <= t_max:
        raise ValueError(f"temperature must be in [{t_min}, {t_max}], got {temperature}")
    sentences = list(sentences)
    state = {"logits": torch.cat([class_logits(model, tokenizer, sentences),
                                  class_logits(model, tokenizer, [your_sentence])])}
    n_groups, n_classes = state["logits"].shape
    width = 0.8 / n_classes
    x = np.arange(n_groups)

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    ax = figure.add_subplot()
    bars = [ax.bar(x + (k - (n_classes - 1) / 2) * width, np.zeros(n_groups), width, label=labels[k])
            for k in range(n_classes)]
    entropy_text = [ax.text(i, 1.02, "", ha="center", va="bottom", fontsize=8) for i in range(n_groups)]
    ax.set(ylim=(0, 1.15), ylabel="probability")
    ax.axhline(1 / n_classes, color="grey", lw=0.8, ls="--")
    ax.legend(loc="upper right", fontsize=8)

    def short(text: str, n: int = 28) -> str:
        return text if len(text) <= n else text[: n - 1] + "…"

    def tick_labels():
        names = [short(s) for s in sentences] + [f"you: {short(state['your_sentence'])}"]
        ax.set_xticks(x, names, rotation=15, ha="right", fontsize=8)

    output = widgets.Output()
    slider = widgets.FloatSlider(value=temperature, min=t_min, max=t_max, step=0.5, description="temperature T",
                                 continuous_update=True, readout_format=".1f",
                                 style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))
    text = widgets.Text(value=your_sentence, description="your sentence", continuous_update=False,
                        style={"description_width": "initial"}, layout=widgets.Layout(width="460px"))
    box = widgets.VBox([widgets.HBox([slider, text]), output])
    state["your_sentence"] = your_sentence

    def redraw(*_):
        t = float(slider.value)
        probs = torch.as_tensor(softmax_fn(state["logits"].clone(), t)).detach().float()
        if probs.shape != state["logits"].shape:
            raise ValueError(f"softmax_fn returned shape {tuple(probs.shape)}, expected {tuple(state['logits'].shape)}")
        entropy = entropy_bits(probs)
        for k, container in enumerate(bars):
            for rect, p in zip(container.patches, probs[:, k].tolist()):
                rect.set_height(p)
        for label, h in zip(entropy_text, entropy.tolist()):
            label.set_text(f"H={h:.2f} bits")
        ax.set_title(f"teacher's class probabilities at T = {t:.1f} (dashed: uniform; max entropy "
                     f"{np.log2(n_classes):.0f} bit)", fontsize=10)
        box.probs = probs
        figure.canvas.draw_idle()
        with output:
            clear_output(wait=True)
            display(figure)

    def new_sentence(change):
        state["your_sentence"] = change["new"] or " "
        state["logits"][-1] = class_logits(model, tokenizer, [state["your_sentence"]])[0]
        tick_labels()
        redraw()

    box.slider, box.text, box.figure, box.bars, box.output = slider, text, figure, bars, output
    tick_labels()
    slider.observe(redraw, names="value")
    text.observe(new_sentence, names="value")
    redraw()
    return box

# --- bit-width slider (notebook 02) ---------------------------------------------------------

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
    levels drawn, 1-D tensor) and ``.output``.

    Raises ValueError if ``weight`` is not 2-D or ``bits`` is outside 2..8.
    """
    import ipywidgets as widgets
    import numpy as np
    import torch
    from IPython.display import clear_output, display
    from matplotlib.figure import Figure

    weight = torch.as_tensor(weight).detach().float().cpu()
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    ranges = weight.amax(1).clamp_min(0) - weight.amin(1).clamp_max(0)
    row = int(ranges.argmin()) if row is None else int(row)
    values = weight[row].numpy()

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    ax, ax_acc = figure.subplots(1, 2, width_ratios=(3, 2))
    heights, _, _ = ax.hist(values, bins=80, color="tab:blue", alpha=0.7)
    top = float(heights.max()) * 1.1
    levels = ax.vlines([], 0, top, colors="tab:red", lw=0.7, alpha=0.8, label="quantization levels")
    pad = 0.15 * float(values.max() - values.min())
    ax.set(xlim=(float(values.min()) - pad, float(values.max()) + pad), ylim=(0, top * 1.15),
           xlabel=f"{title}, row {row}: value", ylabel="count")
    mse_text = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=9, family="monospace")
    ax.legend(loc="upper right", fontsize=8)

    modes = ("per-tensor", "per-channel")
    for mode, style in zip(modes, ("o-", "s-")):
        points = sorted((sweep or {}).get(mode, {}).items())
        if points:
            ax_acc.plot([b for b, _ in points], [100 * a for _, a in points], style, label=mode, alpha=0.7)
    if fp32_accuracy is not None:
        ax_acc.axhline(100 * fp32_accuracy, color="grey", ls="--", lw=0.8, label="fp32")
    (marker,) = ax_acc.plot([], [], "*", color="black", ms=16, label="current")
    ax_acc.set(xlabel="bits", ylabel="test accuracy (%)", xticks=range(2, 9), title="from the cached sweep")
    ax_acc.legend(fontsize=8, loc="lower right")

    output = widgets.Output()
    slider = widgets.IntSlider(value=bits, min=2, max=8, step=1, description="bits", continuous_update=True)
    mode = widgets.ToggleButtons(options=list(modes), value=modes[int(bool(per_channel))])
    box = widgets.VBox([widgets.HBox([slider, mode]), output])

    def redraw(*_):
        b, m = int(slider.value), mode.value
        if m == "per-channel":
            q, scale, zero_point = quantize_per_channel(weight, b, 0)
            scale = torch.as_tensor(scale).reshape(-1, 1)
            zero_point = torch.as_tensor(zero_point).reshape(-1, 1)
            row_scale, row_zero = scale[row], zero_point[row]
        else:
            scale, zero_point = qparams(weight, b)
            q = quantize(weight, b, scale, zero_point)
            row_scale, row_zero = scale, zero_point
        mse = float(((dequantize(q, scale, zero_point) - weight) ** 2).mean())
        codes = torch.arange(0, 2 ** b, dtype=torch.int32)
        level_values = torch.as_tensor(dequantize(codes, row_scale, row_zero)).flatten().float()
        levels.set_segments([[(v, 0.0), (v, top)] for v in level_values.tolist()])
        in_view = int(((level_values >= float(values.min())) & (level_values <= float(values.max()))).sum())
        accuracy = (sweep or {}).get(m, {}).get(b)
        acc_text = "not measured" if accuracy is None else f"{100 * accuracy:.1f}%"
        mse_text.set_text(f"{m}, {b} bits: {2 ** b} levels ({in_view} inside this row's range)\n"
                          f"MSE (whole matrix) = {mse:.3e}\ntest accuracy (sweep) = {acc_text}")
        marker.set_data([b] if accuracy is not None else [], [100 * accuracy] if accuracy is not None else [])
        box.mse, box.level_values = mse, level_values
        figure.canvas.draw_idle()
        with output:
            clear_output(wait=True)
            display(figure)

    box.slider, box.mode, box.figure, box.levels, box.mse_text, box.output = slider, mode, figure, levels, mse_text, output
    box.row = row
    slider.observe(redraw, names="value")
    mode.observe(redraw, names="value")
    redraw()
    return box
