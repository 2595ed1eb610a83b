"""The tests' one parser of nbgrader's hidden-test regions (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``).

Written apart from :func:`autograder.feedback.hidden_lines` on purpose: the feedback tests check
that function's redaction, so they must not find the hidden lines with the code under test.
"""

from __future__ import annotations

import re

# One region: from a line starting with the BEGIN marker to the next line that is the END marker.
HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$", re.S | re.M)


def without_hidden(source: str) -> str:
    """``source`` with every hidden-test region, markers included, removed: what a release shows."""
    return HIDDEN_BLOCK.sub("", source)


def hidden_lines(cells, *, markers: bool = True, min_chars: int = 1) -> list[str]:
    """Stripped lines of the hidden-test regions of ``cells`` (nbformat cells), in notebook order.

    ``markers``: include the BEGIN/END marker lines; ``min_chars``: leave out shorter lines (blank
    ones always)."""
    lines = []
    for cell in cells:
        for block in HIDDEN_BLOCK.findall(cell.source):
            rows = block.splitlines()
            lines += [row.strip() for row in (rows if markers else rows[1:-1]) if len(row.strip()) >= max(min_chars, 1)]
    return lines
