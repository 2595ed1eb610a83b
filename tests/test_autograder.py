"""Unit and integration tests of the autograder package: sandbox, probes, feedback redaction, Dask.

The Dask test starts a real ``dask scheduler`` and two ``dask worker`` processes on localhost and
grades the fixture class (tests/fixtures/grading/source/ps_tiny) on them, sandboxed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import execute, feedback, sandbox
from course import grading

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "grading"
NAME = "ps_tiny"


# --------------------------------------------------------------------------- #
# sandbox
# --------------------------------------------------------------------------- #
def test_bubblewrap_is_available_here():
    assert sandbox.check_available() is None, "bubblewrap must be installed (make setup / .ci/run install it)"


@pytest.mark.parametrize("field", ["memory_bytes", "processes", "cell_seconds"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_limits_refuse_non_positive_ints(field, value):
    with pytest.raises(ValueError, match=f"Limits.{field}"):
        sandbox.Limits(**{field: value})


def _in_sandbox(tmp_path, code: str, limits=sandbox.Limits()) -> subprocess.CompletedProcess:
    scratch, ipc = tmp_path / "scratch", tmp_path / "ipc"
    scratch.mkdir(exist_ok=True)
    ipc.mkdir(exist_ok=True)
    os.chmod(tmp_path, 0o711)
    cmd = sandbox.kernel_command([sys.executable, "-c", code], scratch=scratch, ipc_dir=ipc, limits=limits)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_sandbox_hides_the_repository_and_home(tmp_path):
    done = _in_sandbox(tmp_path, "import os; print(sorted(os.listdir(%r)), os.path.exists(%r), os.getcwd())"
                       % (str(REPO), str(REPO / "source")))
    assert done.returncode == 0, done.stderr
    listed, source_visible, cwd = done.stdout.rsplit(" ", 2)
    assert "source" not in listed and "nbgrader_config.py" not in listed, f"repository visible: {listed}"
    assert source_visible == "False", "source/ (solutions, hidden tests) must not be visible"
    assert cwd.strip() == sandbox.HOME


def test_sandbox_has_no_network_and_read_only_python(tmp_path):
    code = ("import socket, sys, os\n"
            "try:\n socket.create_connection(('pypi.org', 443), timeout=3); print('net')\n"
            "except OSError: print('no-net')\n"
            "try:\n open(os.path.join(sys.prefix, 'pwned'), 'w'); print('wrote')\n"
            "except OSError: print('read-only')\n")
    done = _in_sandbox(tmp_path, code)
    assert done.stdout.split() == ["no-net", "read-only"], done.stdout + done.stderr


def test_sandbox_limits_memory(tmp_path):
    limits = sandbox.Limits(memory_bytes=1 << 30)
    done = _in_sandbox(tmp_path, "try:\n x = bytearray(2 << 30); print('allocated')\nexcept MemoryError: print('refused')",
                       limits)
    assert done.stdout.strip() == "refused", done.stdout + done.stderr


def test_sandbox_sees_only_its_own_processes(tmp_path):
    done = _in_sandbox(tmp_path, "import os; print(len([p for p in os.listdir('/proc') if p.isdigit()]))")
    assert int(done.stdout) <= 3, f"/proc shows {done.stdout.strip()} processes: it should show only the job's"


def test_cache_written_by_atomic_dir_is_readable_by_others(tmp_path):
    from course.lib.cache import atomic_dir

    with atomic_dir(tmp_path / "entry") as tmp:
        (tmp / "weights.bin").write_bytes(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "entry").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "entry" / "weights.bin").stat().st_mode & 0o777 == 0o666 & ~mask


# --------------------------------------------------------------------------- #
# tamper probes (unit)
# --------------------------------------------------------------------------- #
BASELINE = {"ast": [], "input": ["IPython.core.inputtransformer2.leading_empty_lines"],
            "events": {"pre_run_cell": [], "post_execute": []},
            "shell": {"run_cell": "ipykernel.zmqshell.ZMQInteractiveShell.run_cell"},
            "result": ["IPython.core.interactiveshell.ExecutionResult.success", "x.raise_error"],
            "excepthook": "IPython.core.interactiveshell.InteractiveShell.excepthook",
            "builtins": {"float": 1}, "shadowed": [], "helpers": {"math.isclose": "math.isclose"}}


def _changed(**parts):
    current = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
               for k, v in BASELINE.items()}
    current.update(parts)
    return execute.tamper_reasons(BASELINE, current, "after test cell 't'")


def test_clean_fingerprint_has_no_reasons():
    assert _changed() == []


def test_swallowed_probe_is_a_reason():
    assert "not reported as an error" in execute.tamper_reasons(BASELINE, None, "here")[0]


@pytest.mark.parametrize("parts, words", [
    ({"ast": ["__main__.Swallow"]}, "AST transformer"),
    ({"events": {"pre_run_cell": ["__main__.<lambda>"], "post_execute": []}}, "event callback"),
    ({"shell": {"run_cell": "__main__.fake_run"}}, "run_cell replaced"),
    ({"excepthook": "__main__.hook"}, "excepthook"),
    ({"builtins": {"float": 2}}, "builtins replaced"),
    ({"shadowed": ["float"]}, "shadow"),
    ({"helpers": {"math.isclose": "__main__.<lambda>"}}, "math.isclose replaced"),
])
def test_each_kind_of_tampering_is_named(parts, words):
    reasons = _changed(**parts)
    assert reasons and words in reasons[0], reasons


def test_library_event_callbacks_are_not_tampering():
    assert _changed(events={"pre_run_cell": [], "post_execute": ["matplotlib_inline.backend_inline.flush_figures"]}) == []


def test_probe_code_compiles_and_keeps_no_names():
    code = execute.probe_code("abc123")
    compile(code, "<probe>", "exec")
    assert "del _course_probe_abc123" in code and "NONCE" not in code


# --------------------------------------------------------------------------- #
# feedback redaction (unit)
# --------------------------------------------------------------------------- #
def _test_cell(source, outputs=()):
    cell = nbformat.v4.new_code_cell(source, outputs=list(outputs))
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": "t", "locked": True}
    return cell


def test_hidden_lines_printed_by_learner_code_are_redacted():
    secret = "assert square(12) == 144  # zebra"
    nb = nbformat.v4.new_notebook()
    printed = nbformat.v4.new_output("stream", name="stdout", text=f"history: {secret}\nok\n")
    nb.cells = [nbformat.v4.new_code_cell("print(In)", outputs=[printed]),
                _test_cell(f"assert square(2) == 4\n### BEGIN HIDDEN TESTS\n{secret}\n### END HIDDEN TESTS")]
    out, _ = feedback.RedactHiddenLines().preprocess(nb, {})
    text = out.cells[0].outputs[0].text
    assert secret not in text and feedback.PLACEHOLDER in text and "ok" in text


def test_marker_text_in_a_learner_cell_is_kept_and_does_not_fail():
    learner = nbformat.v4.new_code_cell("# ### BEGIN HIDDEN TESTS (my note)\nx = 1")
    cell, _ = feedback.ClearHiddenTestsInTestCells().preprocess_cell(learner, {}, 0)
    assert "BEGIN HIDDEN TESTS" in cell.source, "a learner's own cell is shown as written"


# --------------------------------------------------------------------------- #
# a real Dask cluster: `dask scheduler` + two `dask worker` processes
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def tiny_course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(FIXTURE / "source", root / "source")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    grading.release(repo_root=root)
    return root


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    procs = [subprocess.Popen([dask, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 60
    while not file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    for _ in range(2):
        procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(file), "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard", "--memory-limit", "0"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    with Client(scheduler_file=str(file), timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
        address = client.scheduler.address
    yield address
    for proc in reversed(procs):
        proc.terminate()
        proc.wait(timeout=30)


def test_grades_on_a_real_dask_scheduler_with_two_workers(tiny_course, dask_cluster, tmp_path):
    klass = grading.make_sample_class(tmp_path / "class", repo_root=tiny_course)
    for extra in ("solution2", "blank2"):
        shutil.copytree(klass / extra.rstrip("2"), klass / extra)
    report = grading.grade(klass, tmp_path / "out", repo_root=tiny_course, scheduler=dask_cluster)
    scores = report.scores.set_index("student").score.to_dict()
    assert scores == {"blank": 0.0, "blank2": 0.0, "solution": 5.0, "solution2": 5.0}, scores
    workers = {r.worker for r in report.results}
    assert len(workers) == 2, f"the 4 jobs should spread over both dask workers, ran on {workers}"
    assert not report.problems, report.problems


def test_kernel_threads_follow_the_grader_not_the_dask_worker(tiny_course, tmp_path, monkeypatch):
    """A Dask worker sets OMP_NUM_THREADS=1; the learner's kernel must get `course grade`'s environment."""
    import nbformat as nbf

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    klass = grading.make_sample_class(tmp_path / "class", repo_root=tiny_course)
    shutil.rmtree(klass / "blank")
    notebook = klass / "solution" / NAME / f"{NAME}.ipynb"
    nb = nbf.read(notebook, as_version=4)
    nb.cells.append(nbf.v4.new_code_cell("import os; print('OMP=' + str(os.environ.get('OMP_NUM_THREADS')))"))
    nbf.write(nb, notebook)
    report = grading.grade(klass, tmp_path / "out", repo_root=tiny_course, workers=1)
    page = (report.feedback_dir / "solution" / NAME / f"{NAME}.html").read_text()
    assert "OMP=None" in page, "the kernel saw the Dask worker's OMP_NUM_THREADS"
