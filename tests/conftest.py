"""Shared fixtures. The real corpus and teacher live in $COURSE_CACHE (.ci/run sets it inside
the clone); tests that write fake archives or models use a private cache of their own."""

import pytest

from course.env import set_environment

set_environment()  # the course's offline, quiet variables, before any test imports transformers


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh, empty course cache for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def real_data():
    from course.lib.data import load_splits

    return load_splits()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A 1-layer, hidden-16 BERT with the real MiniLM tokenizer, saved like a hub model."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from course.lib.models import default_base

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(default_base())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One real `course demo` for the whole session: prepare, benchmark fp32/int8, and autograde
    the sample class (every source notebook solved, every release notebook blank). Tests share it
    so each notebook executes once solved and once blank per CI run.

    Returns ``(payload from --json, stdout, grading workspace Path)``."""
    import json
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("demo")
    cmd = [sys.executable, "-m", "course", "demo", "--quiet", "--json", str(root / "demo.json"),
           "--grade-dir", str(root / "grading")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, f"course demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    payload = json.loads((root / "demo.json").read_text())
    return payload, done.stdout, root / "grading" / "grading"
