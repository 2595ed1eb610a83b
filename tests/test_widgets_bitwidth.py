"""The bit-width explorer of notebook 02: it calls the functions it is given and redraws one figure in place.

The stand-in quantizers below are built on PyTorch's own observers and quantized tensors (not the
notebook's exercise answers); they only need to have the learner's signatures.
"""

import warnings

import pytest
import torch


class Spy:
    """Wrap a function and count its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def _observer_qparams(x, bits):
    from torch.ao.quantization.observer import MinMaxObserver

    obs = MinMaxObserver(dtype=torch.quint8, quant_min=0, quant_max=2 ** bits - 1)
    obs(x)
    scale, zero_point = obs.calculate_qparams()
    return float(scale), int(zero_point)


def _torch_quantize(x, bits, scale, zero_point):
    q = torch.quantize_per_tensor(x, float(scale), int(zero_point), torch.quint8).int_repr().int()
    return q.clamp(0, 2 ** bits - 1)


def _dequantize(q, scale, zero_point):
    return (q.float() - torch.as_tensor(zero_point).float()) * torch.as_tensor(scale).float()


def _per_channel(w, bits, axis):
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    obs = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.quint8, quant_min=0, quant_max=2 ** bits - 1)
    obs(w)
    scale, zero_point = obs.calculate_qparams()
    q = torch.quantize_per_channel(w, scale, zero_point, axis, torch.quint8).int_repr().int().clamp(0, 2 ** bits - 1)
    return q, scale.float(), zero_point.int()


@pytest.fixture
def explorer():
    from course.lib.widgets import bitwidth_explorer

    torch.manual_seed(0)
    weight = torch.randn(16, 64) * torch.linspace(0.1, 1.0, 16)[:, None]
    spies = {"qparams": Spy(_observer_qparams), "quantize": Spy(_torch_quantize),
             "dequantize": Spy(_dequantize), "quantize_per_channel": Spy(_per_channel)}
    sweep = {"per-tensor": {b: 0.5 + 0.04 * b for b in range(2, 9)},
             "per-channel": {b: 0.6 + 0.03 * b for b in range(2, 9)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box = bitwidth_explorer(weight, sweep, bits=3, fp32_accuracy=0.9, **spies)
    return box, spies


def _segments(box):
    return [tuple(map(tuple, s)) for s in box.levels.get_segments()]


def test_slider_redraws_levels_and_mse_in_the_same_figure(explorer):
    box, _ = explorer
    figure, levels, before, text_before = box.figure, box.levels, _segments(box), box.mse_text.get_text()
    assert len(before) == 2 ** 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box.slider.value = 6
    assert box.figure is figure and box.levels is levels, "the widget must update its figure in place"
    assert len(_segments(box)) == 2 ** 6
    assert box.mse_text.get_text() != text_before and "6 bits" in box.mse_text.get_text()
    assert "74.0%" in box.mse_text.get_text(), "accuracy must be read from the sweep dict (0.5 + 0.04 * 6)"


def test_more_bits_means_lower_mse(explorer):
    box, _ = explorer
    mse = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for bits in (2, 4, 8):
            box.slider.value = bits
            mse[bits] = box.mse
    assert mse[2] > mse[4] > mse[8]


def test_the_learners_functions_are_the_ones_called(explorer):
    box, spies = explorer
    assert spies["qparams"].calls >= 1 and spies["quantize"].calls >= 1 and spies["dequantize"].calls >= 1
    assert spies["quantize_per_channel"].calls == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box.mode.value = "per-channel"
    assert spies["quantize_per_channel"].calls == 1
    assert "per-channel" in box.mse_text.get_text()


def test_per_channel_levels_are_finer_on_the_narrowest_row(explorer):
    box, _ = explorer
    tensor_levels = box.level_values.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box.mode.value = "per-channel"
    step_tensor = float(tensor_levels[1] - tensor_levels[0])
    step_channel = float(box.level_values[1] - box.level_values[0])
    assert box.row == 0 and step_channel < step_tensor


def test_rejects_bad_input():
    from course.lib.widgets import bitwidth_explorer

    with pytest.raises(ValueError):
        bitwidth_explorer(torch.randn(8), {}, qparams=None, quantize=None, dequantize=None, quantize_per_channel=None)
    with pytest.raises(ValueError):
        bitwidth_explorer(torch.randn(4, 4), {}, bits=9, qparams=None, quantize=None, dequantize=None,
                          quantize_per_channel=None)


def test_unimplemented_quantizer_shows_one_friendly_line():
    """A blank release: the slider cell runs, and the widget names the function to write first."""
    from course.lib.widgets import bitwidth_explorer

    def qparams_asymmetric(x, bits):
        raise NotImplementedError()

    box = bitwidth_explorer(torch.randn(4, 8), {}, qparams=qparams_asymmetric, quantize=_torch_quantize,
                            dequantize=_dequantize, quantize_per_channel=_per_channel)
    assert "qparams_asymmetric() is not implemented yet" in box.message.value
    assert box.image.layout.display == "none" and box.mse is None
    box.mode.value = "per-channel"  # this mode does not call qparams: the plot appears, the message goes
    assert box.message.value == "" and box.image.layout.display is None
    assert box.image.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_changes_when_the_slider_moves(explorer):
    box, _ = explorer
    before = box.image.value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box.slider.value = 7
    assert box.image.value != before and box.image.value[:4] == b"\x89PNG"
