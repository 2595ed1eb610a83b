"""One grading job: one (student, assignment), its own workspace and gradebook, a sandboxed kernel.

:func:`run` is what a Dask worker executes (:mod:`autograder.engine`). Everything the job needs
travels in a :class:`JobSpec` (bytes, no paths of the grader's machine), so a worker on another
machine needs only this package installed. It builds a throw-away nbgrader course folder
(config, ``source/<assignment>/``, a copy of the class gradebook as generated: nbgrader #174's
workaround for its serial autograde), runs ``nbgrader autograde`` and ``generate_feedback``
through nbgrader's Python API (:class:`nbgrader.apps.NbGraderAPI`) in a child process with a hard
wall-clock limit, and returns a :class:`JobResult`: the grades read back with nbgrader's
:class:`~nbgrader.api.Gradebook`, the autograded notebook, the feedback page and the declared
artifacts. The learner's kernel sees none of this folder: only its scratch folder (a copy of the
submitted notebook) and the ipc sockets (:mod:`autograder.sandbox`).

A job never raises for a learner's doing: a kernel that dies, a notebook that times out, a child
process killed for its wall clock all end as a JobResult with ``status`` and ``reason``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import Limits

ARTIFACT_BYTES = 256 << 20  # largest artifact file brought back from the scratch folder
LOG_TAIL = 20_000           # characters of nbgrader's log kept in a result
JOB_MARGIN_S = 300          # the child process's hard limit: notebook deadline + this


@dataclass
class JobSpec:
    """Everything one job needs.

    Attributes:
        student, assignment: nbgrader ids (validated by :mod:`autograder.intake`).
        notebook: the (rebuilt) submission, ``.ipynb`` bytes.
        source_files: ``source/<assignment>/`` as {relative path: bytes} (solutions, hidden tests).
        config: the text of ``nbgrader_config.py``.
        gradebook: the class ``gradebook.db`` right after ``generate_assignment`` (bytes).
        limits: the sandbox's :class:`~autograder.sandbox.Limits`.
        sandbox: False runs the kernel unsandboxed (``--no-sandbox``).
        artifacts: file names the notebook writes in its folder that the grader keeps
            (e.g. ``capstone_model.pt``); each a regular file of at most ARTIFACT_BYTES.
        notes: lines shown at the top of the learner's feedback (from the rebuild).
        env: extra environment for the kernel (only :data:`autograder.sandbox.PASSED_ENV` names pass).
    """

    student: str
    assignment: str
    notebook: bytes
    source_files: dict[str, bytes]
    config: str
    gradebook: bytes
    limits: Limits = field(default_factory=Limits)
    sandbox: bool = True
    artifacts: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    """What a job returns.

    Attributes:
        status: ``"graded"`` (nbgrader scored it; some cells may have failed) or ``"failed"``
            (no scores: every cell counts 0).
        reason: why it failed or what went wrong while grading (empty if nothing), one line.
        review: reasons to have a person look (tampering detected), empty if none.
        grades: one dict per graded cell: notebook, grade_id, auto_score, manual_score,
            max_score, needs_manual_grade.
        comments: one dict per cell comment: notebook, grade_id, auto_comment.
        autograded: the executed notebook (holds hidden tests: instructor only) or None.
        feedback: the learner's feedback HTML or None.
        artifacts: {file name: bytes} of the declared artifacts found.
        log: the end of nbgrader's log.
        seconds: wall time of the job.
        worker: ``host:pid`` of the process that ran it (a Dask worker).
    """

    student: str
    assignment: str
    status: str
    reason: str = ""
    review: list[str] = field(default_factory=list)
    grades: list[dict] = field(default_factory=list)
    comments: list[dict] = field(default_factory=list)
    autograded: bytes | None = None
    feedback: bytes | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0
    worker: str = ""


def run(spec: JobSpec) -> JobResult:
    """Grade one submission in a fresh temporary folder (removed afterwards).

    The nbgrader work runs in a child process (``python -m autograder.job``) in its own session,
    killed with its whole process group after ``limits.notebook_seconds + JOB_MARGIN_S``.
    Returns a JobResult; raises nothing for anything the learner's code does.
    """
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="course-job-") as tmp:
        job = Path(tmp)
        os.chmod(job, 0o711)  # the kernel's uid may pass through to its scratch and ipc folders
        _write_inputs(job, spec)
        limit = spec.limits.notebook_seconds + JOB_MARGIN_S
        env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
        with open(job / "job.log", "w") as log:
            child = subprocess.Popen([sys.executable, "-m", "autograder.job", str(job)], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=job)
            try:
                child.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        result = _read_result(job, spec, child.returncode, limit)
    result.seconds = time.monotonic() - start
    result.worker = f"{socket.gethostname()}:{os.getpid()}"
    return result


def _write_inputs(job: Path, spec: JobSpec) -> None:
    ws = job / "ws"
    (ws / "source" / spec.assignment).mkdir(parents=True)
    for rel, data in spec.source_files.items():
        target = ws / "source" / spec.assignment / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (ws / "nbgrader_config.py").write_text(spec.config)
    (ws / "gradebook.db").write_bytes(spec.gradebook)
    submitted = ws / "submitted" / spec.student / spec.assignment
    submitted.mkdir(parents=True)
    (submitted / f"{spec.assignment}.ipynb").write_bytes(spec.notebook)
    for name in ("scratch", "ipc"):
        (job / name).mkdir()
    (job / "scratch" / f"{spec.assignment}.ipynb").write_bytes(spec.notebook)  # the learner's own copy
    meta = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("notebook", "source_files", "gradebook")}
    (job / "spec.json").write_text(json.dumps(meta))


def _read_result(job: Path, spec: JobSpec, returncode: int | None, limit: int) -> JobResult:
    out = job / "result.json"
    log = (job / "job.log").read_text(errors="replace")[-LOG_TAIL:]
    if not out.exists():
        why = (f"grading stopped after {limit} s (the notebook's time limit)" if returncode == -signal.SIGKILL
               else f"the grading process failed (exit {returncode}); see the log")
        return JobResult(spec.student, spec.assignment, "failed", reason=why, log=log)
    data = json.loads(out.read_text())
    files = {name: (job / "out" / name) for name in ("autograded.ipynb", "feedback.html")}
    artifacts = {p.name: p.read_bytes() for p in sorted((job / "out" / "artifacts").glob("*"))}
    return JobResult(spec.student, spec.assignment, data["status"], data["reason"], data["review"],
                     data["grades"], data["comments"],
                     files["autograded.ipynb"].read_bytes() if files["autograded.ipynb"].exists() else None,
                     files["feedback.html"].read_bytes() if files["feedback.html"].exists() else None,
                     artifacts, log)


# --------------------------------------------------------------------------- #
# the child process
# --------------------------------------------------------------------------- #
def _config(ws: Path, job: Path, meta: dict):
    """nbgrader config: the course's file, with GuardedExecute (and the sandbox) in autograde."""
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.execute import GuardedExecute

    config = PyFileConfigLoader("nbgrader_config.py", str(ws)).load_config()
    config.CourseDirectory.root = str(ws)
    config.Exchange.root = str(job)  # unused (no exchange), but nbgrader checks it is writable
    config.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                                LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                                CheckCellMetadata]
    limits = Limits(**meta["limits"])
    config.Execute.timeout = limits.cell_seconds
    config.GuardedExecute.notebook_seconds = limits.notebook_seconds
    config.GuardedExecute.report_path = str(job / "execute.json")
    config.GuardedExecute.nonce = secrets.token_hex(8)
    config.GuardedExecute.scratch = str(job / "scratch")
    config.GuardedExecute.scratch_bytes = limits.scratch_bytes
    if meta["sandbox"]:
        from autograder.sandbox import SandboxedKernelManager

        SandboxedKernelManager.scratch, SandboxedKernelManager.ipc_dir = job / "scratch", job / "ipc"
        SandboxedKernelManager.limits = limits
        config.GuardedExecute.kernel_manager_class = SandboxedKernelManager
    return config


def _grades(ws: Path, assignment: str, student: str) -> tuple[list[dict], list[dict]]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{ws / 'gradebook.db'}") as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return [], []
        grades = [{"notebook": nb.name, "grade_id": g.name, "auto_score": g.auto_score,
                   "manual_score": g.manual_score, "max_score": g.max_score,
                   "needs_manual_grade": g.needs_manual_grade}
                  for nb in submission.notebooks for g in nb.grades]
        comments = [{"notebook": nb.name, "grade_id": c.name, "auto_comment": c.auto_comment}
                    for nb in submission.notebooks for c in nb.comments]
    return grades, comments


def _keep_artifacts(scratch: Path, names: list[str], out: Path) -> list[str]:
    """Copy the declared artifacts that are regular files (never links) of bounded size."""
    problems = []
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = scratch / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size > ARTIFACT_BYTES:
            problems.append(f"{name} not kept (not a regular file or larger than {ARTIFACT_BYTES >> 20} MB)")
            continue
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            (out / name).write_bytes(fh.read(ARTIFACT_BYTES + 1)[:ARTIFACT_BYTES])
    return problems


def _notes_cell(lines: list[str]):
    import nbformat

    text = "**Grader notes**\n\n" + "\n".join(f"* {line}" for line in lines)
    return nbformat.v4.new_markdown_cell(text, id="course-grader-notes")


def _child(job: Path) -> int:
    """Body of ``python -m autograder.job JOB_DIR``: autograde, keep artifacts, feedback, grades."""
    import logging

    import nbformat
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    meta = json.loads((job / "spec.json").read_text())
    # The kernel's environment is the one `course grade` was started with (the sandbox passes only
    # PASSED_ENV), not the Dask worker's: a worker sets OMP_NUM_THREADS=1, which made torch train on 1 thread.
    from autograder.sandbox import PASSED_ENV

    for name in PASSED_ENV:
        os.environ.pop(name, None)
    os.environ.update(meta["env"])
    ws, student, name = job / "ws", meta["student"], meta["assignment"]
    config = _config(ws, job, meta)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    graded = api.autograde(name, student, force=True, create=True)
    report = json.loads((job / "execute.json").read_text()) if (job / "execute.json").exists() else {}
    out = job / "out"
    out.mkdir()
    reason = "" if graded["success"] else f"nbgrader autograde failed: {str(graded.get('error'))[-500:]}"
    problems = _keep_artifacts(job / "scratch", list(meta["artifacts"]), out / "artifacts")
    folder = ws / "autograded" / student / name
    notebook = folder / f"{name}.ipynb"
    if notebook.is_file():
        for entry in folder.iterdir():  # only the notebook travels to the feedback (no other file, no link)
            if entry != notebook:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        if report.get("kernel_died"):
            problems.append(report["kernel_died"])
        if report.get("not_run"):
            problems.append(f"{report['not_run']} later cell(s) not run")
        lines = list(meta["notes"]) + problems + [f"for review: {r}" for r in report.get("review", [])]
        if lines:
            nb = nbformat.read(notebook, as_version=4)
            nb.cells.insert(0, _notes_cell(lines))
            nbformat.write(nb, notebook)
        shutil.copyfile(notebook, out / "autograded.ipynb")  # with the notes: formgrader and regenerated feedback show them
        fed = api.generate_feedback(name, student, force=True)
        page = ws / "feedback" / student / name / f"{name}.html"
        if fed["success"] and page.is_file():
            shutil.copyfile(page, out / "feedback.html")
        else:
            reason = reason or f"feedback generation failed: {str(fed.get('error'))[-500:]}"
    grades, comments = _grades(ws, name, student)
    status = "graded" if graded["success"] and grades else "failed"
    if status == "graded" and not reason and problems:
        reason = "; ".join(problems)
    result = {"status": status, "reason": reason or ("" if status == "graded" else "not graded"),
              "review": report.get("review", []), "grades": grades, "comments": comments}
    (job / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1])))
