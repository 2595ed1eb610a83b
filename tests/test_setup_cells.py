"""Every notebook's setup cell, run on a fresh kernel, writes nothing to stderr (no pink box for
learners, no lost points in graded cells that follow), and the log filters stay narrow."""

import logging
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course import grading
from course.lib.quiet import KNOWN_NOISE, install_log_filters

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = grading.list_assignments(ROOT)


@pytest.fixture(scope="module")
def teacher_cached():
    """The setup cells load the cached teacher; prepare it here (outside the kernels under test)."""
    from course.lib import get_teacher

    get_teacher(progress=False)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_setup_cell_is_silent_on_stderr(teacher_cached, name):
    nb = nbformat.read(ROOT / "source" / name / f"{name}.ipynb", as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [setup]
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    stderr = "".join(o.get("text", "") for o in setup.outputs if o.get("name") == "stderr")
    errors = [o for o in setup.outputs if o.output_type == "error"]
    assert not errors, f"{name}: the setup cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert stderr == "", f"{name}: the setup cell wrote to stderr on a fresh kernel:\n{stderr[:2000]}"
    stdout = "".join(o.get("text", "") for o in setup.outputs if o.get("name") == "stdout")
    assert "torch " in stdout and "device:" in stdout, f"{name}: setup_notebook() did not print versions: {stdout!r}"


@pytest.mark.parametrize("logger_name,message,dropped", [
    ("torchao", "Failed to load /v/site-packages/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so: Could not load "
                "this library: /v/site-packages/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so", True),
    ("torchao", "Failed to load /v/site-packages/torchao/_C_cutlass_90a.abi3.so: Could not load this library: x", True),
    ("torchao", "Skipping import of cpp extensions due to incompatible torch version.", False),
    ("torchao", "Failed to load my_checkpoint.pt", False),
    ("torch.utils._pytree", "<enum 'KernelPreference'> is an Enum subclass and is now natively supported by "
                            "torch.compile as an opaque value type. Calling register_constant() on Enum subclasses "
                            "is deprecated and will be an error in a future release.", True),
    ("torch.utils._pytree", "something else went wrong", False),
    ("torchao.quantization", "Failed to load /v/site-packages/torchao/_C_mxfp8.so: Could not load this library: x", False),
])
def test_log_filters_drop_only_the_known_lines(logger_name, message, dropped):
    install_log_filters()
    install_log_filters()  # idempotent: still one filter per logger
    assert all(sum(1 for f in logging.getLogger(n).filters if f.__class__.__name__ == "DropKnownNoise") == 1
               for n, _ in KNOWN_NOISE)
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger(logger_name)
    level = logger.level  # course.env.quiet (run in-process by CLI tests) raises torch/torchao to ERROR
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert (seen == []) == dropped, f"{logger_name}: {message!r} should be {'dropped' if dropped else 'kept'}"


def test_raises_is_true_only_for_the_named_error():
    from course.lib import raises

    def boom(error):
        raise error("bad")
    assert raises(ValueError, lambda: boom(ValueError)) is True
    assert raises(Exception, lambda: boom(KeyError)) is True, "a subclass counts"
    assert raises(ValueError, lambda: None) is False, "returning normally is not raising"
    with pytest.raises(TypeError, match="bad"):
        raises(ValueError, lambda: boom(TypeError))   # another error is not swallowed
