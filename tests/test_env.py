"""The one source of the quiet, offline environment (course/env.py), and who reads it."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from course.env import ENV, IGNORED_WARNINGS, QUIET_LOGGERS, quiet, set_environment

REPO = Path(__file__).resolve().parents[1]


def test_set_environment_fills_in_but_keeps_what_the_user_set():
    env = set_environment({"TRANSFORMERS_VERBOSITY": "info", "OTHER": "x"})
    assert env == {**ENV, "TRANSFORMERS_VERBOSITY": "info", "OTHER": "x"}


def test_quiet_ignores_library_warnings_and_logs(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet()
            for category in IGNORED_WARNINGS:
                warnings.warn("library chatter", category)
            warnings.warn("kept", RuntimeWarning)
        assert {name: logging.getLogger(name).level for name in QUIET_LOGGERS} == dict.fromkeys(QUIET_LOGGERS,
                                                                                             logging.ERROR)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert [str(w.message) for w in caught] == ["kept"]
    assert {k: os.environ[k] for k in ENV} == ENV


def test_grading_kernels_get_the_course_environment():
    from autograder.sandbox import KERNEL_ENV, PASSED_ENV

    assert ENV.items() <= KERNEL_ENV.items() and KERNEL_ENV["TQDM_DISABLE"] == "1"
    assert set(KERNEL_ENV) <= set(PASSED_ENV), "a variable set for kernels must pass the sandbox"


def test_the_sandbox_imports_neither_torch_nor_course_lib():
    code = "import sys, autograder.sandbox; print(sorted(m for m in sys.modules if m in ('torch', 'course.lib')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_nbgrader_cell_timeout_is_the_grading_limit():
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.sandbox import Limits

    config = PyFileConfigLoader("nbgrader_config.py", str(REPO)).load_config()
    assert config.Execute.timeout == Limits.cell_seconds == Limits().cell_seconds


def test_model_device():
    from course.lib.train import model_device

    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")  # no parameters
    if torch.cuda.is_available():
        assert model_device(torch.nn.Linear(2, 2).cuda()).type == "cuda"
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        model_device("bert")
