"""Release and validate the course notebooks with nbgrader; ``grade`` hands a class to :mod:`autograder`.

The course uses one nbgrader assignment per notebook:
``source/<assignment>/<assignment>.ipynb`` (instructor version) and
``release/<assignment>/<assignment>.ipynb`` (student version, generated, committed).
Assignments are discovered from ``source/*/``.

nbgrader always runs in a workspace (a temporary directory for ``release``, the
``out_dir`` for ``grade``) with the repository's ``nbgrader_config.py`` copied in, so
no gradebook or student work ever lands in the repository.

Public API: :func:`list_assignments`, :func:`release`, :func:`grade`,
:func:`make_sample_class`, :func:`validate`, and the CLI entry points
:func:`release_main`, :func:`grade_main`, :func:`validate_main`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.batch import copy_course
from autograder.sandbox import KERNEL_ENV as GRADING_ENV  # grading kernels' environment: one source
from course import GRADING_DIR
from course.files import atomic_dir

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_NAME = "nbgrader_config.py"


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
    """Replace ``target`` by a copy of ``built``: copy beside it, then swap by renames (:func:`atomic_dir`)."""
    with atomic_dir(target) as staging:
        shutil.copytree(built, staging, dirs_exist_ok=True)


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
        _config_file(repo_root)
        copy_course(workspace, repo_root, names)
        for name in names:
            _nbgrader(workspace, "generate_assignment", name, "--force", "--no-db")
            built = workspace / "release" / name
            for notebook in built.rglob("*.ipynb"):
                _clear_outputs(notebook)
            (repo_root / "release").mkdir(exist_ok=True)
            _replace_dir(built, repo_root / "release" / name)
    return [repo_root / "release" / name / f"{name}.ipynb" for name in names]


# --------------------------------------------------------------------------- #
# grade (the grading system itself lives in the autograder package)
# --------------------------------------------------------------------------- #
def grade(submissions: Path, out_dir: Path = Path(GRADING_DIR), assignments: list[str] | None = None,
          repo_root: Path = REPO_ROOT, timeout: int | None = None, *, workers: int | None = None,
          scheduler: str | None = None, sandbox: bool = True, limits=None, progress: bool = False):
    """Autograde a class: one sandboxed nbgrader job per submission on Dask (:mod:`autograder`).

    Args:
        submissions: a folder with one sub-folder per student, holding
            ``<assignment>/<assignment>.ipynb`` or ``<assignment>.ipynb``; or an LMS zip whose
            notebooks are named ``<student_id>_<anything>_<assignment>.ipynb``
            (:func:`autograder.intake.zip_name_regexp`).
        out_dir: grading workspace; created, or reset if an earlier grade() made it. Keep it
            outside the repository (``./grading`` is git-ignored).
        assignments: names to grade; None means every assignment in ``source/``.
        repo_root: folder holding ``source/`` and ``nbgrader_config.py``.
        timeout: seconds allowed per cell; None keeps the limits' (1800 s).
        workers: local Dask worker processes (default: one per 2 cores); scheduler: address of a
            running Dask scheduler instead.
        sandbox: False runs learner code unsandboxed (``--no-sandbox``: trusted notebooks only).
        limits: :class:`autograder.sandbox.Limits` of each job (memory, processes, disk, time).
        progress: show a progress bar over submissions.
    Returns:
        :class:`autograder.batch.GradeReport` (scores with status/reason/review, per-cell points,
        paths, problems, leaderboard).
    Raises:
        FileNotFoundError: ``submissions``, ``source/`` or the config is missing.
        ValueError: unknown assignment, empty class, unusable ``out_dir``, a ``submissions`` file
            that is not a zip, bad ``workers``.
        RuntimeError: the sandbox is unavailable (and ``sandbox`` is True), or nbgrader failed
            for the whole class.
    """
    from autograder import batch
    from course import leaderboard  # imports torch: only when a class is graded

    submissions = _existing(submissions, "submissions")
    repo_root = _existing(repo_root, "repo_root", kind="dir")
    _config_file(repo_root)
    names = _select(repo_root, assignments)
    report = batch.grade(submissions, out_dir, repo_root, names, timeout=timeout, workers=workers,
                         scheduler=scheduler, sandbox=sandbox, limits=limits, progress=progress,
                         artifacts={leaderboard.CAPSTONE: (leaderboard.MODEL_FILE,)})
    if leaderboard.CAPSTONE in names:
        report.leaderboard = leaderboard.write(report.workspace, report.scores)
    return report


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
    """``course grade SUBMISSIONS [--out DIR] [--assignments ...] [--timeout S] [--workers W |
    --scheduler ADDRESS] [--memory GIB] [--no-sandbox]``.

    Prints the table of ``grades.csv`` (score, status, reason, review) and where grades and
    feedback went. Exit code 0; 1 if some submissions were rejected, failed or flagged for
    review (listed on stderr); 2 on bad arguments, a missing sandbox or an nbgrader failure.
    """
    from autograder.sandbox import Limits

    try:
        memory = getattr(args, "memory", None)
        limits = Limits(memory_bytes=int(memory * 2**30)) if memory else None
        report = grade(Path(args.submissions), Path(getattr(args, "out", None) or GRADING_DIR),
                       assignments=getattr(args, "assignments", None) or None, repo_root=_repo_root(args),
                       timeout=getattr(args, "timeout", None), workers=getattr(args, "workers", None),
                       scheduler=getattr(args, "scheduler", None),
                       sandbox=not getattr(args, "no_sandbox", False), limits=limits,
                       progress=sys.stderr.isatty())
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        return _cli_error(err)
    columns = ["student", "assignment", "score", "max_score", "status", "review"]
    print(report.scores[columns].to_string(index=False))
    print(f"\ngrades:   {report.csv_path}\nfeedback: {report.feedback_dir}/<student>/<assignment>/")
    if report.leaderboard:
        print(f"leaderboard: {report.leaderboard} (+ {report.leaderboard.with_suffix('.png').name})")
    for problem in report.problems:
        print(f"problem:  {problem}", file=sys.stderr)
    return 1 if report.problems else 0


def export_main(args) -> int:
    """``course export [--out DIR]``: re-write DIR/grades.csv from its gradebook after written answers were
    graded by hand in nbgrader's formgrader (:func:`autograder.batch.export`); prints the table.
    Exit code 0, or 2 with a message on stderr (not a workspace of ``course grade``, missing files)."""
    import pandas as pd

    from autograder.batch import export

    try:
        csv = export(Path(getattr(args, "out", None) or GRADING_DIR))
    except (ValueError, FileNotFoundError) as err:
        return _cli_error(err)
    table = pd.read_csv(csv, keep_default_na=False)
    columns = [c for c in ("student_id", "assignment", "score", "max_score", "needs_manual_grade", "status") if c in table]
    print(table[columns].to_string(index=False))
    print(f"\ngrades: {csv}")
    return 0


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
