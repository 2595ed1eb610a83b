"""Parallel grading and sandbox overhead, measured in one run on this machine.

A class of N tiny submissions of the fixture ps_tiny (half honest, half blank) is graded with
`course grade`'s engine three times: 1 worker sandboxed, W workers sandboxed, 1 worker unsandboxed.

    parallel efficiency = T(1 worker) / (W * T(W workers))        target >= 85 % (1 -> 2 workers)
    sandbox overhead    = T(sandboxed) / T(unsandboxed) - 1        target <= 15 % (1 worker each)

T is the jobs phase (report.timings["jobs"]: the Dask run, cluster start included); the whole
command's figures (serial workspace set-up and merge included) are printed beside it.

``--demo`` also grades the sample class of ``course demo`` (every source notebook solved + every
release notebook blank: the real notebooks, ~25 min of CPU per student) with 1 and W workers.
Exit code 1 if a target is missed. Usage:

    python benchmarks/grading_parallel.py [--students 8] [--workers 2] [--demo]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from course import grading

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "grading" / "source"
TARGETS = {"efficiency": 0.85, "overhead": 0.15}


def _tiny_class(base: Path, students: int) -> tuple[Path, Path]:
    root = base / "course"
    shutil.copytree(FIXTURE, root / "source")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    grading.release(repo_root=root)
    sample = grading.make_sample_class(base / "sample", repo_root=root)
    klass = base / "class"
    for i in range(students):
        shutil.copytree(sample / ("solution" if i % 2 == 0 else "blank"), klass / f"student{i:03d}")
    return root, klass


def _timed(klass: Path, out: Path, **kwargs) -> tuple[float, float, dict]:
    """(whole command s, jobs phase s, scores)."""
    start = time.perf_counter()
    report = grading.grade(klass, out, **kwargs)
    seconds = time.perf_counter() - start
    return seconds, report.timings["jobs"], report.scores.set_index("student").score.to_dict()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--demo", action="store_true", help="also grade the course demo's sample class")
    args = parser.parse_args(argv)
    print(f"cpu: {torch.backends.cpu.get_cpu_capability()}, cores: {len(__import__('os').sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        base = Path(tmp)
        root, klass = _tiny_class(base, args.students)
        runs = {}
        for label, kwargs in (("1 worker, sandboxed", {"workers": 1}),
                              (f"{args.workers} workers, sandboxed", {"workers": args.workers}),
                              ("1 worker, no sandbox", {"workers": 1, "sandbox": False})):
            seconds, jobs, scores = _timed(klass, base / "out", repo_root=root, **kwargs)
            runs[label] = (seconds, jobs)
            print(f"{label:24s} {seconds:7.1f} s (jobs {jobs:6.1f} s)  {seconds / args.students:5.2f} s/submission  "
                  f"scores {sorted(set(scores.values()))}")
        (t1, j1), (tw, jw), (raw, jraw) = runs.values()
        efficiency, overhead = j1 / (args.workers * jw), j1 / jraw - 1
        print(f"parallel efficiency 1 -> {args.workers} workers: {100 * efficiency:.0f} % of the jobs phase "
              f"(target >= {100 * TARGETS['efficiency']:.0f} %); whole command {100 * t1 / (args.workers * tw):.0f} % "
              "(workspace set-up and the merge are serial)")
        print(f"sandbox overhead: {100 * overhead:+.0f} % of the jobs phase (target <= {100 * TARGETS['overhead']:.0f} %); "
              f"whole command {100 * (t1 / raw - 1):+.0f} %")
        if args.demo:
            klass = grading.make_sample_class(base / "demo-class")
            for workers in (1, args.workers):
                seconds, _, scores = _timed(klass, base / "demo-out", workers=workers)
                print(f"demo class, {workers} worker(s): {seconds:.0f} s, scores {scores}")
    missed = efficiency < TARGETS["efficiency"] or overhead > TARGETS["overhead"]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
