"""Rounds of a fuzzing campaign in worker processes: ``unigrad fuzz --jobs N``.

A campaign is a sequence of rounds, each a function of ``(seed, round index)`` alone
(:func:`unigrad.fuzz.campaign.round_seed`), so rounds can run anywhere and in any order. Here ``N``
worker processes (started with ``spawn``: a fork of a process holding TensorFlow's or JAX's threads
is not safe) each build the campaign once (its frameworks imported once, their thread pools sized
to ``cores // N``) and run whole rounds; the parent hands rounds out in order and merges their
reports in round order. Each round is told the causes found by the rounds merged before it was
handed out, so it only counts them; a cause first found by two rounds running at once is shrunk by
both, and the earlier round's finding and reproducer are kept. For a seed and ``--programs``, the
programs run, the counts and the causes found are the same whatever ``N``; with ``--minutes``, rounds
are handed out until the deadline and the rounds in flight finish.

Reproducers are written by the workers into ``OUT/.round-<index>/`` and the kept ones moved to
``OUT/``; the round folders are removed.

Example:
    >>> from unigrad.fuzz import FuzzConfig
    >>> from unigrad.fuzz.parallel import run_parallel
    >>> config = FuzzConfig(backends=["torch"], programs=4, round_size=2, out=None, extras=())
    >>> report = run_parallel(config, jobs=2)
    >>> report.programs, report.exit_code()
    (4, 0)
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from unigrad.fuzz.campaign import (
    Campaign,
    FuzzConfig,
    check_backends,
    empty_report,
    enable_compile_cache,
    selected_ops,
)
from unigrad.fuzz.report import Finding, FuzzReport

#: Thread-pool variables each worker sizes to its share of the cores (unless already set).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")

# The worker process's campaign, built once by _start_worker.
_campaign: Campaign | None = None


def run_parallel(
    config: FuzzConfig, jobs: int, on_round: Callable[[FuzzReport, int], None] | None = None
) -> FuzzReport:
    """Run ``config``'s campaign over ``jobs`` worker processes; ``on_round(report, programs)`` is
    called after each round is merged (``programs``: how many it ran)."""
    check_backends(config)
    selected_ops(config)  # here, not in a worker: an unknown op is a clear error, not a broken pool
    start = time.monotonic()
    deadline = None if config.minutes is None else start + 60 * config.minutes
    report = empty_report(config)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    pending: deque[Future[FuzzReport]] = deque()
    handed_out = 0
    next_round = 0

    def more() -> bool:
        if config.programs is not None:
            return handed_out < config.programs
        return deadline is None or time.monotonic() < deadline

    with ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start_worker, initargs=(config, threads)
    ) as pool:
        while pending or more():
            while len(pending) < jobs and more():
                left = None if config.programs is None else config.programs - handed_out
                count = config.round_size if left is None else min(config.round_size, left)
                known = dict(report.findings)
                pending.append(pool.submit(_run_round, next_round, count, known))
                handed_out += count
                next_round += 1
            part = pending.popleft().result()
            for finding in report.merge(part):
                _keep_reproducer(finding, config.out)
            report.seconds = time.monotonic() - start
            if on_round is not None:
                on_round(report, part.programs)
    _remove_round_folders(config.out)
    report.seconds = time.monotonic() - start
    return report


def _start_worker(config: FuzzConfig, threads: int) -> None:
    """Build this worker's campaign (before any framework is imported: thread pools sized first)."""
    global _campaign
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if config.compile_cache and "jax" in config.backends:
        enable_compile_cache()
    _campaign = Campaign(replace(config, programs=None, minutes=None))


def _run_round(index: int, count: int, known: dict[str, Finding]) -> FuzzReport:
    """Round ``index`` of ``count`` programs; ``known`` causes are counted, not shrunk again."""
    campaign = _campaign
    assert campaign is not None, "_start_worker builds the campaign first"
    campaign.report = empty_report(campaign.config)
    campaign.report.findings = {cause: replace(finding, count=0) for cause, finding in known.items()}
    out = campaign.config.out
    if out is not None:
        campaign.config = replace(campaign.config, out=str(_round_folder(out, index)))
    try:
        campaign.run_round(index, count)
    finally:
        campaign.config = replace(campaign.config, out=out)
    return campaign.report


def _round_folder(out: str, index: int) -> Path:
    return Path(out) / f".round-{index}"


def _keep_reproducer(finding: Finding, out: str | None) -> None:
    """Move a kept finding's reproducer from its round's folder into ``out``."""
    if out is None or finding.reproducer is None:
        return
    written = Path(finding.reproducer)
    kept = Path(out) / written.name
    if written.exists() and written != kept:
        shutil.move(written, kept)
    finding.reproducer = str(kept)


def _remove_round_folders(out: str | None) -> None:
    if out is None or not Path(out).is_dir():
        return
    for folder in Path(out).glob(".round-*"):
        shutil.rmtree(folder, ignore_errors=True)
