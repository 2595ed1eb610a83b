"""How much does 01's distilled student's test accuracy move for a correct learner? (issue 11: the 80 % bar)

    python benchmarks/distillation_spread.py [--seeds 0 1 2] [--threads 1] [--losses NAME ...] [--json out.json]

Runs 01's experiment (Part 4) with the *source* notebook's own reference answers and settings, read from its cells
(``distillation_loss``, ``make_student``, the settings cell ``code-10``: T 2.0, alpha 0.5, 3 epochs, lr 2e-4, layers
[0, 5], frozen word embeddings), one training after another, for each seed (in ``train`` and ``make_loader``):

* the hard-label student (``course.lib.cross_entropy``);
* the distilled student with the notebook's ``distillation_loss`` (``F.kl_div(..., "batchmean", log_target=True)``);
* the distilled student with a mathematically equal loss written out by hand (``sum p_t (log p_t - log p_s)`` over
  classes, mean over the batch; ``-log_softmax[label]`` mean for the CE term): a learner's equally correct answer.

Prints and writes (``--json``) the test accuracy of each run (measured like ``course.lib.benchmark``: batch 64,
max_length 64) and its agreement with the teacher. About 2-3 minutes a training on 1 CPU thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "01_distillation" / "01_distillation.ipynb"
sys.path.insert(0, str(ROOT))


def explicit_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5):
    """The distillation loss with explicit log-softmax sums (equal to the reference's, numerically different)."""
    import torch
    log_p_s1 = torch.log_softmax(student_logits, -1)
    hard = -log_p_s1.gather(1, labels[:, None]).squeeze(1).mean()
    log_p_s = torch.log_softmax(student_logits / temperature, -1)
    log_p_t = torch.log_softmax(teacher_logits.detach() / temperature, -1)
    soft = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return alpha * hard + (1 - alpha) * temperature ** 2 * soft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--losses", nargs="+", default=None, help="run names to keep (default: all three)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import nbformat
    import torch
    from course.lib import accuracy, cross_entropy, make_loader, predict_logits, train

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = {c.get("id"): c.source for c in nb.cells}
    ns: dict = {}
    exec(cells["setup"].replace("device = setup_notebook(seed=0)", "device = setup_notebook(seed=0, threads=%d)" % args.threads), ns)
    for key in ("distillation-loss", "make-student", "code-10"):
        exec(cells[key], ns)
    T, A, data, tokenizer = ns["TEMPERATURE"], ns["ALPHA"], ns["data"], ns["tokenizer"]
    test_loader = make_loader(data.test, tokenizer, 64, max_length=64)
    teacher_test = predict_logits(ns["teacher"], test_loader)
    out = {"threads": torch.get_num_threads(), "cpu": torch.backends.cpu.get_cpu_capability(),
           "settings": {k: ns[k] for k in ("TEMPERATURE", "ALPHA", "EPOCHS", "BATCH_SIZE", "LR", "MAX_LENGTH", "LAYERS")},
           "teacher_test_accuracy": accuracy(teacher_test, data.test.labels), "runs": []}
    print(f"teacher test accuracy {100 * out['teacher_test_accuracy']:.2f}% | {out['threads']} thread(s) | {out['cpu']}", flush=True)
    losses = {
        "hard-label": cross_entropy,
        "distilled (kl_div batchmean)": lambda logits, b: ns["distillation_loss"](logits, b["teacher_logits"], b["labels"], T, A),
        "distilled (explicit sums)": lambda logits, b: explicit_loss(logits, b["teacher_logits"], b["labels"], T, A),
    }
    unknown = set(args.losses or ()) - set(losses)
    if unknown:
        raise SystemExit(f"--losses must be among {sorted(losses)}, got {sorted(unknown)}")
    for seed in args.seeds:
        for name, loss_fn in losses.items():
            if args.losses and name not in args.losses:
                continue
            start = time.perf_counter()
            student = copy.deepcopy(ns["student_init"])
            loader = make_loader(ns["train_split"], tokenizer, ns["BATCH_SIZE"], shuffle=True, max_length=ns["MAX_LENGTH"],
                                 seed=seed, extras={"teacher_logits": ns["teacher_train_logits"]})
            history = train(student, loader, ns["val_loader"], epochs=ns["EPOCHS"], lr=ns["LR"], loss_fn=loss_fn,
                            seed=seed, device="cpu", progress=False)
            logits = predict_logits(student, test_loader)
            run = {"seed": seed, "loss": name, "test_accuracy": accuracy(logits, data.test.labels),
                   "agreement": (logits.argmax(-1) == teacher_test.argmax(-1)).float().mean().item(),
                   "val_accuracy": [e["val_accuracy"] for e in history.epochs], "best_epoch": history.best_epoch,
                   "seconds": time.perf_counter() - start}
            out["runs"].append(run)
            print(f"seed {seed} {name:>30}: test {100 * run['test_accuracy']:.2f}% agreement {100 * run['agreement']:.2f}% "
                  f"val {[round(100 * v, 2) for v in run['val_accuracy']]} best {run['best_epoch']} ({run['seconds']:.0f} s)",
                  flush=True)
            if args.json:
                tmp = args.json.with_suffix(".tmp")
                tmp.write_text(json.dumps(out, indent=1))
                os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
