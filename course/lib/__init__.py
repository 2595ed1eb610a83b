"""Shared course helpers. Notebooks import what they need in one line, e.g.

    from course.lib import setup_notebook, load_splits, get_teacher, make_loader, train, benchmark

No exercise answer lives here: learners implement those in the notebooks.
Glossary of names used everywhere: see ``GLOSSARY.md`` at the repository root.
"""

from .quiet import install_log_filters

install_log_filters()  # before torch/torchao load: drops their known import-time noise, nothing else

from .bench import (BenchResult, benchmark, compare, count_params, format_table, measure_latency, plot_tradeoff,
                    results_table, serialized_size_bytes)
from .cache import cache_dir, sha256_file
from .data import Split, SentimentData, load_ood, load_splits, make_loader
from .models import Recipe, get_teacher, load_base
from .notebook import quiet_libraries, raises, setup_notebook
from .prune import (apply_masks, encoder_linears, encoder_weights, masked_copy, matmul_latency, matrix_sparsity,
                    per_matrix, plot_matrix_sparsity, plot_sparsity_curves, sparsity_by_kind, sweep_sparsities, to_csr)
from .ship import TrimmedEmbedding, cut_positions, load_model, measure_shipped, predict_shipped, save_model
from .train import (History, accuracy, cross_entropy, default_device, epoch_table, evaluate, forward_logits,
                    predict_logits, seed_everything, train)

__all__ = [
    "BenchResult", "benchmark", "compare", "count_params", "format_table", "measure_latency", "plot_tradeoff",
    "results_table", "serialized_size_bytes", "cache_dir", "Split", "SentimentData", "load_ood", "load_splits",
    "make_loader", "Recipe", "get_teacher", "load_base", "quiet_libraries", "raises", "setup_notebook", "History", "epoch_table", "accuracy",
    "cross_entropy", "default_device", "evaluate", "forward_logits", "predict_logits", "seed_everything", "train",
    "apply_masks", "encoder_linears", "encoder_weights", "masked_copy", "matmul_latency", "matrix_sparsity",
    "per_matrix", "plot_matrix_sparsity", "plot_sparsity_curves", "sparsity_by_kind", "sweep_sparsities", "to_csr",
    "TrimmedEmbedding", "cut_positions", "load_model", "measure_shipped", "predict_shipped", "save_model", "sha256_file",
]
