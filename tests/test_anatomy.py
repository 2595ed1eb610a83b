"""Static checks of the notebook anatomy (source/README.md) over every ``source/*/*.ipynb``.

They read the notebooks only (nothing is executed), so they run in a second on any machine.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from hidden import without_hidden  # tests/hidden.py: the tests' one hidden-region parser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(REPO.glob("source/*/*.ipynb"))
# source/README.md: at most 420 non-blank lines of code per notebook.
MAX_CODE_LINES = 420
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
POINTS_IN_HEADING = re.compile(r"\((\d+) points?\b")


def nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_graded(cell) -> bool:
    return bool(nbgrader(cell).get("grade"))


def is_test(cell) -> bool:
    """An autograder test cell: graded code that is not a solution."""
    meta = nbgrader(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def where(path: Path, cell) -> str:
    return f"{path.relative_to(REPO)} cell {cell.get('id', '?')} ({nbgrader(cell).get('grade_id', 'no grade_id')})"


@pytest.fixture(params=NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=4)


def test_there_are_notebooks():
    assert NOTEBOOKS, "no source/*/*.ipynb found"


def test_layout_one_notebook_per_folder(notebook):
    path, _ = notebook
    assert path.stem == path.parent.name, f"{path.relative_to(REPO)}: expected source/<name>/<name>.ipynb"
    assert len(list(path.parent.glob("*.ipynb"))) == 1, f"{path.parent}: one notebook per assignment folder"


def test_valid_and_kernelspec(notebook):
    path, nb = notebook
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec must be python3"


def test_no_outputs(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{where(path, cell)} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{where(path, cell)} has an execution count"


def test_setup_cell_first(notebook):
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert not nbgrader(first).get("grade") and not nbgrader(first).get("solution"), \
        f"{where(path, first)}: the first code cell is the ungraded setup cell"
    course_imports = [node for node in ast.parse(first.source).body
                      if isinstance(node, ast.ImportFrom) and node.module == "course.lib"]
    assert len(course_imports) == 1 and "setup_notebook" in {a.name for a in course_imports[0].names}, \
        f"{where(path, first)}: expected ONE statement `from course.lib import (..., setup_notebook, ...)` (it may wrap)"
    assert re.search(r"^\w+ = setup_notebook\(|^setup_notebook\(", first.source, re.M), \
        f"{where(path, first)}: the setup cell must call setup_notebook(...)"
    imports = [line for line in first.source.splitlines() if re.match(r"(from|import) \w", line)]
    assert imports and imports[0].startswith("from course.lib"), \
        f"{where(path, first)}: import course.lib before torch/transformers/torchao (it installs the filters " \
        f"for their known import-time log lines, course/lib/quiet.py); first import is {imports[:1]}"


def test_metadata_schema(notebook):
    path, nb = notebook
    for cell in nb.cells:
        meta = nbgrader(cell)
        if not meta:
            continue
        assert meta.get("schema_version") == 3, f"{where(path, cell)}: nbgrader schema_version must be 3"
        assert "grade_id" in meta, f"{where(path, cell)}: nbgrader cell without grade_id"
        if meta.get("grade"):
            assert isinstance(meta.get("points"), (int, float)) and meta["points"] > 0, \
                f"{where(path, cell)}: a graded cell needs points > 0"
        if is_test(cell):
            assert meta.get("locked"), f"{where(path, cell)}: test cells must be locked"


def test_grade_ids_kebab_case_and_unique(notebook):
    path, nb = notebook
    ids = [nbgrader(c)["grade_id"] for c in nb.cells if "grade_id" in nbgrader(c)]
    bad = [i for i in ids if not KEBAB.match(i)]
    assert not bad, f"{path.name}: grade_ids must be kebab-case: {bad}"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{path.name}: duplicate grade_ids {duplicates}"


def test_solution_cells_have_markers(notebook):
    path, nb = notebook
    solutions = [c for c in nb.cells if c.cell_type == "code" and nbgrader(c).get("solution")]
    for cell in solutions:
        begin, end = cell.source.count("### BEGIN SOLUTION"), cell.source.count("### END SOLUTION")
        assert begin >= 1 and begin == end, f"{where(path, cell)}: needs ### BEGIN SOLUTION / ### END SOLUTION pairs"
        assert cell.source.index("### BEGIN SOLUTION") < cell.source.index("### END SOLUTION"), \
            f"{where(path, cell)}: END SOLUTION before BEGIN SOLUTION"


def test_graded_cells_docstring_and_assert_message(notebook):
    path, nb = notebook
    for cell in filter(is_test, nb.cells):
        begin, end = cell.source.count("### BEGIN HIDDEN TESTS"), cell.source.count("### END HIDDEN TESTS")
        assert begin == end, f"{where(path, cell)}: unbalanced BEGIN/END HIDDEN TESTS"
        tree = ast.parse(cell.source)
        first = tree.body[0] if tree.body else None
        assert (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str) and first.value.value.strip()), \
            f"{where(path, cell)}: a test cell starts with a docstring saying what it checks"
        visible = ast.parse(without_hidden(cell.source))  # what the learner sees in the release version
        asserts = [n for n in ast.walk(visible) if isinstance(n, ast.Assert)]
        assert asserts, f"{where(path, cell)}: needs at least one visible assert"
        bare = [a.lineno for a in ast.walk(tree) if isinstance(a, ast.Assert) and a.msg is None]   # hidden ones too
        assert not bare, f"{where(path, cell)}: every assert, hidden ones too, needs a message (expected, got, hint); " \
                         f"none at cell line(s) {bare}"


def _parts(nb) -> tuple[list[tuple[str, int, float]], list[str]]:
    """[(heading, stated points, points of the graded cells under it)] and graded cells under no part."""
    parts, orphans, current = [], [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    match = POINTS_IN_HEADING.search(line)
                    current = [line[3:].strip(), int(match.group(1)), 0.0] if match else None
                    if current:
                        parts.append(current)
        if is_graded(cell):
            if current is None:
                orphans.append(nbgrader(cell)["grade_id"])
            else:
                current[2] += nbgrader(cell)["points"]
    return [tuple(p) for p in parts], orphans


def test_parts_state_their_points(notebook):
    path, nb = notebook
    parts, orphans = _parts(nb)
    assert not orphans, (f"{path.name}: graded cells {orphans} are not under a '## ... (N points)' heading "
                         "(the nearest level-2 heading above them must state its points)")
    for heading, stated, graded in parts:
        assert stated == graded, f"{path.name}: '{heading}' states {stated} points but its graded cells give {graded:g}"
    assert sum(g for _, _, g in parts) > 0, f"{path.name}: no graded cells"


def test_code_is_short(notebook):
    path, nb = notebook
    lines = sum(1 for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines() if line.strip())
    assert lines <= MAX_CODE_LINES, f"{path.name}: {lines} non-blank code lines, keep it under {MAX_CODE_LINES}"


def test_readme_table_lists_points(notebook):
    """source/README.md has a row per notebook whose points column, `total (auto + by hand)`, is right."""
    path, nb = notebook
    readme = (REPO / "source" / "README.md").read_text()
    row = re.search(rf"^\|\s*`{re.escape(path.stem)}`\s*\|.*$", readme, re.M)
    assert row, f"source/README.md: add a table row for `{path.stem}` (time budget and points)"
    graded = [nbgrader(c) for c in nb.cells if is_graded(c)]
    auto = sum(m["points"] for m in graded if not m.get("solution"))
    manual = sum(m["points"] for m in graded if m.get("solution"))
    expected = f"{auto + manual:g} ({auto:g} + {manual:g})"
    assert f"| {expected} |" in row.group(0), \
        f"source/README.md row of {path.stem} should state the points as '{expected}': {row.group(0)}"


def test_no_cell_shadows_a_course_helper(notebook):
    """A cell that defines a name the setup cell imports from course.lib (say its own ``raises``) silently
    changes every later cell that uses the shared helper."""
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    imported = {alias.asname or alias.name for node in ast.walk(ast.parse(code[0].source))
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course.lib") for alias in node.names}
    for cell in code[1:]:
        defined = {node.name for node in ast.walk(ast.parse(cell.source)) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        defined |= {target.id for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        assert not defined & imported, f"{where(path, cell)} redefines {sorted(defined & imported)}, imported from course.lib by the setup cell"
