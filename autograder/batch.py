"""Grade a class: intake, rebuild, one sandboxed job per submission on Dask, merge, export.

:func:`grade` is ``course grade``. Steps, all in the grading workspace ``out_dir``:

1. ``generate_assignment`` for each assignment (nbgrader's API) into the class gradebook and
   ``release/`` of the workspace; the gradebook's bytes at that point are every job's template.
2. :func:`autograder.intake.collect` reads the submissions (never following links, never
   writing); bad inputs become per-submission rejections.
3. :func:`autograder.rebuild.rebuild` puts each submission on its release notebook.
4. :func:`autograder.engine.run_jobs` grades each (student, assignment) in its own job
   (:mod:`autograder.job`), sandboxed (:mod:`autograder.sandbox`).
5. Each job's grades are merged into the class gradebook with nbgrader's ``Gradebook`` API; its
   autograded notebook (instructor only) and feedback page are written under ``autograded/`` and
   ``feedback/``; a failed or rejected submission gets a feedback page that says why.
6. ``grades.csv``: nbgrader's CSV export plugin, plus the course's columns ``status``
   (graded / failed / rejected / not submitted), ``reason`` and ``review`` (why a person should
   look: tampering detected) and ``needs_manual_grade`` (a written answer waits for formgrader). The
   CLI prints this same table. :func:`export` re-writes it after grading by hand in formgrader.
"""
from __future__ import annotations

import html
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd

from autograder import engine, intake, rebuild
from autograder.job import JobResult, JobSpec
from autograder.sandbox import KERNEL_ENV, PASSED_ENV, Limits, check_available
from course.files import atomic_write  # standard library only: no torch in the grading process

log = logging.getLogger(__name__)
WORKSPACE_MARKER = ".course-grading-workspace"
CONFIG_NAME = "nbgrader_config.py"
_SKIPPED = (".ipynb_checkpoints", "__pycache__")


@dataclass
class GradeReport:
    """Result of :func:`grade`.

    Attributes:
        scores: one row per (student, assignment): student, assignment, score, max_score
            (points), submitted (bool), status, reason, review.
        cells: one row per graded cell: student, assignment, notebook, grade_id, score, max_score.
        csv_path: ``grades.csv`` (nbgrader's export + status, reason, review).
        feedback_dir: ``<out_dir>/feedback/<student>/<assignment>/<assignment>.html``.
        workspace: the nbgrader course folder (gradebook.db, autograded/, logs/).
        problems: one line per rejected, failed or flagged submission.
        leaderboard: ``leaderboard.csv`` when the capstone was graded, else None.
        results: the jobs' results (bytes included), in submission order.
        timings: wall seconds of the phases: ``prepare`` (workspace, generate_assignment, intake,
            rebuild), ``jobs`` (the Dask run, cluster start included), ``merge`` (gradebook, files, export).
    """

    scores: pd.DataFrame
    cells: pd.DataFrame
    csv_path: Path
    feedback_dir: Path
    workspace: Path
    problems: list[str] = field(default_factory=list)
    leaderboard: Path | None = None
    results: list[JobResult] = field(default_factory=list, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def cell_scores(self, student: str, assignment: str) -> dict[str, float]:
        """Points per grade_id for one submission (empty dict if not graded)."""
        rows = self.cells[(self.cells.student == student) & (self.cells.assignment == assignment)]
        return dict(zip(rows.grade_id, rows.score))


# --------------------------------------------------------------------------- #
# workspace
# --------------------------------------------------------------------------- #
def _prepare_workspace(out_dir, submissions: Path) -> Path:
    """Create (or reset a previous) grading workspace; ValueError if unusable."""
    out = Path(out_dir).expanduser().resolve()
    if out == submissions or submissions in out.parents or out in submissions.parents:
        raise ValueError(f"out_dir: {out} must not contain or be inside submissions ({submissions})")
    if out.exists() and any(out.iterdir()):
        if not (out / WORKSPACE_MARKER).exists():
            raise ValueError(f"out_dir: {out} is not empty and is not a grading workspace; give a new or empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / WORKSPACE_MARKER).write_text("created by course grade; safe to delete\n")
    return out


def copy_course(workspace: Path, repo_root: Path, names: list[str]) -> None:
    """Copy ``nbgrader_config.py`` and ``source/<name>/`` (without checkpoints, caches) into ``workspace``."""
    shutil.copyfile(repo_root / CONFIG_NAME, workspace / CONFIG_NAME)
    for name in names:
        shutil.copytree(repo_root / "source" / name, workspace / "source" / name,
                        ignore=shutil.ignore_patterns(*_SKIPPED))


def _api(workspace: Path):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_NAME, str(workspace)).load_config()
    config.CourseDirectory.root = str(workspace)
    config.Exchange.root = str(workspace)  # unused (no exchange), but nbgrader checks it is writable
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def _source_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not set(p.relative_to(folder).parts) & set(_SKIPPED)}


def _grade_ids(nb) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


# --------------------------------------------------------------------------- #
# merging into the class gradebook
# --------------------------------------------------------------------------- #
def _merge(gb, result: JobResult) -> None:
    """Record one job's grades in the class gradebook (nbgrader's Gradebook API)."""
    gb.update_or_create_student(result.student)
    with warnings.catch_warnings():  # SQLAlchemy's autoflush notes on nbgrader's own objects
        warnings.simplefilter("ignore")
        gb.add_submission(result.assignment, result.student)
    by_cell = {(g["notebook"], g["grade_id"]): g for g in result.grades}
    submission = gb.find_submission(result.assignment, result.student)
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            got = by_cell.get((notebook.name, grade.name))
            if got is None:  # not graded (job failed): 0 on autograded cells
                grade.auto_score = 0.0 if grade.cell.cell_type == "code" else None
                grade.needs_manual_grade = grade.cell.cell_type != "code"
                continue
            grade.auto_score, grade.manual_score = got["auto_score"], got["manual_score"]
            grade.needs_manual_grade = got["needs_manual_grade"]
        comments = {(c["notebook"], c["grade_id"]): c for c in result.comments}
        for comment in notebook.comments:
            got = comments.get((notebook.name, comment.name))
            if got is not None:
                comment.auto_comment = got["auto_comment"]
    gb.db.commit()


def _page(student: str, assignment: str, title: str, lines: list[str]) -> bytes:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}</title></head>"
            f"<body><h1>{html.escape(assignment)}: {html.escape(title)}</h1><p>Student: {html.escape(student)}</p>"
            f"<ul>{items}</ul><p>Every cell of this notebook scores 0. Ask your instructor if this looks wrong.</p>"
            "</body></html>").encode()


_write = atomic_write  # write beside, then rename: a reader never sees half a file


def _store(workspace: Path, result: JobResult) -> None:
    folder = workspace / "autograded" / result.student / result.assignment
    if result.autograded is not None:
        _write(folder / f"{result.assignment}.ipynb", result.autograded)
    for name, data in result.artifacts.items():
        _write(folder / name, data)
    page = result.feedback or _page(result.student, result.assignment, "not graded", [result.reason])
    _write(workspace / "feedback" / result.student / result.assignment / f"{result.assignment}.html", page)


# --------------------------------------------------------------------------- #
# tables and export
# --------------------------------------------------------------------------- #
def _tables(workspace: Path, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from nbgrader.api import Gradebook, MissingEntry

    scores, cells = [], []
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gb:
        for name in names:
            for student in sorted(s.id for s in gb.students):
                try:
                    sub = gb.find_submission(name, student)
                except MissingEntry:
                    scores.append((student, name, 0.0, gb.find_assignment(name).max_score, False))
                    continue
                scores.append((student, name, sub.score or 0.0, sub.max_score, True))
                cells += [(student, name, nb.name, g.name, g.score or 0.0, g.max_score)
                          for nb in sub.notebooks for g in nb.grades]
    return (pd.DataFrame(scores, columns=["student", "assignment", "score", "max_score", "submitted"]),
            pd.DataFrame(cells, columns=["student", "assignment", "notebook", "grade_id", "score", "max_score"]))


def _status_table(results: list[JobResult], rejected: list) -> pd.DataFrame:
    rows = [(r.student, r.assignment, r.status, r.reason, "; ".join(r.review)) for r in results]
    rows += [(r.student, r.assignment, "rejected", r.reason, "") for r in rejected if r.student and r.assignment]
    return pd.DataFrame(rows, columns=["student", "assignment", "status", "reason", "review"])


def _export(workspace: Path, status: pd.DataFrame) -> Path:
    """nbgrader's CsvExportPlugin, then the course's columns (status, reason, review, and
    needs_manual_grade: a written answer still waits for formgrader), written atomically."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    raw = workspace / ".grades.nbgrader.csv"
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gb:
        CsvExportPlugin(to=str(raw)).export(gb)
        pending = {(a.name, s.student.id) for a in gb.assignments for s in a.submissions if s.needs_manual_grade}
    table = pd.read_csv(raw, dtype={"student_id": str})
    raw.unlink()
    table = table.merge(status.rename(columns={"student": "student_id"}), how="left",
                        on=["assignment", "student_id"])
    table["status"] = table["status"].fillna("not submitted")
    table[["reason", "review"]] = table[["reason", "review"]].fillna("")
    table["needs_manual_grade"] = [(a, s) in pending for a, s in zip(table.assignment, table.student_id)]
    path = workspace / "grades.csv"
    _write(path, table.to_csv(index=False).encode())
    return path


def export(out_dir) -> Path:
    """Re-write ``<out_dir>/grades.csv`` from the gradebook as it is now (after grading written answers
    in nbgrader's formgrader); status, reason and review are kept from the grades.csv ``course grade``
    wrote (they come from the grading run, not from the gradebook).

    Returns the path of grades.csv. Raises ValueError if ``out_dir`` is not a workspace made by
    :func:`grade`; FileNotFoundError if its grades.csv or gradebook.db is missing.
    """
    workspace = Path(out_dir).expanduser().resolve()
    if not (workspace / WORKSPACE_MARKER).is_file():
        raise ValueError(f"out_dir: {workspace} is not a grading workspace made by course grade")
    for name in ("grades.csv", "gradebook.db"):
        if not (workspace / name).is_file():
            raise FileNotFoundError(f"out_dir: {workspace / name} is missing (grade the class again)")
    old = pd.read_csv(workspace / "grades.csv", dtype=str, keep_default_na=False)
    status = old[["student_id", "assignment", "status", "reason", "review"]].rename(columns={"student_id": "student"})
    return _export(workspace, status)


# --------------------------------------------------------------------------- #
# grade
# --------------------------------------------------------------------------- #
def grade(submissions: Path, out_dir: Path, repo_root: Path, names: list[str], *,
          timeout: int | None = None, workers: int | None = None, scheduler: str | None = None,
          sandbox: bool = True, limits: Limits | None = None, progress: bool = True,
          artifacts: dict[str, tuple[str, ...]] | None = None) -> GradeReport:
    """Grade a class folder or LMS zip; see the module docstring for the steps.

    Args:
        submissions: folder (``<student>/<assignment>/<assignment>.ipynb`` or
            ``<student>/<assignment>.ipynb``) or LMS zip (:func:`autograder.intake.zip_name_regexp`).
        out_dir: grading workspace; created, or reset if an earlier grade made it.
        repo_root: folder holding ``source/`` and ``nbgrader_config.py``.
        names: assignments to grade (validated by the caller).
        timeout: seconds per cell (overrides ``limits.cell_seconds``); None keeps the limits'.
        workers / scheduler: see :func:`autograder.engine.run_jobs`.
        sandbox: False runs learner code unsandboxed (only for trusted notebooks).
        limits: the sandbox's :class:`Limits` (default: Limits()).
        progress: show the progress bar.
        artifacts: {assignment: file names the notebook writes that the grader keeps}.
    Returns:
        GradeReport.
    Raises:
        RuntimeError: ``sandbox`` is True but bubblewrap cannot sandbox here (one-line reason).
        ValueError: unusable ``out_dir``, empty class, bad ``workers``.
        FileNotFoundError / ValueError: from intake for the ``submissions`` path.
    """
    clock = [time.perf_counter()]
    if sandbox:
        why = check_available()
        if why:
            raise RuntimeError(f"refusing to run learner code unsandboxed: {why}")
    limits = limits or Limits()
    if timeout:
        limits = Limits(**{**limits.__dict__, "cell_seconds": int(timeout)})
    workspace = _prepare_workspace(out_dir, Path(submissions).expanduser().resolve())
    copy_course(workspace, repo_root, names)
    api = _api(workspace)
    for name in names:
        done = api.generate_assignment(name, force=True)
        if not done["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{done['log'][-3000:]}")
    template = (workspace / "gradebook.db").read_bytes()
    releases = {n: nbformat.read(workspace / "release" / n / f"{n}.ipynb", as_version=4) for n in names}
    subs, rejected = intake.collect(Path(submissions), names, {n: _grade_ids(nb) for n, nb in releases.items()})
    if not subs and not any(r.assignment for r in rejected):
        raise ValueError(f"submissions: empty class, no notebook for any of {names} found (expected "
                         "<student>/<assignment>/<assignment>.ipynb, <student>/<assignment>.ipynb, or a zip of "
                         "<student_id>_<anything>_<assignment>.ipynb)")
    config = (workspace / CONFIG_NAME).read_text()
    sources = {n: _source_files(workspace / "source" / n) for n in names}
    env = {**KERNEL_ENV, **{k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
    specs = []
    for sub in subs:
        try:
            built = rebuild.rebuild(nbformat.reads(sub.notebook.decode("utf-8"), as_version=4),
                                    releases[sub.assignment])
        except (ValueError, TypeError, KeyError) as err:  # a notebook intake accepted but rebuild cannot use
            rejected.append(intake.Rejected(sub.student, sub.assignment, sub.origin,
                                            f"cannot be matched to the release notebook: {err}"))
            continue
        specs.append(JobSpec(sub.student, sub.assignment, nbformat.writes(built.notebook).encode(),
                             sources[sub.assignment], config, template, limits, sandbox,
                             tuple((artifacts or {}).get(sub.assignment, ())), built.notes,
                             env))
    clock.append(time.perf_counter())
    results = engine.run_jobs(specs, workers=workers, scheduler=scheduler, progress=progress)
    clock.append(time.perf_counter())
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gb:
        for result in results:
            _merge(gb, result)
            _store(workspace, result)
        for rej in rejected:
            if rej.student and rej.assignment:
                gb.update_or_create_student(rej.student)
                _write(workspace / "feedback" / rej.student / rej.assignment / f"{rej.assignment}.html",
                       _page(rej.student, rej.assignment, "not graded", [f"{rej.origin}: {rej.reason}"]))
    (workspace / "logs").mkdir(exist_ok=True)
    for result in results:
        (workspace / "logs" / f"{result.student}.{result.assignment}.log").write_text(result.log)
    status = _status_table(results, rejected)
    csv_path = _export(workspace, status)
    scores, cells = _tables(workspace, names)
    scores = scores.merge(status, how="left", on=["student", "assignment"])
    scores["status"] = scores["status"].fillna("not submitted")
    scores[["reason", "review"]] = scores[["reason", "review"]].fillna("")
    problems = [f"{r.student or '?'}/{r.assignment or '?'}: rejected: {r.origin}: {r.reason}" for r in rejected]
    problems += [f"{r.student}/{r.assignment}: {r.status}: {r.reason}" for r in results if r.status != "graded"]
    problems += [f"{r.student}/{r.assignment}: flagged for review: {'; '.join(r.review)}" for r in results if r.review]
    clock.append(time.perf_counter())
    timings = dict(zip(("prepare", "jobs", "merge"), (b - a for a, b in zip(clock, clock[1:]))))
    return GradeReport(scores, cells, csv_path, workspace / "feedback", workspace, problems, None, results, timings)
