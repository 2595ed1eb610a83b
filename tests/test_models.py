import pytest
import torch

from course.lib.data import Split, SentimentData
from course.lib.cache import sha256_file
from course.lib.models import META, Recipe, get_teacher, read_meta

TINY = Recipe(epochs=1, batch_size=8, max_length=32, lr=1e-3, max_train_examples=32)


@pytest.fixture
def tiny_data(real_data):
    return SentimentData(real_data.train.subset(64), real_data.validation.subset(32),
                         real_data.test.subset(32), source="tiny-test")


def test_teacher_round_trip_loads_from_cache(private_cache, tiny_data, tiny_base):
    model, _, meta = get_teacher(tiny_data, base=tiny_base, recipe=TINY, device="cpu", progress=False)
    again, _, meta2 = get_teacher(tiny_data, base=tiny_base, recipe=TINY, device="cpu", progress=False)
    assert meta2["wall_seconds"] == meta["wall_seconds"]  # same entry: not retrained
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert 0.0 <= meta["test_accuracy"] <= 1.0 and meta["recipe"]["epochs"] == 1
    assert {"torch", "transformers", "python"} <= set(meta["versions"])


@pytest.mark.parametrize("damage", ["truncate-weights", "delete-meta", "garble-meta"])
def test_corrupt_cache_entry_is_rebuilt_not_loaded(private_cache, tiny_data, tiny_base, damage):
    _, _, meta = get_teacher(tiny_data, base=tiny_base, recipe=TINY, device="cpu", progress=False)
    path = private_cache / "teachers" / meta["key"]
    weights = path / "model.safetensors"
    digest_before = sha256_file(weights)
    if damage == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "delete-meta":
        (path / META).unlink()
    else:
        (path / META).write_text("{not json")
    assert read_meta(path) is None, f"{damage}: the damaged entry should fail verification"
    _, _, rebuilt = get_teacher(tiny_data, base=tiny_base, recipe=TINY, device="cpu", progress=False)
    assert read_meta(path) is not None, f"{damage}: the rebuilt entry should pass verification"
    # retrained, not patched up: same data, recipe and seed give the same weights as before the damage (a rebuild that
    # only re-hashed the files on disk would keep the truncated weights; one that skipped training would differ)
    assert sha256_file(weights) == digest_before, f"{damage}: the rebuilt weights differ from the entry before the damage"
    assert rebuilt["key"] == meta["key"], f"{damage}: rebuilt under another key: {rebuilt['key']} != {meta['key']}"


def test_recipe_changes_the_cache_key(private_cache, tiny_data, tiny_base):
    a = get_teacher(tiny_data, base=tiny_base, recipe=TINY, device="cpu", progress=False)[2]
    b = get_teacher(tiny_data, base=tiny_base, recipe=Recipe(**{**TINY.__dict__, "seed": 1}), device="cpu",
                    progress=False)[2]
    assert a["key"] != b["key"]


def test_unknown_profile_is_rejected(tiny_data):
    with pytest.raises(ValueError, match="profile must be one of"):
        get_teacher(tiny_data, profile="tpu")


def test_training_loop_lowers_the_loss_and_accepts_a_custom_loss(tiny_base, real_data):
    from course.lib.data import make_loader
    from course.lib.models import load_base
    from course.lib.train import train

    model, tokenizer = load_base(tiny_base)
    split = Split(real_data.train.texts[:16], real_data.train.labels[:16])
    calls = []

    def loss_fn(logits, batch):
        calls.append(logits.shape)
        return torch.nn.functional.cross_entropy(logits, batch["labels"])

    loader = make_loader(split, tokenizer, batch_size=8, shuffle=True)
    history = train(model, loader, epochs=8, lr=3e-3, warmup_ratio=0.0, loss_fn=loss_fn, device="cpu", progress=False)
    losses = [e["train_loss"] for e in history.epochs]
    assert losses[-1] < losses[0]
    assert len(calls) == 16 and calls[0][1] == 2
    with pytest.raises(ValueError, match="epochs >= 1"):
        train(model, loader, epochs=0)
