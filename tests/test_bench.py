import pytest
import torch

from course.lib.bench import (BenchResult, benchmark, compare, count_params, measure_latency, plot_tradeoff,
                              results_table, serialized_size_bytes)
from course.lib.data import Split


def test_serialized_size_of_a_known_tensor():
    state = {"w": torch.zeros(1000, 250)}  # 250,000 float32 = 1,000,000 bytes of data
    size = serialized_size_bytes(state)
    assert 1_000_000 <= size < 1_000_000 + 4_096  # data plus a small pickle/zip header


def test_count_params_counts_zeros_and_packed_int8_weights():
    model = torch.nn.Sequential(torch.nn.Linear(10, 4))
    with torch.no_grad():
        model[0].weight[:2] = 0
    assert count_params(model) == (44, 44 - 20 + (model[0].bias == 0).sum().item())
    q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    assert count_params(q)[0] == 44


def test_latency_of_a_known_sleep():
    import time

    median, p90 = measure_latency(lambda: time.sleep(0.002), threads=1, min_run_time=0.2, warmup=1)
    assert 2.0 <= median < 20.0 and p90 >= median * 0.99
    with pytest.raises(ValueError, match="threads must be >= 1"):
        measure_latency(lambda: None, threads=0)


def test_benchmark_on_a_tiny_model(tiny_base, real_data):
    from course.lib.models import load_base

    model, tokenizer = load_base(tiny_base)
    split = Split(real_data.test.texts[:40], real_data.test.labels[:40])
    r = benchmark(model, split, tokenizer, "tiny", threads=1, min_run_time=0.1)
    assert set(r.as_dict()) >= {"accuracy", "n_params", "n_nonzero", "size_mb", "latency_ms_b1", "latency_ms_b32"}
    n = sum(p.numel() for p in model.parameters())
    assert r.n_params == n and r.n_nonzero <= n
    assert r.size_mb == pytest.approx(serialized_size_bytes(model) / 1e6)
    assert 4 * n / 1e6 <= r.size_mb < 4 * n / 1e6 * 1.1  # fp32: 4 bytes per parameter, plus buffers
    assert 0 < r.latency_ms_b1 <= r.latency_ms_b1_p90 * 1.0001 and 0 < r.latency_ms_b32
    assert 0.0 <= r.accuracy <= 1.0 and r.threads == 1


def _result(name, acc, size, b1, b32):
    return BenchResult(name, acc, 10, 10, size, b1, b1, b32, b32, 1, "cpu")


def test_compare_reports_ratios_against_the_baseline():
    rows = compare([_result("fp32", 0.8, 100.0, 10.0, 40.0), _result("int8", 0.78, 25.0, 5.0, 20.0)], "fp32")
    int8 = rows[1]
    assert int8["size_x"] == 4.0 and int8["speedup_b1"] == 2.0 and int8["speedup_b32"] == 2.0
    assert int8["accuracy_kept_pct"] == pytest.approx(97.5)
    with pytest.raises(ValueError, match="baseline must be one of"):
        compare(rows and [_result("a", 1, 1, 1, 1)], "fp32")


def test_table_and_plot():
    results = [_result("fp32", 0.8, 100.0, 10.0, 40.0), _result("int8", 0.78, 25.0, 5.0, 20.0)]
    table = results_table(results, "fp32")
    assert list(table.index) == ["fp32", "int8"] and table.loc["int8", "size ×"] == 4.0
    assert table.loc["fp32", "accuracy %"] == pytest.approx(80.0)
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_tradeoff(results)
    assert len(ax.collections) == 2 and "latency" in ax.get_xlabel()


def test_quick_benchmark_times_one_call_per_batch_on_the_threads_asked(tiny_base, real_data, monkeypatch):
    """quick=True: one warm-up + one timed call at batch 1, one timed call at batch 32, each on ``threads``
    threads (the old benchmark_quick ignored ``threads``), and the row's note says it was quick."""
    from torch.utils import benchmark as tbench

    from course.lib.models import load_base

    model, tokenizer = load_base(tiny_base)
    split = Split(real_data.test.texts[:32], real_data.test.labels[:32])
    timers = []
    real_timer = tbench.Timer

    def spy(*args, **kwargs):
        timers.append(kwargs.get("num_threads"))
        return real_timer(*args, **kwargs)

    monkeypatch.setattr(tbench, "Timer", spy)
    r = benchmark(model, split, tokenizer, "tiny", threads=2, quick=True, note="mine")
    assert timers == [2, 2], f"expected one Timer per batch size, on 2 threads; got {timers}"
    assert r.latency_ms_b1 == r.latency_ms_b1_p90 and r.latency_ms_b32 == r.latency_ms_b32_p90
    assert r.note == "mine; quick: accuracy on 32 sentences, latency of 1 call" and r.threads == 2
    with pytest.raises(ValueError, match="at least 32 sentences"):
        benchmark(model, Split(split.texts[:31], split.labels[:31]), tokenizer, quick=True)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        benchmark(model, split, tokenizer, threads=0)


def test_table_says_where_each_row_was_measured():
    """threads, device and CPU (capability + int8 dot-product flags) are columns; note only when a row has one."""
    import torch

    from course.lib.bench import cpu_description

    plain = [_result("fp32", 0.8, 100.0, 10.0, 40.0), _result("int8", 0.78, 25.0, 5.0, 20.0)]
    table = results_table(plain, "fp32")
    assert {"threads", "device", "CPU"} <= set(table.columns) and "note" not in table.columns
    noted = [plain[0], BenchResult("int8", 0.78, 10, 10, 25.0, 5.0, 5.0, 20.0, 20.0, 1, "cpu", cpu_description(), "x")]
    table = results_table(noted, "fp32")
    assert table.loc["int8", "note"] == "x" and table.loc["fp32", "note"] == ""
    assert table.loc["int8", "CPU"].startswith(torch.backends.cpu.get_cpu_capability() + ", ")


def test_table_lists_failed_models_with_their_reason():
    results = [_result("fp32", 0.8, 100.0, 10.0, 40.0)]
    table = results_table(results, "fp32", failed={"int4": "ImportError: no kernel"})
    assert table.loc["int4", "note"] == "ImportError: no kernel" and table.loc["int4", "size MB"] != table.loc["int4", "size MB"]
    assert str(table["nonzero params"].dtype) == "Int64" and table.loc["fp32", "threads"] == 1
