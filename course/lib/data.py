"""Real sentiment text, offline: the Rotten Tomatoes sentences rated by people.

Source: the movie-review snippets of Pang & Lee (2005), each rated -4..4 by 20 people in
Hutto & Gilbert, "VADER", ICWSM 2014. The ratings ship inside the ``vaderSentiment==3.3.2``
source distribution on PyPI (``additional_resources/hutto_ICWSM_2014.tar.gz``), so the course
fetches them through the package registry, never from a dataset hub.

Facts about the movie set (checked by ``tests/test_data.py`` on the real file):

* 10,605 rated sentences: 5,242 positive (mean rating > 0), 5,326 negative (< 0), 37 exactly 0.
  The 37 zeros have no sentiment label and are dropped.
* 2 sentences appear twice (same text, different ids); the second copy is dropped so that no
  sentence can land in two splits. That leaves 10,566 labelled sentences.
* :func:`load_splits` splits them 80/10/10 with a fixed seed: 8,453 train, 1,057 validation,
  1,056 test. Only ``train`` is for training and only ``validation`` for model selection;
  ``test`` is for the final measurement.

The same archive has tweets, Amazon reviews and New York Times editorials in the same format;
:func:`load_ood` serves them as out-of-domain evaluation sets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

from .cache import atomic_dir, cache_dir, sha256_file

SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
INNER_SHA256 = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"
DATA_VERSION = f"hutto2014-{INNER_SHA256[:12]}"
CORPORA = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
SPLIT_SEED = 0
LABELS = ("negative", "positive")


class DataError(RuntimeError):
    """The corpus could not be fetched, verified or parsed."""


# ----------------------------------------------------------------------------- fetching


def corpus_dir() -> Path:
    """Directory holding the four verified ``*_GroundTruth.txt`` files."""
    return cache_dir() / "data" / DATA_VERSION


def fetch_corpus(sdist: str | os.PathLike | None = None) -> Path:
    """Make sure the ground-truth files are in the cache and return their directory.

    Args:
        sdist: path to a ``vaderSentiment-3.3.2.tar.gz`` you downloaded yourself (for
            machines without access to PyPI). Default: ``$COURSE_VADER_SDIST`` if set,
            else ``pip download`` it from the package registry.

    Returns:
        ``corpus_dir()``, containing the files named in ``CORPORA``.

    Raises:
        DataError: the download failed, the archive's sha256 does not match the pinned
            ``SDIST_SHA256`` / ``INNER_SHA256``, or a file is missing. Nothing is left in the
            cache in that case.
    """
    target = corpus_dir()
    if all((target / name).is_file() for name in CORPORA.values()):
        return target
    sdist = sdist or os.environ.get("COURSE_VADER_SDIST")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(sdist) if sdist else _pip_download(Path(tmp))
        _check_sha256(archive, SDIST_SHA256, what="vaderSentiment sdist")
        with atomic_dir(target) as out:
            _extract_ground_truth(archive, out)
    return target


def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-d", str(dest), "vaderSentiment==3.3.2"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    archive = dest / SDIST
    if done.returncode != 0 or not archive.is_file():
        raise DataError(
            "could not download vaderSentiment==3.3.2 from the package registry "
            f"(pip exit {done.returncode}): {done.stderr.strip()[-500:]}\n"
            "Offline? On a connected machine run\n"
            "  pip download --no-deps --no-binary :all: vaderSentiment==3.3.2\n"
            f"copy {SDIST} here and pass its path: fetch_corpus(sdist=...) or COURSE_VADER_SDIST=..."
        )
    return archive


def _check_sha256(path: Path, expected: str, what: str) -> None:
    if not Path(path).is_file():
        raise DataError(f"{what}: no file at {path}")
    got = sha256_file(path)
    if got != expected:
        raise DataError(f"{what} at {path} has sha256 {got}, expected {expected}: "
                        "the file is corrupt or not the pinned release; nothing was extracted")


def _extract_ground_truth(sdist: Path, out: Path) -> None:
    """Copy the ``*_GroundTruth.txt`` members of the inner archive into ``out``, by base name only."""
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(INNER).read()
    inner_path = out / "inner.tar.gz"
    inner_path.write_bytes(inner_bytes)
    _check_sha256(inner_path, INNER_SHA256, what="hutto_ICWSM_2014.tar.gz")
    wanted = set(CORPORA.values())
    with tarfile.open(inner_path, "r:gz") as inner:
        for member in inner.getmembers():
            name = PurePosixPath(member.name)
            if member.isfile() and name.parent == PurePosixPath("hutto_ICWSM_2014") and name.name in wanted:
                (out / name.name).write_bytes(inner.extractfile(member).read())
                wanted.discard(name.name)
    inner_path.unlink()
    if wanted:
        raise DataError(f"archive lacks {sorted(wanted)}")


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Rated:
    """One rated sentence: ``id`` as in the file, mean human ``rating`` in [-4, 4], ``text``."""

    id: str
    rating: float
    text: str


def parse_ground_truth(path: str | os.PathLike) -> list[Rated]:
    """Parse a Hutto & Gilbert ``*_GroundTruth.txt`` file.

    Format: UTF-8, CRLF (LF also accepted), one sentence per line, three tab-separated
    fields ``id<TAB>mean rating<TAB>text``. The text itself has no tabs.

    Raises:
        DataError: a line does not have three fields, or its rating is not a number in [-4, 4];
            the message gives the file and line number.
    """
    rows = []
    text = Path(path).read_bytes().decode("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        try:
            rating = float(fields[1])
        except ValueError:
            raise DataError(f"{path}:{number}: rating {fields[1]!r} is not a number") from None
        if not -4.0 <= rating <= 4.0:
            raise DataError(f"{path}:{number}: rating {rating} is outside [-4, 4]")
        rows.append(Rated(fields[0], rating, fields[2].strip()))
    return rows


def to_labelled(rows: list[Rated]) -> tuple[list[str], list[int]]:
    """Binary sentiment: 1 if rating > 0, 0 if rating < 0; drop ratings of exactly 0 and
    repeated texts (first occurrence kept). Returns ``(texts, labels)``."""
    texts, labels, seen = [], [], set()
    for row in rows:
        if row.rating == 0 or row.text in seen:
            continue
        seen.add(row.text)
        texts.append(row.text)
        labels.append(int(row.rating > 0))
    return texts, labels


# ----------------------------------------------------------------------------- splits


@dataclass
class Split:
    """Parallel lists: ``texts[i]`` (str) has sentiment ``labels[i]`` (0 negative, 1 positive)."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n: int) -> "Split":
        """The first ``n`` examples (the split order is already random)."""
        return Split(self.texts[:n], self.labels[:n])


@dataclass
class SentimentData:
    """Train / validation / test splits of one corpus, plus where they came from."""

    train: Split
    validation: Split
    test: Split
    source: str

    def summary(self) -> str:
        def pos(s: Split) -> str:
            return f"{len(s):,} ({100 * sum(s.labels) / max(len(s), 1):.1f}% positive)"
        return (f"{self.source}: train {pos(self.train)}, validation {pos(self.validation)}, "
                f"test {pos(self.test)}")


def split_indices(n: int, seed: int = SPLIT_SEED, fractions=(0.8, 0.1)) -> tuple[list[int], list[int], list[int]]:
    """A seeded random partition of ``range(n)`` into train / validation / test index lists.

    Sizes: ``round(0.8 n)``, ``round(0.1 n)``, and the rest. Raises ValueError for n < 3.
    """
    if n < 3:
        raise ValueError(f"n must be at least 3 to make three splits, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


def _take(texts: list[str], labels: list[int], idx: list[int]) -> Split:
    return Split([texts[i] for i in idx], [labels[i] for i in idx])


def load_splits(source: str = "vader", seed: int = SPLIT_SEED, sdist=None) -> SentimentData:
    """The movie-review sentiment corpus as train / validation / test.

    Args:
        source: ``"vader"`` (default, offline-safe: the rated sentences from the
            vaderSentiment sdist, split 80/10/10 = 8,453 / 1,057 / 1,056), or ``"hub"``
            (online only, needs ``pip install datasets``: ``datasets.load_dataset("rotten_tomatoes")``,
            the full Pang & Lee sentence-polarity set with its own 8,530 / 1,066 / 1,066 split).
        seed: split seed for ``"vader"``.
        sdist: passed to :func:`fetch_corpus`.

    Raises:
        ValueError: unknown ``source``. DataError: see :func:`fetch_corpus`.
    """
    if source == "hub":
        return _load_hub()
    if source != "vader":
        raise ValueError(f"source must be 'vader' (offline default) or 'hub', got {source!r}")
    texts, labels = to_labelled(parse_ground_truth(fetch_corpus(sdist) / CORPORA["movies"]))
    train, val, test = split_indices(len(texts), seed)
    return SentimentData(_take(texts, labels, train), _take(texts, labels, val),
                         _take(texts, labels, test), source=f"{DATA_VERSION}/movies/seed{seed}")


def _load_hub() -> SentimentData:
    import datasets  # optional dependency, online only

    ds = datasets.load_dataset("rotten_tomatoes")
    splits = {name: Split(list(ds[name]["text"]), list(ds[name]["label"])) for name in ("train", "validation", "test")}
    return SentimentData(**splits, source="hub/rotten_tomatoes")


def load_ood(name: str, sdist=None) -> Split:
    """An out-of-domain evaluation set from the same archive: ``"tweets"``, ``"amazon"`` or ``"nyt"``.

    Labelled like the movies (rating > 0 positive, < 0 negative, zeros and repeats dropped).
    Never train on these. Raises ValueError for another name.
    """
    if name not in CORPORA or name == "movies":
        raise ValueError(f"name must be one of 'tweets', 'amazon', 'nyt', got {name!r}")
    return Split(*to_labelled(parse_ground_truth(fetch_corpus(sdist) / CORPORA[name])))


# ----------------------------------------------------------------------------- tensors


class TokenizedDataset(torch.utils.data.Dataset):
    """A :class:`Split` tokenized once, to be batched with dynamic padding by :func:`make_loader`.

    Each item is a dict: ``input_ids`` / ``attention_mask`` (lists of int, length <= ``max_length``),
    ``labels`` (int), ``index`` (int, position in the split), plus one entry per ``extras``
    tensor (row ``index`` of it, e.g. cached ``teacher_logits`` of shape ``(C,)``).
    """

    def __init__(self, split: Split, tokenizer, max_length: int = 64, extras: dict[str, torch.Tensor] | None = None):
        for key, value in (extras or {}).items():
            if len(value) != len(split):
                raise ValueError(f"extras[{key!r}] has {len(value)} rows, the split has {len(split)}")
        self.encodings = tokenizer(split.texts, truncation=True, max_length=max_length)
        self.labels = split.labels
        self.extras = extras or {}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = {key: self.encodings[key][i] for key in ("input_ids", "attention_mask")}
        item.update(labels=self.labels[i], index=i)
        item.update({key: value[i] for key, value in self.extras.items()})
        return item

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.encodings["input_ids"]]


class LengthBucketSampler(torch.utils.data.Sampler):
    """Batches of similar-length examples, so that dynamic padding adds few pad tokens.

    Shuffles (seeded, new order per epoch), cuts the order into pools of ``50 * batch_size``,
    sorts each pool by length, slices it into batches, and shuffles the batches. With
    ``shuffle=False`` it just sorts the whole split by length (for fast, deterministic evaluation).
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool = True, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths, self.batch_size, self.shuffle, self.seed, self.epoch = lengths, batch_size, shuffle, seed, 0

    def __iter__(self):
        n, b = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=self.lengths.__getitem__)
            yield from (order[i:i + b] for i in range(0, n, b))
            return
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order, pool = torch.randperm(n, generator=gen).tolist(), 50 * b
        batches = []
        for start in range(0, n, pool):
            chunk = sorted(order[start:start + pool], key=self.lengths.__getitem__)
            batches += [chunk[i:i + b] for i in range(0, len(chunk), b)]
        yield from (batches[i] for i in torch.randperm(len(batches), generator=gen).tolist())

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def collate(tokenizer):
    """A collate function: pads ``input_ids``/``attention_mask`` to the longest in the batch
    (``tokenizer.pad``) and stacks everything else into tensors. Shapes: ``(B, T)`` and ``(B, ...)``."""
    def fn(items: list[dict]) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad([{k: it[k] for k in ("input_ids", "attention_mask")} for it in items],
                              return_tensors="pt")
        for key in items[0]:
            if key not in batch:
                values = [it[key] for it in items]
                batch[key] = torch.stack(values) if torch.is_tensor(values[0]) else torch.tensor(values)
        return dict(batch)
    return fn


def make_loader(split: Split, tokenizer, batch_size: int = 32, shuffle: bool = False, max_length: int = 64,
                extras: dict[str, torch.Tensor] | None = None, seed: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over ``split`` with length-bucketed batches and dynamic padding.

    Batches are dicts of tensors: ``input_ids``/``attention_mask`` ``(B, T)`` int64 with
    ``T <= max_length``, ``labels`` ``(B,)``, ``index`` ``(B,)`` (positions in ``split``, since
    bucketing reorders examples), and any ``extras``.
    """
    dataset = TokenizedDataset(split, tokenizer, max_length, extras)
    sampler = LengthBucketSampler(dataset.lengths(), batch_size, shuffle=shuffle, seed=seed)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate(tokenizer))
