"""Where the course keeps downloads and prepared models, and how it writes them safely.

Everything the course downloads or trains lives under one directory, :func:`cache_dir`:
``$COURSE_CACHE`` when set, otherwise the user's cache directory
(``~/.cache/nlp-compression-course`` on Linux, via :mod:`platformdirs`).
Entries are written into a temporary sibling and renamed into place (:func:`atomic_dir`, from
:mod:`course.files`, re-exported here), so a crash or a failed check never leaves a half-written entry.
A prepared cache can be handed to other machines: :mod:`course.lib.cache_archive`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from course import cache_root
from course.files import atomic_dir

__all__ = ["atomic_dir", "cache_dir", "sha256_file"]


def cache_dir() -> Path:
    """The course cache directory (created if missing): ``$COURSE_CACHE`` or the user cache dir."""
    path = Path(cache_root())
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
