"""Tests for course/grading.py: release, autograde, feedback, zip input, validation.

Everything runs for real through nbgrader against the fixture assignment
tests/fixtures/grading/source/ps_tiny/ps_tiny.ipynb (5 points):

    square-visible 1 pt, square-hidden 2 pt (contains a hidden-test block),
    mean-visible 1 pt, mean-warning 1 pt (emits a UserWarning on stderr).

One release + one directory grading run + one zip grading run are shared by the
module (about a minute on 2 CPU cores).
"""
from __future__ import annotations

import hashlib
import html
import re
import shutil
import zipfile
from argparse import Namespace
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbgrader.preprocessors import IgnorePattern
from nbgrader.utils import determine_grade
from traitlets.config.loader import PyFileConfigLoader

from autograder.feedback import HideHiddenTestTracebacks
from course import grading
from hidden import hidden_lines  # tests/hidden.py: the tests' one hidden-region parser

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "grading"
NAME = "ps_tiny"
SOURCE_NB = FIXTURE / "source" / NAME / f"{NAME}.ipynb"
FULL = 5.0
EXERCISE_1 = {"square-visible": 1.0, "square-hidden": 2.0}
EXERCISE_2 = {"mean-visible": 1.0, "mean-warning": 1.0}
HIDDEN_MARKER = "zebra-quokka-7f3a"
VISIBLE_TEST = "assert float(square(-2)) == 4"  # the visible line of the square-hidden cell


def _text(html_file: Path) -> str:
    """Visible text of an HTML page (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_file.read_text(encoding="utf-8")))


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _cells(report, student):
    return report.cell_scores(student, NAME)


# --------------------------------------------------------------------------- #
# Shared, module-scoped runs
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def course_root(tmp_path_factory) -> Path:
    """A throw-away copy of the fixture course with the real nbgrader_config.py."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(FIXTURE / "source", root / "source")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


@pytest.fixture(scope="module")
def released(course_root):
    """Release twice; return (paths, bytes after run 1, bytes after run 2)."""
    paths = grading.release(repo_root=course_root)
    first = {p: p.read_bytes() for p in paths}
    grading.release(repo_root=course_root, assignments=[NAME])
    return paths, first, {p: p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def klass(course_root, released, tmp_path_factory) -> Path:
    """solution + blank (sample class), one_wrong (flat layout), broken (not JSON),
    no_tests (solution with two test cells deleted)."""
    root = grading.make_sample_class(tmp_path_factory.mktemp("class"), repo_root=course_root)
    nb = nbformat.read(SOURCE_NB, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace("return x * x", "return x + x")  # exercise 1 wrong
    (root / "one_wrong").mkdir()
    nbformat.write(nb, root / "one_wrong" / f"{NAME}.ipynb")
    nb = nbformat.read(SOURCE_NB, as_version=4)
    nb.cells = [c for c in nb.cells if c.get("id") not in ("square-hidden", "mean-warning")]
    (root / "no_tests" / NAME).mkdir(parents=True)
    nbformat.write(nb, root / "no_tests" / NAME / f"{NAME}.ipynb")
    (root / "broken" / NAME).mkdir(parents=True)
    (root / "broken" / NAME / f"{NAME}.ipynb").write_text("{ this is not a notebook")
    return root


@pytest.fixture(scope="module")
def graded(klass, course_root, tmp_path_factory):
    """(report, submission hashes before grading)."""
    before = _hashes(klass)
    out = tmp_path_factory.mktemp("grading") / "out"
    return grading.grade(klass, out, repo_root=course_root), before


@pytest.fixture(scope="module")
def zip_graded(klass, course_root, tmp_path_factory):
    """Grade solution + blank from a zip named as documented (Canvas style)."""
    archive = tmp_path_factory.mktemp("lms") / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(klass / "solution" / NAME / f"{NAME}.ipynb", f"solution_1001_2002_{NAME}.ipynb")
        zf.write(klass / "blank" / NAME / f"{NAME}.ipynb", f"blank_LATE_1003_2004_{NAME}-1.ipynb")
        zf.writestr("notes.ipynb", "{}")
    out = tmp_path_factory.mktemp("zipgrading") / "out"
    return grading.grade(archive, out, repo_root=course_root)


# --------------------------------------------------------------------------- #
# release
# --------------------------------------------------------------------------- #
def test_list_assignments_discovers_source_folders(course_root):
    assert grading.list_assignments(course_root) == [NAME]


def test_release_strips_solutions_hidden_tests_and_outputs(released):
    paths, _, _ = released
    assert [p.relative_to(p.parents[2]) for p in paths] == [Path("release", NAME, f"{NAME}.ipynb")]
    nb = nbformat.read(paths[0], as_version=4)
    sources = "\n".join(c.source for c in nb.cells)
    assert "return x * x" not in sources and "BEGIN SOLUTION" not in sources
    assert "raise NotImplementedError" in sources
    assert "HIDDEN TESTS" not in sources and HIDDEN_MARKER not in sources
    assert "assert float(square(-2)) == 4" in sources  # visible part of the hidden-test cell stays
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nbformat.read(SOURCE_NB, as_version=4).cells[1].outputs  # the source had output


def test_release_is_deterministic_and_leaves_no_debris(released, course_root):
    _, first, second = released
    assert first == second
    assert sorted(p.name for p in (course_root / "release").iterdir()) == [NAME]
    assert not list(course_root.rglob("gradebook.db"))


# --------------------------------------------------------------------------- #
# autograding a class (directory input)
# --------------------------------------------------------------------------- #
def test_solution_gets_full_marks(graded):
    report, _ = graded
    assert _cells(report, "solution") == {**EXERCISE_1, **EXERCISE_2}
    row = report.scores.set_index("student").loc["solution"]
    assert (row.score, row.max_score) == (FULL, FULL)


def test_blank_release_scores_zero_on_every_cell(graded):
    report, _ = graded
    cells = _cells(report, "blank")
    assert set(cells) == set(EXERCISE_1) | set(EXERCISE_2)
    assert all(points == 0 for points in cells.values())
    assert not [p for p in report.problems if p.startswith("blank/")]


def test_one_wrong_exercise_loses_exactly_its_points(graded):
    report, _ = graded
    assert _cells(report, "one_wrong") == {**{k: 0.0 for k in EXERCISE_1}, **EXERCISE_2}
    score = report.scores.set_index("student").loc["one_wrong", "score"]
    assert score == FULL - sum(EXERCISE_1.values())


def test_deleted_test_cells_are_restored_and_run(graded):
    report, _ = graded
    assert _cells(report, "no_tests") == {**EXERCISE_1, **EXERCISE_2}


def test_unreadable_notebook_scores_zero_without_stopping_the_class(graded):
    report, _ = graded
    assert report.scores.set_index("student").loc["broken", "score"] == 0
    assert [p.split(":")[0] for p in report.problems] == [f"broken/{NAME}"]


def test_score_table_shape(graded):
    report, _ = graded
    assert list(report.scores.columns[:4]) == ["student", "assignment", "score", "max_score"]
    assert sorted(report.scores.student) == ["blank", "broken", "no_tests", "one_wrong", "solution"]
    assert (report.scores.max_score == FULL).all()


def test_grades_csv_has_one_row_per_student(graded):
    report, _ = graded
    csv = pd.read_csv(report.csv_path).set_index("student_id")
    assert sorted(csv.index) == ["blank", "broken", "no_tests", "one_wrong", "solution"]
    assert csv.loc["solution", "score"] == FULL and csv.loc["one_wrong", "score"] == 2.0
    assert set(csv.assignment) == {NAME}


def test_feedback_contains_no_hidden_test_source(graded):
    report, _ = graded
    pages = sorted(report.feedback_dir.glob(f"*/{NAME}/{NAME}.html"))
    assert [p.parts[-3] for p in pages] == ["blank", "broken", "no_tests", "one_wrong", "solution"]
    hidden = hidden_lines(nbformat.read(SOURCE_NB, as_version=4).cells)  # markers included
    assert any(HIDDEN_MARKER in line for line in hidden)
    for page in pages:
        text = _text(page)
        if page.parts[-3] != "broken":  # a rejected notebook's page says why, no cells
            assert VISIBLE_TEST in text, f"{page}: the visible tests should still be shown"
        assert [line for line in hidden if line in text] == [], page


def test_failing_hidden_test_cell_has_no_traceback_in_feedback(graded):
    report, _ = graded
    text = _text(report.feedback_dir / "blank" / NAME / f"{NAME}.html")
    assert "traceback hidden: this test cell contains hidden tests" in text
    assert "NotImplementedError" in text


def test_submissions_are_not_modified(graded, klass):
    _, before = graded
    assert _hashes(klass) == before


# --------------------------------------------------------------------------- #
# harmless warnings on stderr (IgnorePattern)
# --------------------------------------------------------------------------- #
def test_graded_cell_with_harmless_warning_keeps_its_points(graded):
    report, _ = graded
    assert _cells(report, "solution")["mean-warning"] == 1.0


def _ignore_pattern() -> IgnorePattern:
    config = PyFileConfigLoader("nbgrader_config.py", str(REPO)).load_config()
    return IgnorePattern(config=config)


def _grade_cell(*outputs):
    cell = nbformat.v4.new_code_cell("assert True", outputs=list(outputs))
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": "t"}
    return cell


WARNING = ("/tmp/ipykernel_1/2.py:2: UserWarning: a harmless library warning\n"
           '  warnings.warn("a harmless library warning", UserWarning)\n')


def test_ignore_pattern_restores_points_for_warning_but_not_for_error():
    warn = nbformat.v4.new_output("stream", name="stderr", text=WARNING)
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=[])
    assert determine_grade(_grade_cell(warn), None)[0] == 0  # nbgrader's default
    pre = _ignore_pattern()
    assert pre.enabled
    cell, _ = pre.preprocess_cell(_grade_cell(warn), {}, 0)
    assert determine_grade(cell, None)[0] == 1
    cell, _ = pre.preprocess_cell(_grade_cell(warn, error), {}, 0)
    assert determine_grade(cell, None)[0] == 0


@pytest.mark.parametrize("text, harmless", [
    (WARNING, True),
    ("/x/site-packages/torch/nn/modules/module.py:1: FutureWarning: `x` is deprecated\n", True),
    ("<stdin>:3: DeprecationWarning: old\n", True),
    ("Failed to load /v/lib/python3.11/site-packages/torchao/_C_mxfp8.cpython-310-x86_64"
     "-linux-gnu.so: Could not load this library: /v/torchao/_C_mxfp8.so\n", True),
    ("W1122 03:26:12.663000 2649 torch/utils/_pytree.py:630] <enum 'KernelPreference'> is an "
     "Enum subclass\n", True),
    ("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n", False),
    ("training: 100%|##########| 10/10\n", False),
    ("Warning: something went wrong\n", False),
    ("Failed to load checkpoint model.pt\n", False),
])
def test_ignore_pattern_matches_only_known_noise(text, harmless):
    pattern = _ignore_pattern().pattern
    assert bool(re.search(pattern, text)) is harmless


# --------------------------------------------------------------------------- #
# zip input
# --------------------------------------------------------------------------- #
def test_zip_grades_the_same_as_directory(zip_graded, graded):
    report, _ = graded
    columns = ["student", "assignment", "score", "max_score"]
    from_dir = report.scores[report.scores.student.isin(["solution", "blank"])][columns]
    assert zip_graded.scores[columns].reset_index(drop=True).equals(from_dir.reset_index(drop=True))
    assert zip_graded.cells.equals(
        report.cells[report.cells.student.isin(["solution", "blank"])].reset_index(drop=True))
    assert [p for p in zip_graded.problems if "notes.ipynb" in p]


# --------------------------------------------------------------------------- #
# validation helper
# --------------------------------------------------------------------------- #
def test_validate_source_passes_and_blank_release_fails_everything(released, course_root):
    release_nb = released[0][0]
    assert grading.validate(course_root / "source" / NAME / f"{NAME}.ipynb", repo_root=course_root)
    assert grading.validate(release_nb, invert=True, repo_root=course_root)
    assert not grading.validate(release_nb, repo_root=course_root)


# --------------------------------------------------------------------------- #
# argument errors
# --------------------------------------------------------------------------- #
def test_missing_submissions_path(course_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="submissions"):
        grading.grade(tmp_path / "nope", tmp_path / "out", repo_root=course_root)


def test_unknown_assignment(course_root, klass, tmp_path):
    with pytest.raises(ValueError, match=r"assignments: unknown \['99_nope'\].*ps_tiny"):
        grading.grade(klass, tmp_path / "out", assignments=["99_nope"], repo_root=course_root)
    with pytest.raises(ValueError, match="assignments"):
        grading.release(repo_root=course_root, assignments=["99_nope"])


def test_empty_class_and_workspace_reuse(course_root, tmp_path):
    (tmp_path / "class" / "alice").mkdir(parents=True)
    out = tmp_path / "out"
    for _ in range(2):  # the second call reuses (resets) the workspace made by the first
        with pytest.raises(ValueError, match="empty class"):
            grading.grade(tmp_path / "class", out, repo_root=course_root)


def test_refuses_foreign_non_empty_out_dir_and_non_zip_file(course_root, klass, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="out_dir"):
        grading.grade(klass, tmp_path, repo_root=course_root)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="zip"):
        grading.grade(tmp_path / "mine.txt", tmp_path / "out", repo_root=course_root)


# --------------------------------------------------------------------------- #
# feedback preprocessor (unit)
# --------------------------------------------------------------------------- #
def test_hide_hidden_test_tracebacks_only_touches_hidden_test_cells():
    error = dict(ename="AssertionError", evalue="", traceback=["assert secret(1) == 2"])
    hidden = nbformat.v4.new_code_cell(
        "assert f(1)\n### BEGIN HIDDEN TESTS\nassert secret(1) == 2\n### END HIDDEN TESTS",
        outputs=[nbformat.v4.new_output("error", **error)])
    hidden.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": "t"}
    visible = nbformat.v4.new_code_cell("assert f(1)", outputs=[nbformat.v4.new_output("error", **error)])
    pre = HideHiddenTestTracebacks()
    assert "secret" not in "".join(pre.preprocess_cell(hidden, {}, 0)[0].outputs[0].traceback)
    assert pre.preprocess_cell(visible, {}, 0)[0].outputs[0].traceback == error["traceback"]


# --------------------------------------------------------------------------- #
# CLI entry points
# --------------------------------------------------------------------------- #
def test_grade_main_prints_table_and_paths(graded, monkeypatch, capsys, tmp_path):
    report, _ = graded
    monkeypatch.setattr(grading, "grade", lambda *args, **kwargs: report)
    args = Namespace(submissions=tmp_path, out=None, assignments=None, timeout=None)
    assert grading.grade_main(args) == 1  # the 'broken' notebook is a problem
    out, err = capsys.readouterr()
    assert "one_wrong" in out and str(report.csv_path) in out and str(report.feedback_dir) in out
    assert f"broken/{NAME}" in err


def test_cli_errors_exit_2(course_root, tmp_path, capsys):
    assert grading.release_main(Namespace(assignments=["99_nope"], repo_root=course_root)) == 2
    args = Namespace(submissions=tmp_path / "nope", out=tmp_path / "o", assignments=None,
                     timeout=None, repo_root=course_root)
    assert grading.grade_main(args) == 2
    assert "error: submissions" in capsys.readouterr().err


def test_grading_again_gives_the_same_grades(graded, klass, course_root, tmp_path):
    report, _ = graded
    again = grading.grade(klass, tmp_path / "again", repo_root=course_root)
    columns = ["student", "assignment", "score", "max_score", "status"]
    assert again.scores[columns].equals(report.scores[columns]), "a second run must give the same grades"
    assert again.cells.equals(report.cells), "a second run must give the same points per cell"


def test_refuses_to_run_learner_code_without_a_sandbox(course_root, klass, tmp_path, monkeypatch, capsys):
    from autograder import batch

    monkeypatch.setattr(batch, "check_available", lambda: "bwrap not found: install bubblewrap")
    with pytest.raises(RuntimeError, match="refusing to run learner code unsandboxed: bwrap not found"):
        grading.grade(klass, tmp_path / "out", repo_root=course_root)
    args = Namespace(submissions=klass, out=tmp_path / "o", assignments=None, timeout=None, repo_root=course_root)
    assert grading.grade_main(args) == 2
    assert "error: refusing to run learner code unsandboxed" in capsys.readouterr().err
