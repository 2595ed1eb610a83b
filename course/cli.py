"""The ``course`` command: prepare data and teacher, run the demo, release and grade notebooks."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

from autograder.sandbox import Limits
from course import GRADING_DIR
from course.env import quiet


def prepare(args) -> tuple:
    """Fetch the corpus and prepare (or load) the teacher; print a summary."""
    from course.lib.data import load_splits
    from course.lib.models import get_teacher

    data = load_splits(args.source, sdist=args.sdist)
    print(data.summary())
    model, tokenizer, meta = get_teacher(data, base=args.base, profile=args.profile, progress=not args.quiet)
    print(f"teacher: {meta['base']} at {meta['path']}\n"
          f"  validation accuracy {100 * meta['val_accuracy']:.1f}%, test accuracy {100 * meta['test_accuracy']:.1f}% "
          f"(best epoch {meta['best_epoch']} of {meta['recipe']['epochs']}, prepared in {meta['wall_seconds']:.0f} s "
          f"on {meta['device']})")
    return data, model, tokenizer, meta


def prepare_main(args) -> int:
    """``course prepare``: :func:`prepare`, exit code 0 (errors propagate as exceptions)."""
    prepare(args)
    return 0


def dynamic_int8(model):
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantized to int8 (PyTorch's
    ``torch.ao.quantization.quantize_dynamic``, fbgemm/x86 kernels; CPU only)."""
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu(), {torch.nn.Linear}, dtype=torch.qint8)


def demo(args) -> int:
    """The main job: prepare, then benchmark the fp32 teacher and its dynamic-int8 copy."""
    from course.lib.bench import benchmark, format_table

    data, teacher, tokenizer, meta = prepare(args)
    teacher = teacher.cpu()
    models = {"fp32": teacher, "int8": dynamic_int8(teacher)}
    print(f"\nbenchmark on the test split ({len(data.test):,} sentences), CPU, {args.threads} thread(s):")
    results = [benchmark(m, data.test, tokenizer, name, threads=args.threads) for name, m in models.items()]
    print(format_table(results, baseline="fp32"))
    grades = None if args.no_grade else grade_sample_class(Path(args.grade_dir))
    if args.json:
        _write_json(Path(args.json), results, baseline="fp32", grades=grades)
        print(f"\nwrote {args.json}")
    return 0 if grades is None or not grades.problems else 1


def grade_sample_class(out_dir: Path):
    """Execute every notebook headless by autograding a sample class with nbgrader: student
    ``solution`` submits the source notebooks, ``blank`` the release ones. Prints the grades."""
    from course import grading

    print(f"\nautograding a sample class (notebooks: {', '.join(grading.list_assignments())}) in {out_dir} ...")
    report = grading.grade(grading.make_sample_class(out_dir / "class"), out_dir / GRADING_DIR)
    print(report.scores.to_string(index=False))
    print(f"grades: {report.csv_path}\nfeedback: {report.feedback_dir}")
    if report.leaderboard:
        print(f"capstone leaderboard:\n{report.leaderboard.read_text()}")
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return report


def _write_json(path: Path, results, baseline: str, grades=None) -> None:
    from course.lib.bench import compare

    rows = {r["name"]: r for r in compare(results, baseline)}
    keys = ("accuracy", "size_mb", "latency_ms_b1", "latency_ms_b32", "latency_ms_b1_p90", "latency_ms_b32_p90",
            "n_params", "n_nonzero", "size_x", "speedup_b1", "speedup_b32", "accuracy_kept_pct", "threads")
    payload = {"models": {name: {k: row[k] for k in keys} for name, row in rows.items()}, "baseline": baseline}
    if grades is not None:
        payload["grades"] = {f"{r.student}/{r.assignment}": {"score": r.score, "max_score": r.max_score}
                             for r in grades.scores.itertuples()}
        payload["grading_dir"] = str(grades.workspace)
    from course.files import atomic_write

    atomic_write(path, json.dumps(payload, indent=2))


def cache_main(args) -> int:
    """``course cache export FILE`` / ``course cache import FILE`` (:mod:`course.lib.cache_archive`):
    hand one machine's prepared corpus and teacher to others. Exit 0, or 2 with a one-line error."""
    import time

    from course.lib.cache import cache_dir
    from course.lib.cache_archive import ArchiveError, export_cache, import_cache

    start = time.perf_counter()
    try:
        if args.action == "export":
            manifest = export_cache(args.file)
            size = Path(args.file).stat().st_size
            print(f"exported {', '.join(e['name'] for e in manifest['entries'])} from {cache_dir()}\n"
                  f"  to {args.file} ({size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s)")
        else:
            for name, action in import_cache(args.file):
                print(f"{action} {name}")
            print(f"into {cache_dir()} ({time.perf_counter() - start:.1f} s)")
    except ArchiveError as e:
        print(f"course cache {args.action}: {e}", file=sys.stderr)
        return 2
    return 0


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=["vader", "hub"], default="vader",
                   help="data: 'vader' (default, offline-safe, via the package registry) or 'hub' (needs internet and `datasets`)")
    p.add_argument("--sdist", help="path to vaderSentiment-3.3.2.tar.gz if you downloaded it by hand (offline machines)")
    p.add_argument("--base", help="base model id or path for the teacher (default: the offline all-MiniLM-L6-v2)")
    p.add_argument("--profile", choices=["cpu", "gpu"], help="teacher recipe (default: gpu if CUDA is available, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="fetch the corpus and prepare (or load) the cached teacher")
    _add_data_args(p)
    p = sub.add_parser("demo", help="prepare, then benchmark the teacher in fp32 and dynamic int8")
    _add_data_args(p)
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for latency (default: 1, steadiest when other work shares the CPU)")
    p.add_argument("--grade-dir", default="out/demo-grading",
                   help="where the sample class and its grading workspace go (default: out/demo-grading)")
    p.add_argument("--no-grade", action="store_true", help="skip executing and autograding the notebooks")
    p = sub.add_parser("release", help="regenerate release/ from source/ with nbgrader")
    p.add_argument("assignments", nargs="*", help="assignment names (default: all in source/)")
    p = sub.add_parser("grade", help="autograde a class: a folder with one sub-folder per student, or an LMS zip")
    p.add_argument("submissions", help="folder (<student>/<assignment>/<assignment>.ipynb) or zip "
                                       "(<student_id>_<anything>_<assignment>.ipynb)")
    p.add_argument("--out", default=GRADING_DIR,
                   help=f"grading workspace: grades.csv, feedback/ (default: ./{GRADING_DIR})")
    p.add_argument("--assignments", nargs="*", help="assignment names (default: all in source/)")
    p.add_argument("--timeout", type=int, help=f"seconds per cell (default: {Limits.cell_seconds})")
    p.add_argument("--workers", type=int, help="local Dask worker processes (default: one per 2 CPU cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="send the jobs to a running Dask scheduler (tcp://host:8786) instead of local workers")
    p.add_argument("--memory", type=float, metavar="GIB", help=f"memory limit of each learner's kernel (default: {Limits.memory_bytes / 2**30:g})")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run learner code without bubblewrap (only for notebooks you trust)")
    p = sub.add_parser("export", help="re-write grades.csv of a grading workspace after grading written answers "
                                      "by hand in nbgrader's formgrader")
    p.add_argument("--out", default=GRADING_DIR, help=f"the folder `course grade --out` wrote (default: ./{GRADING_DIR})")
    p = sub.add_parser("cache", help="export the prepared corpus and teacher to one archive, or import one "
                                     "(a workshop prepares once)")
    cache = p.add_subparsers(dest="action", required=True)
    cache.add_parser("export", help="write the verified cache to FILE (an uncompressed tar)").add_argument(
        "file", metavar="FILE", help="archive to write, e.g. course-cache.tar")
    cache.add_parser("import", help="verify FILE and install its entries into this machine's cache").add_argument(
        "file", metavar="FILE", help="archive made by `course cache export`")
    p = sub.add_parser("validate", help="nbgrader validate notebooks (--invert: a blank release must fail its tests)")
    p.add_argument("paths", nargs="+", help="notebooks")
    p.add_argument("--invert", action="store_true", help="succeed only if no test cell passes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet()  # before transformers is imported: it reads the variables once
    if args.command in ("release", "grade", "export", "validate"):
        from course import grading  # imports nbgrader: only when needed

        return getattr(grading, f"{args.command}_main")(args)
    return {"prepare": prepare_main, "demo": demo, "cache": cache_main}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
