"""Run grading jobs on Dask distributed: a local cluster, or an existing one by address.

``workers=W`` starts a :class:`distributed.LocalCluster` of W single-threaded worker processes
(default: one per 2 CPU cores, since a notebook's kernel uses the other); ``scheduler=ADDRESS``
sends the jobs to a running cluster (``dask scheduler`` + ``dask worker ADDRESS`` on each
machine, or dask-jobqueue / dask-kubernetes), where every worker needs this project installed.
Each job is one task (:func:`autograder.job.run`); a task that raises or whose worker dies is
reported as a failed :class:`~autograder.job.JobResult`, never stopping the batch. A tqdm bar
counts submissions and failures.

Public API: :func:`default_workers`, :func:`run_jobs`.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from autograder.job import JobResult, JobSpec, run


def default_workers() -> int:
    """One worker per 2 CPU cores this process may use, at least 1."""
    return max(1, len(os.sched_getaffinity(0)) // 2)


def _cluster(workers: int | None, scheduler: str | None):
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers: expected a positive int, got {workers!r}")
    saved = dict(os.environ)  # a Nanny writes OMP_NUM_THREADS=1 & co into this process's environment
    try:
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0, silence_logs=40)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Client(cluster), cluster


def run_jobs(specs: Iterable[JobSpec], *, workers: int | None = None, scheduler: str | None = None,
             progress: bool = True, on_result: Callable[[JobResult], None] | None = None) -> list[JobResult]:
    """Grade every spec on Dask; results in the order of ``specs``.

    Args:
        specs: one :class:`JobSpec` per submission.
        workers: local worker processes (ignored with ``scheduler``); None: :func:`default_workers`.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``), or None for a local cluster.
        progress: show a tqdm bar (stderr) with the running count of failed jobs.
        on_result: called in this process with each result as it arrives.
    Returns:
        One JobResult per spec.
    Raises:
        ValueError: ``workers`` is not a positive int.
        OSError / TimeoutError: the scheduler cannot be reached.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    specs = list(specs)
    if not specs:
        return []
    client, cluster = _cluster(workers, scheduler)
    results: dict[int, JobResult] = {}
    try:
        futures = {client.submit(run, spec, key=f"grade-{i}-{spec.student}-{spec.assignment}", pure=False,
                                 retries=0): i for i, spec in enumerate(specs)}
        bar = tqdm(total=len(specs), unit="submission", desc="grading", disable=not progress)
        failed = 0
        for future in as_completed(futures):
            i, spec = futures[future], specs[futures[future]]
            if future.status == "finished":
                result = future.result()
            else:  # the task raised, or its worker died: the job's own failure, not the batch's
                error = future.exception()
                result = JobResult(spec.student, spec.assignment, "failed",
                                   reason=f"grading job crashed: {type(error).__name__}: {str(error)[:300]}")
            results[i] = result
            failed += result.status != "graded"
            bar.set_postfix(failed=failed)
            bar.update()
            if on_result:
                on_result(result)
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [results[i] for i in range(len(specs))]
