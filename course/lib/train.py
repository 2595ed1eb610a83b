"""One small training loop for every model in the course (teacher, students, pruned models).

AdamW with linear warm-up and decay (``transformers.get_linear_schedule_with_warmup``), seeded,
evaluation after each epoch, and the best epoch by validation accuracy restored at the end.
The loss is pluggable: ``loss_fn(logits, batch)`` gets the model's ``(B, C)`` logits and the
whole batch dict, so a distillation loss can read ``batch["teacher_logits"]``.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when available, otherwise CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (where its inputs must go); CPU when it has none.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def cross_entropy(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """Hard-label loss: mean cross-entropy of ``logits`` ``(B, C)`` against ``batch["labels"]`` ``(B,)``."""
    return F.cross_entropy(logits, batch["labels"])


def forward_logits(model, batch: dict) -> torch.Tensor:
    """The model's ``(B, C)`` logits for a batch dict; keys other than model inputs are ignored."""
    return model(**{k: v for k, v in batch.items() if k in MODEL_INPUTS}).logits


@torch.no_grad()
def predict_logits(model, loader, progress: bool = False) -> torch.Tensor:
    """Logits ``(N, C)`` float32 for every example of ``loader``'s dataset, in dataset order
    (batches must carry ``index``, as :func:`course.lib.data.make_loader` batches do)."""
    model.eval()
    device = model_device(model)
    out = None
    for batch in tqdm(loader, desc="predict", disable=not progress, leave=False):
        logits = forward_logits(model, {k: v.to(device) for k, v in batch.items()}).float().cpu()
        if out is None:
            out = torch.empty(len(loader.dataset), logits.shape[1])
        out[batch["index"]] = logits
    return out


def accuracy(logits: torch.Tensor, labels) -> float:
    """Fraction (0..1) of rows whose argmax equals the label."""
    return (logits.argmax(-1) == torch.as_tensor(labels)).float().mean().item()


def evaluate(model, loader, progress: bool = False) -> float:
    """Accuracy (0..1) of ``model`` on ``loader``'s dataset."""
    return accuracy(predict_logits(model, loader, progress), loader.dataset.labels)


@dataclass
class History:
    """Per-epoch record: ``train_loss`` (mean), ``val_accuracy`` (0..1), ``seconds``, and the chosen ``best_epoch``."""

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None

    @property
    def best_val_accuracy(self) -> float | None:
        return None if self.best_epoch is None else self.epochs[self.best_epoch - 1]["val_accuracy"]


def train(model, train_loader, val_loader=None, *, epochs: int = 1, lr: float = 5e-5, weight_decay: float = 0.01,
          warmup_ratio: float = 0.1, loss_fn=cross_entropy, seed: int = 0, device=None,
          progress: bool = True, select_best: bool = True) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        train_loader / val_loader: loaders from :func:`course.lib.data.make_loader`.
        loss_fn: ``loss_fn(logits (B, C), batch dict) -> scalar tensor``; default cross-entropy.
        device: default :func:`default_device`; extra batch tensors are moved there too.
        progress: show ``tqdm.auto`` bars with loss and examples/s (False for silence).
        select_best: with a ``val_loader``, reload the weights of the epoch with the best
            validation accuracy at the end.

    Raises:
        ValueError: ``epochs`` < 1 or ``lr`` <= 0.
    """
    if epochs < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1 and lr > 0, got epochs={epochs}, lr={lr}")
    seed_everything(seed)
    device = torch.device(device) if device else default_device()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(train_loader)
    schedule = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)
    history, best_state = History(), None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss = _train_epoch(model, train_loader, optimizer, schedule, loss_fn, device, progress, epoch, epochs)
        val = evaluate(model, val_loader) if val_loader is not None else None
        history.epochs.append({"epoch": epoch, "train_loss": loss, "val_accuracy": val,
                               "seconds": time.perf_counter() - start})
        if val is not None and (history.best_epoch is None or val > history.best_val_accuracy):
            history.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict()) if select_best and epochs > 1 else None
    if best_state is not None and history.best_epoch != epochs:
        model.load_state_dict(best_state)
    return history


def _train_epoch(model, loader, optimizer, schedule, loss_fn, device, progress, epoch, epochs) -> float:
    model.train()
    total, count, seen, start = 0.0, 0, 0, time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False)
    for batch in bar:
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = loss_fn(forward_logits(model, batch), batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        total, count, seen = total + loss.item(), count + 1, seen + len(batch["labels"])
        bar.set_postfix(loss=f"{total / count:.4f}", ex_per_s=f"{seen / (time.perf_counter() - start):.0f}")
    return total / max(count, 1)


def epoch_table(histories: dict[str, History]):
    """Side-by-side per-epoch table of several :class:`History` runs (e.g. 01's hard-label and distilled students).

    Args:
        histories: ``{run name: History}``, every run with the same number of epochs.

    Returns:
        a pandas DataFrame indexed by ``epoch`` (1, 2, ...); grouped by metric, for each run ``name`` the columns
        ``"<name> val acc %"`` (validation accuracy in percent; NaN without a val_loader),
        ``"<name> train loss"`` (mean training loss of the epoch) and ``"<name> s"`` (seconds).

    Raises:
        ValueError: ``histories`` is empty, a run has no epochs, or the runs differ in length.
    """
    import pandas as pd

    lengths = {name: len(h.epochs) for name, h in histories.items()}
    if not lengths or min(lengths.values()) == 0 or len(set(lengths.values())) != 1:
        raise ValueError(f"histories must be non-empty runs with the same number of epochs, got {lengths}")
    columns = {}  # one metric at a time, runs side by side
    for label, key, scale in (("val acc %", "val_accuracy", 100), ("train loss", "train_loss", 1), ("s", "seconds", 1)):
        for name, history in histories.items():
            values = [e[key] for e in history.epochs]
            columns[f"{name} {label}"] = [float("nan") if v is None else scale * v for v in values]
    first = next(iter(histories.values()))
    return pd.DataFrame(columns, index=pd.Index([e["epoch"] for e in first.epochs], name="epoch"))
