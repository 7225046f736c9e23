"""Conformance of the transformations beyond the gradient, against a float64 finite-difference oracle.

Each :class:`TransformCase` runs one public transformation (``value_and_grad_fn(jit=True)``, ``jvp``,
``vjp``, ``jacobian``, ``hessian``, ``hvp``, ``per_example_grads``) on every backend, device and
dtype, and compares it with the same transformation on the NumPy reference backend
(``backend="numpy"``): central differences in float64, built on one finite-difference Jacobian. The
second-order references (``hessian``, ``hvp``) are differences of the finite-difference gradient, with
the five-point stencil (see ``unigrad.backends._numpy``). The cases themselves are defined in
:mod:`unigrad.conformance.transform_cases`. Comparisons are recorded exactly as for gradient cases
(:mod:`unigrad.conformance.gradients`): ``reference`` (float64 against the oracle, lower
precisions against the same backend's float64 result) and ``pairwise`` (backend against backend).

Example:
    >>> from unigrad.conformance.transforms import TRANSFORM_CASES, select_transform_cases
    >>> sorted({case.transform for case in TRANSFORM_CASES})
    ['hessian', 'hvp', 'jacobian', 'jvp', 'per_example_grads', 'value_and_grad_fn', 'vjp']
    >>> [case.name for case in select_transform_cases(["transform_hessian_*"])]
    ['transform_hessian_mlp', 'transform_hessian_quadratic']
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from unigrad._host import tree_to_float64
from unigrad.conformance.case import Tolerance
from unigrad.conformance.compare import compare_trees
from unigrad.conformance.devices import UNAVAILABLE_PREFIX, place_tree, strict_precision
from unigrad.conformance.results import ERROR, FAIL, PASS, UNSUPPORTED, Comparison, LeafMetrics
from unigrad.conformance.transform_cases import (
    TRANSFORM_CASES,
    TransformCase,
    select_transform_cases,
)

__all__ = [  # the cases are defined in unigrad.conformance.transform_cases; run and compared here
    "TRANSFORM_CASES",
    "Key",
    "TransformCase",
    "compare_transform_case",
    "evaluate_transform_case",
    "reference_results",
    "run_transform_case",
    "select_transform_cases",
]


def _evaluate(
    case: TransformCase, backend: str, device: str, dtype: str, inputs: tuple[Any, Any, Any]
) -> Any:
    """The case's results on one backend, device and dtype as float64 NumPy, or the error text."""
    try:
        placed = [place_tree(tree, backend, dtype, device) for tree in inputs]
        return tree_to_float64(case.compute(*placed, None))
    except Exception as err:  # noqa: BLE001 - a framework refusing an op is a result to report
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        return message[:300]


def reference_results(case: TransformCase, seed: int) -> Any:
    """The float64 finite-difference results of ``case`` (the NumPy reference backend)."""
    params, data, extra = case.make_inputs(seed)
    with np.errstate(all="ignore"):
        return tree_to_float64(case.compute(params, data, extra, "numpy"))


def _metrics(got: dict[str, Any], want: dict[str, Any], tolerance: Tolerance) -> list[LeafMetrics]:
    leaves = []
    for part in want:
        for metric in compare_trees(got.get(part), want[part], tolerance):
            metric.path = part + metric.path.removeprefix("params")
            leaves.append(metric)
    return leaves


def _comparison(
    case: TransformCase,
    kind: str,
    key: tuple[str, str, str],
    got: Any,
    against: str,
    want: Any,
    tolerance: Tolerance,
) -> Comparison:
    backend, device, dtype = key
    base = dict(case=case.name, kind=kind, backend=backend, device=device, dtype=dtype, against=against)
    if isinstance(got, str):  # error text; a dtype the backend lacks altogether is n/a there
        status = UNSUPPORTED if got.startswith(UNAVAILABLE_PREFIX) else ERROR
        return Comparison(**base, status=status, rtol=tolerance.rtol, atol=tolerance.atol, reason=got)
    leaves = _metrics(got, want, tolerance)
    status = PASS if all(leaf.passed for leaf in leaves) else FAIL
    return Comparison(**base, status=status, rtol=tolerance.rtol, atol=tolerance.atol, leaves=leaves)


Key = tuple[str, str, str]  # (backend, device, dtype)


def evaluate_transform_case(
    case: TransformCase, backend: str, devices: Sequence[str], dtypes: Sequence[str], seed: int
) -> dict[Key, Any]:
    """The case's float64 results (or error texts) on one backend, per device and dtype of the case.

    The framework-running phase: the isolated runner calls it in a worker process per backend.
    """
    inputs = case.make_inputs(seed)
    wanted = [dtype for dtype in dtypes if dtype in case.dtypes]
    return {
        (backend, device, dtype): _evaluate(case, backend, device, dtype, inputs)
        for device in devices
        for dtype in wanted
    }


def compare_transform_case(case: TransformCase, results: dict[Key, Any], want: Any) -> list[Comparison]:
    """Every ``reference`` and ``pairwise`` comparison of one transform case's results.

    Args:
        case: the case.
        results: float64 results (or error texts) per (backend, device, dtype), in backend order.
        want: :func:`reference_results` of the case.
    """
    comparisons = []
    for key, got in results.items():
        backend, device, dtype = key
        own64 = results.get((backend, device, "float64"))
        if dtype == "float64" or own64 is None or isinstance(own64, str):
            against, reference = "finite differences", want
        else:
            against, reference = f"{backend}/{device}/float64", own64
        comparisons.append(
            _comparison(case, "reference", key, got, against, reference, case.tolerance(dtype))
        )
    for (a_key, a), (b_key, b) in itertools.combinations(results.items(), 2):
        same_place = a_key[1:] == b_key[1:]
        if a_key[0] != b_key[0] and same_place and not isinstance(a, str) and not isinstance(b, str):
            tolerance = case.tolerance(a_key[2])
            doubled = Tolerance(2 * tolerance.rtol, 2 * tolerance.atol)  # both are within tol of the truth
            against = "/".join(b_key)
            comparisons.append(_comparison(case, "pairwise", a_key, a, against, b, doubled))
    return comparisons


def run_transform_case(
    case: TransformCase,
    backends: Sequence[str],
    devices: dict[str, list[str]],
    dtypes: Sequence[str],
    seed: int,
) -> list[Comparison]:
    """Every ``reference`` and ``pairwise`` comparison for one transform case, run in this process.

    Args:
        case: the case.
        backends: backends to run (``'torch'``, ``'tensorflow'``, ``'jax'``).
        devices: device names per backend (``{'torch': ['cpu']}``).
        dtypes: dtypes to run; those not in ``case.dtypes`` are skipped.
        seed: inputs are a pure function of the seed and the case name.
    """
    results: dict[Key, Any] = {}
    with strict_precision(list(backends)):
        for backend in backends:
            results.update(evaluate_transform_case(case, backend, devices[backend], dtypes, seed))
    return compare_transform_case(case, results, reference_results(case, seed))
