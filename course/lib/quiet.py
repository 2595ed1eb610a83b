"""Narrow filters for the known harmless lines that libraries log at import time.

Installed by ``import course.lib`` before torch, transformers or torchao are imported, so a
notebook's setup cell (whose first line imports ``course.lib``) shows no stderr box on a fresh
kernel. Only these exact messages are dropped; every other warning or log line still shows.

* torchao 0.18 logs ``Failed to load .../torchao/_C_mxfp8...so: Could not load this library`` (and
  the same for ``_C_cutlass_90a``): optional CUDA kernels that a CPU build of torch cannot load
  (``torchao/__init__.py``). The CPU paths used in this course do not need them.
* torch 2.13's ``torch.utils._pytree`` logs ``<enum ...> is an Enum subclass and is now natively
  supported by torch.compile ... register_constant() on Enum subclasses is deprecated`` when
  torchao registers its enums: a deprecation aimed at torchao's authors, not at learners.
"""

from __future__ import annotations

import logging
import re

# (logger name, pattern the whole message must match)
KNOWN_NOISE: tuple[tuple[str, re.Pattern], ...] = (
    ("torchao", re.compile(r"Failed to load \S*torchao[/\\]_C_\w+[^:]*\.so: Could not load this library: .*", re.S)),
    ("torch.utils._pytree", re.compile(r"<enum '\w+'> is an Enum subclass and is now natively supported by "
                                       r"torch\.compile as an opaque value type\. Calling register_constant\(\) on Enum "
                                       r"subclasses is deprecated and will be an error in a future release\.")),
)


class DropKnownNoise(logging.Filter):
    """A ``logging.Filter`` that drops records whose full message matches ``pattern``."""

    def __init__(self, pattern: re.Pattern):
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.fullmatch(record.getMessage())


def install_log_filters() -> None:
    """Attach one :class:`DropKnownNoise` per entry of :data:`KNOWN_NOISE` to its logger (idempotent).

    Logger-level filters see records logged to that exact logger, which is where these libraries
    log them; nothing else is filtered."""
    for name, pattern in KNOWN_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropKnownNoise) and f.pattern is pattern for f in logger.filters):
            logger.addFilter(DropKnownNoise(pattern))
