"""Tests for autograder/rebuild.py: a submission rebuilt on the release notebook before autograding.

Built from the fixture tests/fixtures/grading/source/ps_tiny/ps_tiny.ipynb (answers
square-solution, mean-solution; tests square-visible, square-hidden, mean-visible, mean-warning).
The release is made here the way nbgrader 0.9.6 makes it (solution regions replaced by
``# YOUR CODE HERE`` / ``raise NotImplementedError()``, hidden-test regions removed; same sources
as `nbgrader generate_assignment`); a "solved submission" is the
release with the solutions typed into the answer cells. No nbgrader run, pure and fast.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat import v4
from nbgrader.nbgraderformat import MetadataValidator

from autograder.rebuild import Rebuilt, rebuild
from hidden import without_hidden

SOURCE_NB = Path(__file__).parent / "fixtures" / "grading" / "source" / "ps_tiny" / "ps_tiny.ipynb"
SOURCE = nbformat.read(SOURCE_NB, as_version=4)
SOLUTION = re.compile(r"(?ms)^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION")
MARKERS = re.compile(r"(?m)^[ \t]*### (BEGIN|END) SOLUTION\n?")
ANSWERS = ["square-solution", "mean-solution"]
TESTS = ["square-visible", "square-hidden", "mean-visible", "mean-warning"]


def make_release(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What `nbgrader generate_assignment` makes of ``source`` (the parts that matter here)."""
    nb = copy.deepcopy(source)
    for cell in nb.cells:
        cell.source = without_hidden(SOLUTION.sub(r"\1# YOUR CODE HERE\n\1raise NotImplementedError()", cell.source)).rstrip("\n")
    return nb


def is_answer(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))


def gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def release() -> nbformat.NotebookNode:
    return make_release(SOURCE)


def solved() -> nbformat.NotebookNode:
    """The release with the learner's (correct) answers typed in, as saved by Jupyter."""
    nb = release()
    for cell, src in zip(nb.cells, SOURCE.cells):
        if is_answer(cell):
            cell.source = MARKERS.sub("", src.source)
    return nb


SOLVED = solved()


def index(nb, grade_id: str) -> int:
    return next(k for k, c in enumerate(nb.cells) if gid(c) == grade_id)


def cell(nb, grade_id: str):
    return nb.cells[index(nb, grade_id)]


def sources(nb) -> list[str]:
    return [c.source for c in nb.cells]


def strip_all(nb) -> nbformat.NotebookNode:
    """The learner copied every cell into a new notebook: no nbgrader metadata, new ids."""
    new = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell}
    cells = [new[c.cell_type](c.source) for c in nb.cells]
    for k, c in enumerate(cells):
        c.id = f"copy-{k}"
    return v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))


def learner_code(source: str, cell_id: str, **metadata) -> nbformat.NotebookNode:
    c = v4.new_code_cell(source, metadata=metadata)
    c.id = cell_id
    return c


# --- submissions, each with one accident; shared by the tests of general properties -----------

def deleted_test():
    nb = solved()
    del nb.cells[index(nb, "square-visible")]
    return nb


def edited_test():
    nb = solved()
    cell(nb, "mean-visible").source = "assert True  # learner edit"
    return nb


def relabelled_test():
    nb = solved()
    cell(nb, "square-hidden").metadata.nbgrader.grade_id = "my-own-test"
    return nb


def moved_answer():
    nb = solved()
    nb.cells.append(nb.cells.pop(index(nb, "square-solution")))
    return nb


def added_cells():
    nb = solved()
    nb.cells.insert(index(nb, "square-solution") + 1, learner_code("print(square(4))", "try-square"))
    bonus = {"grade": True, "solution": False, "locked": True, "grade_id": "bonus", "points": 5, "schema_version": 3}
    nb.cells.insert(index(nb, "mean-visible") + 1, learner_code("assert True", "bonus-cell", nbgrader=bonus))
    return nb


def points_100():
    nb = solved()
    cell(nb, "square-solution").metadata.nbgrader.update(grade=True, points=100)
    return nb


def hidden_text_cell():
    nb = solved()
    nb.cells.insert(index(nb, "mean-solution") + 1,
                    learner_code("### BEGIN HIDDEN TESTS\nprint(mean([1]))\n### END HIDDEN TESTS", "mine"))
    return nb


def duplicate_ids():
    nb = solved()
    nb.cells.insert(1, learner_code("x = 1", nb.cells[0].id))  # pasted: the id of the intro cell
    nb.cells.insert(2, learner_code("y = 2", nb.cells[0].id))
    nb.cells.insert(3, learner_code("z = 3", "not a valid id!"))
    return nb


def stripped():
    return strip_all(solved())


SCENARIOS = {f.__name__: f for f in [solved, deleted_test, edited_test, relabelled_test, moved_answer,
                                     added_cells, points_100, hidden_text_cell, duplicate_ids, stripped]}


# --- tests ----------------------------------------------------------------------------------------

def test_honest_solved_submission_is_unchanged():
    out = rebuild(solved(), release())
    assert isinstance(out, Rebuilt), f"rebuild returns a Rebuilt, got {type(out).__name__}"
    assert out.notes == [], f"an honest submission needs no repair, got notes {out.notes}"
    assert sources(out.notebook) == sources(SOLVED), "an honest submission keeps every cell's source, answers included"
    assert [c.id for c in out.notebook.cells] == [c.id for c in SOLVED.cells], "release cell ids are kept"
    assert [c.metadata for c in out.notebook.cells] == [c.metadata for c in release().cells], \
        "every cell keeps the release's metadata"


def test_deleted_test_cell_is_restored():
    out = rebuild(deleted_test(), release())
    assert sources(out.notebook) == sources(SOLVED), "the deleted test cell is back, in its release position"
    assert cell(out.notebook, "square-visible").metadata == cell(release(), "square-visible").metadata, \
        "the restored test cell has the release's nbgrader metadata"
    assert [n for n in out.notes if "square-visible" in n and "missing" in n], \
        f"a note names the missing cell 'square-visible': {out.notes}"


def test_edited_test_cell_is_restored_and_the_edit_dropped():
    out = rebuild(edited_test(), release())
    assert cell(out.notebook, "mean-visible").source == cell(release(), "mean-visible").source, \
        "the edited test cell gets the release's source back"
    assert not [s for s in sources(out.notebook) if "learner edit" in s], \
        "the learner's version of a test cell found by grade_id is not kept"
    assert any("mean-visible" in n and "edited" in n for n in out.notes), f"a note names 'mean-visible': {out.notes}"


def test_relabelled_test_cell_gets_its_grade_id_back():
    out = rebuild(relabelled_test(), release())
    assert [gid(c) for c in out.notebook.cells] == [gid(c) for c in release().cells], \
        "every grade_id is the release's; the learner's label 'my-own-test' is gone"
    assert len(out.notebook.cells) == len(SOLVED.cells), "the re-labelled cell is not kept twice"
    assert any("square-hidden" in n and "my-own-test" in n for n in out.notes), \
        f"a note names the cell and the learner's label: {out.notes}"


def test_answer_moved_to_the_end_is_graded_in_place():
    out = rebuild(moved_answer(), release())
    assert sources(out.notebook) == sources(SOLVED), "the moved answer goes back before its tests, nothing else moves"
    assert out.notes == [], f"a moved answer found by grade_id needs no note, got {out.notes}"


def test_learner_cells_are_kept_in_place_without_nbgrader_metadata():
    out = rebuild(added_cells(), release()).notebook
    after_answer = out.cells[index(out, "square-solution") + 1]
    after_test = out.cells[index(out, "mean-visible") + 1]
    assert after_answer.source == "print(square(4))", "the learner's cell stays right after the answer it followed"
    assert after_test.source == "assert True", "the learner's 'bonus' cell stays right after the test it followed"
    assert "nbgrader" not in after_test.metadata, "a learner cell loses its nbgrader metadata: it is not graded"
    assert [gid(c) for c in out.cells if gid(c)] == ANSWERS[:1] + TESTS[:2] + ANSWERS[1:] + TESTS[2:], \
        "only the release's cells are nbgrader cells"


def test_removed_learner_metadata_is_noted():
    notes = rebuild(added_cells(), release()).notes
    assert notes == [n for n in notes if "bonus" in n and "nbgrader metadata removed" in n] and notes, \
        f"exactly one note, on the learner's graded cell 'bonus': {notes}"


def test_stripped_metadata_answers_recovered_by_position():
    out = rebuild(strip_all(SOLVED), release())
    assert sources(out.notebook) == sources(SOLVED), "every answer is found by position, every other cell restored"
    for answer in ANSWERS:
        assert f"answer cell '{answer}' matched by position" in out.notes, f"a note says {answer} was matched by position"
    for test in TESTS:
        assert any(test in n and "stripped" in n for n in out.notes), f"a note says {test} lost its metadata: {out.notes}"


def test_stripped_metadata_answer_found_among_learner_cells():
    nb = strip_all(SOLVED)
    k = next(k for k, c in enumerate(nb.cells) if c.source.startswith("def square"))
    nb.cells.insert(k, v4.new_code_cell("import math  # helper above the answer"))
    nb.cells.insert(k + 2, v4.new_code_cell("print(square(5))"))
    out = rebuild(nb, release()).notebook
    k = index(out, "square-solution")
    assert out.cells[k].source == cell(SOLVED, "square-solution").source, \
        "the answer is the cell most like the release's answer, not the first code cell of the gap"
    assert [out.cells[k - 1].source, out.cells[k + 1].source] == ["import math  # helper above the answer",
                                                                  "print(square(5))"], \
        "the other cells of the gap are kept as learner cells where they were, around the answer"


def test_missing_answer_is_graded_as_blank():
    nb = solved()
    del nb.cells[index(nb, "mean-solution")]
    out = rebuild(nb, release())
    assert cell(out.notebook, "mean-solution").source == cell(release(), "mean-solution").source, \
        "a missing answer keeps the release's blank source"
    assert "answer cell 'mean-solution' not found in your notebook: graded as blank" in out.notes, out.notes


def test_points_100_on_an_answer_has_no_effect():
    out = rebuild(points_100(), release())
    answer = cell(out.notebook, "square-solution")
    assert answer.metadata == cell(release(), "square-solution").metadata, "the answer keeps the release's metadata"
    assert answer.source == cell(SOLVED, "square-solution").source, "the learner's answer is still graded"
    assert any("square-solution" in n and "points" in n for n in out.notes), f"a note says points were ignored: {out.notes}"


def test_points_on_a_test_cell_are_restored():
    nb = solved()
    cell(nb, "mean-warning").metadata.nbgrader.points = 100
    out = rebuild(nb, release())
    assert cell(out.notebook, "mean-warning").metadata == cell(release(), "mean-warning").metadata, \
        "the test cell is worth its release points"
    assert any("mean-warning" in n and "points" in n for n in out.notes), f"a note names the tampered cell: {out.notes}"


def test_answer_turned_into_markdown_is_graded_as_code():
    nb = solved()
    k = index(nb, "mean-solution")
    nb.cells[k] = v4.new_markdown_cell(nb.cells[k].source, metadata=nb.cells[k].metadata, id=nb.cells[k].id)
    out = rebuild(nb, release())
    answer = cell(out.notebook, "mean-solution")
    assert answer.cell_type == "code" and answer.source == cell(SOLVED, "mean-solution").source, \
        "the answer keeps the learner's source and the release's cell type"
    assert any("mean-solution" in n and "markdown" in n for n in out.notes), out.notes


@pytest.mark.parametrize("text", ["### BEGIN HIDDEN TESTS\nprint(mean([1]))\n### END HIDDEN TESTS",
                                  "### BEGIN SOLUTION\nprint(mean([2]))\n### END SOLUTION"])
def test_learner_text_with_nbgrader_markers_is_kept_verbatim(text):
    nb = solved()
    nb.cells.insert(index(nb, "mean-solution") + 1, learner_code(text, "mine"))
    out = rebuild(nb, release()).notebook
    assert out.cells[index(out, "mean-solution") + 1].source == text, "the learner's text is never edited"


def test_edited_plain_cell_is_restored_and_the_learner_version_kept():
    nb = solved()
    nb.cells[0].source += "\n\nMy notes: remember to square."
    out = rebuild(nb, release())
    assert out.notebook.cells[0].source == release().cells[0].source, "the release's text cell is restored"
    assert out.notebook.cells[1].source == nb.cells[0].source, \
        "the edited copy (not recognisable as a release cell) stays as the learner's cell right after it"
    assert "cell 1 (markdown) was missing or edited: restored" in out.notes, out.notes


def test_duplicate_ids_are_resolved():
    out = rebuild(duplicate_ids(), release()).notebook
    ids = [c.id for c in out.cells]
    assert len(ids) == len(set(ids)), f"ids are unique: {ids}"
    assert [c.id for c in out.cells if c.source in {"x = 1", "y = 2", "z = 3"}] == ["learner-1", "learner-2", "learner-3"], \
        "learner cells whose id is taken or invalid get fresh ids learner-<n>, in order"
    assert [c.id for c in out.cells if not c.id.startswith("learner-")] == [c.id for c in release().cells], \
        "release cells keep their ids"


def test_outputs_and_execution_counts_are_cleared():
    nb = solved()
    for c in nb.cells:
        if c.cell_type == "code":
            c.execution_count = 7
            c.outputs = [v4.new_output("stream", name="stdout", text="old output\n")]
    out = rebuild(nb, release()).notebook
    code = [c for c in out.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "nbgrader re-executes every cell"


def test_notebook_metadata_comes_from_the_release():
    nb = solved()
    nb.metadata = {"kernelspec": {"name": "evil", "display_name": "evil", "language": "python"}}
    assert rebuild(nb, release()).notebook.metadata == release().metadata, "kernelspec and language_info are the release's"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_output_is_a_valid_notebook(name):
    out = rebuild(SCENARIOS[name](), release()).notebook
    nbformat.validate(out)  # raises on an invalid notebook
    MetadataValidator().validate_nb(out)  # what nbgrader's CheckCellMetadata runs; raises on bad nbgrader metadata
    assert (out.nbformat, out.nbformat_minor) >= (4, 5), "cell ids need nbformat 4.5"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_deterministic(name):
    first, second = rebuild(SCENARIOS[name](), release()), rebuild(SCENARIOS[name](), release())
    assert nbformat.writes(first.notebook) == nbformat.writes(second.notebook), "same input, byte-identical notebook"
    assert first.notes == second.notes, "same input, same notes"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_inputs_are_not_mutated(name):
    submitted, rel = SCENARIOS[name](), release()
    before = copy.deepcopy(submitted), copy.deepcopy(rel)
    out = rebuild(submitted, rel).notebook
    out.cells[0].source = "changed"
    out.cells[0].metadata["changed"] = True
    out.metadata["changed"] = True
    assert (submitted, rel) == before, "rebuild copies its inputs, and the result shares nothing with them"


@pytest.mark.parametrize("args, name", [(({"cells": []}, "release"), "submitted"), (("submitted", None), "release")])
def test_type_errors_name_the_argument(args, name):
    submitted = solved() if args[0] == "submitted" else args[0]
    rel = release() if args[1] == "release" else args[1]
    with pytest.raises(TypeError, match=name):
        rebuild(submitted, rel)


def test_release_without_nbgrader_cells_is_a_value_error():
    with pytest.raises(ValueError, match="release"):
        rebuild(solved(), strip_all(release()))
