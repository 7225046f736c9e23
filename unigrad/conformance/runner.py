"""Run conformance cases on every backend × device × dtype and compare the gradients.

For each case the runner builds float64 inputs from the seed, computes the reference (central finite
differences, or the case's closed form at kinks and ties), then evaluates ``ug.value_and_grad`` on
each backend, device and dtype, and compares (the steps of one case: :mod:`unigrad.conformance.gradients`,
which says what is compared with what). By default each backend runs in worker processes of its own
(:mod:`unigrad.conformance.isolated`); :func:`run_case` runs one case in this process.

Example:
    >>> from unigrad.conformance import run_conformance
    >>> report = run_conformance(cases=["elementwise_exp"], backends=[], dtypes=["float64"])
    >>> report.cases
    ['elementwise_exp']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import unigrad as ug
from unigrad.conformance.case import ALL_DTYPES, Case
from unigrad.conformance.devices import available_devices, strict_precision
from unigrad.conformance.gradients import (
    Key,
    Outcome,
    compare_case,
    evaluate_case,
    framework_versions,
    reference,
    select_cases,
)
from unigrad.conformance.isolated import run_isolated
from unigrad.conformance.results import Comparison, Report
from unigrad.conformance.transforms import run_transform_case, select_transform_cases

DEFAULT_DTYPES: tuple[str, ...] = ("float64", "float32")


def run_case(
    case: Case, backends: Sequence[str], devices: dict[str, list[str]], dtypes: Sequence[str], seed: int
) -> list[Comparison]:
    """Every comparison for one case, evaluated in this process (see the module docstring)."""
    params, data = case.make_inputs(seed)
    outcomes: dict[Key, Outcome] = {}
    for backend in backends:
        outcomes.update(evaluate_case(case, backend, devices[backend], dtypes, seed))
    return compare_case(case, outcomes, reference(case, params, data), inputs=(params, data))


def run_conformance(
    cases: Iterable[str] | None = None,
    backends: Sequence[str] | None = None,
    devices: Iterable[str] | None = None,
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    seed: int = 0,
    progress: Callable[[str, str], None] | None = None,
    *,
    isolate: bool = True,
    jobs: int | None = None,
    verbose: bool = False,
    compile_cache: bool = True,
) -> Report:
    """Run the catalogue (or the selected cases) and return the full :class:`Report`.

    Args:
        cases: names, globs or tags (``'transform'`` selects the transform cases); ``None`` runs
            every case, gradient and transform.
        backends: backends to run (default: every installed one).
        devices: device kinds or names to keep (``'cpu'``, ``'gpu'``, ``'gpu:1'``); default: all.
        dtypes: dtypes to run, from ``float64, float32, float16, bfloat16``.
        seed: inputs are a pure function of the seed and the case name.
        progress: called with ``(case name, backend)`` after each case on each backend.
        isolate: run each backend in worker processes, up to ``jobs`` at once, so that two
            frameworks' native libraries never share a process and a native crash becomes ``err``
            rows (:mod:`unigrad.conformance.isolated`); ``False`` runs everything in this process.
        jobs: worker processes at once (default: the CPU cores available); only with ``isolate``.
        verbose: with ``isolate``, let the frameworks' log lines through to stderr.
        compile_cache: with ``isolate``, keep JAX's compiled operations on disk between runs
            (``~/.cache/unigrad/jax``; JAX compiles each operation on first use, most of a cold
            run's time on CPU). ``JAX_COMPILATION_CACHE_DIR``, when set, is used instead.
    """
    cases = None if cases is None else list(cases)  # read twice below
    selected = select_cases(cases)
    transforms = select_transform_cases(cases)  # jvp, hessian, jit... (unigrad.conformance.transforms)
    backends = list(ug.installed_backends() if backends is None else backends)
    unknown = sorted(set(dtypes) - set(ALL_DTYPES))
    if unknown:
        raise ValueError(f"unknown dtype(s) {unknown}: choose from {list(ALL_DTYPES)}")
    if isolate:
        wanted = None if devices is None else list(devices)
        return run_isolated(
            cases, backends, dtypes, seed, wanted,
            jobs=jobs, verbose=verbose, compile_cache=compile_cache, progress=progress,
        )  # fmt: skip
    wanted_devices = None if devices is None else set(devices)
    device_map = {}
    for backend in backends:
        found = available_devices(backend)
        if wanted_devices is not None:
            found = [d for d in found if d in wanted_devices or d.split(":")[0] in wanted_devices]
        device_map[backend] = found
    report = Report(
        seed=seed,
        cases=[case.name for case in selected] + [case.name for case in transforms],
        backends=backends,
        dtypes=list(dtypes),
        devices=device_map,
        versions=framework_versions(backends),
    )
    with strict_precision(backends):
        for case in selected:
            report.comparisons.extend(run_case(case, backends, device_map, dtypes, seed))
            for backend in backends if progress is not None else ():
                progress(case.name, backend)
        for transform_case in transforms:
            report.comparisons.extend(run_transform_case(transform_case, backends, device_map, dtypes, seed))
            for backend in backends if progress is not None else ():
                progress(transform_case.name, backend)
    return report
