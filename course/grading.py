"""Release, autograde and validate the course notebooks with nbgrader.

The course uses one nbgrader assignment per notebook:
``source/<assignment>/<assignment>.ipynb`` (instructor version) and
``release/<assignment>/<assignment>.ipynb`` (student version, generated, committed).
Assignments are discovered from ``source/*/``.

nbgrader always runs in a workspace (a temporary directory for ``release``, the
``out_dir`` for ``grade``) with the repository's ``nbgrader_config.py`` copied in, so
no gradebook or student work ever lands in the repository.

Public API: :func:`list_assignments`, :func:`release`, :func:`grade`,
:func:`make_sample_class`, :func:`validate`, :func:`zip_name_regexp`, the CLI entry
points :func:`release_main`, :func:`grade_main`, :func:`validate_main`, the report
class :class:`GradeReport` and the feedback preprocessor
:class:`HideHiddenTestTracebacks` (used by ``nbgrader_config.py``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_NAME = "nbgrader_config.py"
WORKSPACE_MARKER = ".course-grading-workspace"
# File names accepted inside an LMS zip (see zip_name_regexp and autograder/README.md).
ZIP_NAME_PATTERN = "<student_id>_<anything>_<assignment>.ipynb"
# Environment for grading kernels: keep progress bars and library log chatter off
# stderr, where nbgrader would count it as a failed test. setdefault semantics.
GRADING_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}
_SKIPPED_DIRS = ("__MACOSX", ".ipynb_checkpoints", "__pycache__")
_NBGRADER_FAILURE = re.compile(
    r"There was an error processing assignment '(?P<a>[^']+)' for student '(?P<s>[^']+)'")


# --------------------------------------------------------------------------- #
# Feedback preprocessor
# --------------------------------------------------------------------------- #
class HideHiddenTestTracebacks(NbGraderPreprocessor):
    """Shorten error tracebacks of cells that contain hidden tests.

    An IPython traceback quotes the source lines around the failing line, so a
    failing cell with a ``### BEGIN HIDDEN TESTS`` block would leak hidden-test code
    into the feedback. For such cells each error output keeps only
    ``"<ExceptionName>: <message>"``. Must run before nbgrader's ``ClearHiddenTests``
    (which removes the block itself) in ``GenerateFeedback.preprocessors``.
    """

    begin_test_delimeter = Unicode(
        "BEGIN HIDDEN TESTS", help="Marker of a hidden-test region").tag(config=True)
    note = Unicode("(traceback hidden: this test cell contains hidden tests)").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and self.begin_test_delimeter in cell.source:
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}", self.note]
        return cell, resources


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #
def _existing(path, argument: str, *, kind: str = "path") -> Path:
    """Return ``path`` resolved; raise FileNotFoundError naming ``argument`` if absent."""
    resolved = Path(path).expanduser().resolve()
    checks = {"path": resolved.exists, "dir": resolved.is_dir, "file": resolved.is_file}
    if not checks[kind]():
        raise FileNotFoundError(f"{argument}: no such {'path' if kind == 'path' else kind}: {resolved}")
    return resolved


def list_assignments(repo_root: Path = REPO_ROOT) -> list[str]:
    """Names of the assignments in ``<repo_root>/source``, sorted.

    An assignment is a folder ``source/<name>/`` that contains ``<name>.ipynb``.
    Raises FileNotFoundError if ``source/`` does not exist.
    """
    source = _existing(Path(repo_root) / "source", "repo_root", kind="dir")
    return sorted(d.name for d in source.iterdir() if (d / f"{d.name}.ipynb").is_file())


def _select(repo_root: Path, assignments) -> list[str]:
    """Validate ``assignments`` against ``source/`` (None means all); ValueError if unknown."""
    known = list_assignments(repo_root)
    if not known:
        raise ValueError(f"repo_root: no assignments in {repo_root / 'source'} "
                         "(expected source/<name>/<name>.ipynb)")
    unknown = sorted(set(assignments or []) - set(known))
    if unknown:
        raise ValueError(f"assignments: unknown {unknown}; known assignments are {known}")
    return known if not assignments else [a for a in known if a in assignments]


def _config_file(repo_root: Path) -> Path:
    """The nbgrader_config.py of ``repo_root`` (FileNotFoundError if missing)."""
    return _existing(Path(repo_root) / CONFIG_NAME, "repo_root", kind="file")


def _subprocess_env() -> dict[str, str]:
    """Environment for nbgrader: venv bin dir on PATH (nbgrader runs ``alembic``),
    this project importable (the config names course.grading), GRADING_ENV defaults."""
    env = {**GRADING_ENV, **os.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _nbgrader(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader <args>`` with ``workspace`` as course root.

    Output goes to ``workspace/logs/<command>.log``. With ``check`` a non-zero exit
    raises RuntimeError with the end of the log.
    """
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={workspace}"]
    proc = subprocess.run(cmd, cwd=workspace, env=_subprocess_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    (workspace / "logs").mkdir(exist_ok=True)
    with open(workspace / "logs" / f"{args[0]}.log", "a", encoding="utf-8") as fh:
        fh.write(f"$ nbgrader {' '.join(args)}\n{proc.stdout}\n")
    if check and proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}")
    return proc


def _copy_sources(workspace: Path, repo_root: Path, names: list[str]) -> None:
    """Copy the config and ``source/<name>/`` for each name into ``workspace``."""
    shutil.copyfile(_config_file(repo_root), workspace / CONFIG_NAME)
    ignore = shutil.ignore_patterns(*_SKIPPED_DIRS)
    for name in names:
        shutil.copytree(repo_root / "source" / name, workspace / "source" / name, ignore=ignore)


# --------------------------------------------------------------------------- #
# release
# --------------------------------------------------------------------------- #
def _clear_outputs(notebook: Path) -> None:
    """Drop outputs, execution counts and saved widget state (rewrite only if needed)."""
    nb = nbformat.read(notebook, as_version=4)
    dirty = nb.metadata.pop("widgets", None) is not None
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, dirty = [], None, True
    if dirty:
        nbformat.write(nb, notebook)


def _replace_dir(built: Path, target: Path) -> None:
    """Replace ``target`` by a copy of ``built``: copy beside it, then swap by renames."""
    staging, old = target.with_name(f".{target.name}.new"), target.with_name(f".{target.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(built, staging)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def release(repo_root: Path = REPO_ROOT, assignments: list[str] | None = None) -> list[Path]:
    """Regenerate ``release/<name>/`` from ``source/<name>/`` with nbgrader.

    Runs ``nbgrader generate_assignment --no-db`` in a temporary workspace (solutions,
    hidden tests and outputs removed, checksums added), then swaps each
    ``release/<name>/`` in whole. The result depends only on the sources, so two runs
    give byte-identical files (CI checks ``git diff --exit-code release/``).

    Args:
        repo_root: folder holding ``source/`` and ``nbgrader_config.py``.
        assignments: names to release; None means every assignment in ``source/``.
    Returns:
        Paths of the release notebooks, ``release/<name>/<name>.ipynb``.
    Raises:
        FileNotFoundError: ``source/`` or ``nbgrader_config.py`` is missing.
        ValueError: no assignments, or an unknown name in ``assignments``.
        RuntimeError: nbgrader failed (its output is in the message).
    """
    repo_root = _existing(repo_root, "repo_root", kind="dir")
    names = _select(repo_root, assignments)
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        workspace = Path(tmp)
        _copy_sources(workspace, repo_root, names)
        for name in names:
            _nbgrader(workspace, "generate_assignment", name, "--force", "--no-db")
            built = workspace / "release" / name
            for notebook in built.rglob("*.ipynb"):
                _clear_outputs(notebook)
            (repo_root / "release").mkdir(exist_ok=True)
            _replace_dir(built, repo_root / "release" / name)
    return [repo_root / "release" / name / f"{name}.ipynb" for name in names]


# --------------------------------------------------------------------------- #
# grade: workspace and collection of submissions
# --------------------------------------------------------------------------- #
def _prepare_workspace(out_dir, submissions: Path) -> Path:
    """Create (or reset a previous) grading workspace at ``out_dir``.

    Raises ValueError if ``out_dir`` overlaps ``submissions`` or is a non-empty folder
    that grade() did not create.
    """
    out = Path(out_dir).expanduser().resolve()
    if out == submissions or submissions in out.parents or out in submissions.parents:
        raise ValueError(f"out_dir: {out} must not contain or be inside submissions ({submissions})")
    if out.exists() and any(out.iterdir()):
        if not (out / WORKSPACE_MARKER).exists():
            raise ValueError(f"out_dir: {out} is not empty and is not a grading workspace; "
                             "give a new or empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / WORKSPACE_MARKER).write_text("created by course.grading.grade(); safe to delete\n")
    return out


def _find_submission(student_dir: Path, name: str) -> Path | None:
    """``<student>/<name>/`` if it holds ``<name>.ipynb``, else ``<student>/<name>.ipynb``."""
    for candidate in (student_dir / name / f"{name}.ipynb", student_dir / f"{name}.ipynb"):
        if candidate.is_file():
            return candidate
    return None


def _collect_dir(submissions: Path, workspace: Path, names: list[str]) -> list[str]:
    """Copy ``<student>/...`` submissions into ``workspace/submitted`` (never touching
    the originals). Returns problems (folders with no notebook of these assignments)."""
    problems = []
    students = [d for d in sorted(submissions.iterdir())
                if d.is_dir() and not d.name.startswith(".") and d.name not in _SKIPPED_DIRS]
    for student in students:
        found = {name: _find_submission(student, name) for name in names}
        for name, notebook in found.items():
            if notebook is not None:
                _copy_submission(notebook, workspace / "submitted" / student.name / name)
        if not any(found.values()):
            problems.append(f"{student.name}: no notebook named {[f'{n}.ipynb' for n in names]}")
    return problems


def _copy_submission(notebook: Path, dest: Path) -> None:
    """Copy a notebook, or the whole assignment folder if it is ``<name>/<name>.ipynb``."""
    if notebook.parent.name == dest.name:
        ignore = shutil.ignore_patterns(*_SKIPPED_DIRS)
        shutil.copytree(notebook.parent, dest, ignore=ignore, copy_function=shutil.copyfile)
    else:
        dest.mkdir(parents=True)
        shutil.copyfile(notebook, dest / notebook.name)


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


def _unmatched_zip_entries(archive: Path, names: list[str]) -> list[str]:
    """Problems for notebooks in the zip that match no assignment's naming pattern."""
    with zipfile.ZipFile(archive) as zf:
        entries = [n for n in zf.namelist() if n.endswith(".ipynb") and "__MACOSX" not in n]
    patterns = [re.compile(zip_name_regexp(name)) for name in names]
    return [f"zip entry {entry!r} ignored: expected {ZIP_NAME_PATTERN} with assignment in {names}"
            for entry in entries if not any(p.match("/" + entry) for p in patterns)]


def _collect_zip(archive: Path, workspace: Path, names: list[str]) -> list[str]:
    """Collect an LMS zip with ``nbgrader zip_collect`` (one run per assignment)."""
    for name in names:
        downloaded = workspace / "downloaded" / name / "archive"
        downloaded.mkdir(parents=True)
        shutil.copyfile(archive, downloaded / archive.name)
        _nbgrader(workspace, "zip_collect", name, "--force",
                  f"--FileNameCollectorPlugin.named_regexp={zip_name_regexp(name)}")
    return _unmatched_zip_entries(archive, names)


def _collector(submissions: Path):
    """The collect function for a folder or a zip; ValueError for anything else."""
    if submissions.is_dir():
        return _collect_dir
    if zipfile.is_zipfile(submissions):
        return _collect_zip
    raise ValueError(f"submissions: {submissions} is neither a folder nor a zip file")


def _submitted(workspace: Path, names: list[str]) -> list[str]:
    """Assignments with at least one collected submission; ValueError if none."""
    present = [n for n in names if any((workspace / "submitted").glob(f"*/{n}/*.ipynb"))]
    if not present:
        raise ValueError(f"submissions: empty class, no notebook for any of {names} found "
                         f"(expected <student>/<assignment>/<assignment>.ipynb, "
                         f"<student>/<assignment>.ipynb, or a zip of {ZIP_NAME_PATTERN})")
    return present


# --------------------------------------------------------------------------- #
# grade: nbgrader steps and report
# --------------------------------------------------------------------------- #
def _autograde(workspace: Path, name: str, timeout: int | None) -> list[str]:
    """``nbgrader autograde`` + ``generate_feedback`` for one assignment.

    Failures of single students do not stop the class: they are returned as problems
    (those notebooks score 0)."""
    extra = [f"--Execute.timeout={int(timeout)}"] if timeout else []
    problems = []
    for step in (["autograde", name, "--force", *extra], ["generate_feedback", name, "--force"]):
        proc = _nbgrader(workspace, *step, check=False)
        failed = [m["s"] for m in _NBGRADER_FAILURE.finditer(proc.stdout)]
        if proc.returncode != 0 and not failed:
            failed = ["<all>"]
        problems += [f"{s}/{name}: nbgrader {step[0]} failed, scored 0 "
                     f"(see {workspace / 'logs' / (step[0] + '.log')})" for s in failed]
    return problems


@dataclass
class GradeReport:
    """Result of :func:`grade`.

    Attributes:
        scores: one row per (student, assignment): columns student, assignment,
            score, max_score (points), submitted (bool; False scores 0).
        cells: one row per graded cell: student, assignment, notebook, grade_id,
            score, max_score (points).
        csv_path: ``grades.csv`` written by ``nbgrader export``.
        feedback_dir: ``<out_dir>/feedback/<student>/<assignment>/<assignment>.html``.
        workspace: the nbgrader course folder (gradebook.db, autograded/, logs/).
        problems: notebooks that could not be graded or collected (human-readable).
        leaderboard: ``leaderboard.csv`` (and ``leaderboard.png`` beside it) when the capstone was graded:
            each submission's shipped model measured in a fresh process (:mod:`course.leaderboard`); else None.
    """

    scores: pd.DataFrame
    cells: pd.DataFrame
    csv_path: Path
    feedback_dir: Path
    workspace: Path
    problems: list[str] = field(default_factory=list)
    leaderboard: Path | None = None

    def cell_scores(self, student: str, assignment: str) -> dict[str, float]:
        """Points per grade_id for one submission (empty dict if not submitted)."""
        rows = self.cells[(self.cells.student == student) & (self.cells.assignment == assignment)]
        return dict(zip(rows.grade_id, rows.score))


def _submission_rows(gb, name: str, student: str) -> tuple[tuple, list[tuple]]:
    """(score row, cell rows) of one student's submission of one assignment."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(name, student)
    except MissingEntry:
        return (student, name, 0.0, gb.find_assignment(name).max_score, False), []
    cells = [(student, name, nb.name, g.name, g.score or 0.0, g.max_score)
             for nb in sub.notebooks for g in nb.grades]
    return (student, name, sub.score or 0.0, sub.max_score, True), cells


def _read_gradebook(workspace: Path, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score table and per-cell table from ``workspace/gradebook.db``."""
    from nbgrader.api import Gradebook

    scores, cells = [], []
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}", course_id="") as gb:
        for name in names:
            for student in sorted(s.id for s in gb.students):
                score_row, cell_rows = _submission_rows(gb, name, student)
                scores.append(score_row)
                cells += cell_rows
    return (pd.DataFrame(scores, columns=["student", "assignment", "score", "max_score", "submitted"]),
            pd.DataFrame(cells, columns=["student", "assignment", "notebook", "grade_id",
                                         "score", "max_score"]))


def grade(submissions: Path, out_dir: Path = Path("grading"), assignments: list[str] | None = None,
          repo_root: Path = REPO_ROOT, timeout: int | None = None) -> GradeReport:
    """Autograde a class with nbgrader and write grades and feedback.

    Submissions are copied into the workspace ``out_dir`` and never modified. Steps:
    ``generate_assignment`` (fills the gradebook), collect, ``autograde``,
    ``generate_feedback`` (hidden tests removed), ``export`` (CSV), and for the capstone the
    leaderboard (:mod:`course.leaderboard`). A notebook that
    raises or is blank scores 0 on the failing cells; one nbgrader cannot process at
    all (e.g. not valid JSON, kernel died) scores 0 and is listed in ``problems``.

    Args:
        submissions: a folder with one sub-folder per student, holding
            ``<assignment>/<assignment>.ipynb`` or ``<assignment>.ipynb``; or an LMS
            zip whose notebooks are named ``<student_id>_<anything>_<assignment>.ipynb``
            (see :func:`zip_name_regexp`).
        out_dir: grading workspace; created, or reset if an earlier grade() made it.
            Keep it outside the repository (``./grading`` is git-ignored).
        assignments: names to grade; None means every assignment in ``source/``.
        repo_root: folder holding ``source/`` and ``nbgrader_config.py``.
        timeout: seconds allowed per cell; None keeps the config's (1800 s).
    Returns:
        GradeReport (scores table, per-cell points, paths, problems).
    Raises:
        FileNotFoundError: ``submissions``, ``source/`` or the config is missing.
        ValueError: unknown assignment, empty class, unusable ``out_dir``, or a
            ``submissions`` file that is not a zip.
        RuntimeError: nbgrader failed for the whole class (message has its output).
    """
    submissions = _existing(submissions, "submissions")
    repo_root = _existing(repo_root, "repo_root", kind="dir")
    names = _select(repo_root, assignments)
    collect = _collector(submissions)
    workspace = _prepare_workspace(out_dir, submissions)
    _copy_sources(workspace, repo_root, names)
    for name in names:
        _nbgrader(workspace, "generate_assignment", name, "--force")
    problems = collect(submissions, workspace, names)
    for name in _submitted(workspace, names):
        problems += _autograde(workspace, name, timeout)
    _nbgrader(workspace, "export", f"--to={workspace / 'grades.csv'}")
    scores, cells = _read_gradebook(workspace, names)
    from course import leaderboard  # imports torch: only when a class is graded

    board = leaderboard.write(workspace, scores) if leaderboard.CAPSTONE in names else None
    return GradeReport(scores, cells, workspace / "grades.csv", workspace / "feedback",
                       workspace, problems, board)


# --------------------------------------------------------------------------- #
# sample class and validation
# --------------------------------------------------------------------------- #
def make_sample_class(out_dir: Path, repo_root: Path = REPO_ROOT,
                      assignments: list[str] | None = None) -> Path:
    """Write a two-student class for :func:`grade` (used by ``course demo``).

    Student ``solution`` submits the source notebooks (full marks expected), student
    ``blank`` the unmodified release notebooks (0 expected), as
    ``<out_dir>/<student>/<assignment>/<assignment>.ipynb``.

    Returns ``out_dir``. Raises FileNotFoundError if a release notebook is missing
    (run ``course release`` first), ValueError for an unknown assignment.
    """
    repo_root = _existing(repo_root, "repo_root", kind="dir")
    out = Path(out_dir)
    for name in _select(repo_root, assignments):
        released = _existing(repo_root / "release" / name / f"{name}.ipynb",
                             "repo_root (run `course release` first)", kind="file")
        for student, notebook in (("solution", repo_root / "source" / name / f"{name}.ipynb"),
                                  ("blank", released)):
            (out / student / name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook, out / student / name / f"{name}.ipynb")
    return out


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """Temporarily set environment variables that are not already set."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _validator(repo_root: Path, invert: bool, timeout: int | None):
    """nbgrader Validator configured from ``repo_root/nbgrader_config.py``, with
    IgnorePattern after Execute (Validator.preprocessors is not configurable)."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, Execute, IgnorePattern
    from nbgrader.validator import Validator
    from traitlets.config.loader import PyFileConfigLoader

    config_file = _config_file(repo_root)
    config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    if timeout:
        config.Execute.timeout = int(timeout)
    validator = Validator(config=config, invert=invert)
    validator.preprocessors = [CheckCellMetadata, ClearOutput, Execute, IgnorePattern]
    return validator


def validate(path: Path, invert: bool = False, repo_root: Path = REPO_ROOT,
             timeout: int | None = None) -> bool:
    """Run one notebook like ``nbgrader validate`` (with ``--invert`` if asked).

    Uses nbgrader's Validator with the repository config, plus IgnorePattern so that
    harmless warnings count as in autograding (plain ``nbgrader validate`` does not
    apply IgnorePattern). The notebook file is not modified.

    Args:
        path: the notebook (``.ipynb``).
        invert: False: True iff every graded test cell passes (use on source
            notebooks). True: True iff no graded test cell passes (use on release
            notebooks: nothing passes before the student works).
        repo_root: folder holding ``nbgrader_config.py``.
        timeout: seconds per cell; None keeps the config's.
    Returns:
        bool; the offending cells are logged at WARNING level.
    Raises:
        FileNotFoundError: ``path`` or the config is missing.
    """
    path = _existing(path, "path", kind="file")
    validator = _validator(repo_root, invert, timeout)
    with _environ(GRADING_ENV):
        results = validator.validate(str(path))
    for kind, cells in results.items():
        log.warning("%s: %d cell(s) %s:\n%s", path.name, len(cells), kind,
                    "\n---\n".join(c["source"] for c in cells))
    return not results


# --------------------------------------------------------------------------- #
# CLI entry points (wired into the `course` console script by course/cli.py)
# --------------------------------------------------------------------------- #
def _cli_error(err: Exception) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2


def _repo_root(args) -> Path:
    """``args.repo_root`` if the CLI provides one, else this repository."""
    return Path(getattr(args, "repo_root", None) or REPO_ROOT)


def release_main(args) -> int:
    """``course release [ASSIGNMENT ...]``: args.assignments (list or None).

    Exit code 0, or 2 with a message on stderr (unknown assignment, nbgrader error)."""
    try:
        paths = release(_repo_root(args), assignments=args.assignments or None)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        return _cli_error(err)
    for path in paths:
        print(f"released {path}")
    return 0


def grade_main(args) -> int:
    """``course grade SUBMISSIONS [--out DIR] [--assignments ...] [--timeout S]``.

    Prints the score table and where grades.csv and the feedback went. Exit code 0,
    1 if some notebooks could not be graded (listed on stderr), 2 on bad arguments or
    an nbgrader failure (message on stderr).
    """
    try:
        report = grade(Path(args.submissions), Path(getattr(args, "out", None) or "grading"),
                       assignments=getattr(args, "assignments", None) or None,
                       repo_root=_repo_root(args),
                       timeout=getattr(args, "timeout", None))
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        return _cli_error(err)
    print(report.scores.to_string(index=False))
    print(f"\ngrades:   {report.csv_path}\nfeedback: {report.feedback_dir}/<student>/<assignment>/")
    if report.leaderboard:
        print(f"leaderboard: {report.leaderboard} (+ {report.leaderboard.with_suffix('.png').name})")
    for problem in report.problems:
        print(f"problem:  {problem}", file=sys.stderr)
    return 1 if report.problems else 0


def validate_main(args) -> int:
    """``course validate NOTEBOOK ... [--invert]``: args.paths, args.invert. Exit 0 iff
    every notebook validates (with --invert: no test cell passes), 1 if not, 2 if a
    path is missing."""
    try:
        ok = {path: validate(Path(path), invert=args.invert, repo_root=_repo_root(args))
              for path in args.paths}
    except (FileNotFoundError, ValueError) as err:
        return _cli_error(err)
    for path, passed in ok.items():
        print(f"{'ok  ' if passed else 'FAIL'} {path}")
    return 0 if all(ok.values()) else 1
