"""The sparsity explorer of notebook 03: it calls the mask functions it is given and redraws one figure in place.

The stand-in mask functions below are built on torch.nn.utils.prune (L1Unstructured and
global_unstructured), not on the notebook's exercise answers; they only need the learner's signatures.
"""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

pytest.importorskip("ipywidgets")

NAMES = [f"bert.encoder.layer.{i}.{suffix}" for i in range(2)
         for suffix in ("attention.self.query", "attention.self.key", "intermediate.dense")]


class Spy:
    """Wrap a function and count its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0
        self.__name__ = fn.__name__

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def torch_local_mask(weight, sparsity):
    return prune.L1Unstructured(amount=sparsity).compute_mask(weight, torch.ones_like(weight)).bool()


def torch_global_masks(weights, sparsity):
    holders = {}
    for name, weight in weights.items():
        holder = nn.Module()
        holder.weight = nn.Parameter(weight.clone())
        holders[name] = holder
    prune.global_unstructured([(h, "weight") for h in holders.values()], prune.L1Unstructured, amount=sparsity)
    return {name: h.weight_mask.bool() for name, h in holders.items()}


def not_implemented(weight, sparsity):
    raise NotImplementedError()


@pytest.fixture
def weights():
    g = torch.Generator().manual_seed(0)
    # matrix 0 has the smallest weights: a global threshold should prune it the most
    return {name: torch.randn(8, 16, generator=g) * (0.1 if i == 0 else 1.0) for i, name in enumerate(NAMES)}


@pytest.fixture
def explorer(weights):
    from course.lib.widgets import sparsity_explorer

    spies = {"magnitude_mask": Spy(torch_local_mask), "global_magnitude_masks": Spy(torch_global_masks)}
    sweep = {"local": {0.0: 0.9, 0.5: 0.8, 0.9: 0.5}, "global": {0.0: 0.9, 0.5: 0.85, 0.9: 0.6}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box = sparsity_explorer(weights, sweep, sparsity=0.5, dense_accuracy=0.9, **spies)
    return box, spies


def _heights(box):
    return [rect.get_height() for rect in box.bars.patches]


def test_slider_redraws_bars_and_cutoff_in_the_same_figure(explorer):
    box, _ = explorer
    figure, bars, png = box.figure, box.bars, box.image.value
    assert _heights(box) == pytest.approx([50.0] * len(NAMES)), "local pruning: every matrix at the slider's sparsity"
    cut_before = box.threshold
    box.slider.value = 0.8
    assert box.figure is figure and box.bars is bars, "the widget must update its figure in place"
    assert _heights(box) == pytest.approx([100 * round(0.8 * 128) / 128] * len(NAMES))
    assert box.threshold > cut_before, "a higher sparsity must move the cut-off outwards"
    assert len(box.cutoff.get_segments()) == 2, "the cut-off is drawn at -t and +t"
    assert box.image.value != png, "the PNG shown must be re-rendered"
    assert box.message.value == ""


def test_global_mode_prunes_the_small_matrix_most(explorer, weights):
    box, _ = explorer
    box.mode.value = "global"
    heights = _heights(box)
    assert heights[0] == max(heights) and heights[0] > 90, f"the small-weight matrix should be pruned most: {heights}"
    total = sum(h * weights[n].numel() for h, n in zip(heights, NAMES)) / 100 / sum(w.numel() for w in weights.values())
    assert total == pytest.approx(0.5, abs=1e-6), "globally, half of all weights together are pruned"
    assert "global" in box.info.get_text()


def test_the_learners_functions_are_the_ones_called(explorer):
    box, spies = explorer
    assert spies["magnitude_mask"].calls == len(NAMES) and spies["global_magnitude_masks"].calls == 0
    box.mode.value = "global"
    assert spies["global_magnitude_masks"].calls == 1
    box.mode.value = "local"
    assert spies["magnitude_mask"].calls == len(NAMES), "masks are cached per (mode, sparsity)"


def test_accuracy_is_read_from_the_sweep(explorer):
    box, _ = explorer
    assert box.accuracy == pytest.approx(0.8) and "80.0%" in box.info.get_text()
    box.slider.value = 0.7
    assert box.accuracy == pytest.approx(0.65) and "interpolated" in box.info.get_text()
    box.slider.value = 0.95
    assert box.accuracy is None and "not measured" in box.info.get_text()


def test_unimplemented_function_shows_one_line(weights):
    from course.lib.widgets import sparsity_explorer

    box = sparsity_explorer(weights, {}, magnitude_mask=not_implemented, global_magnitude_masks=torch_global_masks)
    assert "not_implemented() is not implemented yet" in box.message.value
    assert box.image.layout.display == "none"
    box.mode.value = "global"
    assert box.message.value == "" and box.image.value, "the global mode works with a working function"


def test_rejects_bad_input(weights):
    from course.lib.widgets import sparsity_explorer

    kwargs = {"magnitude_mask": torch_local_mask, "global_magnitude_masks": torch_global_masks}
    for bad in ({}, {"a": torch.randn(4)}):
        with pytest.raises(ValueError):
            sparsity_explorer(bad, {}, **kwargs)
    with pytest.raises(ValueError):
        sparsity_explorer(weights, {}, sparsity=0.99, **kwargs)
    with pytest.raises(ValueError):
        sparsity_explorer(weights, {}, mode="both", **kwargs)
    with pytest.raises(ValueError):
        sparsity_explorer(weights, {}, name="nope", **kwargs)
