"""course.lib.structured: head gates, importance scores, keep_top, zeroing references, recovery (tiny BERTs)."""

import pytest
import torch

from course.lib.data import SentimentData, Split, make_loader
from course.lib.structured import (encoder_layers, ffn_activation_importance, ffn_sizes, head_counts, head_gates,
                                   head_importance, keep_top, plot_importance, recover, removed, zero_heads,
                                   zero_neurons)


@pytest.fixture
def tiny4(tiny_base):
    """A 2-layer, hidden-16, 4-head BERT classifier (eval mode) and the real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=24, max_position_embeddings=64, num_labels=2,
                        initializer_range=0.5)  # large weights: a head visibly changes the logits
    return BertForSequenceClassification(config).eval(), AutoTokenizer.from_pretrained(tiny_base)


@pytest.fixture
def loader(tiny4, real_data):
    return make_loader(real_data.train.subset(24), tiny4[1], batch_size=8, max_length=32)


def logits(model, batch):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def test_sizes_are_read_from_the_layers(tiny4):
    model, _ = tiny4
    assert len(encoder_layers(model)) == 2 and head_counts(model) == [4, 4] and ffn_sizes(model) == [24, 24]
    with pytest.raises(TypeError, match="bert.encoder.layer"):
        encoder_layers(torch.nn.Linear(2, 2))


def test_unit_gates_change_nothing_and_hooks_are_removed(tiny4, loader):
    model, _ = tiny4
    batch = next(iter(loader))
    before = logits(model, batch)
    with head_gates(model) as gates:
        assert [tuple(g.shape) for g in gates] == [(4,), (4,)]
        assert torch.allclose(logits(model, batch), before, atol=1e-6)
        with torch.no_grad():
            gates[0][1] = 0.0
        closed = logits(model, batch)
    assert not torch.allclose(closed, before, atol=1e-4), "a closed gate should change the output"
    assert torch.equal(logits(model, batch), before), "the hooks must be removed on exit"


def test_a_closed_gate_equals_zeroed_output_columns(tiny4, loader):
    model, _ = tiny4
    batch = next(iter(loader))
    with head_gates(model) as gates, torch.no_grad():
        gates[1][2] = 0.0
        gated = logits(model, batch)
    dense = encoder_layers(model)[1].attention.output.dense
    with torch.no_grad():
        dense.weight[:, 8:12] = 0.0                     # head 2 of 4, head size 4
    assert torch.allclose(logits(model, batch), gated, atol=1e-6)


def test_head_importance_is_zero_for_a_dead_head_and_leaves_grads_alone(tiny4, loader):
    model, _ = tiny4
    with torch.no_grad():
        encoder_layers(model)[0].attention.output.dense.weight[:, 4:8] = 0.0   # head 1 of layer 0 does nothing
    raw = head_importance(model, loader, normalize=False)
    assert raw.shape == (2, 4) and raw.dtype == torch.float32
    assert raw[0, 1] == 0 and (raw[0, [0, 2, 3]] > 0).all() and (raw[1] > 0).all()
    assert all(p.grad is None for p in model.parameters()), "importance must not fill .grad"
    normalized = head_importance(model, loader)
    assert torch.allclose(normalized.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(normalized, raw / raw.norm(dim=1, keepdim=True), atol=1e-6)
    one = head_importance(model, loader, max_batches=1, normalize=False)
    assert (one <= raw + 1e-9).all() and not torch.allclose(one, raw), "max_batches=1 should use fewer batches"
    with pytest.raises(ValueError, match="max_batches"):
        head_importance(model, loader, max_batches=0)


def test_ffn_importance_matches_a_hand_computation_without_padding(tiny4, loader):
    model, _ = tiny4
    layer = encoder_layers(model)[1]
    with torch.no_grad():                               # neuron 5 of layer 1: GELU(0) = 0 on every token
        layer.intermediate.dense.weight[5] = 0.0
        layer.intermediate.dense.bias[5] = 0.0
    captured = []
    handle = layer.intermediate.register_forward_hook(lambda m, a, out: captured.append(out))
    total, tokens, padded = torch.zeros(24), 0, 0
    for batch in loader:
        logits(model, batch)
        mask = batch["attention_mask"].bool()
        total += captured.pop()[mask].abs().sum(0)
        tokens, padded = tokens + int(mask.sum()), padded + int((~mask).sum())
    handle.remove()
    assert padded > 0, "the test needs padded batches"
    plain = ffn_activation_importance(model, loader, weighted=False)
    assert plain.shape == (2, 24) and plain[1, 5] == 0
    assert torch.allclose(plain[1], total / tokens, atol=1e-6)
    weighted = ffn_activation_importance(model, loader)
    assert torch.allclose(weighted[1], plain[1] * layer.output.dense.weight.norm(dim=0), atol=1e-6)


def test_keep_top_per_layer_and_global():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.8, 0.2, 0.3, 0.1]])
    assert [k.tolist() for k in keep_top(scores, 2)] == [[1, 3], [0, 2]]
    assert [k.tolist() for k in keep_top(scores, 0.5)] == [[1, 3], [0, 2]]
    assert [k.tolist() for k in keep_top(scores, 3, per_layer=False)] == [[1, 3], [0]]
    # global with a floor: layer 1's best (0.8) is forced in even if layer 0 has higher scores
    low = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.1, 0.05, 0.0, 0.0]])
    assert [k.tolist() for k in keep_top(low, 3, per_layer=False)] == [[0, 1], [0]]
    assert [k.tolist() for k in keep_top(low, 4, per_layer=False, min_per_layer=2)] == [[0, 1], [0, 1]]
    assert [k.tolist() for k in keep_top(torch.zeros(1, 4), 2)] == [[0, 1]], "ties keep the lower index"
    for bad in (0, 5, 0.0, 1.5):
        with pytest.raises(ValueError, match="keep"):
            keep_top(scores, bad)
    with pytest.raises(ValueError, match="keep must be in 2..8"):
        keep_top(scores, 1, per_layer=False)
    with pytest.raises(ValueError, match="scores must be"):
        keep_top(torch.zeros(4), 2)


def test_removed_is_the_complement():
    assert removed(torch.tensor([1, 3]), 5) == [0, 2, 4]
    assert removed(torch.tensor([], dtype=torch.long), 2) == [0, 1]


def test_recover_trains_all_but_the_frozen_word_embeddings(tiny_base, real_data):
    from course.lib.models import load_base

    model, tokenizer = load_base(tiny_base)
    small = SentimentData(real_data.train.subset(64), Split(real_data.validation.texts[:32],
                          real_data.validation.labels[:32]), real_data.test, source="tiny")
    words = model.bert.embeddings.word_embeddings.weight.detach().clone()
    dense = encoder_layers(model)[0].intermediate.dense.weight.detach().clone()
    history = recover(model, small, tokenizer, epochs=1, lr=1e-3, max_train_examples=64, device="cpu", progress=False)
    assert len(history.epochs) == 1 and 0 <= history.epochs[0]["val_accuracy"] <= 1
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, words), "word embeddings must stay frozen"
    assert not torch.equal(encoder_layers(model)[0].intermediate.dense.weight, dense), "the layers should train"
    assert not model.training
    with pytest.raises(ValueError, match="max_train_examples"):
        recover(model, small, tokenizer, max_train_examples=65, progress=False)


def test_recover_carries_teacher_logits_to_the_loss(tiny_base, real_data):
    from course.lib.models import load_base
    from course.lib.train import cross_entropy

    model, tokenizer = load_base(tiny_base)
    small = SentimentData(real_data.train.subset(40), Split(real_data.validation.texts[:16],
                          real_data.validation.labels[:16]), real_data.test, source="tiny")
    teacher_logits = torch.randn(40, 2)
    seen = []

    def loss_fn(logits, batch):
        rows = teacher_logits[batch["index"]]
        seen.append(torch.equal(batch["teacher_logits"], rows))
        return cross_entropy(logits, batch)
    recover(model, small, tokenizer, max_train_examples=24, loss_fn=loss_fn, teacher_logits=teacher_logits,
            device="cpu", progress=False)
    assert seen and all(seen), "each batch must carry its own sentences' teacher logits"
    with pytest.raises(ValueError, match="teacher_logits"):
        recover(model, small, tokenizer, teacher_logits=teacher_logits[:24], progress=False)


def test_zero_heads_equals_a_closed_gate_and_leaves_the_layer(tiny4, loader):
    model, _ = tiny4
    batch = next(iter(loader))
    layer = encoder_layers(model)[1]
    original = layer.attention.output.dense.weight.detach().clone()
    zeroed = zero_heads(layer, [0, 2])
    assert torch.equal(layer.attention.output.dense.weight, original), "the input layer must not change"
    w = zeroed.attention.output.dense.weight
    assert (w[:, 0:4] == 0).all() and (w[:, 8:12] == 0).all() and torch.equal(w[:, 4:8], original[:, 4:8])
    with head_gates(model) as gates, torch.no_grad():
        gates[1][0] = gates[1][2] = 0.0
        gated = logits(model, batch)
    model.bert.encoder.layer[1] = zeroed
    assert torch.allclose(logits(model, batch), gated, atol=1e-6)
    with pytest.raises(ValueError, match="heads must be in 0..3"):
        zero_heads(layer, [4])


def test_zero_neurons_keeps_only_the_listed_columns(tiny4):
    model, _ = tiny4
    layer = encoder_layers(model)[0]
    zeroed = zero_neurons(layer, torch.tensor([3, 1]))
    w, original = zeroed.output.dense.weight, layer.output.dense.weight
    assert (w.abs().sum(0) > 0).nonzero().flatten().tolist() == [1, 3]
    assert torch.equal(w[:, [1, 3]], original[:, [1, 3]]) and (original != 0).all(), "the input layer must not change"
    with pytest.raises(ValueError, match="keep must hold indices in 0..23"):
        zero_neurons(layer, [24])


def test_plot_importance_marks_each_removed_head():
    import matplotlib

    matplotlib.use("Agg")
    heads_kept = [torch.tensor([0, 1, 3]), torch.tensor([2])]
    fig = plot_importance(torch.rand(2, 4), torch.rand(2, 24), heads_kept, neurons_kept=12)
    marks = [t for t in fig.axes[0].texts if t.get_text() == "×"]
    assert sorted((int(t.get_position()[1]), int(t.get_position()[0])) for t in marks) == [(0, 2), (1, 0), (1, 1), (1, 3)]
    assert len(fig.axes[1].lines) == 3, "one sorted curve per layer and the keep line"
