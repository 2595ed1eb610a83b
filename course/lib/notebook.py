"""The first cell of every notebook: versions, device, seeds, and quiet libraries."""

from __future__ import annotations

import logging
import os
import warnings

import torch
import transformers

from .train import default_device, seed_everything


def quiet_libraries() -> None:
    """Silence library warnings and logs that are not for learners (and that nbgrader would
    count against a graded cell, since it scores a cell that writes to stderr as 0)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("torch").setLevel(logging.ERROR)
    logging.getLogger("torchao").setLevel(logging.ERROR)


def setup_notebook(seed: int = 0, threads: int | None = None) -> torch.device:
    """Seed everything, quiet the libraries, print versions and the device; return the device.

    ``threads``: torch CPU threads (default: leave torch's choice, usually the core count).
    """
    quiet_libraries()
    seed_everything(seed)
    if threads:
        torch.set_num_threads(threads)
    device = default_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} | transformers {transformers.__version__} | device: {device} ({name}) | seed {seed}")
    return device


def raises(error: type[BaseException], call) -> bool:
    """True if ``call()`` raises ``error`` (or a subclass), False if it returns; any other exception propagates.

    For the test cells of the notebooks: ``assert raises(ValueError, lambda: f(bad)), "f should reject bad"``,
    imported by the setup cell so that no test cell depends on another.
    """
    try:
        call()
    except error:
        return True
    return False
