"""Part 4 of notebook 03 (structured pruning): CELLS = [(cell_type, source, nbgrader metadata or None)].

Assumes the setup cell defines: teacher, tokenizer, data, device, EVAL_N, results (list of BenchResult, with
the dense teacher under the name "dense", measured on data.test.subset(EVAL_N) at 1 thread), and imports: copy,
time, torch, nn (torch.nn), plt, benchmark, make_loader, evaluate (course.lib), plus the two lines of
splice.IMPORTS (course.lib.predict_logits, course.lib.prune helpers).
"""

def solution(grade_id):
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True, "task": False}


def test(grade_id, points):
    return {"grade": True, "grade_id": grade_id, "locked": True, "points": points, "schema_version": 3,
            "solution": False, "task": False}


INTRO = r"""## Part 4 — Structured pruning (11 points)

Part 3 measured that zeros stored in a dense matrix cost as much time as any other number. **Structured
pruning** removes whole rows and columns instead: every matrix gets *smaller*, and the same dense kernels
simply do less work. In a transformer layer the natural units are

- **attention heads.** Michel, Levy & Neubig (2019), ["Are Sixteen Heads Really Better than One?"](https://arxiv.org/abs/1905.10650),
  found that many heads of a trained BERT can be removed at test time with little loss, and ranked them by a
  gradient (below);
- **FFN neurons**: one row of the first FFN matrix together with the matching column of the second.

TextPruner (Yang, Cui & Chen 2022, ACL demo, [arXiv:2203.15996](https://arxiv.org/abs/2203.15996)) is a
toolkit that prunes exactly these two units, training-free; Kwon et al. (2022),
["A Fast Post-Training Pruning Framework for Transformers"](https://arxiv.org/abs/2204.09656) (NeurIPS), choose
head and neuron masks of BERT in minutes and report up to 1.56× lower GPU latency at < 1 point of accuracy.

Where a head lives in one `BertLayer` ($H$ heads of size $d$ = `attention_head_size`; the teacher has $H = 12$,
$d = 32$, hidden size 384):

| module | weight shape | head $h$ is |
|---|---|---|
| `attention.self.query`, `.key`, `.value` | $(H d, 384)$ | rows $h d \ldots (h+1) d - 1$, and the same bias entries |
| `attention.output.dense` | $(384, H d)$ | columns $h d \ldots (h+1) d - 1$ (its bias is shared by all heads: keep it) |

The attention output is $\sum_h \mathrm{head}_h \, W_O[:, \text{cols}_h]^\top + b_O$, so removing head $h$ gives
*exactly* the output of the unpruned layer with its columns of $W_O$ set to zero: that is what the tests check.
The same holds for FFN neuron $j$: $\mathrm{FFN}(x) = \sum_j \mathrm{GELU}(x W_1[j]^\top + b_1[j]) \, W_2[:, j] + b_2$.

transformers 5 removed `prune_heads` and `head_mask`, so you write them. Read
`transformers.models.bert.modeling_bert.BertSelfAttention`: its `forward` reshapes with
`.view(B, T, -1, attention_head_size)`, so it infers the head count from the shapes of query/key/value; but
`num_attention_heads` and `all_head_size` are the attributes that describe the module: keep them true."""

PRUNE_HEADS_MD = r"""**Exercise.** Write `prune_heads(layer, heads)`. Replace `query`, `key`, `value` and
`attention.output.dense` by smaller `nn.Linear` layers holding copies of the kept rows / columns (on the same
device and dtype), and update `num_attention_heads` and `all_head_size`. Head indices count the heads the
layer has *now* (after an earlier call, the remaining heads are renumbered 0, 1, …, in their old order)."""

PRUNE_HEADS = r'''def prune_heads(layer, heads):
    """Remove whole attention heads from one transformers ``BertLayer``, in place.

    Args:
        layer: a ``BertLayer`` with ``H = layer.attention.self.num_attention_heads`` heads of size
            ``d = layer.attention.self.attention_head_size``.
        heads: iterable of head indices to remove, each in ``0 .. H - 1``, no repeats; may be empty.

    Returns:
        ``layer`` itself, with ``H - len(heads)`` heads: query/key/value weights ``((H - k) d, hidden)`` and
        biases ``((H - k) d,)``, ``attention.output.dense`` weight ``(hidden, (H - k) d)`` (bias unchanged),
        ``num_attention_heads = H - k`` and ``all_head_size = (H - k) d``. The kept heads keep their order.

    Raises:
        ValueError: an index outside ``0 .. H - 1``, a repeated index, or removing all ``H`` heads.
    """
    ### BEGIN SOLUTION
    attention = layer.attention.self
    n_heads, d = attention.num_attention_heads, attention.attention_head_size
    heads = [int(h) for h in heads]
    if any(not 0 <= h < n_heads for h in heads):
        raise ValueError(f"heads must be in 0..{n_heads - 1}, got {heads}")
    if len(set(heads)) != len(heads):
        raise ValueError(f"heads must not repeat, got {heads}")
    keep = [h for h in range(n_heads) if h not in set(heads)]
    if not keep:
        raise ValueError(f"cannot remove all {n_heads} heads of a layer")
    weight = attention.query.weight
    rows = torch.tensor([h * d + i for h in keep for i in range(d)], device=weight.device)

    def sliced(linear, dim):
        w = linear.weight.detach().index_select(dim, rows)
        new = nn.Linear(w.shape[1], w.shape[0], bias=linear.bias is not None, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            new.weight.copy_(w)
            if linear.bias is not None:
                new.bias.copy_(linear.bias[rows] if dim == 0 else linear.bias)
        return new

    attention.query, attention.key, attention.value = (sliced(m, 0) for m in (attention.query, attention.key, attention.value))
    layer.attention.output.dense = sliced(layer.attention.output.dense, 1)
    attention.num_attention_heads = len(keep)
    attention.all_head_size = len(keep) * d
    return layer
    ### END SOLUTION'''

HEADS_SETUP = r'''# A copy of the teacher's first layer and a batch of hidden states to test with (B=2, T=7, hidden 384).
# The second sentence has 2 padding tokens: an additive attention mask of shape (B, 1, 1, T).
torch.manual_seed(0)
layer0 = copy.deepcopy(encoder_layers(teacher)[0]).cpu().eval()
hidden = torch.randn(2, 7, layer0.attention.output.dense.out_features)
pad_mask = torch.zeros(2, 1, 1, 7)
pad_mask[1, ..., 5:] = torch.finfo(torch.float32).min

def zero_head_columns(layer, heads):
    """A copy of `layer` whose output projection ignores `heads` (their columns set to 0): same function as removing them."""
    layer = copy.deepcopy(layer)
    d = layer.attention.self.attention_head_size
    with torch.no_grad():
        for h in heads:
            layer.attention.output.dense.weight[:, h * d:(h + 1) * d] = 0
    return layer

def layer_output(layer, x=hidden, mask=pad_mask):
    with torch.no_grad():
        return torch.as_tensor(layer(x, attention_mask=mask)).float()'''

T_HEADS_EQUIV = r'''"""prune_heads: the pruned layer computes exactly what the full layer computes with those heads zeroed."""
heads = [0, 3, 7, 11]
expected = layer_output(zero_head_columns(layer0, heads))
got = layer_output(prune_heads(copy.deepcopy(layer0), heads))
assert got.shape == expected.shape, f"expected output shape {tuple(expected.shape)}, got {tuple(got.shape)}"
err = (got - expected).abs().max().item()
assert err < 1e-5, (f"removing heads {heads} should equal zeroing their columns of attention.output.dense; "
                    f"max difference {err:.2e}. hint: head h is rows h*d..(h+1)*d-1 of query, key AND value "
                    "(weights and biases) and the same columns of attention.output.dense")
### BEGIN HIDDEN TESTS
for _heads in ([5], [11, 2, 6], list(range(1, 12))):          # one head, unsorted, all but one
    _exp = layer_output(zero_head_columns(layer0, _heads))
    _got = layer_output(prune_heads(copy.deepcopy(layer0), _heads))
    assert (_got - _exp).abs().max().item() < 1e-5, f"prune_heads(layer, {_heads}) is not equivalent to zeroing those heads"
_twice = prune_heads(prune_heads(copy.deepcopy(layer0), [0]), [0])  # second call: old head 1 is the new head 0
assert (layer_output(_twice) - layer_output(zero_head_columns(layer0, [0, 1]))).abs().max().item() < 1e-5, \
    "after one call the kept heads are renumbered 0..H-2 in order; pruning [0] twice must remove old heads 0 and 1"
_model = copy.deepcopy(teacher).cpu().eval()
_ref = copy.deepcopy(_model)
for _i, _l in enumerate(encoder_layers(_model)):
    prune_heads(_l, [(_i + k) % 12 for k in range(0, 12, 2)])
    encoder_layers(_ref)[_i].attention.output.dense = zero_head_columns(encoder_layers(_ref)[_i], [(_i + k) % 12 for k in range(0, 12, 2)]).attention.output.dense
_b = tokenizer(["a tender, funny film", "dull"], padding=True, return_tensors="pt")
with torch.inference_mode():
    _diff = (_model(**_b).logits - _ref(**_b).logits).abs().max().item()
assert _diff < 1e-4, f"a whole pruned teacher (6 heads per layer) differs from the zeroed one by {_diff:.2e} in its logits"
### END HIDDEN TESTS'''

T_HEADS_SHAPES = r'''"""prune_heads: new weight shapes, num_attention_heads and all_head_size after removing 3 of 12 heads."""
pruned = prune_heads(copy.deepcopy(layer0), [1, 4, 9])
attention = pruned.attention.self
d, hidden_size = attention.attention_head_size, pruned.attention.output.dense.out_features
for name in ("query", "key", "value"):
    shape = tuple(getattr(attention, name).weight.shape)
    assert shape == (9 * d, hidden_size), f"{name}.weight should be ({9 * d}, {hidden_size}) after removing 3 heads, got {shape}"
shape = tuple(pruned.attention.output.dense.weight.shape)
assert shape == (hidden_size, 9 * d), f"attention.output.dense.weight should be ({hidden_size}, {9 * d}), got {shape}; hint: slice its columns"
assert int(attention.num_attention_heads) == 9, f"num_attention_heads should be 9, got {attention.num_attention_heads}"
assert int(attention.all_head_size) == 9 * d, f"all_head_size should be {9 * d}, got {attention.all_head_size}"
### BEGIN HIDDEN TESTS
assert int(prune_heads(copy.deepcopy(layer0), []).attention.self.num_attention_heads) == 12, "removing no head must keep 12"
assert int(attention.attention_head_size) == d, "attention_head_size must not change"
assert pruned.attention.self.query.weight.dtype == layer0.attention.self.query.weight.dtype, "keep the dtype"
### END HIDDEN TESTS'''

T_HEADS_PARAMS = r'''"""prune_heads: the parameter count drops by exactly what was sliced out (and the input layer is the one returned)."""
copy0 = copy.deepcopy(layer0)
before = sum(p.numel() for p in copy0.parameters())
returned = prune_heads(copy0, [2, 5])
assert returned is copy0, "prune_heads should change the layer in place and return that same layer"
d, hidden_size = layer0.attention.self.attention_head_size, layer0.attention.output.dense.out_features
expected = before - 2 * d * (3 * hidden_size + 3 + hidden_size)   # q, k, v rows + biases, output columns
got = sum(p.numel() for p in copy0.parameters())
assert int(got) == expected, (f"expected {expected:,} parameters after removing 2 heads ({before:,} - 2 x {d} x "
                              f"(3 x {hidden_size} + 3 + {hidden_size})), got {got:,}; hint: keep the output bias, slice q/k/v biases")'''

T_HEADS_ERRORS = r'''"""prune_heads: ValueError for an index outside 0..H-1 or a repeated index; the layer stays unchanged."""
for bad in ([12], [-1], [3, 3]):
    victim = copy.deepcopy(layer0)
    try:
        prune_heads(victim, bad)
        raised = False
    except ValueError:
        raised = True
    assert raised, f"prune_heads(layer, {bad}) should raise ValueError (heads must be distinct indices in 0..11)"
    assert int(victim.attention.self.num_attention_heads) == 12, f"after the error for {bad} the layer should still have 12 heads"
    assert tuple(victim.attention.self.query.weight.shape) == (384, 384), f"after the error for {bad} the layer changed; check before slicing"'''

T_HEADS_LAST = r'''"""prune_heads: a layer cannot lose all its heads (ValueError), but it may keep only one."""
try:
    prune_heads(copy.deepcopy(layer0), list(range(12)))
    raised = False
except ValueError:
    raised = True
assert raised, "removing all 12 heads should raise ValueError: attention with no head has nothing to attend with"
one = prune_heads(copy.deepcopy(layer0), list(range(11)))
assert int(one.attention.self.num_attention_heads) == 1, f"removing 11 of 12 heads should leave 1, got {one.attention.self.num_attention_heads}"'''

FFN_MD = r"""**Exercise.** Write `prune_ffn_neurons(layer, keep)`: keep only the FFN neurons listed in `keep` —
rows of `intermediate.dense` (weight and bias) and columns of `output.dense` (its bias stays) — by replacing
both by smaller `nn.Linear` layers. Here you pass what to *keep*, as `keep_top` below returns it."""

PRUNE_FFN = r'''def prune_ffn_neurons(layer, keep):
    """Keep only the FFN neurons ``keep`` of one transformers ``BertLayer``, in place.

    Args:
        layer: a ``BertLayer`` whose FFN has ``F = layer.intermediate.dense.out_features`` neurons.
        keep: non-empty iterable (list or int tensor) of neuron indices to keep, each in ``0 .. F - 1``, no repeats.

    Returns:
        ``layer`` itself: ``intermediate.dense`` weight ``(len(keep), hidden)`` and bias ``(len(keep),)``,
        ``output.dense`` weight ``(hidden, len(keep))`` with its bias ``(hidden,)`` unchanged.

    Raises:
        ValueError: ``keep`` empty, an index outside ``0 .. F - 1``, or a repeated index.
    """
    ### BEGIN SOLUTION
    n = layer.intermediate.dense.out_features
    keep = [int(j) for j in keep]
    if not keep or any(not 0 <= j < n for j in keep) or len(set(keep)) != len(keep):
        raise ValueError(f"keep must be a non-empty list of distinct indices in 0..{n - 1}, got {keep[:10]}...")
    first, second = layer.intermediate.dense, layer.output.dense
    idx = torch.tensor(keep, device=first.weight.device)
    new_first = nn.Linear(first.in_features, len(keep), device=first.weight.device, dtype=first.weight.dtype)
    new_second = nn.Linear(len(keep), second.out_features, device=second.weight.device, dtype=second.weight.dtype)
    with torch.no_grad():
        new_first.weight.copy_(first.weight[idx])
        new_first.bias.copy_(first.bias[idx])
        new_second.weight.copy_(second.weight[:, idx])
        new_second.bias.copy_(second.bias)
    layer.intermediate.dense, layer.output.dense = new_first, new_second
    return layer
    ### END SOLUTION'''

FFN_SETUP = r'''def zero_neuron_columns(layer, keep):
    """A copy of `layer` whose second FFN matrix ignores every neuron not in `keep` (its columns set to 0)."""
    layer = copy.deepcopy(layer)
    drop = [j for j in range(layer.output.dense.in_features) if j not in set(int(k) for k in keep)]
    with torch.no_grad():
        layer.output.dense.weight[:, drop] = 0
    return layer'''

T_FFN_EQUIV = r'''"""prune_ffn_neurons: the pruned layer computes exactly what the full layer computes with the other neurons zeroed."""
keep = list(range(0, 1536, 3))                      # a third of the 1536 neurons
expected = layer_output(zero_neuron_columns(layer0, keep))
got = layer_output(prune_ffn_neurons(copy.deepcopy(layer0), keep))
err = (got - expected).abs().max().item()
assert err < 1e-5, (f"keeping neurons {keep[:4]}... should equal zeroing the other columns of output.dense; max difference "
                    f"{err:.2e}. hint: rows of intermediate.dense (weight AND bias), columns of output.dense")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(1)
for _keep in (torch.randperm(1536, generator=_g)[:100], [7], list(range(1536))):   # tensor, unsorted; one; all
    _exp = layer_output(zero_neuron_columns(layer0, [int(k) for k in _keep]))
    _got = layer_output(prune_ffn_neurons(copy.deepcopy(layer0), _keep))
    assert (_got - _exp).abs().max().item() < 1e-5, f"prune_ffn_neurons differs from zeroing for keep of length {len(_keep)}"
_both = prune_ffn_neurons(prune_heads(copy.deepcopy(layer0), [1, 2]), keep)
_ref = zero_neuron_columns(zero_head_columns(layer0, [1, 2]), keep)
assert (layer_output(_both) - layer_output(_ref)).abs().max().item() < 1e-5, "heads and neurons pruned together are not equivalent"
### END HIDDEN TESTS'''

T_FFN_PARAMS = r'''"""prune_ffn_neurons: new shapes, and the parameter count drops by exactly what was sliced out."""
copy0 = copy.deepcopy(layer0)
before = sum(p.numel() for p in copy0.parameters())
pruned = prune_ffn_neurons(copy0, list(range(500)))
hidden_size = layer0.output.dense.out_features
assert tuple(pruned.intermediate.dense.weight.shape) == (500, hidden_size), \
    f"intermediate.dense.weight should be (500, {hidden_size}), got {tuple(pruned.intermediate.dense.weight.shape)}"
assert tuple(pruned.output.dense.weight.shape) == (hidden_size, 500), \
    f"output.dense.weight should be ({hidden_size}, 500), got {tuple(pruned.output.dense.weight.shape)}"
expected = before - 1036 * (2 * hidden_size + 1)   # per removed neuron: a row + a bias, and a column
got = sum(p.numel() for p in pruned.parameters())
assert int(got) == expected, f"expected {expected:,} parameters after removing 1036 neurons, got {got:,}; hint: keep output.dense.bias"'''

T_FFN_ERRORS = r'''"""prune_ffn_neurons: ValueError for an empty keep, an index outside 0..F-1, or a repeated index."""
for bad in ([], [1536], [-1], [4, 4]):
    victim = copy.deepcopy(layer0)
    try:
        prune_ffn_neurons(victim, bad)
        raised = False
    except ValueError:
        raised = True
    assert raised, f"prune_ffn_neurons(layer, {bad}) should raise ValueError (keep: non-empty, distinct, in 0..1535)"
    assert victim.intermediate.dense.out_features == 1536, f"after the error for {bad} the layer changed; check before slicing"'''

IMPORTANCE_MD = r"""### Which heads and neurons to remove

**Heads (Michel et al. 2019, section 4.1).** Multiply the output of head $h$ by a gate $\xi_h = 1$. The gate
changes nothing, but the gradient of the loss with respect to it estimates how much the loss would change if the
head were removed ($\xi_h = 0$), to first order:

$$I_h = \sum_{\text{batches}} \left| \frac{\partial \mathcal{L}}{\partial \xi_h} \right|,$$

normalised per layer (L2) so that heads of different layers can be ranked together. Since head masks are gone
from transformers 5, `course.lib.prune.head_gates` puts the gates in with a forward pre-hook on
`attention.output.dense` (read it: ten lines), and `head_importance` sums the gradients over calibration batches.

**FFN neurons.** `ffn_activation_importance` runs calibration batches and scores neuron $j$ by the mean
$|\mathrm{GELU}|$ activation over real (non-padding) tokens times the norm of its output column $\|W_2[:, j]\|$: the
typical size of what the neuron adds to the layer's output.

The calibration batches are 256 training sentences (never test sentences). The cell first runs your functions on
a tiny input, so an unfinished exercise fails here in a second."""

IMPORTANCE = r'''HEADS_KEPT = 10        # of 12 per layer on average (one global ranking, at least 1 per layer)
NEURONS_KEPT = 768     # of 1536 per layer
CALIBRATION = 256      # training sentences used to score

prune_heads(copy.deepcopy(layer0), [0]), prune_ffn_neurons(copy.deepcopy(layer0), [0])   # fail fast if not done
start = time.perf_counter()
calibration = make_loader(data.train.subset(CALIBRATION), tokenizer, batch_size=32)
head_scores = head_importance(teacher, calibration)                  # (L, H), each row L2-normalised
neuron_scores = ffn_activation_importance(teacher, calibration)      # (L, F)
n_layers, n_heads = head_scores.shape
heads_kept = keep_top(head_scores, HEADS_KEPT * n_layers, per_layer=False)   # global: some layers keep more
neurons_kept = keep_top(neuron_scores, NEURONS_KEPT)                          # the same count in every layer
print(f"scored {n_layers * n_heads} heads and {neuron_scores.numel():,} neurons on {CALIBRATION} sentences "
      f"in {time.perf_counter() - start:.0f} s")
print("heads kept per layer:", [len(k) for k in heads_kept])

fig, (ax_h, ax_f) = plt.subplots(1, 2, figsize=(12, 3.6))
image = ax_h.imshow(head_scores, cmap="viridis")
for layer_index, kept in enumerate(heads_kept):
    for h in removed(kept, n_heads):
        ax_h.text(h, layer_index, "×", ha="center", va="center", color="white", fontsize=12)
ax_h.set(xlabel="head", ylabel="layer", title="head importance (Michel et al.); × = removed",
         xticks=range(n_heads), yticks=range(n_layers))
fig.colorbar(image, ax=ax_h, fraction=0.03)
for layer_index, row in enumerate(neuron_scores):
    ax_f.plot(row.sort(descending=True).values, label=f"layer {layer_index}")
ax_f.axvline(NEURONS_KEPT, color="black", linestyle="--", label=f"keep {NEURONS_KEPT}")
ax_f.set(yscale="log", xlabel="neurons, most important first", ylabel="importance",
         title="FFN neuron importance (activation × output norm)")
ax_f.legend(fontsize=7, ncol=2)
plt.tight_layout()
plt.show()'''

PRUNE_MD = r"""### Prune, measure, recover, measure again

A copy of the teacher loses the heads marked × above and all but the top neurons of every layer. It is measured
at once (`course.lib.benchmark` as in Part 3: the `EVAL_N` test sentences, parameters, serialized size, latency at
batch 1 and 32 on 1 thread), then fine-tuned briefly to recover. The dense teacher is the best guide to what the pruned model should
output, so the recovery **distils** from it (notebook 01): the teacher's logits for every training sentence are
computed once, and the loss is the cross-entropy to its probabilities (temperature 1, no hard labels).
`course.lib.prune.recover` runs one epoch of the training split with the word embeddings frozen and lr 2e-4, as
the students of notebook 01, and keeps the epoch with the best validation accuracy. Then the model is measured
again. (With the labels alone, or on a quarter of the training split, recovery wins back less: try
`loss_fn=course.lib.cross_entropy` or `max_train_examples=2000`.)"""

PRUNE = r'''prune_heads(copy.deepcopy(layer0), [0]), prune_ffn_neurons(copy.deepcopy(layer0), [0])   # fail fast if not done
structured = copy.deepcopy(teacher).cpu().eval()
for layer, kept_heads, kept_neurons in zip(encoder_layers(structured), heads_kept, neurons_kept):
    prune_heads(layer, removed(kept_heads, n_heads))
    prune_ffn_neurons(layer, kept_neurons)
dense = next(r for r in results if r.name == "dense")                # measured in Part 3, same split and threads
structured_result = benchmark(structured, data.test.subset(EVAL_N), tokenizer, "structured", threads=1, device="cpu")
results.append(structured_result)
print(f"structured: {structured_result.n_params / 1e6:.2f} M parameters ({100 * structured_result.n_params / dense.n_params:.0f}% "
      f"of the dense teacher's), accuracy on the {EVAL_N} test sentences {100 * structured_result.accuracy:.1f}% before "
      f"recovery (dense: {100 * dense.accuracy:.1f}%)")'''

RECOVER = r'''RECOVERY_EPOCHS, RECOVERY_LR = 1, 2e-4
start = time.perf_counter()
train_logits = predict_logits(teacher, make_loader(data.train, tokenizer, batch_size=64), progress=True)   # (N, 2), once


def soft_targets_loss(logits, batch):
    """Cross-entropy to the dense teacher's probabilities: distillation at T = 1 with alpha = 0 (notebook 01)."""
    return -(torch.softmax(batch["teacher_logits"], dim=-1) * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


structured_recovered = copy.deepcopy(structured)
recovery = recover(structured_recovered, data, tokenizer, epochs=RECOVERY_EPOCHS, lr=RECOVERY_LR,
                   loss_fn=soft_targets_loss, teacher_logits=train_logits, device=device)
recovery_seconds = time.perf_counter() - start
structured_recovered = structured_recovered.cpu()
recovered_result = benchmark(structured_recovered, data.test.subset(EVAL_N), tokenizer, "structured + recovery",
                             threads=1, device="cpu")
results.append(recovered_result)
print(f"recovery: teacher logits + {RECOVERY_EPOCHS} epoch on {len(data.train):,} training sentences in "
      f"{recovery_seconds:.0f} s, validation accuracy {100 * recovery.best_val_accuracy:.1f}%")
for r in (dense, structured_result, recovered_result):
    print(f"{r.name:>22}: accuracy {100 * r.accuracy:5.1f}% | {r.n_params / 1e6:5.2f} M parameters | "
          f"{r.size_mb:5.1f} MB | b1 {r.latency_ms_b1:6.1f} ms ({dense.latency_ms_b1 / r.latency_ms_b1:.2f}×) | "
          f"b32 {r.latency_ms_b32:6.1f} ms ({dense.latency_ms_b32 / r.latency_ms_b32:.2f}×)")
test_loader = make_loader(data.test, tokenizer, batch_size=64)
full_test = {name: evaluate(model, test_loader) for name, model in (("dense", teacher), ("recovered", structured_recovered))}
print(f"full test split ({len(data.test):,} sentences): dense {100 * full_test['dense']:.1f}%, structured + recovery "
      f"{100 * full_test['recovered']:.1f}% ({100 * (full_test['recovered'] - full_test['dense']):+.1f} points)")'''

RESULT_MD = r"""Read the lines above: the speed-ups are ratios against the dense teacher measured in Part 3 of this run, on
this machine, at 1 thread (a busy machine makes them noisy; `benchmarks/pruning_targets.py` measures both models
interleaved). The size shrinks less than the layers did: the word-embedding table (30,522 × 384) is untouched and is
about half of the teacher's parameters. Pruning without recovery loses accuracy; how much the short fine-tune wins
back is in the last line, on the full test split (the other lines use the `EVAL_N` sentences of the table). Try `HEADS_KEPT`, `NEURONS_KEPT` and `RECOVERY_EPOCHS` of your own."""

T_RESULT = r'''"""Experiment: the structured model was pruned, recovered and measured (hidden: it keeps >= 80% test accuracy)."""
assert sum(p.numel() for p in structured_recovered.parameters()) < sum(p.numel() for p in teacher.parameters()), \
    "the recovered model should have fewer parameters than the teacher"
assert [int(l.attention.self.num_attention_heads) for l in encoder_layers(structured_recovered)] == [len(k) for k in heads_kept], \
    "each layer should have the number of heads chosen by keep_top"
assert 0.0 <= float(full_test["recovered"]) <= 1.0, f"accuracy should be a fraction, got {full_test['recovered']}"
### BEGIN HIDDEN TESTS
assert float(full_test["recovered"]) >= 0.80, f"the recovered model reached {100 * full_test['recovered']:.1f}% on the test split, expected >= 80%"
assert all(l.intermediate.dense.out_features == NEURONS_KEPT for l in encoder_layers(structured_recovered)), "FFN sizes"
### END HIDDEN TESTS'''

CELLS = [
    ("markdown", INTRO, None),
    ("markdown", PRUNE_HEADS_MD, None),
    ("code", PRUNE_HEADS, solution("prune-heads")),
    ("code", HEADS_SETUP, None),
    ("code", T_HEADS_EQUIV, test("prune-heads-equivalent", 2)),
    ("code", T_HEADS_SHAPES, test("prune-heads-shapes", 1)),
    ("code", T_HEADS_PARAMS, test("prune-heads-param-count", 1)),
    ("code", T_HEADS_ERRORS, test("prune-heads-errors", 1)),
    ("code", T_HEADS_LAST, test("prune-heads-keep-one", 1)),
    ("markdown", FFN_MD, None),
    ("code", PRUNE_FFN, solution("prune-ffn-neurons")),
    ("code", FFN_SETUP, None),
    ("code", T_FFN_EQUIV, test("prune-ffn-neurons-equivalent", 2)),
    ("code", T_FFN_PARAMS, test("prune-ffn-neurons-param-count", 1)),
    ("code", T_FFN_ERRORS, test("prune-ffn-neurons-errors", 1)),
    ("markdown", IMPORTANCE_MD, None),
    ("code", IMPORTANCE, None),
    ("markdown", PRUNE_MD, None),
    ("code", PRUNE, None),
    ("code", RECOVER, None),
    ("markdown", RESULT_MD, None),
    ("code", T_RESULT, test("structured-pruning-result", 1)),
]

POINTS = sum(meta["points"] for _, _, meta in CELLS if meta and meta.get("grade"))
assert f"({POINTS} points)" in INTRO, POINTS
