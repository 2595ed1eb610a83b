"""Feedback preprocessors (nbgrader ``GenerateFeedback.preprocessors``, see ``nbgrader_config.py``).

nbgrader restores hidden tests into autograded notebooks and, by default, into feedback
(jupyter/nbgrader#917). The course's feedback pipeline, in order:

1. ``nbgrader.preprocessors.GetGrades``;
2. :class:`HideHiddenTestTracebacks`: a failing cell with hidden tests shows only
   ``ExceptionName: message`` (a traceback quotes the source around the failing line);
3. :class:`RedactHiddenLines`: every output of every cell is scanned for lines of hidden-test
   source and each is replaced by a placeholder. Learner code can capture cell sources at run
   time (IPython's input history, ``pre_run_cell`` hooks) and print them later;
4. :class:`ClearHiddenTestsInTestCells`: nbgrader's ``ClearHiddenTests`` on the instructor's test
   cells only, so a learner's own cell that merely contains ``BEGIN HIDDEN TESTS`` is shown as
   written instead of failing feedback generation;
5. ``nbconvert.preprocessors.CSSHTMLHeaderPreprocessor``.
"""
from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Integer, Unicode

PLACEHOLDER = "[hidden test line removed]"


def is_test_cell(cell) -> bool:
    """An instructor test cell: a code cell nbgrader grades (``grade`` and not ``solution``)."""
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def hidden_lines(nb, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS",
                 min_chars: int = 6) -> list[str]:
    """Stripped source lines inside hidden-test regions of the test cells of ``nb`` (markers
    included), longest first; lines shorter than ``min_chars`` are left out (``)`` or ``pass``
    would redact harmless output)."""
    found, inside = set(), False
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        for line in cell.source.splitlines():
            inside = inside or begin in line
            if inside and len(line.strip()) >= min_chars:
                found.add(line.strip())
            inside = inside and end not in line
        inside = False
    return sorted(found, key=lambda s: (-len(s), s))


class HideHiddenTestTracebacks(NbGraderPreprocessor):
    """Shorten error tracebacks of test cells that contain hidden tests to
    ``"<ExceptionName>: <message>"`` (a traceback quotes the cell's source)."""

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS", help="Marker of a hidden-test region").tag(config=True)
    note = Unicode("(traceback hidden: this test cell contains hidden tests)").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if is_test_cell(cell) and self.begin_test_delimeter in cell.source:
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}", self.note]
        return cell, resources


class RedactHiddenLines(NbGraderPreprocessor):
    """Replace hidden-test source lines found in any cell's outputs by :data:`PLACEHOLDER`."""

    min_chars = Integer(6, help="Shortest hidden line that is redacted").tag(config=True)

    def preprocess(self, nb, resources):
        self._lines = hidden_lines(nb, min_chars=self.min_chars)
        return super().preprocess(nb, resources)

    def _redact(self, text: str) -> str:
        for line in self._lines:
            if line in text:
                text = text.replace(line, PLACEHOLDER)
        return text

    def _value(self, value):
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, dict):
            return {k: self._value(v) for k, v in value.items()}
        return value

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and self._lines:
            for output in cell.outputs:
                for key in ("text", "traceback", "evalue", "ename"):
                    if key in output:
                        output[key] = self._value(output[key])
                if "data" in output:
                    output["data"] = type(output["data"])(self._value(dict(output["data"])))
        return cell, resources


class ClearHiddenTestsInTestCells(ClearHiddenTests):
    """nbgrader's ClearHiddenTests applied to the instructor's test cells only."""

    def preprocess_cell(self, cell, resources, cell_index):
        if is_test_cell(cell):
            return super().preprocess_cell(cell, resources, cell_index)
        return cell, resources
