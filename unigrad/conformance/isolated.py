"""The conformance run with every backend in its own worker processes; comparisons made here.

The parent never imports a framework: workers (:mod:`unigrad.conformance.worker`, scheduled by
:class:`~unigrad.conformance.pool.WorkerPool`) evaluate, and this module computes each case's float64
reference, puts the workers' leaves back into its tree, and compares exactly as the in-process runner
does (:func:`~unigrad.conformance.gradients.compare_case`). A case whose worker crashed gets ``err``
rows on that backend, naming the signal; every other result still counts.

Example:
    >>> from unigrad.conformance.isolated import run_isolated
    >>> report = run_isolated(["reduce_sum"], [], ["float64"], seed=0)
    >>> report.cases, report.comparisons
    (['reduce_sum'], [])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from unigrad.conformance.case import Case
from unigrad.conformance.gradients import (
    Key,
    Outcome,
    compare_case,
    framework_versions,
    reference,
    select_cases,
)
from unigrad.conformance.pool import WorkerPool
from unigrad.conformance.results import ERROR, Comparison, Report
from unigrad.conformance.transforms import (
    TransformCase,
    compare_transform_case,
    reference_results,
    select_transform_cases,
)
from unigrad.conformance.wire import rebuild


def _outcome(record: dict[str, Any], ref_grads: Any) -> Outcome:
    if record["error"]:
        return Outcome(error=record["error"])
    try:
        grads = rebuild(record["grads"], ref_grads)
    except ValueError as err:
        return Outcome(error=f"ValueError: {err}")
    return Outcome(loss=np.asarray(record["loss"], dtype=np.float64).reshape(()), grads=grads)


def _transform_result(record: dict[str, Any], want: Any) -> Any:
    if record["error"]:
        return record["error"]
    try:
        return rebuild(record["result"], want)
    except ValueError as err:
        return f"ValueError: {err}"


class _Collector:
    """Gathers each case's results from every backend, then compares them (in backend order)."""

    def __init__(
        self,
        cases: Sequence[Case | TransformCase],
        backends: Sequence[str],
        dtypes: Sequence[str],
        seed: int,
        pool: WorkerPool,
        progress: Callable[[str, str], None] | None,
    ) -> None:
        self.cases = {case.name: case for case in cases}
        self.backends, self.dtypes, self.seed, self.pool = list(backends), list(dtypes), seed, pool
        self.progress = progress
        self.pending: dict[str, dict[str, tuple[list[dict[str, Any]] | None, str]]] = {}
        self.comparisons: dict[str, list[Comparison]] = {}

    def __call__(self, backend: str, name: str, records: list[dict[str, Any]] | None, error: str) -> None:
        arrived = self.pending.setdefault(name, {})
        arrived[backend] = (records, error)
        if self.progress is not None:
            self.progress(name, backend)
        if len(arrived) == len(self.backends):
            self.comparisons[name] = self._compare(self.cases[name], self.pending.pop(name))

    def _crash_records(self, backend: str, case: Case | TransformCase, error: str) -> list[dict[str, Any]]:
        devices = self.pool.ready.get(backend, {}).get("devices") or ["cpu"]
        wanted = [dtype for dtype in self.dtypes if dtype in case.dtypes]
        return [
            {"device": device, "dtype": dtype, "error": error, "crashed": True}
            for device in devices
            for dtype in wanted
        ]

    def _records(
        self, case: Case | TransformCase, arrived: dict[str, Any]
    ) -> list[tuple[Key, dict[str, Any]]]:
        ordered = []
        for backend in self.backends:
            records, error = arrived[backend]
            if records is None:
                records = self._crash_records(backend, case, error)
            ordered += [((backend, r["device"], r["dtype"]), r) for r in records]
        return ordered

    def _compare(self, case: Case | TransformCase, arrived: dict[str, Any]) -> list[Comparison]:
        records = self._records(case, arrived)
        try:
            return self._compare_records(case, records)
        except Exception as err:  # noqa: BLE001 - a user's loss failing in NumPy is a result to report
            why = f"the float64 reference raised {type(err).__name__}: {err}".splitlines()[0][:300]
            return [
                Comparison(case.name, "reference", *key, "reference", ERROR, 0.0, 0.0, reason=why)
                for key, _ in records
            ]

    def _compare_records(
        self, case: Case | TransformCase, records: list[tuple[Key, dict[str, Any]]]
    ) -> list[Comparison]:
        if isinstance(case, TransformCase):
            want = reference_results(case, self.seed)
            results = {key: _transform_result(record, want) for key, record in records}
            return compare_transform_case(case, results, want)
        params, data = case.make_inputs(self.seed)
        ref = reference(case, params, data)
        outcomes = {}
        for key, record in records:
            outcome = _outcome(record, ref[1])
            outcome.crashed = bool(record.get("crashed"))
            outcomes[key] = outcome
        versions = {b: ready["version"] for b, ready in self.pool.ready.items()}
        return compare_case(case, outcomes, ref, inputs=(params, data), versions=versions)


def run_isolated(
    cases: Sequence[str] | None,
    backends: Sequence[str],
    dtypes: Sequence[str],
    seed: int = 0,
    devices: Sequence[str] | None = None,
    *,
    jobs: int | None = None,
    verbose: bool = False,
    compile_cache: bool = True,
    user: dict[str, Any] | None = None,
    user_case: Case | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> Report:
    """Run the selected cases with each backend in worker processes; see the module docstring.

    Args:
        cases: names, globs or tags, as for :func:`~unigrad.conformance.run_conformance`.
        backends: backends to run; each is imported only inside its workers.
        dtypes: dtypes to run.
        seed: inputs are a pure function of the seed and the case name.
        devices: device kinds or names to keep; default: all each backend sees.
        jobs: workers at once (default: the CPU cores available, at most
            :data:`~unigrad.conformance.pool.GPU_WORKERS_PER_DEVICE` per GPU).
        verbose: let the frameworks' own log lines through to stderr.
        compile_cache: keep JAX's compiled operations on disk between runs
            (:func:`~unigrad.conformance.pool.compile_cache_dir`).
        user: a user loss for the workers to load (``target``, ``params``, ``data``), with
            ``user_case`` the same case loaded here.
        user_case: see ``user``.
        progress: called with ``(case name, backend)`` as each result arrives.
    """
    if user_case is not None:
        selected: list[Case | TransformCase] = [user_case]
    else:
        selected = [*select_cases(cases), *select_transform_cases(cases)]
    request = {
        "devices": None if devices is None else list(devices),
        "dtypes": list(dtypes),
        "seed": seed,
        "user": user,
    }
    pool = WorkerPool(request, jobs=jobs, verbose=verbose, compile_cache=compile_cache)
    collector = _Collector(selected, backends, dtypes, seed, pool, progress)
    # Longest first: transform cases (compiled steps, second order) cost the most, so no worker is
    # left with one of them while the others are idle at the end.
    heaviest_first = sorted(selected, key=lambda case: not isinstance(case, TransformCase))
    pool.run(backends, [case.name for case in heaviest_first], collector)
    versions = framework_versions([])
    versions.update({b: pool.ready[b]["version"] for b in backends if b in pool.ready})
    versions.update({b: "unavailable" for b in backends if b not in pool.ready})
    report = Report(
        seed=seed,
        cases=[case.name for case in selected],
        backends=list(backends),
        dtypes=list(dtypes),
        devices={b: list(pool.ready.get(b, {}).get("devices", [])) for b in backends},
        versions=versions,
    )
    for case in selected:
        report.comparisons.extend(collector.comparisons.get(case.name, []))
    return report
