"""Read a class's submissions into memory, safely, one verdict per submission.

Why this module exists: the first grader (``course.grading``) collected submissions by
copying whole ``<student>/<assignment>/`` folders with ``shutil.copytree`` and by letting
``nbgrader zip_collect`` extract LMS zips. It followed symbolic links (a student's
``data.csv -> /home/instructor/.ssh/id_rsa`` was copied into the workspace and the
graded notebook could read it), copied whatever else the student put in the folder, and
one dangling link or unreadable file raised out of ``copytree`` and stopped the grading
of the whole class.

:func:`collect` instead only *reads*: it never modifies, follows, copies or extracts
anything. Each notebook is read into memory as bytes (``O_NOFOLLOW``, regular files only,
size-bounded; zip entries decompressed in memory with a bounded read) and checked to be a
version-4 notebook of the right assignment. Every bad input becomes a :class:`Rejected`
with a one-line reason for the instructor, and the rest of the class is still collected.
The grader later sends only :attr:`Submission.notebook` to a sandboxed job, so nothing
else a student submitted (links, data files, folders) ever reaches the grading kernel.

Accepted layouts (see autograder/README.md):

* a folder with one sub-folder per student: ``<student>/<assignment>/<assignment>.ipynb``
  or ``<student>/<assignment>.ipynb``;
* a zip as Canvas or Moodle export it, notebooks named as :func:`zip_name_regexp`
  describes (``<student_id>_<anything>_<assignment>.ipynb``).

Public API: :data:`STUDENT_ID`, :data:`MAX_NOTEBOOK_BYTES`, :class:`Submission`,
:class:`Rejected`, :func:`zip_name_regexp`, :func:`collect`.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat
from nbformat.reader import NotJSONError
from nbformat.validator import get_validator

# A student id: used as a folder name and as nbgrader's student id (fullmatch).
# Letters, digits and ._@+- ; inner spaces allowed (Moodle exports "Full Name_<id>_assignsubmission_file_/").
STUDENT_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._@+-]{0,62}[A-Za-z0-9._@+-])?")
# The largest notebook read (bytes on disk, or uncompressed size in a zip).
MAX_NOTEBOOK_BYTES = 50 * 2**20

_SKIPPED_DIRS = ("__MACOSX", ".ipynb_checkpoints", "__pycache__")
_ZIP_NAME_PATTERN = "<student_id>_<anything>_<assignment>.ipynb"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in for the notebook must not block
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_MAX_LISTED = 5  # file names quoted in one reason
_MAX_QUOTE = 200  # characters of a parser's message quoted in one reason


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one assignment, read into memory.

    Attributes:
        student: the student id (fullmatches :data:`STUDENT_ID`).
        assignment: the assignment name, one of ``collect``'s ``assignments``.
        notebook: the file's bytes, exactly as submitted (never re-serialised).
        origin: where it came from, for messages: a path relative to the submissions
            folder (``alice/01_distillation.ipynb``) or ``zip:<entry name>``.
        sha256: hex SHA-256 of ``notebook``.
    """

    student: str
    assignment: str
    notebook: bytes
    origin: str
    sha256: str


@dataclass(frozen=True)
class Rejected:
    """Something in the submissions that is not graded, and why.

    Attributes:
        student: the student id, or None when it cannot be told (a stray file, a folder
            name that is not a valid id, a zip entry that matches no naming pattern).
        assignment: the assignment, or None when it cannot be told or when the whole
            student is concerned.
        origin: where it is, as in :attr:`Submission.origin`.
        reason: one line an instructor understands, e.g.
            ``"is a symbolic link (only regular files are graded)"``.
    """

    student: str | None
    assignment: str | None
    origin: str
    reason: str


class _Reject(Exception):
    """Internal: the submission at hand is rejected with this reason."""


def zip_name_regexp(assignment: str) -> str:
    """nbgrader ``FileNameCollectorPlugin.named_regexp`` for one assignment in a zip.

    Matches (against the extracted file's full path) Canvas-style flat names
    ``<student_id>_<anything>_<assignment>.ipynb`` (``<anything>_`` optional, a
    resubmission suffix ``-<n>`` allowed) and Moodle-style folders
    ``<student_id>_<anything>/<assignment>.ipynb``. ``student_id`` is everything
    before the first ``_``, so it cannot contain ``_`` nor start with ``.``; files
    under ``__MACOSX/`` are skipped.
    """
    name = re.escape(assignment)
    return (r"(?!.*/__MACOSX/).*/(?P<student_id>[^/_.][^/_]*)_(?:[^/]*[_/])?"
            rf"(?P<file_id>{name})(?:-\d+)?\.ipynb$")


def collect(submissions: Path, assignments: list[str],
            grade_ids: dict[str, set[str]] | None = None) -> tuple[list[Submission], list[Rejected]]:
    """Read every submission of ``assignments`` found in ``submissions``.

    Nothing is modified, followed, copied or extracted: notebooks are read into memory
    (regular files only, at most :data:`MAX_NOTEBOOK_BYTES`). Every problem with one
    student's input is a :class:`Rejected` and the rest of the class is still read.

    Args:
        submissions: a folder with one sub-folder per student (the notebook is
            ``<student>/<assignment>/<assignment>.ipynb`` or
            ``<student>/<assignment>.ipynb``), or a Canvas/Moodle zip whose notebooks
            are named as :func:`zip_name_regexp` describes. The path itself may be a
            link (it is the caller's choice); nothing inside it is followed.
        assignments: the assignment names to collect (plain names, no ``/``).
        grade_ids: optional, each assignment's ``grade_id``s (those of its release
            notebook's nbgrader cells). When given, a notebook whose nbgrader cells all
            belong to another assignment is rejected as that assignment's notebook.
            A notebook without nbgrader metadata is accepted.

    Returns:
        ``(submissions, rejected)``: the :class:`Submission`s sorted by
        ``(student, assignment)`` and the :class:`Rejected` sorted by ``origin``.
        A student with no notebook of some assignment simply has no entry for it.

    Raises:
        FileNotFoundError: ``submissions`` does not exist.
        ValueError: ``submissions`` is neither a folder nor a zip file, is a corrupt
            zip or cannot be listed; or ``assignments`` is empty or holds a name that
            is not a plain file name.
    """
    submissions = Path(submissions)
    names = _check_assignments(assignments)
    ids = {a: frozenset(v) for a, v in grade_ids.items()} if grade_ids is not None else None
    if not os.path.exists(submissions):
        raise FileNotFoundError(f"submissions: {submissions} does not exist")
    if submissions.is_dir():
        found, rejected = _collect_folder(submissions, names, ids)
    elif submissions.is_file():
        found, rejected = _collect_zip(submissions, names, ids)
    else:
        raise ValueError(f"submissions: {submissions} is neither a folder nor a zip file")
    return (sorted(found, key=lambda s: (s.student, s.assignment)),
            sorted(rejected, key=lambda r: (r.origin, r.reason)))


# --------------------------------------------------------------------------- #
# helpers shared by both inputs
# --------------------------------------------------------------------------- #
def _check_assignments(assignments) -> list[str]:
    """The assignment names, de-duplicated in order; ValueError for unusable ones."""
    if isinstance(assignments, str):
        raise ValueError(f"assignments: expected a list of names, got the string {assignments!r}")
    names = list(dict.fromkeys(assignments))
    if not names:
        raise ValueError("assignments: empty, give at least one assignment name")
    bad = [n for n in names if not isinstance(n, str) or n in ("", ".", "..") or n.startswith(".")
           or any(c in n for c in "/\\\0")]
    if bad:
        raise ValueError(f"assignments: {bad} are not plain file names")
    return names


def _show(text: str) -> str:
    """``text`` on one printable line (control characters escaped)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _one_line(message: str) -> str:
    """The first line of a parser's message, cut to a readable length."""
    lines = str(message).strip().splitlines()
    line = _show(lines[0].strip()) if lines else ""
    return line if len(line) <= _MAX_QUOTE else line[:_MAX_QUOTE - 3] + "..."


def _listing(items: list[str]) -> str:
    """``a, b, c`` (at most _MAX_LISTED, then ``and N more``)."""
    shown = ", ".join(_show(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _too_big(size: int) -> str:
    return f"is {_mib(size)}, more than the {_mib(MAX_NOTEBOOK_BYTES)} a notebook may have"


def _check_notebook(data: bytes, assignment: str, grade_ids: dict[str, frozenset[str]] | None) -> None:
    """Raise _Reject unless ``data`` is a valid version-4 notebook of ``assignment``.

    The raw JSON is checked against nbformat's schema before ``nbformat.reads`` sees it,
    because nbformat itself raises TypeError/AttributeError on some malformed JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Reject(f"is not a notebook: not UTF-8 text ({_one_line(e)})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Reject(f"is not a notebook: not valid JSON ({_one_line(e)})") from None
    except RecursionError:
        raise _Reject("is not a notebook: its JSON is nested too deeply to read") from None
    version = raw.get("nbformat") if isinstance(raw, dict) else None
    if type(version) is not int:
        raise _Reject('is valid JSON but not a notebook (no integer "nbformat" version field)')
    if version != 4:
        raise _Reject(f"is an nbformat {version} notebook; only version-4 notebooks are graded "
                      "(open and save it in a current Jupyter)")
    minor = raw.get("nbformat_minor")
    validator = get_validator(version=4, version_minor=minor) if type(minor) is int else None
    if validator is None:
        raise _Reject(f'is not a valid notebook: bad "nbformat_minor" {_one_line(repr(minor))}')
    try:
        validator.validate(raw)
        with warnings.catch_warnings():  # e.g. MissingIDFieldWarning: harmless for grading
            warnings.simplefilter("ignore")
            captured = {}
            nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)
            if "ValidationError" in captured:
                raise captured["ValidationError"]
            nbformat.validate(nb)
    except (NotJSONError, nbformat.NBFormatError, nbformat.ValidationError) as e:
        raise _Reject(f"is not a valid notebook ({_one_line(getattr(e, 'message', e))})") from None
    except RecursionError:
        raise _Reject("is not a valid notebook: its JSON is nested too deeply to read") from None
    if grade_ids is not None and assignment in grade_ids:
        mine = _grade_ids(nb)
        if mine and not mine & grade_ids[assignment]:
            overlap = {other: len(mine & ids) for other, ids in grade_ids.items() if other != assignment}
            best = max(sorted(overlap), key=lambda other: overlap[other], default=None)
            if best is not None and overlap[best]:
                raise _Reject(f"looks like {best} (its graded cells are {best}'s), not {assignment}")


def _grade_ids(nb) -> set[str]:
    """The ``grade_id``s of a notebook's nbgrader cells."""
    ids = set()
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
    return ids


def _submission(student: str, assignment: str, data: bytes, origin: str) -> Submission:
    return Submission(student, assignment, data, origin, hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------------------- #
# folder input
# --------------------------------------------------------------------------- #
def _skipped(name: str) -> bool:
    """Hidden entries and tool folders are not looked at."""
    return name.startswith(".") or name in _SKIPPED_DIRS


def _collect_folder(root: Path, names: list[str], grade_ids):
    found, rejected = [], []
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise ValueError(f"submissions: cannot list {root}: {e.strerror}") from e
    for entry in entries:
        if _skipped(entry.name):
            continue
        origin = _show(entry.name)
        if entry.is_symlink():
            rejected.append(Rejected(None, None, origin, "is a symbolic link, not a student folder "
                                     "(only real folders are read; links are never followed)"))
        elif not entry.is_dir(follow_symlinks=False):
            rejected.append(Rejected(None, None, origin, "is not a folder: expected one folder per "
                                     "student holding <assignment>.ipynb or <assignment>/<assignment>.ipynb"))
        elif not STUDENT_ID.fullmatch(entry.name):
            rejected.append(Rejected(None, None, origin, _bad_id(entry.name, "folder name")))
        else:
            student_found, student_rejected = _collect_student(root, entry.name, names, grade_ids)
            found += student_found
            rejected += student_rejected
    return found, rejected


def _bad_id(student: str, what: str) -> str:
    return (f"{what} {_show(student)!r} is not a valid student id (1 to 64 letters, digits "
            "and . _ @ + -, starting with a letter or digit; no spaces)")


def _link_note(path: Path) -> str:
    """``name -> target`` for a symbolic link (the target is only read, never followed)."""
    try:
        return f"-> {_show(os.readlink(path))}"
    except OSError:
        return "(target unreadable)"


def _collect_student(root: Path, student: str, names: list[str], grade_ids):
    """One student's folder: (submissions, rejections)."""
    folder = root / student
    try:
        with os.scandir(folder) as it:
            entries = {e.name: e for e in it}
    except OSError as e:
        return [], [Rejected(student, None, student, f"cannot be read: {e.strerror}")]
    concerns = {n for a in names for n in (a, f"{a}.ipynb")}
    stray_links = sorted(n for n, e in entries.items() if e.is_symlink() and n not in concerns)

    found, rejected, present = [], [], False
    for assignment in names:
        result = _collect_one(root, student, assignment, entries, grade_ids)
        if result is not None:
            present = True
            (found if isinstance(result, Submission) else rejected).append(result)

    if stray_links:  # a link next to the notebooks: nothing of this student is graded
        found = []
        for name in stray_links:
            rejected.append(Rejected(
                student, None, f"{student}/{_show(name)}",
                f"is a symbolic link {_link_note(folder / name)} in {student}'s folder, so none of "
                f"{student}'s submissions are graded (only regular files are graded; remove the link)"))
    elif not present:
        rejected.append(Rejected(student, None, student, _no_notebook(folder, student, names, entries)))
    return found, rejected


def _collect_one(root: Path, student: str, assignment: str, entries: dict, grade_ids):
    """The Submission or Rejected for (student, assignment), or None if nothing is there."""
    folder_entry = entries.get(assignment)
    flat_entry = entries.get(f"{assignment}.ipynb")
    sub = f"{student}/{assignment}"
    if folder_entry is not None and folder_entry.is_symlink():
        return Rejected(student, assignment, sub,
                        f"is a symbolic link {_link_note(root / sub)} (only real folders and "
                        "regular files are graded)")
    nested_dir = folder_entry is not None and folder_entry.is_dir(follow_symlinks=False)
    nested = f"{sub}/{assignment}.ipynb"
    flat = f"{sub}.ipynb"
    has_nested = nested_dir and os.path.lexists(root / nested)
    if has_nested and flat_entry is not None:
        return Rejected(student, assignment, nested,
                        f"two submissions of {assignment} for {student}: {nested} and {flat}; neither "
                        "is graded (keep only one)")
    if nested_dir:
        try:
            links = _links_below(root / sub)
        except OSError as e:
            return Rejected(student, assignment, sub, f"cannot be read: {e.strerror}")
        if links and not (has_nested and links == [f"{assignment}.ipynb"]):
            listed = _listing([f"{sub}/{link} {_link_note(root / sub / link)}" for link in links])
            return Rejected(student, assignment, nested if has_nested else sub,
                            f"the folder {sub}/ holds a symbolic link: {listed} "
                            "(only regular files are graded; remove the link)")
    if has_nested:
        origin, parts = nested, (student, assignment, f"{assignment}.ipynb")
    elif flat_entry is not None:
        origin, parts = flat, (student, f"{assignment}.ipynb")
    else:
        return None
    if (root / origin).is_symlink():
        return Rejected(student, assignment, origin,
                        f"is a symbolic link {_link_note(root / origin)} (only regular files are "
                        "graded, even a link to a notebook)")
    try:
        data = _read_regular(root, parts)
        _check_notebook(data, assignment, grade_ids)
    except _Reject as e:
        return Rejected(student, assignment, origin, str(e))
    return _submission(student, assignment, data, origin)


def _links_below(folder: Path) -> list[str]:
    """Relative paths of every symbolic link anywhere below ``folder`` (never followed)."""
    links, todo = [], [PurePosixPath()]
    while todo:
        rel = todo.pop()
        with os.scandir(folder.joinpath(rel)) as it:
            for entry in it:
                if entry.is_symlink():
                    links.append(str(rel / entry.name))
                elif entry.is_dir(follow_symlinks=False):
                    todo.append(rel / entry.name)
    return sorted(links)


def _read_regular(root: Path, parts: tuple[str, ...]) -> bytes:
    """The bytes of ``root/parts...``, a regular file reached without following any link.

    Each folder on the way is opened relative to the previous one with ``O_NOFOLLOW``
    (where the OS supports ``dir_fd``), so a folder swapped for a link after the checks
    is not followed either. Reads at most MAX_NOTEBOOK_BYTES + 1 bytes.
    """
    final_flags = os.O_RDONLY | _NOFOLLOW | _NONBLOCK
    try:
        if os.open in os.supports_dir_fd and _DIRECTORY and _NOFOLLOW:
            dir_fd = os.open(root, os.O_RDONLY | _DIRECTORY)
            try:
                for part in parts[:-1]:
                    next_fd = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=dir_fd)
                    os.close(dir_fd)
                    dir_fd = next_fd
                fd = os.open(parts[-1], final_flags, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
        else:
            fd = os.open(root.joinpath(*parts), final_flags)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            raise _Reject("is a symbolic link or lies under one (only regular files are graded)") from None
        raise _Reject(f"cannot be read: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Reject("is not a regular file (only regular files are graded)")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise _Reject(_too_big(info.st_size))
        chunks, left = [], MAX_NOTEBOOK_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise _Reject(f"cannot be read: {e.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise _Reject(f"grew past {_mib(MAX_NOTEBOOK_BYTES)} while it was read (limit for a notebook)")
    return data


def _no_notebook(folder: Path, student: str, names: list[str], entries: dict) -> str:
    """Reason for a student folder with no notebook of any assignment."""
    expected = _listing([f"{a}.ipynb" for a in names])
    notebooks = []
    for dirpath, dirnames, filenames in os.walk(folder):  # never follows links
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        rel = Path(dirpath).relative_to(folder.parent)
        notebooks += [(rel / f).as_posix() for f in sorted(filenames)
                      if f.lower().endswith(".ipynb") and not f.startswith(".")]
    where = (f"expected {student}/<assignment>.ipynb or {student}/<assignment>/<assignment>.ipynb "
             f"with one of {expected}")
    if notebooks:
        return f"no notebook of these assignments: {where}; found {_listing(notebooks)}"
    if not entries:
        return f"is an empty folder: {where}"
    return f"no notebook of these assignments: {where}; found no .ipynb file"


# --------------------------------------------------------------------------- #
# zip input
# --------------------------------------------------------------------------- #
def _open_zip(archive: Path) -> zipfile.ZipFile:
    """The open zip; ValueError (naming ``submissions``) for anything else."""
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:  # NotImplemented: bad version field
        try:
            with open(archive, "rb") as f:
                magic = f.read(2)
        except OSError:
            magic = b""
        if magic == b"PK" or archive.suffix.lower() == ".zip":
            raise ValueError(f"submissions: {archive} is a corrupt zip file or one Python's zipfile "
                             f"cannot read ({e})") from e
        raise ValueError(f"submissions: {archive} is neither a folder nor a zip file") from e
    except OSError as e:
        raise ValueError(f"submissions: cannot read {archive}: {e.strerror}") from e


def _unsafe_name(name: str) -> str | None:
    """Why a zip entry name is unsafe to use as a path, or None."""
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute name (a zip must hold relative paths only)"
    if ".." in parts:
        return "has a '..' component in its name (it would point outside the extraction folder)"
    return None


def _collect_zip(archive: Path, names: list[str], grade_ids):
    patterns = {a: re.compile(zip_name_regexp(a)) for a in names}
    by_length = sorted(names, key=len, reverse=True)  # the longest (most specific) name wins
    found, rejected, candidates = [], [], {}
    with _open_zip(archive) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            name = info.filename
            origin = f"zip:{_show(name)}"
            parts = [p for p in re.split(r"[/\\]", name) if p]
            if "__MACOSX" in parts:
                continue
            match = assignment = None
            for a in by_length:
                match = patterns[a].match("/" + name)
                if match:
                    assignment = a
                    break
            student = match["student_id"] if match else None
            unsafe = _unsafe_name(name)
            mode = info.external_attr >> 16
            if unsafe:
                rejected.append(Rejected(student, assignment, origin, unsafe))
                continue
            if stat.S_ISLNK(mode):
                rejected.append(Rejected(student, assignment, origin,
                                         "is a symbolic link (only regular files are graded)"))
                continue
            if info.is_dir() or any(_skipped(p) for p in parts):
                continue
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                rejected.append(Rejected(student, assignment, origin,
                                         "is not a regular file (only regular files are graded)"))
                continue
            if not name.lower().endswith(".ipynb"):
                continue  # LMS zips carry other files
            if match is None:
                rejected.append(Rejected(None, None, origin, f"matches no assignment: expected "
                                         f"{_ZIP_NAME_PATTERN} with assignment one of {_listing(names)}"))
            elif not STUDENT_ID.fullmatch(student):
                rejected.append(Rejected(None, assignment, origin,
                                         _bad_id(student, "student id (the text before the first '_')")))
            else:
                candidates.setdefault((student, assignment), []).append(info)

        for (student, assignment), infos in sorted(candidates.items()):
            origins = [f"zip:{_show(i.filename)}" for i in infos]
            if len(infos) > 1:
                rejected.append(Rejected(
                    student, assignment, origins[0],
                    f"{len(infos)} submissions of {assignment} for {student}: {_listing(origins)}; "
                    "none is graded (keep only the latest submission per student in the zip)"))
                continue
            try:
                data = _read_entry(zf, infos[0])
                _check_notebook(data, assignment, grade_ids)
            except _Reject as e:
                rejected.append(Rejected(student, assignment, origins[0], str(e)))
                continue
            found.append(_submission(student, assignment, data, origins[0]))
    return found, rejected


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """An entry's bytes, decompressed in memory, at most MAX_NOTEBOOK_BYTES."""
    if info.flag_bits & 0x1:
        raise _Reject("is encrypted (password-protected entries are not graded)")
    if info.file_size > MAX_NOTEBOOK_BYTES:
        raise _Reject(_too_big(info.file_size))
    try:
        with zf.open(info) as f:
            data = f.read(MAX_NOTEBOOK_BYTES + 1)  # bounded, whatever the header claims
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as e:
        raise _Reject(f"cannot be read from the zip ({_one_line(e)})") from None
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise _Reject(f"is larger than {_mib(MAX_NOTEBOOK_BYTES)} (its size in the zip header is wrong)")
    return data
