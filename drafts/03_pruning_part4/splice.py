"""Optional splice hooks for .scratch/build_03.py (read by its build()): imports, Part 5 rows, closing note.

The closing note's numbers are NOT stated as facts: it points at the cells and at the benchmark script.
"""

IMPORTS = """from course.lib import predict_logits
from course.lib.prune import encoder_layers, ffn_activation_importance, head_importance, keep_top, removed, recover"""

PART5_EXTRA = (", the two structured models of Part 4 (measured there), and the recovered structured model with "
               "dynamic int8 Linear layers (`torch.ao.quantization.quantize_dynamic`, the library path of notebook 02)")

PART5_MEASURE = '''structured_int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(structured_recovered), {nn.Linear}, dtype=torch.qint8)
measure(structured_int8, "structured + recovery + int8")'''

CLOSING = r"""
Unstructured magnitude pruning is the easy part: a few lines give a mask, and the sweep shows how much of the
encoder the teacher tolerates losing without retraining. What the zeros *buy* is the hard part, and the table
says it: a mask stores more and computes the same; zeros in dense tensors cost the same bytes and the same
time; a sparse format only saves bytes above its break-even sparsity, and sparse kernels only save time at high
sparsity. Structured pruning is different: removing whole heads and FFN neurons makes every matrix smaller, so
the same dense kernels do less work, and the table shows the speed-up at batch 1 and 32 it bought in this run,
and the accuracy it cost before and after the short recovery fine-tune. The course's target for it (at least
1.5× faster at batch 1 and 32 on one thread, at most 1 point lost on the full test split after recovery) is
checked by `python benchmarks/pruning_targets.py`, which builds the same model with a full recovery epoch and
times dense and pruned interleaved in one run; the repository README reports what it measured.
"""
