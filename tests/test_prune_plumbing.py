"""Notebook 03's measurement plumbing in course.lib.prune / course.lib.structured: it calls the learner's
functions it is given (stand-ins here, built on torch.nn.utils.prune or plain slicing, not the notebook's
answers) and measures, tabulates or plots (tiny BERTs, a few sentences)."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from course.lib.data import make_loader
from course.lib.prune import (break_even_table, describe_pruned, encoder_weights, local_global_sweep, plot_local_global,
                              plot_tradeoffs, sensitivity_scan, sparse_matmul_table, sweep_table)
from course.lib.structured import compare_accuracy, ffn_sizes, head_counts, layer_output, structured_copy, zero_heads


def torch_mask(weight, sparsity):
    return prune.L1Unstructured(amount=sparsity).compute_mask(weight, torch.ones_like(weight)).bool()


def torch_global_masks(weights, sparsity):
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    keep = torch_mask(flat, sparsity).split([w.numel() for w in weights.values()])
    return {name: k.reshape(w.shape) for (name, w), k in zip(weights.items(), keep)}


def not_implemented(*args):
    raise NotImplementedError()


def slice_heads(layer, heads):
    """Stand-in prune_heads: zero-free slicing by index_select (the notebook's learners write their own)."""
    attention, d = layer.attention.self, layer.attention.self.attention_head_size
    n = attention.query.out_features // d
    rows = torch.tensor([h * d + i for h in range(n) if h not in set(heads) for i in range(d)], dtype=torch.long)
    for module, name, dim in ((attention, "query", 0), (attention, "key", 0), (attention, "value", 0),
                              (layer.attention.output, "dense", 1)):
        old = getattr(module, name)
        new = nn.Linear(len(rows) if dim else old.in_features, old.out_features if dim else len(rows))
        new.weight.data = old.weight.data.index_select(dim, rows).clone()
        new.bias.data = (old.bias.data[rows] if dim == 0 else old.bias.data).clone()
        setattr(module, name, new)
    attention.num_attention_heads, attention.all_head_size = n - len(set(heads)), len(rows)
    return layer


def slice_neurons(layer, keep):
    keep = torch.as_tensor(keep, dtype=torch.long)
    first, second = layer.intermediate.dense, layer.output.dense
    layer.intermediate.dense = nn.Linear(first.in_features, len(keep))
    layer.intermediate.dense.weight.data, layer.intermediate.dense.bias.data = first.weight.data[keep].clone(), first.bias.data[keep].clone()
    layer.output.dense = nn.Linear(len(keep), second.out_features)
    layer.output.dense.weight.data, layer.output.dense.bias.data = second.weight.data[:, keep].clone(), second.bias.data.clone()
    return layer


@pytest.fixture(scope="module")
def tiny(tiny_base):
    """A 2-layer, hidden-16, 4-head BERT classifier (eval mode) and the real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=24, max_position_embeddings=64, num_labels=2, initializer_range=0.5)
    return BertForSequenceClassification(config).eval(), AutoTokenizer.from_pretrained(tiny_base)


@pytest.fixture(scope="module")
def loader(tiny, real_data):
    return make_loader(real_data.test.subset(16), tiny[1], batch_size=8, max_length=32)


def test_local_global_sweep_calls_both_functions_and_keeps_the_model(tiny, loader, capsys):
    model, _ = tiny
    before = {n: w.clone() for n, w in encoder_weights(model).items()}
    sweep = local_global_sweep(model, loader, (0.0, 0.5), 0.123, magnitude_mask=torch_mask,
                               global_magnitude_masks=torch_global_masks, progress=False)
    assert set(sweep) == {"local", "global"} and all(set(p) == {0.0, 0.5} for p in sweep.values())
    assert sweep["local"][0.0] == 0.123, "sparsity 0 is the dense accuracy given, not re-evaluated"
    assert all(torch.equal(w, before[n]) for n, w in encoder_weights(model).items()), "weights must be restored"
    assert "12 encoder matrices" in capsys.readouterr().out
    table = sweep_table(sweep)
    assert list(table.index) == ["local", "global"] and list(table.columns) == ["0%", "50%"]
    assert table.loc["local", "0%"] == 12.3


def test_local_global_sweep_fails_fast_on_an_unfinished_function(tiny, loader):
    with pytest.raises(NotImplementedError):
        local_global_sweep(tiny[0], loader, (0.5,), 0.5, magnitude_mask=torch_mask, global_magnitude_masks=not_implemented)
    held = {"local": {}, "global": {}}            # what the notebook's slider holds: still there, empty, after the failure
    with pytest.raises(NotImplementedError):
        local_global_sweep(tiny[0], loader, (0.5,), 0.5, into=held, magnitude_mask=torch_mask,
                           global_magnitude_masks=not_implemented)
    assert held == {"local": {}, "global": {}}
    filled = local_global_sweep(tiny[0], loader, (0.0,), 0.5, into=held, magnitude_mask=torch_mask,
                                global_magnitude_masks=lambda weights, s: {n: torch.ones_like(w) for n, w in weights.items()})
    assert filled is held and held == {"local": {0.0: 0.5}, "global": {0.0: 0.5}}, held


def test_sensitivity_scan_prunes_one_kind_at_a_time(tiny, loader, capsys):
    calls = []

    def spy(weights, sparsity):
        calls.append(set(weights))
        return {name: torch_mask(w, sparsity) for name, w in weights.items()}

    scan = sensitivity_scan(tiny[0], loader, (0.5,), spy, 0.5, kinds=["query", "ffn output"])
    assert list(scan) == ["query", "ffn output"] and all(set(p) == {0.0, 0.5} for p in scan.values())
    assert [sorted(c) for c in calls] == [["bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.1.attention.self.query"],
                                          ["bert.encoder.layer.0.output.dense", "bert.encoder.layer.1.output.dense"]]
    assert capsys.readouterr().out.count("->") == 4


def test_describe_pruned_shows_the_reparametrisation():
    linear = nn.Linear(4, 3)
    prune.l1_unstructured(linear, "weight", amount=0.5)
    text = describe_pruned(linear)
    assert "weight_orig" in text and "weight_mask" in text and "L1Unstructured" in text
    prune.remove(linear, "weight")
    assert "weight_mask" not in describe_pruned(linear) and "zeros in weight 50.0%" in describe_pruned(linear)


def test_break_even_table_uses_the_functions_given():
    calls = []

    def csr(rows, cols, nnz, value_bytes, index_bytes):
        calls.append(index_bytes)
        return nnz * (value_bytes + index_bytes)

    def bitmask(rows, cols, nnz, value_bytes):
        return rows * cols // 8 + nnz * value_bytes

    def break_even(size_fn, numel, dense_bytes):
        fits = [nnz for nnz in range(numel + 1) if size_fn(nnz) < dense_bytes]
        return None if not fits else (numel - max(fits)) / numel

    table = break_even_table(4, 5, csr_bytes=csr, bitmask_bytes=bitmask, break_even_sparsity=break_even)
    assert list(table.columns) == ["vs dense fp32", "vs dense int8"] and len(table) == 3 and {4, 8} <= set(calls)
    assert table.loc["CSR, int32 indices", "vs dense fp32"] == "55.0 %"      # 8 bytes per value vs 4: nnz < 10 of 20


def test_sparse_matmul_table_has_a_row_per_sparsity_and_rows():
    table = sparse_matmul_table(torch.randn(8, 16), (0.5, 0.9), magnitude_mask=torch_mask, rows=(1, 4), min_run_time=0.01)
    assert list(table.index) == [("50%", 1), ("50%", 4), ("90%", 1), ("90%", 4)]
    assert list(table.columns) == ["dense_ms", "csr_ms", "speedup"] and (table["dense_ms"] > 0).all()


def test_plots_return_one_figure(tiny):
    import matplotlib

    matplotlib.use("Agg")
    from course.lib.bench import BenchResult

    sweep = {"local": {0.0: 0.9, 0.5: 0.8}, "global": {0.0: 0.9, 0.5: 0.85}}
    fig = plot_local_global(sweep, {n: 0.5 for n in encoder_weights(tiny[0])}, 0.9)
    assert len(fig.axes) == 2
    results = [BenchResult(name, 0.9, 10, 10, size, 1.0, 1.2, 5.0, 6.0, threads=1, device="cpu")
               for name, size in (("a", 1.0), ("b", 2.0))]
    assert len(plot_tradeoffs(results, batches=(1, 32)).axes) == 2


def test_layer_output_is_fixed_and_sees_zeroed_heads(tiny):
    layer = tiny[0].bert.encoder.layer[0]
    out = layer_output(layer)
    assert out.shape == (2, 7, 16) and out.dtype == torch.float32 and torch.equal(out, layer_output(layer))
    assert not torch.allclose(out, layer_output(zero_heads(layer, [1])))


def test_structured_copy_slices_every_layer_and_leaves_the_model(tiny):
    model, _ = tiny
    copy_ = structured_copy(model, [torch.tensor([0, 2]), torch.tensor([1])], [torch.arange(10), torch.arange(5)],
                            prune_heads=slice_heads, prune_ffn_neurons=slice_neurons)
    assert head_counts(copy_) == [2, 1] and ffn_sizes(copy_) == [10, 5]
    assert head_counts(model) == [4, 4] and ffn_sizes(model) == [24, 24], "the model itself is not modified"
    with pytest.raises(ValueError, match="one entry per layer"):
        structured_copy(model, [torch.tensor([0])], [torch.arange(3)], prune_heads=slice_heads, prune_ffn_neurons=slice_neurons)
    with pytest.raises(NotImplementedError):
        structured_copy(model, [torch.tensor([0])] * 2, [torch.arange(3)] * 2, prune_heads=not_implemented,
                        prune_ffn_neurons=slice_neurons)


def test_compare_accuracy_prints_the_difference_to_the_first(tiny, real_data, capsys):
    model, tokenizer = tiny
    accuracies = compare_accuracy({"a": model, "b": model}, real_data.test.subset(16), tokenizer)
    assert set(accuracies) == {"a", "b"} and accuracies["a"] == accuracies["b"] and 0 <= accuracies["a"] <= 1
    out = capsys.readouterr().out
    assert "a " in out and "b " in out and "(+0.0 points)" in out
    with pytest.raises(ValueError):
        compare_accuracy({}, real_data.test.subset(16), tokenizer)
