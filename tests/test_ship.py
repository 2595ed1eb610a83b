"""course.lib.ship: one file per model, rebuilt from its config, loaded without running pickle code."""

import copy
import os

import pytest
import torch
from torch import nn
from torch.ao.quantization import float_qparams_weight_only_qconfig, quantize_dynamic

import torch.ao.nn.quantized as nnq
from course.lib.ship import BUDGET, FORMAT, TrimmedEmbedding, build, cut_positions, describe, load_model, save_model


@pytest.fixture(scope="module")
def tiny():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    return BertForSequenceClassification(config).eval()


def compressed(model):
    """Every change the capstone makes: heads and FFN neurons sliced, vocabulary trimmed, positions cut, int8."""
    model = copy.deepcopy(model)
    layer = model.bert.encoder.layer[0]
    attention, d = layer.attention.self, layer.attention.self.attention_head_size
    rows = torch.arange(2 * d)                                        # keep heads 0 and 1 of 4
    for name in ("query", "key", "value"):
        old = getattr(attention, name)
        new = nn.Linear(old.in_features, len(rows))
        new.weight.data, new.bias.data = old.weight.data[rows].clone(), old.bias.data[rows].clone()
        setattr(attention, name, new)
    out = layer.attention.output.dense
    new = nn.Linear(len(rows), out.out_features)
    new.weight.data, new.bias.data = out.weight.data[:, rows].clone(), out.bias.data.clone()
    layer.attention.output.dense, attention.num_attention_heads, attention.all_head_size = new, 2, len(rows)
    keep = torch.arange(0, 64, 2)
    first, second = model.bert.encoder.layer[1].intermediate.dense, model.bert.encoder.layer[1].output.dense
    a, b = nn.Linear(32, len(keep)), nn.Linear(len(keep), 32)
    a.weight.data, a.bias.data = first.weight.data[keep].clone(), first.bias.data[keep].clone()
    b.weight.data, b.bias.data = second.weight.data[:, keep].clone(), second.bias.data.clone()
    model.bert.encoder.layer[1].intermediate.dense, model.bert.encoder.layer[1].output.dense = a, b
    kept = torch.arange(0, 200, 4)
    id_map = torch.zeros(200, dtype=torch.long)
    id_map[kept] = torch.arange(len(kept))
    table = nn.Embedding(len(kept), 32)
    table.weight.data = model.bert.embeddings.word_embeddings.weight.data[kept].clone()
    model.bert.embeddings.word_embeddings = TrimmedEmbedding(id_map, table)
    cut_positions(model, 16)
    model = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    table.qconfig = float_qparams_weight_only_qconfig
    model.bert.embeddings.word_embeddings.embedding = nnq.Embedding.from_float(table)
    return model.eval()


def batch():
    return {"input_ids": torch.tensor([[0, 4, 8, 12, 5, 9]]), "attention_mask": torch.ones(1, 6, dtype=torch.long)}


@pytest.mark.parametrize("kind", ["dense", "compressed"])
def test_save_then_load_gives_the_same_logits(tiny, tmp_path, kind):
    model = tiny if kind == "dense" else compressed(tiny)
    size = save_model(model, tmp_path / "m.pt")
    assert size == (tmp_path / "m.pt").stat().st_size
    assert os.listdir(tmp_path) == ["m.pt"], "the temporary file must be renamed, not left behind"
    loaded = load_model(tmp_path / "m.pt")
    with torch.inference_mode():
        assert torch.equal(loaded(**batch()).logits, model(**batch()).logits)
    assert describe(loaded) == describe(model)


def test_compressed_file_records_the_shapes(tiny):
    spec = describe(compressed(tiny))
    assert spec["heads"] == [2, 4] and spec["ffn"] == [64, 32]
    assert spec["vocab_rows"] == 50 and spec["word_embeddings"] == "int8" and spec["positions"] == 16
    assert set(spec["linears"].values()) == {"int8"} and "classifier" in spec["linears"]


def test_a_wrapper_module_is_refused(tiny, tmp_path):
    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    model = copy.deepcopy(tiny)
    model.classifier = Wrapper(model.classifier)
    with pytest.raises(TypeError, match="classifier"):
        save_model(model, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
    with pytest.raises(TypeError, match="BertForSequenceClassification"):
        save_model(nn.Linear(2, 2), tmp_path / "m.pt")


class Payload:
    """Pickles to a call of os.system: what a malicious 'model' file would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_file_with_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": FORMAT, "config": "{}", "state_dict": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights_only"):
        load_model(tmp_path / "evil.pt")
    assert not marker.exists(), "loading a model file ran code from it"


def test_not_a_course_file(tiny, tmp_path):
    torch.save(tiny.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="format"):
        load_model(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError, match="save_model"):
        load_model(tmp_path / "missing.pt")


def test_sizes_out_of_range_are_refused_before_allocating(tiny):
    spec = describe(tiny)
    for key, value in (("heads", [4, 99]), ("ffn", [64, 10 ** 9]), ("positions", 10 ** 6)):
        with pytest.raises(ValueError, match="not a course model file"):
            build({**spec, key: value})
    for key, value in (("vocab_size", 10 ** 7), ("hidden_size", 10 ** 5), ("intermediate_size", 10 ** 7)):
        with pytest.raises(ValueError, match=key):
            build({**spec, "bert": {**spec["bert"], key: value}})
    with pytest.raises(ValueError, match="not a Linear"):
        build({**spec, "linears": {"bert.embeddings": "int8"}})


def test_cut_positions_checks_its_argument(tiny):
    for bad in (0, 129, 2.5):
        with pytest.raises(ValueError, match="max_length"):
            cut_positions(copy.deepcopy(tiny), bad)


def test_the_capstone_grades_the_budget_stated_in_course_lib():
    """The notebook's graded cells write the budget as literals (a learner's cell cannot rebind them);
    they must be the numbers of course.lib.ship.BUDGET, which the leaderboard and the benchmark use."""
    from pathlib import Path

    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "source/04_capstone/04_capstone.ipynb", as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    assert BUDGET == {"size": 1 / 6, "latency": 1 / 2, "accuracy": 0.94}
    assert "shipped.size_ratio <= 1 / 6" in cells["budget-size"]
    assert "shipped.latency_ratio <= 1 / 2" in cells["budget-latency"]
    assert "shipped.accuracy_ratio >= 0.94" in cells["budget-accuracy"]
    intro = nb.cells[0].source
    assert "≤ 1/6" in intro and "≤ 1/2" in intro and "≥ 94 %" in intro, "the notebook's first cell states the budget"
