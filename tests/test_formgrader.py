"""Written answers graded by hand: nbgrader's formgrader on the workspace ``course grade`` writes.

The fixture assignment (tests/fixtures/grading, 5 autograded points) gets one more cell here, a
markdown answer graded by hand (``explain-square``, 2 points: nbgrader ``solution`` + ``grade``, like
``dark-knowledge`` in 01). Two students: ``writer`` (solved, with a written answer) and ``blank``
(the release, answer untouched). One grading run (25-60 s on 2 shared cores) is shared by the module.

* API tests: what formgrader needs from the workspace (config, gradebook, autograded notebooks);
  the manual grade set with the same gradebook calls as formgrader's ``GradeHandler.put`` and
  ``CommentHandler.put`` (nbgrader/server_extensions/formgrader/apihandlers.py, 0.9.6), then
  :func:`autograder.batch.export`, ``nbgrader export`` and ``nbgrader generate_feedback``.
* Browser test (``-m browser``): an instructor in formgrader (JupyterLab started in the workspace,
  Debian chromium through Playwright) types the score and a comment; screenshots go to
  ``$COURSE_BROWSER_OUT`` (default out/browser/formgrader-*.png).
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder import batch
from course import grading

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "grading"
NAME = "ps_tiny"
WRITTEN = "explain-square"
AUTO_POINTS, WRITTEN_POINTS = 5.0, 2.0
ANSWER = "The two minus signs cancel: minus two times minus two is four."  # plain text (rendered as markdown)
HIDDEN_MARKER = "zebra-quokka-7f3a"  # inside the fixture's hidden tests
SHOTS = Path(os.environ.get("COURSE_BROWSER_OUT", REPO / "out" / "browser"))


def _written_cell(source: str):
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = WRITTEN
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": WRITTEN, "locked": False, "points": WRITTEN_POINTS,
                                 "schema_version": 3, "solution": True, "task": False}
    return cell


@pytest.fixture(scope="module")
def course_root(tmp_path_factory) -> Path:
    """The fixture course plus a question and a hand-graded markdown answer after exercise 1; released."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(FIXTURE / "source", root / "source")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    path = root / "source" / NAME / f"{NAME}.ipynb"
    nb = nbformat.read(path, as_version=4)
    at = 1 + max(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "square-hidden")
    nb.cells[at:at] = [nbformat.v4.new_markdown_cell("Why is `square(-2) == square(2)`? (2 points, graded by hand)"),
                       _written_cell("The minus signs cancel.")]
    nbformat.write(nb, path)
    grading.release(repo_root=root)
    return root


@pytest.fixture(scope="module")
def workspace(course_root, tmp_path_factory) -> Path:
    """``course grade`` of writer (solved, answer written) and blank (the release); the grading workspace."""
    klass = tmp_path_factory.mktemp("class")
    nb = nbformat.read(course_root / "source" / NAME / f"{NAME}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.get("id") == WRITTEN:
            cell.source = ANSWER
    (klass / "writer" / NAME).mkdir(parents=True)
    nbformat.write(nb, klass / "writer" / NAME / f"{NAME}.ipynb")
    (klass / "blank" / NAME).mkdir(parents=True)
    shutil.copyfile(course_root / "release" / NAME / f"{NAME}.ipynb", klass / "blank" / NAME / f"{NAME}.ipynb")
    report = grading.grade(klass, tmp_path_factory.mktemp("grading") / "out", repo_root=course_root)
    assert not report.problems, report.problems
    return report.workspace


def _copy(workspace: Path, dest: Path) -> Path:
    """A copy of the workspace (its nbgrader_config.py finds its root from its own location)."""
    shutil.copytree(workspace, dest)
    return dest


def _csv(workspace: Path) -> pd.DataFrame:
    return pd.read_csv(workspace / "grades.csv", dtype={"student_id": str}, keep_default_na=False).set_index("student_id")


def _grade(gb, student: str, grade_id: str = WRITTEN):
    return gb.find_grade(grade_id, NAME, NAME, student)


def _hand_grade(workspace: Path, student: str, score: float, comment: str) -> None:
    """What formgrader does when the instructor types a score and a comment (apihandlers.py:
    GradeHandler.put, CommentHandler.put): set the manual score, clear needs_manual_grade, commit."""
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gb:
        grade = gb.find_grade_by_id(_grade(gb, student).id)
        grade.manual_score, grade.extra_credit = score, None
        grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
        gb.db.commit()
        found = gb.find_comment_by_id(gb.find_comment(WRITTEN, NAME, NAME, student).id)
        found.manual_comment = comment
        gb.db.commit()


def _text(page: Path) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))))


# --------------------------------------------------------------------------- #
# after course grade: what formgrader finds
# --------------------------------------------------------------------------- #
def test_written_answer_waits_for_a_person(workspace):
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gb:
        written = _grade(gb, "writer")
        assert (written.auto_score, written.manual_score, written.needs_manual_grade) == (None, None, True)
        assert gb.find_submission(NAME, "writer").needs_manual_grade
        untouched = _grade(gb, "blank")  # nbgrader: an answer left as released scores 0, nothing to grade
        assert (untouched.score, untouched.needs_manual_grade) == (0.0, False)
    csv = _csv(workspace)
    assert csv.loc["writer", ["score", "max_score", "status"]].tolist() == [AUTO_POINTS, AUTO_POINTS + WRITTEN_POINTS,
                                                                           "graded"]
    assert csv["needs_manual_grade"].to_dict() == {"blank": False, "writer": True}


def test_formgrader_finds_course_gradebook_and_notebooks_from_the_workspace(workspace, monkeypatch):
    """formgrader reads nbgrader_config.py from the directory the server starts in: it must name the
    workspace as course root, so the gradebook and the autograded notebooks are the ones course grade wrote."""
    from nbgrader.apps.baseapp import NbGrader
    from nbgrader.coursedir import CourseDirectory

    monkeypatch.chdir(workspace)
    app = NbGrader()
    app.load_config_file()
    coursedir = CourseDirectory(config=app.config)
    assert Path(coursedir.root) == workspace
    assert coursedir.db_url == f"sqlite:///{workspace / 'gradebook.db'}"
    for student in ("writer", "blank"):  # where formgrader's SubmissionHandler opens a submission
        notebook = Path(coursedir.format_path(coursedir.autograded_directory, student, NAME)) / f"{NAME}.ipynb"
        assert notebook.is_file(), notebook
    cell = next(c for c in nbformat.read(workspace / "autograded" / "writer" / NAME / f"{NAME}.ipynb",
                                         as_version=4).cells if c.get("id") == WRITTEN)
    assert cell.source == ANSWER and cell.metadata.nbgrader["grade_id"] == WRITTEN


# --------------------------------------------------------------------------- #
# after grading by hand: export and feedback
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def hand_graded(workspace, tmp_path_factory) -> Path:
    """A copy of the workspace in which writer's answer got 1.5 of 2 points and a comment."""
    copy = _copy(workspace, tmp_path_factory.mktemp("hand") / "out")
    _hand_grade(copy, "writer", 1.5, "Right idea; say why two negatives give a positive.")
    return copy


def test_export_after_hand_grading_includes_the_points(hand_graded):
    before = _csv(hand_graded)
    path = batch.export(hand_graded)
    csv = _csv(hand_graded)
    assert path == hand_graded / "grades.csv"
    assert csv.loc["writer", "score"] == AUTO_POINTS + 1.5
    assert csv["needs_manual_grade"].to_dict() == {"blank": False, "writer": False}
    assert csv.loc["blank"].equals(before.loc["blank"])
    assert (csv[["status", "reason", "review"]] == before[["status", "reason", "review"]]).all().all()
    with Gradebook(f"sqlite:///{hand_graded / 'gradebook.db'}") as gb:
        assert not gb.find_submission(NAME, "writer").needs_manual_grade


def test_nbgrader_export_from_the_workspace_agrees(hand_graded, tmp_path):
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", f"--to={tmp_path / 'nb.csv'}"],
                          cwd=hand_graded, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    exported = pd.read_csv(tmp_path / "nb.csv", dtype={"student_id": str}).set_index("student_id")
    assert exported.loc["writer", "score"] == AUTO_POINTS + 1.5
    batch.export(hand_graded)
    assert exported["score"].to_dict() == _csv(hand_graded)["score"].to_dict()


def test_regenerated_feedback_shows_the_hand_grade_and_no_hidden_tests(hand_graded):
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "generate_feedback", NAME, "--force"],
                          cwd=hand_graded, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text = _text(hand_graded / "feedback" / "writer" / NAME / f"{NAME}.html")
    assert "Right idea; say why two negatives give a positive." in text
    assert f"Score: {AUTO_POINTS + 1.5} / {AUTO_POINTS + WRITTEN_POINTS}" in text
    assert HIDDEN_MARKER not in text


def test_course_export_command_rewrites_grades_csv(workspace, tmp_path):
    """`course export --out DIR` (what the README tells the instructor to run) = batch.export + the table; 2 on a bad folder."""
    copy = _copy(workspace, tmp_path / "out")
    _hand_grade(copy, "writer", 2.0, "Full marks.")
    done = subprocess.run([sys.executable, "-m", "course", "export", "--out", str(copy)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _csv(copy).loc["writer", "score"] == AUTO_POINTS + 2.0 and "needs_manual_grade" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "course", "export", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "not a grading workspace" in bad.stderr


def test_export_refuses_a_folder_course_grade_did_not_make(tmp_path):
    with pytest.raises(ValueError, match="out_dir: .* not a grading workspace"):
        batch.export(tmp_path)
    (tmp_path / batch.WORKSPACE_MARKER).write_text("")
    with pytest.raises(FileNotFoundError, match="grades.csv is missing"):
        batch.export(tmp_path)


# --------------------------------------------------------------------------- #
# in the browser, as an instructor does it
# --------------------------------------------------------------------------- #
@pytest.mark.browser
def test_instructor_grades_the_written_answer_in_formgrader(workspace, tmp_path, monkeypatch):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as error:
        raise AssertionError(f"playwright is not installed ({error}): run `make setup`") from None
    from browser_support import JupyterLab, NotebookPage, launch_chromium

    copy = _copy(workspace, tmp_path / "out")
    monkeypatch.chdir(copy)  # formgrader reads nbgrader_config.py from the server's working directory
    SHOTS.mkdir(parents=True, exist_ok=True)
    with JupyterLab(copy, tmp_path / "state", {}) as lab, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{lab.url}/formgrader?token={lab.token}")
            page.get_by_role("link", name="Manual Grading").click()
            page.get_by_role("link", name=NAME).first.click()   # the assignment
            page.get_by_role("link", name=NAME).last.click()    # its notebook
            page.wait_for_selector("td.name a.name-shown", state="attached")
            page.get_by_role("button", name="Show All Names").click()
            page.screenshot(path=str(SHOTS / "formgrader-list-before.png"), full_page=True)
            page.get_by_role("link", name="writer").click()
            score = page.locator(f"input#{WRITTEN}")
            score.wait_for()
            page.screenshot(path=str(SHOTS / "formgrader-submission.png"), full_page=True)
            assert page.get_by_text(ANSWER).count() == 1, "the student's written answer is not shown"
            # autograded points show as the placeholder of their box; the written answer's box is marked
            # (set by formgrader's scripts once the grades are loaded: expect() waits for them)
            expect(page.locator("input#square-hidden")).to_have_attribute("placeholder", "2")
            expect(score).to_have_class(re.compile(r"\bneeds_manual_grade\b"))
            score.fill("1.5")
            page.keyboard.press("Tab")  # formgrader saves on change
            page.fill(f"textarea#{WRITTEN}-comment", "Good; name the rule.")
            page.keyboard.press("Tab")

            def saved():
                with Gradebook(f"sqlite:///{copy / 'gradebook.db'}") as gb:
                    grade = _grade(gb, "writer")
                    comment = gb.find_comment(WRITTEN, NAME, NAME, "writer").manual_comment
                    return (grade.manual_score, grade.needs_manual_grade, comment) == (1.5, False, "Good; name the rule.")

            NotebookPage.wait(saved, 30, "formgrader did not save the score and comment in the gradebook")
            expect(score).not_to_have_class(re.compile(r"\bneeds_manual_grade\b"))
            page.locator(".nbgrader_cell", has=score).screenshot(path=str(SHOTS / "formgrader-written-answer.png"),
                                                               style=".navbar { visibility: hidden; }")  # it floats
        finally:
            browser.close()
    batch.export(copy)
    assert _csv(copy).loc["writer", "score"] == AUTO_POINTS + 1.5
