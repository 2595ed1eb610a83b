"""The temperature slider of notebook 01 (course.lib.widgets.temperature_explorer)."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from course.lib.widgets import entropy_bits, temperature_explorer  # noqa: E402

SENTENCES = ["A gorgeous, moving film.", "Dull and far too long.", "It was fine."]


@pytest.fixture(scope="module")
def tiny(tiny_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base).eval()
    with torch.no_grad():  # make the random classifier confident so temperature visibly matters
        model.classifier.weight.mul_(50)
    return model, AutoTokenizer.from_pretrained(tiny_base)


def softmax(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def heights(box):
    return [[rect.get_height() for rect in container.patches] for container in box.bars]


def test_slider_updates_bars_in_same_figure(tiny):
    model, tokenizer = tiny
    box = temperature_explorer(softmax, model, tokenizer, SENTENCES, temperature=1.0)
    figure, before = box.figure, heights(box)
    assert len(box.bars) == 2 and all(len(c.patches) == len(SENTENCES) + 1 for c in box.bars)
    box.slider.value = 20.0
    after = heights(box)
    assert box.figure is figure
    assert box.bars[0].patches[0].figure is figure
    assert after != before
    # a high temperature pulls every group towards uniform (0.5, 0.5)
    spread = lambda hs: max(abs(h - 0.5) for c in hs for h in c)  # noqa: E731
    assert spread(after) < spread(before)
    for i in range(len(SENTENCES) + 1):
        assert after[0][i] + after[1][i] == pytest.approx(1.0, abs=1e-5)


def test_custom_softmax_is_the_one_called(tiny):
    model, tokenizer = tiny
    calls = []

    def spy(logits, temperature):
        calls.append((tuple(logits.shape), temperature))
        return torch.tensor([[0.25, 0.75]]).expand(logits.shape[0], 2).clone()

    box = temperature_explorer(spy, model, tokenizer, SENTENCES, temperature=2.0)
    assert calls == [((len(SENTENCES) + 1, 2), 2.0)]
    box.slider.value = 3.5
    assert calls[-1] == ((len(SENTENCES) + 1, 2), 3.5)
    assert heights(box) == [[0.25] * 4, [0.75] * 4]


def test_typed_sentence_updates_last_group_only(tiny):
    model, tokenizer = tiny
    box = temperature_explorer(softmax, model, tokenizer, SENTENCES, your_sentence="great")
    before = heights(box)
    box.text.value = "the worst, most boring thing I have ever seen " * 3
    after = heights(box)
    assert [h for c in after for h in c[:-1]] == pytest.approx([h for c in before for h in c[:-1]])
    assert [c[-1] for c in after] != pytest.approx([c[-1] for c in before], abs=1e-7)
    assert "you:" in box.figure.axes[0].get_xticklabels()[-1].get_text()


def test_bad_arguments(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError):
        temperature_explorer(softmax, model, tokenizer, [])
    with pytest.raises(ValueError):
        temperature_explorer(softmax, model, tokenizer, SENTENCES, temperature=0.0)


def test_entropy_bits():
    h = entropy_bits(torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]]))
    assert h.tolist() == pytest.approx([1.0, 0.0, 0.8112781], abs=1e-6)


def test_plot_is_a_png_image_that_changes_with_the_slider(tiny):
    """The figure reaches the page as PNG bytes in an ipywidgets.Image, whatever backend is active
    (a bare Figure in an Output shows as the text `<Figure size ...>` until pyplot's inline backend
    is activated by some earlier cell)."""
    model, tokenizer = tiny
    box = temperature_explorer(softmax, model, tokenizer, SENTENCES, temperature=1.0)
    before = box.image.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n", "the widget must show a PNG image"
    assert box.image in box.children and box.message.value == ""
    box.slider.value = 10.0
    assert box.image.value != before and box.image.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_unimplemented_softmax_shows_one_friendly_line(tiny):
    model, tokenizer = tiny

    def softmax_with_temperature(logits, temperature):
        raise NotImplementedError()

    box = temperature_explorer(softmax_with_temperature, model, tokenizer, SENTENCES)
    assert "softmax_with_temperature() is not implemented yet" in box.message.value
    assert "course-widget-message" in box.message._dom_classes
    assert box.image.layout.display == "none" and box.probs is None
    box.slider.value = 4.0  # moving the slider keeps the message, raises nothing
    assert "not implemented yet" in box.message.value


def test_wrong_shape_and_errors_are_reported_in_the_widget(tiny):
    model, tokenizer = tiny
    box = temperature_explorer(lambda logits, t: logits[:1], model, tokenizer, SENTENCES)
    assert "returned shape (1, 2), expected (4, 2)" in box.message.value

    def broken(logits, temperature):
        return logits / 0 + undefined_name  # noqa: F821

    box = temperature_explorer(broken, model, tokenizer, SENTENCES)
    assert "broken() raised NameError" in box.message.value and "undefined_name" in box.message.value
