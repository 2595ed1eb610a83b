"""The real notebooks, executed for real through nbgrader (shared runs, see conftest.demo_run).

Each notebook executes once solved and once blank (the demo's sample class); 00_concepts, the
cheapest, also runs under `nbgrader validate`; 00, 02 and 03 each run once more with one wrong exercise.
"""

import filecmp
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course import grading
from hidden import hidden_lines  # tests/hidden.py: the tests' one hidden-region parser

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = grading.list_assignments(ROOT)
CHEAP = "00_concepts"


def graded_cells(name: str) -> dict[str, float]:
    """Points of the autograded test cells (code cells with grade=True and no solution) by grade_id;
    manually graded answers are scored by a person, not by these runs."""
    nb = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    metas = [(c.cell_type, c.metadata.get("nbgrader", {})) for c in nb.cells]
    return {m["grade_id"]: m["points"] for kind, m in metas if kind == "code" and m.get("grade") and not m.get("solution")}


def source_hidden_lines(name: str) -> list[str]:
    """The hidden-test lines of a source notebook longer than 12 characters, markers left out."""
    nb = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    return hidden_lines(nb.cells, markers=False, min_chars=13)


def test_the_course_has_its_notebooks():
    assert {"00_concepts", "01_distillation", "02_quantization", "03_pruning", "04_capstone"} <= set(ASSIGNMENTS)


def test_committed_release_is_what_nbgrader_generates(tmp_path):
    """release/ must be reproducible from source/ (CI fails if someone edits release/ by hand)."""
    shutil.copytree(ROOT / "source", tmp_path / "source")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    grading.release(tmp_path)
    for name in ASSIGNMENTS:
        fresh, committed = tmp_path / "release" / name, ROOT / "release" / name
        assert committed.is_dir(), f"release/{name} is missing: run `make release` and commit it"
        diff = filecmp.dircmp(fresh, committed)
        assert not (diff.left_only or diff.right_only or diff.diff_files), \
            f"release/{name} differs from a fresh `course release`: {diff.diff_files or diff.left_only or diff.right_only}"


@pytest.fixture(scope="module")
def scores(demo_run):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{demo_run[2] / 'gradebook.db'}", course_id="") as gb:
        return {(s, a): {g.name: g.score for nb in gb.find_submission(a, s).notebooks for g in nb.grades}
                for s in ("solution", "blank") for a in ASSIGNMENTS}


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_autograde_to_full_marks(scores, name):
    got, expected = scores[("solution", name)], graded_cells(name)
    lost = {g: (got.get(g), pts) for g, pts in expected.items() if got.get(g) != pts}
    assert not lost, f"{name}: graded cells below full marks (got, max): {lost}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_blank_release_autogrades_to_zero(scores, name):
    got, tests = scores[("blank", name)], graded_cells(name)
    assert set(tests) <= set(got)
    assert all(got[g] == 0 for g in tests), {g: got[g] for g in tests if got[g]}


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_feedback_has_no_hidden_test_source(demo_run, name):
    lines = source_hidden_lines(name)
    assert lines, f"{name} has no hidden tests"
    for student in ("solution", "blank"):
        html = (demo_run[2] / "feedback" / student / name / f"{name}.html").read_text()
        leaked = [line for line in lines if line in html]
        assert not leaked, f"{student}/{name} feedback shows hidden tests: {leaked[:3]}"


# One exercise per notebook to get wrong on purpose: its tests are the only cells that use it. Not 04_capstone:
# every one of its exercises feeds the model whose budget cells are graded, so no wrong answer stays local.
WRONG = {"00_concepts": None, "02_quantization": "qparams-symmetric-answer",
         "03_pruning": "bitmask-bytes-answer"}  # None: the first exercise


def _break_exercise(name: str, answer_id: str | None, dest: Path) -> set[str]:
    """Copy the solved notebook with one exercise's solution replaced by a wrong one; return the
    grade_ids of the test cells that check that exercise (up to the next exercise)."""
    nb = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    answers = [i for i, m in enumerate(meta) if m.get("solution") and not m.get("grade") and nb.cells[i].cell_type == "code"]
    k = 0 if answer_id is None else [meta[i]["grade_id"] for i in answers].index(answer_id)
    first, nxt = answers[k], answers[k + 1]
    nb.cells[first].source = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "return None  # wrong on purpose",
                                    nb.cells[first].source, flags=re.S)
    dest.parent.mkdir(parents=True)
    nbformat.write(nb, dest)
    return {meta[i]["grade_id"] for i in range(first, nxt) if meta[i].get("grade")}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_one_wrong_exercise_loses_exactly_its_points(tmp_path, name):
    broken = _break_exercise(name, WRONG[name], tmp_path / "class" / "wrong" / name / f"{name}.ipynb")
    report = grading.grade(tmp_path / "class", tmp_path / "grading", assignments=[name])
    got, full = report.cell_scores("wrong", name), graded_cells(name)
    assert broken, f"{name}: no test cells follow the broken exercise"
    assert {g for g, pts in full.items() if got[g] != pts} == broken, f"cells that lost points: {got}"
    assert all(got[g] == 0 for g in broken)


def test_validate_passes_on_the_solved_source():
    assert grading.validate(ROOT / "source" / CHEAP / f"{CHEAP}.ipynb")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_validate_invert_holds_on_the_blank_release(name):
    assert grading.validate(ROOT / "release" / name / f"{name}.ipynb", invert=True)


def test_capstone_leaderboard_measures_each_shipped_model(demo_run):
    """course grade measured the solution's capstone_model.pt in a fresh process; the blank run wrote no file."""
    import pandas as pd

    board = pd.read_csv(demo_run[2] / "leaderboard.csv").set_index("student")
    assert (demo_run[2] / "leaderboard.png").stat().st_size > 10_000
    solution, blank = board.loc["solution"], board.loc["blank"]
    assert solution.status == "measured" and bool(solution.meets_budget), solution.to_dict()
    assert solution.smaller_x >= 6 and solution.faster_x >= 2 and solution.accuracy_kept_pct >= 94, solution.to_dict()
    assert solution.points == solution.max_points - 3, "the solution earns every autograded point (3 are by hand)"
    assert blank.status == "no model file" and not bool(blank.meets_budget) and blank.points == 0, blank.to_dict()
