"""The first cell of every notebook: versions, device, seeds, and quiet libraries."""

from __future__ import annotations

import torch
import transformers

from ..env import quiet as quiet_libraries  # one source for every course process; re-exported by course.lib
from .train import default_device, seed_everything


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
