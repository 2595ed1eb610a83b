"""Ship a compressed classifier as ONE file, load it without pickle, and measure it in a fresh process.

The file (notebook 04, and the leaderboard of ``course grade``) is ``torch.save`` of a dict::

    {"format": FORMAT, "config": <JSON text>, "state_dict": model.state_dict()}

``config`` is the BERT config plus the shapes that compression changed: heads and FFN neurons per layer
(slicing, notebook 03), the rows of a trimmed word-embedding table (:class:`TrimmedEmbedding`, notebook 04),
the position rows kept, which ``nn.Linear`` became dynamic int8 (``torch.ao.nn.quantized.dynamic.Linear``,
notebook 02) and whether the word embeddings are per-row int8/int4 (``torch.ao.nn.quantized.Embedding``).
:func:`load_model` rebuilds exactly that architecture from the config and loads the tensors with
``torch.load(weights_only=True)``: a file can hold only tensors, numbers and strings, never code
(https://pytorch.org/docs/stable/generated/torch.load.html), so loading an untrusted file executes nothing of
its author's. Anything else (a wrapper module, torchao tensor subclasses, a custom layer) is refused by
:func:`save_model` with the module's name, so what is graded is always this known, measurable architecture.

:func:`measure_file` runs in its own process (``python -m course.lib.ship measure FILE``): it loads the file
and the cached teacher, measures both on the full test split and times them at batch 1 in interleaved rounds
on one thread. :func:`measure_shipped` / :func:`predict_shipped` start that process from a notebook or from the
grader, so nothing a learner saved is ever loaded in the caller's process.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from course.files import atomic_file

from .cache import sha256_file
from .train import model_device

FORMAT = "course-bert-classifier/1"
# The capstone's budget, model / teacher measured in one process (notebook 04 states it; tests/test_ship.py checks
# that the notebook's graded cells use these numbers; course.leaderboard and benchmarks/capstone_targets.py read it).
BUDGET = {"size": 1 / 6, "latency": 1 / 2, "accuracy": 0.94}
MAX_ROWS = 1 << 20  # a sanity bound on any size read from a file (rows, neurons), before allocating anything
MAX_PARAMETERS = 300_000_000  # what a file's config may make the loader allocate (the teacher has 22.7 M)


class TrimmedEmbedding(nn.Module):
    """Word embeddings of a trimmed vocabulary behind the full tokenizer.

    ``forward(input_ids)``: ``input_ids`` ``(B, T)`` int64 ids of the *full* vocabulary (0..V-1) are mapped
    through ``id_map`` ``(V,)`` to rows of ``embedding`` (K rows, K <= V), giving ``(B, T, D)``. Any
    ``embedding`` module works: ``nn.Embedding`` or ``torch.ao.nn.quantized.Embedding`` (per-row int8/int4).
    ``id_map`` is stored as int32 (4 bytes per token of the full vocabulary). Reference: Abdaoui et al. 2020,
    "Load What You Need: Smaller Versions of Multilingual BERT" (vocabulary trimming).
    """

    def __init__(self, id_map: torch.Tensor, embedding: nn.Module):
        super().__init__()
        if id_map.ndim != 1 or id_map.dtype.is_floating_point:
            raise ValueError(f"id_map must be a 1-D integer tensor, got {id_map.dtype} of shape {tuple(id_map.shape)}")
        self.register_buffer("id_map", id_map.to(torch.int32))
        self.embedding = embedding

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.id_map[input_ids].long())


def cut_positions(model: nn.Module, max_length: int = 64) -> nn.Module:
    """Keep the first ``max_length`` rows of BERT's position-embedding table (in place; returns ``model``).

    The course tokenizes with ``truncation=True, max_length=64``, so rows 64..511 of MiniLM's
    ``(512, 384)`` fp32 table (0.7 MB) are never read. Updates ``config.max_position_embeddings`` and the
    ``position_ids`` / ``token_type_ids`` buffers. Inputs longer than ``max_length`` then fail in the
    embedding lookup (IndexError), so tokenize with ``max_length`` at most this.

    Raises:
        ValueError: ``max_length`` not in ``1..`` the current number of rows.
    """
    embeddings = model.bert.embeddings
    rows = embeddings.position_embeddings.num_embeddings
    if type(max_length) is not int or not 1 <= max_length <= rows:
        raise ValueError(f"max_length must be an int in 1..{rows}, got {max_length!r}")
    old = embeddings.position_embeddings
    embeddings.position_embeddings = nn.Embedding(max_length, old.embedding_dim).to(old.weight)
    embeddings.position_embeddings.weight.data.copy_(old.weight.data[:max_length])
    for name in ("position_ids", "token_type_ids"):
        if hasattr(embeddings, name):
            embeddings.register_buffer(name, getattr(embeddings, name)[:, :max_length].clone(), persistent=False)
    model.config.max_position_embeddings = max_length
    return model


# ----------------------------------------------------------------------------- describe and save


def _kind(module: nn.Module) -> str:
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    if type(module) is nn.Linear:
        return "float"
    if type(module) is nnqd.Linear and module._packed_params.dtype == torch.qint8:
        return "int8"
    if type(module) is nn.Embedding:
        return "float"
    if type(module) is nnq.Embedding:
        return {torch.quint8: "int8", torch.quint4x2: "int4"}.get(module._packed_params.dtype, "unsupported")
    return "unsupported"


def describe(model: nn.Module) -> dict:
    """The shapes and kinds :func:`load_model` needs to rebuild ``model`` (a ``BertForSequenceClassification``,
    possibly sliced, trimmed and quantized): a JSON-able dict.

    Raises:
        TypeError: ``model`` is not a BERT classifier, or holds a module the loader cannot rebuild (named).
    """
    if not (hasattr(model, "bert") and hasattr(model, "classifier") and hasattr(model, "config")):
        raise TypeError(f"model must be a BertForSequenceClassification (from the teacher), got {type(model).__name__}")
    linears, layers = {}, model.bert.encoder.layer
    for name, module in model.named_modules():
        if name.endswith("word_embeddings") or name.endswith("word_embeddings.embedding") or "_packed_params" in name:
            continue
        if isinstance(module, (nn.Linear, nn.Embedding)) or "quantized" in type(module).__module__:
            kind = _kind(module)
            if kind == "unsupported":
                raise TypeError(f"{name}: {type(module).__module__}.{type(module).__name__} cannot be shipped; "
                                "use nn.Linear, torch.ao dynamic int8 Linear (quantize_dynamic), nn.Embedding")
            if isinstance(module, nn.Embedding):
                continue
            linears[name] = kind
    words = model.bert.embeddings.word_embeddings
    table = words.embedding if isinstance(words, TrimmedEmbedding) else words
    word_kind = _kind(table)
    if word_kind == "unsupported":
        raise TypeError(f"bert.embeddings.word_embeddings: {type(table).__name__} cannot be shipped; use nn.Embedding "
                        "or torch.ao.nn.quantized.Embedding (quint8 / quint4x2), inside course.lib.TrimmedEmbedding or not")
    for name, module in model.named_modules():
        allowed = (TrimmedEmbedding,) if name == "bert.embeddings.word_embeddings" else ()
        if type(module).__module__.split(".")[0] not in ("torch", "transformers") and not isinstance(module, allowed):
            raise TypeError(f"{name}: {type(module).__name__} is not a torch or transformers module; "
                            "the loader rebuilds only the BERT classifier's own modules")
    config = model.config.to_dict()
    for key in ("torch_dtype", "dtype"):
        config.pop(key, None)
    return {
        "bert": json.loads(json.dumps(config, default=str)),
        "heads": [int(layer.attention.self.num_attention_heads) for layer in layers],
        "ffn": [int(_out_features(layer.intermediate.dense)) for layer in layers],
        "vocab_rows": int(table.num_embeddings) if isinstance(words, TrimmedEmbedding) else None,
        "word_embeddings": word_kind,
        "positions": int(model.bert.embeddings.position_embeddings.num_embeddings),
        "linears": linears,
    }


def _out_features(linear) -> int:
    return linear.out_features if hasattr(linear, "out_features") else linear.weight().shape[0]


def save_model(model: nn.Module, path: str | os.PathLike) -> int:
    """Write ``model`` to ``path`` as one file (format above) and return its size in bytes.

    Written to a temporary file in the same folder and renamed into place, so ``path`` never holds half a model.
    The model is moved to the CPU copy-free if it already is there (a copy otherwise); it is not changed.

    Raises:
        TypeError: see :func:`describe`.
    """
    path = Path(path)
    model = model if model_device(model).type == "cpu" else copy.deepcopy(model).cpu()
    blob = {"format": FORMAT, "config": json.dumps(describe(model)), "state_dict": model.state_dict()}
    with atomic_file(path) as f:
        torch.save(blob, f)
    return path.stat().st_size


# ----------------------------------------------------------------------------- load


def _check_int(value, name: str, low: int = 1, high: int = MAX_ROWS) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"not a course model file: {name} must be an int in {low}..{high}, got {value!r}")
    return value


def _linear(in_features: int, out_features: int, kind: str) -> nn.Module:
    import torch.ao.nn.quantized.dynamic as nnqd

    if kind == "float":
        return nn.Linear(in_features, out_features)
    if kind == "int8":
        return nnqd.Linear(in_features, out_features, dtype=torch.qint8)
    raise ValueError(f"not a course model file: unknown linear kind {kind!r} (allowed: 'float', 'int8')")


def _embedding(rows: int, dim: int, kind: str) -> nn.Module:
    import torch.ao.nn.quantized as nnq

    if kind == "float":
        return nn.Embedding(rows, dim)
    if kind in ("int8", "int4"):
        return nnq.Embedding(rows, dim, dtype=torch.quint8 if kind == "int8" else torch.quint4x2)
    raise ValueError(f"not a course model file: unknown embedding kind {kind!r} (allowed: 'float', 'int8', 'int4')")


def build(spec: dict) -> nn.Module:
    """An untrained model with exactly the architecture ``spec`` (from :func:`describe`) describes.

    Raises:
        ValueError: ``spec`` is malformed (sizes out of range, unknown kinds, a linear the BERT classifier lacks).
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(**spec["bert"])
    # bounds checked before anything is allocated: a file cannot make the loader build a 100 GB model
    n = _check_int(config.num_hidden_layers, "num_hidden_layers", 1, 48)
    hidden = _check_int(config.hidden_size, "hidden_size", 1, 2048)
    _check_int(config.intermediate_size, "intermediate_size", 1, 16384)
    _check_int(config.num_attention_heads, "num_attention_heads", 1, hidden)
    _check_int(config.num_labels, "num_labels", 1, 1000)
    _check_int(config.type_vocab_size, "type_vocab_size", 1, 16)
    _check_int(config.max_position_embeddings, "max_position_embeddings", 1, 8192)
    _check_int(config.vocab_size, "vocab_size", 1, 300_000)
    positions = _check_int(spec["positions"], "positions", 1, config.max_position_embeddings)
    heads, ffn = spec["heads"], spec["ffn"]
    if not (isinstance(heads, list) and isinstance(ffn, list) and len(heads) == len(ffn) == n):
        raise ValueError(f"not a course model file: heads and ffn must be lists of {n} ints")
    config.max_position_embeddings = positions
    estimate = (config.vocab_size + config.intermediate_size * 2 * n + 4 * hidden * n) * hidden
    if estimate > MAX_PARAMETERS:
        raise ValueError(f"not a course model file: its config describes ~{estimate / 1e6:.0f} M parameters "
                         f"(more than {MAX_PARAMETERS / 1e6:.0f} M)")
    with torch.device("meta"):
        probe = BertForSequenceClassification(config)  # shapes only, no memory, no init time
    d = probe.bert.encoder.layer[0].attention.self.attention_head_size
    del probe
    model = BertForSequenceClassification(config)
    for i, layer in enumerate(model.bert.encoder.layer):
        h = _check_int(heads[i], f"heads[{i}]", 1, config.num_attention_heads)
        f = _check_int(ffn[i], f"ffn[{i}]", 1, 16384)
        attention = layer.attention.self
        for name in ("query", "key", "value"):
            setattr(attention, name, nn.Linear(hidden, h * d))
        layer.attention.output.dense = nn.Linear(h * d, hidden)
        attention.num_attention_heads, attention.all_head_size = h, h * d
        layer.intermediate.dense = nn.Linear(hidden, f)
        layer.output.dense = nn.Linear(f, hidden)
    modules = dict(model.named_modules())
    for name, kind in spec["linears"].items():
        old = modules.get(name)
        if type(old) is not nn.Linear:
            raise ValueError(f"not a course model file: {name!r} is not a Linear of the BERT classifier")
        if kind != "float":
            parent, _, child = name.rpartition(".")
            setattr(modules[parent] if parent else model, child, _linear(old.in_features, old.out_features, kind))
    vocab = config.vocab_size
    rows = spec["vocab_rows"]
    table = _embedding(vocab if rows is None else _check_int(rows, "vocab_rows", 1, vocab), hidden, spec["word_embeddings"])
    model.bert.embeddings.word_embeddings = table if rows is None else TrimmedEmbedding(torch.zeros(vocab, dtype=torch.int32), table)
    return model.eval()


def load_model(path: str | os.PathLike) -> nn.Module:
    """The model saved by :func:`save_model` at ``path``, on the CPU, in eval mode.

    Loads with ``torch.load(weights_only=True)`` (no pickle code runs) and ``load_state_dict(strict=True)``
    into the architecture :func:`build` makes from the file's config.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a course model file (with what is wrong).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}: save one with course.lib.save_model(model, {str(path)!r})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means "not our format"; say why
            raise ValueError(f"not a course model file ({path}): torch.load(weights_only=True) failed: "
                             f"{str(error).splitlines()[0][:300]}") from None
        if not (isinstance(blob, dict) and blob.get("format") == FORMAT and isinstance(blob.get("config"), str)):
            raise ValueError(f"not a course model file ({path}): expected a dict with format {FORMAT!r}; "
                             "save it with course.lib.save_model")
        try:
            spec = json.loads(blob["config"])
            model = build(spec)
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a course model file ({path}): bad config ({error})") from None
        try:
            model.load_state_dict(blob["state_dict"], strict=True)
        except (RuntimeError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"not a course model file ({path}): its tensors do not fit its config: "
                             f"{str(error).splitlines()[0][:300]}") from None
    return model.eval()


# ----------------------------------------------------------------------------- measure (in its own process)


@dataclass(frozen=True)
class Shipped:
    """What :func:`measure_file` measured. Units: bytes, ms (median per sentence at batch 1), accuracy 0..1;
    ``int8_dot_product``: the CPU's 8-bit dot-product instruction sets (:func:`course.lib.bench.int8_dot_product_flags`);
    ``*_ratio`` = model / teacher, each measured in the same process (latency: in interleaved rounds)."""

    file: str
    sha256: str
    size_bytes: int
    teacher_size_bytes: int
    accuracy: float
    teacher_accuracy: float
    latency_ms: float
    teacher_latency_ms: float
    latency_ratio: float
    round_ratios: list
    n_params: int
    layers: int
    threads: int
    cpu_capability: str
    int8_dot_product: list
    predictions: list

    @property
    def size_ratio(self) -> float:
        return self.size_bytes / self.teacher_size_bytes

    @property
    def accuracy_ratio(self) -> float:
        return self.accuracy / self.teacher_accuracy

    def summary(self) -> str:
        return (f"{Path(self.file).name}: {self.size_bytes / 1e6:.2f} MB ({1 / self.size_ratio:.1f}x smaller), "
                f"{self.latency_ms:.2f} ms at batch 1 ({1 / self.latency_ratio:.2f}x faster, {self.threads} thread, "
                f"{self.cpu_capability}, int8 dot product: {'/'.join(self.int8_dot_product) or 'none'}), test accuracy {100 * self.accuracy:.2f}% "
                f"({100 * self.accuracy_ratio:.1f}% of the teacher's {100 * self.teacher_accuracy:.2f}%)")


def _test_set():
    from .data import load_splits
    from .models import get_teacher

    data = load_splits()
    teacher, tokenizer, meta = get_teacher(data, progress=False)
    return data, teacher.cpu().eval(), tokenizer, meta


@torch.inference_mode()
def _predictions(model, data, tokenizer) -> torch.Tensor:
    from .data import make_loader
    from .train import predict_logits

    return predict_logits(model, make_loader(data.test, tokenizer, 64)).argmax(-1)


def _bucket_sentences(data, tokenizer, n: int) -> list[dict]:
    """``n`` test sentences spread over the length range (every len/n-th by length), tokenized one per batch."""
    order = sorted(range(len(data.test)), key=lambda i: len(data.test.texts[i]))
    picks = [order[int(k * (len(order) - 1) / max(n - 1, 1))] for k in range(n)]
    return [dict(tokenizer(data.test.texts[i], truncation=True, max_length=64, return_tensors="pt")) for i in picks]


def measure_file(path: str | os.PathLike, *, rounds: int = 9, sentences: int = 24, threads: int = 1) -> Shipped:
    """Load the model file at ``path`` and the cached teacher (in THIS process) and measure both.

    * size: the file's bytes vs ``torch.save`` of the teacher's state dict;
    * accuracy: argmax on the full test split (``course.lib.load_splits().test``);
    * latency: ``sentences`` test sentences of spread lengths, batch 1, ``threads`` threads; each of ``rounds``
      rounds times the teacher over all of them, then the model (the order alternating between rounds), so that
      a change in the machine's load hits both alike while each model runs warm, as when it serves requests
      (alternating sentence by sentence was tried: the teacher's 90 MB evict the small model from the caches and
      its speed-up dropped from 3.3x to 2.7x); ``latency_ratio`` is the median over rounds of model time /
      teacher time, ``latency_ms`` the model's median per sentence.

    Run it through :func:`measure_shipped` (a fresh process). Raises ValueError / FileNotFoundError from
    :func:`load_model`, ValueError for ``rounds``, ``sentences`` or ``threads`` < 1.
    """
    from .bench import count_params, int8_dot_product_flags, serialized_size_bytes
    from .train import forward_logits

    for name, value in (("rounds", rounds), ("sentences", sentences), ("threads", threads)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    torch.set_num_threads(threads)
    model = load_model(path)
    data, teacher, tokenizer, meta = _test_set()
    predictions = _predictions(model, data, tokenizer)
    labels = torch.tensor(data.test.labels)
    teacher_accuracy = float((_predictions(teacher, data, tokenizer) == labels).float().mean())
    batches = _bucket_sentences(data, tokenizer, sentences)

    def run(m) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                forward_logits(m, batch)
        return time.perf_counter() - start

    run(model), run(teacher)  # warm-up
    times = {"model": [], "teacher": []}
    for r in range(rounds):   # each model runs all sentences back to back (warm, as when serving), order alternating
        for who in (("model", "teacher") if r % 2 else ("teacher", "model")):
            times[who].append(run(model if who == "model" else teacher))
    ratios = sorted(m / t for m, t in zip(times["model"], times["teacher"]))
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return Shipped(
        file=str(path), sha256=sha256_file(Path(path)), size_bytes=Path(path).stat().st_size,
        teacher_size_bytes=serialized_size_bytes(teacher),
        accuracy=float((predictions == labels).float().mean()), teacher_accuracy=teacher_accuracy,
        latency_ms=1e3 * median(times["model"]) / sentences, teacher_latency_ms=1e3 * median(times["teacher"]) / sentences,
        latency_ratio=median(ratios), round_ratios=[round(x, 4) for x in ratios], n_params=count_params(model)[0],
        layers=len(model.bert.encoder.layer), threads=threads,
        cpu_capability=str(torch.backends.cpu.get_cpu_capability()), int8_dot_product=int8_dot_product_flags(),
        predictions=predictions.tolist())


def _run(args: list[str], timeout: float) -> dict:
    from course.env import ENV

    env = {**os.environ, **ENV, "PYTHONWARNINGS": "ignore"}  # forced: a measurement never calls the hub
    done = subprocess.run([sys.executable, "-m", "course.lib.ship", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(f"measuring in a fresh process failed: {lines[-1] if lines else 'no message'}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_shipped(path: str | os.PathLike, *, rounds: int = 9, sentences: int = 24, threads: int = 1,
                    timeout: float = 900) -> Shipped:
    """:func:`measure_file` in a fresh Python process (the caller never loads the file): a :class:`Shipped`.

    Raises:
        FileNotFoundError: no file at ``path``.
        RuntimeError: the process failed (its last error line), e.g. the file is not a course model file.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}: save one with course.lib.save_model(model, {str(path)!r})")
    args = ["measure", str(Path(path).resolve()), f"--rounds={rounds}", f"--sentences={sentences}", f"--threads={threads}"]
    return Shipped(**_run(args, timeout))


def predict_shipped(path: str | os.PathLike, timeout: float = 600) -> list[int]:
    """Test-split predictions of the model file, from a fresh process that loads the file and the test
    sentences but no teacher: the model stands on its own. Raises as :func:`measure_shipped`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    return _run(["predict", str(Path(path).resolve())], timeout)["predictions"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.lib.ship", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("measure", "predict"))
    parser.add_argument("file")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sentences", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from .notebook import quiet_libraries

    quiet_libraries()
    if args.command == "measure":
        out = asdict(measure_file(args.file, rounds=args.rounds, sentences=args.sentences, threads=args.threads))
    else:
        from transformers import AutoTokenizer

        from .data import load_splits
        from .models import default_base

        torch.set_num_threads(args.threads)
        model = load_model(args.file)
        data = load_splits()
        out = {"predictions": _predictions(model, data, AutoTokenizer.from_pretrained(default_base())).tolist()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
