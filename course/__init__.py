"""Compressing NLP models: distillation, quantization and pruning, as autograded notebooks."""

__version__ = "0.1.0"
