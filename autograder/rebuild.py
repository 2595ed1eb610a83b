"""Rebuild a learner's submitted notebook on the release notebook before autograding.

Why: nbgrader trusts the structure of the submitted notebook. A deleted test cell is never
graded (jupyter/nbgrader#1682). With ``OverwriteCells.add_missing_cells`` (jupyter/nbgrader#1770,
on in nbgrader_config.py) it is re-inserted after the previous source cell, looked up by grade_id
among the submission's grade and solution cells: when that cell is a locked cell or was deleted
too, ``add_missing_grade_cells`` raises ``KeyError`` (as it does for a graded cell without a
grade_id) and the whole notebook fails. ``CheckCellMetadata`` also fails the whole notebook on
metadata a learner broke (a duplicate grade_id from a copy-pasted cell, a graded cell without
points). So each submission is rebuilt on the release (student) notebook first, and accidents
never cost points.

How (``rebuild``):

1. The output is the release's cell sequence. Every non-answer release cell (text, setup,
   test, locked, task cells) is copied verbatim from the release; a note names each one the
   submission lacked or changed. The learner's own version of an nbgrader cell found by its
   grade_id is dropped (edits to it are not kept); a changed plain cell (no grade_id) is not
   recognisable, so the learner's version stays as a learner cell (4.).
2. Answer cells (``solution: true``) get the learner's source, release metadata and cell type.
   The learner's cell is found by grade_id; otherwise by position: the release cells matched
   so far (by grade_id, or by an unchanged source) whose order agrees with the submission's
   (the longest chain increasing in both notebooks) are anchors, and each release answer
   between two anchors takes the submitted cell of its cell type between the same anchors
   that shares the most lines with the release's answer cell (ties: the earliest cell).
3. Submitted cells that copy a non-answer release cell are dropped (the release's copy runs).
4. Every other submitted cell is a learner cell, kept in order with its source untouched but
   without nbgrader metadata. It goes right after the release cell that the nearest matched
   submitted cell above it was matched to (the top if none), and after the restored
   (unmatched) non-answer release cells that directly follow that one: an edited copy of a
   text or setup cell runs after the restored original, as the learner meant it to.
5. Ids are the release's; a learner cell keeps its id unless it is invalid or taken
   (then ``learner-<n>``). Outputs and execution counts are cleared; notebook metadata is the
   release's. Same input, same output; the inputs are not modified.
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field

import nbformat
from nbformat import v4
from nbformat.v4.nbbase import validate

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NEW = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}


@dataclass
class Rebuilt:
    """What ``rebuild`` returns."""

    notebook: nbformat.NotebookNode  # the notebook to hand to nbgrader autograde
    notes: list[str] = field(default_factory=list)  # lines for the learner's feedback


def _text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _gid(cell) -> str | None:
    gid = _meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def _is_answer(cell) -> bool:
    return bool(_meta(cell).get("solution"))


def _field(cell, key: str):
    value = _meta(cell).get(key)
    if key == "points":
        return float(value) if isinstance(value, (int, float)) else value
    return bool(value)


def _label(cell, index: int) -> str:
    meta, gid = _meta(cell), _gid(cell)
    if gid is None:
        return f"cell {index + 1} ({cell.get('cell_type')})"
    kind = ("answer" if meta.get("solution") else "test" if meta.get("grade")
            else "task" if meta.get("task") else "locked")
    return f"{kind} cell {gid!r}"


def _changes(release_cell, cell) -> list[str]:
    """How a submitted copy of a non-answer release cell differs from it (empty: unchanged)."""
    out = [] if _text(cell).strip() == _text(release_cell).strip() else ["edited"]
    if cell.get("cell_type") != release_cell.get("cell_type"):
        out.append(f"turned into a {cell.get('cell_type')} cell")
    if _meta(release_cell) and not _meta(cell):
        out.append("stripped of its nbgrader metadata")
    elif _gid(cell) != _gid(release_cell):
        out.append(f"re-labelled {_gid(cell)!r}")
    else:
        keys = [k for k in ("grade", "solution", "locked", "task", "points") if _field(cell, k) != _field(release_cell, k)]
        out += [f"given other nbgrader metadata ({', '.join(keys)})"] if keys else []
    return out


def _similarity(a, b) -> float:
    """Share of non-blank lines two cells have in common (0..1)."""
    def lines(cell):
        return [line.strip() for line in _text(cell).splitlines() if line.strip()]
    return difflib.SequenceMatcher(None, lines(a), lines(b), autojunk=False).ratio()


def _chain(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest sub-list of (release, submitted) pairs, sorted by release index, whose submitted indices increase."""
    best: list[list[tuple[int, int]]] = []
    for k, (_, s) in enumerate(pairs):
        before = max((best[m] for m in range(k) if pairs[m][1] < s), key=len, default=[])
        best.append(before + [pairs[k]])
    return max(best, key=len, default=[])


def _match(rel: list, sub: list) -> tuple[dict[int, int], set[int], set[int]]:
    """Release index -> submitted index, the answers matched by position, and the submitted copies to drop."""
    match: dict[int, int] = {}
    for i, cell in enumerate(rel):  # 1. by grade_id; of several candidates, the most release-like first
        gid = _gid(cell)
        same = [j for j, s in enumerate(sub) if gid and j not in match.values() and _gid(s) == gid]
        unlike = (lambda j: _is_answer(sub[j]) != _is_answer(cell)
                  or (not _is_answer(cell) and bool(_changes(cell, sub[j]))))
        if same:
            match[i] = min(same, key=lambda j: (unlike(j), j))
    for i, cell in enumerate(rel):  # 2. non-answer cells by unchanged source, preferably below the last match above
        if i not in match and not _is_answer(cell):
            start = max((match[k] for k in match if k < i), default=-1) + 1
            key = _text(cell).strip()
            found = [j for j in [*range(start, len(sub)), *range(start)]
                     if j not in match.values() and _text(sub[j]).strip() == key]
            if found:
                match[i] = found[0]
    copies = {_text(c).strip() for c in rel if not _is_answer(c)}
    dropped = {j for j, s in enumerate(sub) if j not in match.values() and _text(s).strip() in copies}
    by_position: set[int] = set()
    bounds = [(-1, -1)] + _chain(sorted(match.items())) + [(len(rel), len(sub))]
    for (r0, s0), (r1, s1) in zip(bounds, bounds[1:]):  # 3. answers by position, between two anchors
        answers = [i for i in range(r0 + 1, r1) if i not in match and _is_answer(rel[i])]
        free = [j for j in range(s0 + 1, s1) if j not in match.values() and j not in dropped]
        pairs = sorted((-_similarity(rel[i], sub[j]), i, j) for i in answers for j in free
                       if sub[j].get("cell_type") == rel[i].get("cell_type"))
        for _, i, j in pairs:
            if i not in match and j not in match.values():
                match[i] = j
                by_position.add(i)
    return match, by_position, dropped


def _new_cell(cell_type, source: str, metadata: dict, attachments=None) -> nbformat.NotebookNode:
    """A fresh valid cell (no outputs, no execution count); invalid learner metadata/attachments are dropped."""
    cell = _NEW.get(cell_type, v4.new_raw_cell)(source=source)
    cell["metadata"] = copy.deepcopy(metadata)
    if attachments and cell.cell_type != "code":
        cell["attachments"] = copy.deepcopy(attachments)
    try:
        validate(cell, f"{cell.cell_type}_cell")
    except nbformat.ValidationError:
        cell["metadata"] = {}
        cell.pop("attachments", None)
    return cell


def rebuild(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> Rebuilt:
    """Rebuild ``submitted`` on ``release`` so that nbgrader grades it whatever the learner did to the cells.

    Args:
        submitted: the learner's notebook, as ``nbformat.read`` returns it (not modified).
        release: the release (student) notebook nbgrader generated for the assignment (not modified).

    Returns:
        ``Rebuilt(notebook, notes)``: the notebook to autograde (the release's cells with the
        learner's answers and own cells, valid nbformat 4.5) and one note per repair, in
        notebook order, for the learner's feedback (empty for an untouched notebook).

    Raises:
        TypeError: ``submitted`` or ``release`` is not an ``nbformat.NotebookNode``.
        ValueError: ``release`` has no nbgrader cells (it is not a release notebook).
    """
    for name, nb in (("submitted", submitted), ("release", release)):
        if not isinstance(nb, nbformat.NotebookNode):
            raise TypeError(f"{name} must be an nbformat.NotebookNode (nbformat.read), not {type(nb).__name__}")
    rel = nbformat.from_dict(copy.deepcopy(list(release.get("cells", []))))
    sub = nbformat.from_dict(copy.deepcopy(list(submitted.get("cells", []))))
    if not any("nbgrader" in c.get("metadata", {}) for c in rel):
        raise ValueError("release has no nbgrader cells: pass the release (student) notebook nbgrader generated")
    match, by_position, dropped = _match(rel, sub)
    owner = {j: i for i, j in match.items()}
    followers: dict[int, list[int]] = {}  # release index (-1: the top) -> learner cells placed after it
    above = -1
    for j in range(len(sub)):
        if j in owner:
            above = owner[j]
        elif j not in dropped:
            after = above  # past the restored non-answer release cells right below: an edited copy follows the original
            while after + 1 < len(rel) and after + 1 not in match and not _is_answer(rel[after + 1]):
                after += 1
            followers.setdefault(after, []).append(j)

    reserved = {c.get("id") for c in rel if isinstance(c.get("id"), str) and _ID.fullmatch(c["id"])}
    cells, notes, used = [], [], set()

    def add(cell, wanted, mine: bool) -> None:
        if not (isinstance(wanted, str) and _ID.fullmatch(wanted)) or wanted in used or (mine and wanted in reserved):
            prefix, n = ("learner" if mine else "cell"), 1
            while f"{prefix}-{n}" in used | reserved:
                n += 1
            wanted = f"{prefix}-{n}"
        cell["id"] = wanted
        used.add(wanted)
        cells.append(cell)

    def add_learner(j: int) -> None:
        s = sub[j]
        if "nbgrader" in s.get("metadata", {}):
            gid = f" (grade_id {_gid(s)!r})" if _gid(s) else ""
            notes.append(f"your cell {j + 1}{gid}: nbgrader metadata removed (only the release's cells are graded)")
        metadata = {k: v for k, v in s.get("metadata", {}).items() if k != "nbgrader"}
        add(_new_cell(s.get("cell_type"), _text(s), metadata, s.get("attachments")), s.get("id"), mine=True)

    for j in followers.get(-1, []):
        add_learner(j)
    for i, r in enumerate(rel):
        label, s = _label(r, i), (sub[match[i]] if i in match else None)
        if not _is_answer(r):
            if s is None:
                notes.append(f"{label} was missing" + ("" if _gid(r) else " or edited") + ": restored")
            elif _changes(r, s):
                notes.append(f"{label} was {', '.join(_changes(r, s))}: restored")
            cell = _new_cell(r.cell_type, _text(r), r.metadata, r.get("attachments"))
        elif s is None:
            notes.append(f"{label} not found in your notebook: graded as blank")
            cell = _new_cell(r.cell_type, _text(r), r.metadata, r.get("attachments"))
        else:
            keys = [k for k in ("grade", "solution", "points") if _field(s, k) != _field(r, k)]
            if i in by_position:
                notes.append(f"{label} matched by position")
            elif keys:
                notes.append(f"{label}: your changes to its nbgrader metadata ({', '.join(keys)}) were ignored")
            if s.get("cell_type") != r.cell_type:
                notes.append(f"{label} was a {s.get('cell_type')} cell: graded as {r.cell_type}")
            attachments = s.get("attachments") if s.get("cell_type") == r.cell_type else None
            cell = _new_cell(r.cell_type, _text(s), r.metadata, attachments)
        add(cell, r.get("id"), mine=False)
        for j in followers.get(i, []):
            add_learner(j)
    notebook = v4.new_notebook(cells=cells, metadata=copy.deepcopy(release.get("metadata", {})))
    return Rebuilt(notebook=notebook, notes=notes)
