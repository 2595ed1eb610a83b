"""The quiet, offline environment of every course process, in one place.

Used by the ``course`` command (:mod:`course.cli`), every notebook's setup cell
(:func:`course.lib.notebook.setup_notebook`), the grading kernels (:data:`autograder.sandbox.KERNEL_ENV`),
the test suite (``tests/conftest.py``) and the fresh measuring process of :mod:`course.lib.ship`.

Nothing heavy is imported here (no torch, no transformers): the grading sandbox reads :data:`ENV`
before every kernel it starts.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Environment variables, applied with setdefault semantics (a value the user set wins). The
# libraries read them once, when they are imported, so set them before importing transformers.
ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",                 # never call the Hugging Face hub: models come from the course cache
    "TRANSFORMERS_VERBOSITY": "error",     # transformers' info and warning logs are not for learners
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",   # no hub/transformers loading bars (tqdm bars of course.lib stay)
    "TOKENIZERS_PARALLELISM": "false",     # no "the current process just got forked" warning from tokenizers
}
# Warning categories ignored everywhere: library deprecations and hints aimed at developers. In a
# notebook they would also cost points, since nbgrader scores a test cell that writes to stderr as 0.
IGNORED_WARNINGS: tuple[type[Warning], ...] = (DeprecationWarning, FutureWarning, UserWarning)
QUIET_LOGGERS = ("torch", "torchao")  # set to ERROR: their log warnings are about the libraries themselves


def set_environment(environ=None):
    """Set every :data:`ENV` variable that ``environ`` (default ``os.environ``) lacks; return ``environ``."""
    environ = os.environ if environ is None else environ
    for name, value in ENV.items():
        environ.setdefault(name, value)
    return environ


def quiet() -> None:
    """Quiet this Python process: :func:`set_environment`, ignore :data:`IGNORED_WARNINGS`, set the
    :data:`QUIET_LOGGERS` to ERROR, and, if transformers was imported before the variables were set,
    switch its logs (ERROR) and progress bars off directly. Idempotent; raises nothing."""
    set_environment()
    for category in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", category=category)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # it read TRANSFORMERS_VERBOSITY at import: tell it now
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
