"""The adversarial class: one ``course grade`` of every attack in tests/adversarial.py, sandboxed.

One class (honest, blank and ~50 misbehaving submissions of the fixture ps_tiny) is graded once
per module with 2 Dask workers and tight limits (1 GiB memory, 20 s per cell, 256 MB disk). Each
test checks one property: the scores each attack may get, the review flags, the rejections, and
that nothing escapes (files byte-identical, no hidden-test line or success marker in any
feedback, no network connection, no surviving daemon, nothing written outside the workspace).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograder.sandbox import Limits
from course import grading

sys.path.insert(0, str(Path(__file__).parent))
import adversarial  # noqa: E402  (tests/adversarial.py: the attacks, as notebooks)

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "grading"
NAME = "ps_tiny"
LIMITS = Limits(memory_bytes=1 << 30, processes=256, file_bytes=128 << 20, scratch_bytes=256 << 20,
                tmp_bytes=256 << 20, cell_seconds=20, notebook_seconds=240)
# Lines an attack prints only when it got through (tests/adversarial.py builds them at run time).
# Not UDP-SENT: a datagram to 127.0.0.1 "succeeds" inside the sandbox's own network namespace (its
# own loopback); what reaches the host is what the TCP listener counts. Not READ-VIA-LINK: links
# inside the scratch folder reach only what the sandbox shows (the hidden-line test covers secrets).
ESCAPES = ("CONNECTED:", "ESCAPED-WRITE", "FOREIGN-KERNEL-EXEC:", "PWNED-", "STOLEN:", "SECRET-FILE:",
           "DNS-RESOLVED:")


def _tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file, and the target of every link, below ``folder`` (links not followed)."""
    out = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class _Listener:
    """A TCP server on localhost that counts connections (the kernel must never reach it)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port, self.connections, self._stop = self.sock.getsockname()[1], 0, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(report, attacks, nonce, hashes before/after of the class, course root and course package, listener)."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(FIXTURE / "source", root / "source")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    grading.release(repo_root=root)
    nonce = "t" + secrets.token_hex(4)
    listener = _Listener()
    klass = tmp_path_factory.mktemp("class") / "class"
    attacks = adversarial.write_class(klass, root / "source" / NAME / f"{NAME}.ipynb",
                                      root / "release" / NAME / f"{NAME}.ipynb", tcp_port=listener.port, nonce=nonce)
    package = REPO / "course"
    watched = {"class": klass, "course root": root, "course package": package}
    before = {k: _tree_hashes(v) for k, v in watched.items()}
    report = grading.grade(klass, tmp_path_factory.mktemp("out") / "grading", repo_root=root,
                           workers=2, limits=LIMITS)
    after = {k: _tree_hashes(v) for k, v in watched.items()}
    listener.close()
    yield report, attacks, nonce, before, after, listener
    for leftover in Path(sys.prefix).rglob(f"*pwned*{nonce}*"):  # only if the sandbox failed
        leftover.unlink()


def _row(report, student):
    """The student's row; a folder rejected before its assignment was known has none (0 points)."""
    scores = report.scores.set_index("student")
    if student in scores.index:
        return scores.loc[student]
    import pandas as pd

    return pd.Series({"score": 0.0, "status": "rejected", "reason": "", "review": ""})


def _feedback(report, student) -> str:
    page = report.feedback_dir / student / NAME / f"{NAME}.html"
    return page.read_text(errors="replace") if page.exists() else ""


def test_honest_and_blank_are_graded_as_usual(run):
    report = run[0]
    assert (_row(report, "honest").score, _row(report, "blank").score) == (5.0, 0.0), report.scores


def test_every_attack_scores_within_its_bounds(run):
    report, attacks = run[0], run[1]
    wrong = [(a.student, _row(report, a.student).score, a.min_score, a.max_score, _row(report, a.student).reason)
             for a in attacks if not a.min_score <= _row(report, a.student).score <= a.max_score]
    assert not wrong, "(student, score, min, max, reason) out of bounds:\n" + "\n".join(map(str, wrong))


def test_tampering_is_flagged_for_review(run):
    report, attacks = run[0], run[1]
    missed = [a.student for a in attacks if a.review is True and not _row(report, a.student).review]
    assert not missed, f"tampering not flagged for review: {missed}"


def test_honest_work_is_not_flagged(run):
    report, attacks = run[0], run[1]
    flagged = {a.student: _row(report, a.student).review for a in attacks
               if a.review is False and _row(report, a.student).review}
    assert not flagged, f"flagged without reason: {flagged}"


def test_bad_inputs_are_rejected_one_by_one(run):
    report, attacks = run[0], run[1]
    status = report.scores.set_index("student").status.to_dict()
    for a in attacks:
        if a.rejected:
            rejected = [p for p in report.problems if a.student in p and ": rejected: " in p]
            assert rejected, f"{a.student} ({a.what}) should be rejected with a reason: {status.get(a.student)}"


def test_every_graded_submission_has_feedback(run):
    report, attacks = run[0], run[1]
    missing = [a.student for a in attacks if not a.rejected and not _feedback(report, a.student)]
    assert not missing, f"no feedback page for {missing}"


def test_no_hidden_test_line_in_any_feedback(run):
    report = run[0]
    from autograder.feedback import hidden_lines
    import nbformat

    hidden = [line for line in hidden_lines(nbformat.read(FIXTURE / "source" / NAME / f"{NAME}.ipynb", as_version=4))
              if "HIDDEN TESTS" not in line]  # the delimiters are no secret (fake-hidden-marker writes them)
    leaks = {page.parts[-3]: [h for h in hidden if h in page.read_text(errors="replace")]
             for page in report.feedback_dir.glob(f"*/{NAME}/{NAME}.html")}
    assert not {k: v for k, v in leaks.items() if v}, "hidden tests leaked into feedback"
    assert not [k for k in leaks if "zebra-quokka" in _feedback(report, k)], "the hidden marker leaked"


def test_no_attack_got_through(run):
    report, attacks = run[0], run[1]
    hits = {a.student: sorted({m for m in ESCAPES if m in _feedback(report, a.student)}) for a in attacks}
    assert not {k: v for k, v in hits.items() if v}, f"success markers in feedback: {hits}"


def test_no_network_connection_reached_the_host(run):
    assert run[5].connections == 0, "a kernel reached a TCP service on the host's localhost"


def test_no_process_outlives_its_job(run):
    nonce = run[2]
    alive = subprocess.run(["pgrep", "-af", f"course-(fork|daemon)-{nonce}"], capture_output=True, text=True)
    assert alive.stdout == "", f"processes left running after grading:\n{alive.stdout}"


def test_submissions_course_and_package_are_byte_identical(run):
    before, after = run[3], run[4]
    for what in before:
        changed = sorted(set(before[what].items()) ^ set(after[what].items()))
        assert not changed, f"{what} changed by grading: {changed[:5]}"


def test_nothing_written_outside_the_workspace(run):
    nonce = run[2]
    found = []
    for top in (Path(sys.prefix), Path.home() / ".ipython", REPO):
        found += [str(p) for p in top.rglob(f"*pwned*{nonce}*")]
    assert not found, f"attack files outside the sandbox: {found}"


def test_feedback_stays_small(run):
    report = run[0]
    sizes = {p.parts[-3]: p.stat().st_size for p in report.feedback_dir.glob(f"*/{NAME}/{NAME}.html")}
    big = {k: v for k, v in sizes.items() if v > 8 << 20}
    assert not big, f"feedback pages over 8 MB (outputs must be capped): {big}"


def test_grades_csv_tells_status_reason_and_review(run):
    import pandas as pd

    report, attacks = run[0], run[1]
    csv = pd.read_csv(report.csv_path, dtype={"student_id": str}).fillna("").set_index("student_id")
    assert {"status", "reason", "review"} <= set(csv.columns)
    for a in attacks:
        if a.rejected and a.student in csv.index:
            assert csv.loc[a.student, "status"] == "rejected" and csv.loc[a.student, "reason"], a.student
    assert csv.loc["honest", "status"] == "graded" and csv.loc["honest", "review"] == ""
