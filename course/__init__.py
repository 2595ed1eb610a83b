"""Compressing NLP models: distillation, quantization and pruning, as autograded notebooks."""

import os

__version__ = "0.1.0"
APP_NAME = "nlp-compression-course"  # names the cache folder
GRADING_DIR = "grading"  # default grading workspace of `course grade` (relative to the working directory; git-ignored)


def cache_root() -> str:
    """Path of the course cache folder: ``$COURSE_CACHE``, else the user's cache dir (platformdirs).

    Not created here, and nothing heavy imported (the grading sandbox asks for it before every kernel);
    :func:`course.lib.cache.cache_dir` creates it.
    """
    import platformdirs

    return os.environ.get("COURSE_CACHE") or platformdirs.user_cache_dir(APP_NAME)
