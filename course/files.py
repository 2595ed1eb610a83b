"""Write files and folders so that no reader ever sees half of one: write beside, then rename.

One source for the pattern, used by the cache, the autograder, the CLI, the leaderboard and
``save_model``. Standard library only (no torch, no ``course.lib``): the autograder and the grading
sandbox import it too.

* :func:`atomic_file` / :func:`atomic_write`: a file, via a temporary file in the same folder.
* :func:`atomic_dir`: a folder, via a temporary folder in the same parent.

The temporary always sits beside its target (same file system, so :func:`os.replace` is a rename) and
is removed if anything fails, leaving the target as it was. What lands in place has the permissions
a plain ``open``/``mkdir`` would give (files ``0o666 & ~umask``, folders ``0o777 & ~umask``), not the
private ``0o600``/``0o700`` of :mod:`tempfile`: a grading sandbox's user must be able to read the cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file open for writing that becomes ``path`` only if the block succeeds.

    The file is a temporary ``.<name>.<random>.tmp`` in ``path``'s folder (created if missing); when
    the block ends it is closed, given mode ``0o666 & ~umask`` and renamed onto ``path``. On any
    exception it is deleted and ``path`` is left as it was. Use it for writers that stream
    (``torch.save``, ``savefig``, ``tarfile``); :func:`atomic_write` for bytes or text in hand.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via :func:`atomic_file` and return ``path`` as a :class:`Path`.

    ``str`` is encoded as UTF-8 (no newline translation). Raises TypeError for any other type.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes or str, got {type(data).__name__}")
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``final`` only if the block succeeds.

    The temporary ``.<name>.<random>`` sits in ``final``'s parent (created if missing). When the block
    ends, every folder in it gets mode ``0o777 & ~umask`` and every file ``0o666 & ~umask`` (links are
    left alone, never followed); then an existing ``final`` is moved aside, the temporary renamed onto
    ``final``, and the old one deleted (if the rename fails the old one is put back). On any exception
    the temporary directory is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        mask = _umask()
        os.chmod(tmp, 0o777 & ~mask)
        for path in tmp.rglob("*"):
            if not path.is_symlink():
                os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
        old = tmp.with_name(tmp.name + ".old")
        if final.exists() or final.is_symlink():
            os.rename(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:
            if old.exists() or old.is_symlink():
                os.rename(old, final)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)  # ``final`` is in place: a leftover is only litter
        elif old.exists() or old.is_symlink():
            old.unlink()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
