"""The capstone leaderboard: every submission's shipped model measured the same way, for workshops.

After autograding, :func:`write` measures each student's ``capstone_model.pt`` — the file that the graded run of
their notebook wrote in ``autograded/<student>/04_capstone/`` — with :func:`course.lib.ship.measure_shipped`, i.e.
in a fresh Python process that loads the file with ``torch.load(weights_only=True)``; the grader's own process
never loads a learner's file. It writes ``leaderboard.csv`` (one row per student, best accuracy first among the
models that meet the whole budget) and ``leaderboard.png`` (test accuracy vs batch-1 latency, marker area = size
in MB, the teacher as reference) next to ``grades.csv``. Points stay nbgrader's; the leaderboard only ranks.

Submissions are measured one after another on one thread, so their latencies are comparable within one
leaderboard; ratios (``*_x``) are against the teacher measured in the same process as each model.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd

from course.files import atomic_file, atomic_write
from course.lib.ship import BUDGET

CAPSTONE = "04_capstone"
MODEL_FILE = "capstone_model.pt"
COLUMNS = ["student", "meets_budget", "accuracy_pct", "size_mb", "latency_ms_b1", "smaller_x", "faster_x",
           "accuracy_kept_pct", "points", "max_points", "cpu_capability", "int8_dot_product", "sha256", "status"]


def measure_class(workspace: Path, scores: pd.DataFrame, timeout: float = 900) -> pd.DataFrame:
    """One row per student with a capstone submission (columns :data:`COLUMNS`); a student whose run wrote no
    model file, or whose file fails to load, gets a row with ``status`` saying so and no measurements."""
    from course.lib.ship import measure_shipped

    rows = []
    for row in scores[scores.assignment == CAPSTONE].itertuples():
        base = {"student": row.student, "points": row.score, "max_points": row.max_score, "meets_budget": False}
        path = Path(workspace) / "autograded" / row.student / CAPSTONE / MODEL_FILE
        if not row.submitted or not path.is_file():
            rows.append({**base, "status": "no model file" if row.submitted else "not submitted"})
            continue
        try:
            m = measure_shipped(path, timeout=timeout)
        except (RuntimeError, OSError, ValueError) as error:   # a file that does not load or measure: its row says why
            rows.append({**base, "status": f"not measured: {error}"[:300]})
            continue
        except subprocess.TimeoutExpired:
            rows.append({**base, "status": f"not measured: over {timeout:.0f} s"})
            continue
        meets = (m.size_ratio <= BUDGET["size"] and m.latency_ratio <= BUDGET["latency"]
                 and m.accuracy_ratio >= BUDGET["accuracy"])
        rows.append({**base, "meets_budget": meets, "accuracy_pct": 100 * m.accuracy, "size_mb": m.size_bytes / 1e6,
                     "latency_ms_b1": m.latency_ms, "smaller_x": 1 / m.size_ratio, "faster_x": 1 / m.latency_ratio,
                     "accuracy_kept_pct": 100 * m.accuracy_ratio, "cpu_capability": m.cpu_capability,
                     "int8_dot_product": "/".join(m.int8_dot_product) or "none",
                     "sha256": m.sha256, "status": "measured",
                     "_teacher": (100 * m.teacher_accuracy, m.teacher_latency_ms, m.teacher_size_bytes / 1e6)})
    table = pd.DataFrame(rows)
    for column in COLUMNS + ["_teacher"]:
        if column not in table:
            table[column] = None
    return table.sort_values(["meets_budget", "accuracy_pct"], ascending=False, na_position="last", kind="stable")


def plot(table: pd.DataFrame, ax=None):
    """Test accuracy (%) vs batch-1 latency (ms), marker area ∝ size (MB), the teacher as a reference star."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    measured = table[table.status == "measured"]
    for row in measured.itertuples():
        ax.scatter(row.latency_ms_b1, row.accuracy_pct, s=20 * row.size_mb, alpha=0.6,
                   color="tab:green" if row.meets_budget else "tab:gray")
        ax.annotate(f"{row.student} ({row.size_mb:.1f} MB)", (row.latency_ms_b1, row.accuracy_pct), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    if len(measured):
        accuracy, latency, size = measured["_teacher"].iloc[0]
        ax.scatter([latency], [accuracy], marker="*", s=200, color="tab:red", label=f"teacher ({size:.0f} MB)")
        ax.axvline(latency * BUDGET["latency"], ls=":", color="tab:red", lw=1, label="latency budget")
        ax.axhline(accuracy * BUDGET["accuracy"], ls="--", color="tab:red", lw=1, label="accuracy budget")
        ax.legend(fontsize=7, loc="lower right")
    ax.set(xlabel="batch-1 latency (ms, 1 thread)", ylabel="test accuracy (%)",
           title="capstone leaderboard (green: meets the whole budget; area: size in MB)")
    return ax.figure


def write(workspace: Path, scores: pd.DataFrame, timeout: float = 900) -> Path | None:
    """Measure the class (:func:`measure_class`) and write ``leaderboard.csv`` and ``leaderboard.png`` into
    ``workspace`` (each written to a temporary name, then renamed). Returns the CSV's path, or None when no
    student submitted the capstone."""
    if not (scores.assignment == CAPSTONE).any():
        return None
    table = measure_class(workspace, scores, timeout)
    csv, png = Path(workspace) / "leaderboard.csv", Path(workspace) / "leaderboard.png"
    atomic_write(csv, table[COLUMNS].round(3).to_csv(index=False))
    figure = plot(table)
    with atomic_file(png) as f:
        figure.savefig(f, format="png", dpi=120, bbox_inches="tight")
    return csv
