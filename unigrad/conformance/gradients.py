"""One gradient case, step by step: evaluate it on a backend, compute its reference, compare.

What both runners share: the in-process one (:func:`unigrad.conformance.runner.run_case`) and the
isolated one (:mod:`unigrad.conformance.isolated`, whose workers call :func:`evaluate_case` and whose
parent calls :func:`reference` and :func:`compare_case`). Three kinds of comparison are recorded:

- ``reference``: float64 results against the reference; lower precisions against the same
  backend's float64 result on the same device (the float64 reference, itself checked above);
- ``pairwise``: every two backends at the same dtype and device kind;
- ``device``: each backend's GPU against its CPU.

Example:
    >>> from unigrad.conformance.gradients import Outcome, compare_case, reference, select_cases
    >>> [case] = select_cases(["reduce_sum"])
    >>> params, data = case.make_inputs(seed=0)
    >>> loss, grads, name = reference(case, params, data)
    >>> name
    'finite differences'
    >>> outcomes = {("torch", "cpu", "float64"): Outcome(loss=loss, grads=grads)}  # as a worker's
    >>> [(c.kind, c.status) for c in compare_case(case, outcomes, (loss, grads, name))]
    [('reference', 'pass')]
"""

from __future__ import annotations

import fnmatch
import itertools
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import unigrad as ug
from unigrad._host import to_float64, tree_to_float64
from unigrad.conformance.case import Case, Tolerance
from unigrad.conformance.cases import CASES
from unigrad.conformance.compare import compare_leaf, compare_trees
from unigrad.conformance.devices import UNAVAILABLE_PREFIX, place_tree
from unigrad.conformance.results import ERROR, KNOWN, PASS, UNSUPPORTED, Comparison, LeafMetrics
from unigrad.conformance.subgradients import framework_version, judge
from unigrad.conformance.tolerances import tolerance_for
from unigrad.conformance.transform_cases import select_transform_cases

LOW_PRECISION = frozenset({"float16", "bfloat16"})


@dataclass
class Outcome:
    """One evaluation: float64 copies of the loss and gradients, or the error it raised.

    ``crashed`` marks an error that is a worker process's native crash (never a known difference).
    """

    loss: np.ndarray | None = None
    grads: Any = None
    error: str = ""
    crashed: bool = False


def select_cases(patterns: Iterable[str] | None = None) -> list[Case]:
    """Cases whose name matches a pattern (exact or glob) or that carry a pattern as a tag.

    Raises:
        ValueError: a pattern matches no case (names the pattern).
    """
    if patterns is None:
        return list(CASES)
    chosen: dict[str, Case] = {}
    for pattern in patterns:
        matched = [case for case in CASES if fnmatch.fnmatchcase(case.name, pattern) or pattern in case.tags]
        if not matched and not select_transform_cases([pattern]):  # transform cases: see run_conformance
            raise ValueError(f"no conformance case matches {pattern!r} (see `unigrad check --list`)")
        chosen.update((case.name, case) for case in matched)
    return [case for case in CASES if case.name in chosen]


def framework_versions(backends: Sequence[str]) -> dict[str, str]:
    """Versions of unigrad, NumPy and each backend's framework."""
    versions = {"unigrad": ug.__version__, "numpy": np.__version__, "python": platform.python_version()}
    versions.update({backend: framework_version(backend) for backend in backends})
    return versions


def _loss_of(case: Case, data: Any) -> Callable[..., Any]:
    """The case's loss as unigrad calls it: ``loss(params)`` when the case has no data."""
    if data is None:
        return lambda params: case.loss(params, None)
    return case.loss


def evaluate(case: Case, backend: str, device: str, dtype: str, params: Any, data: Any) -> Outcome:
    """Loss and gradients of ``case`` on one backend, device and dtype, as float64 NumPy."""
    try:
        placed_params = place_tree(params, backend, dtype, device)
        placed_data = place_tree(data, backend, dtype, device)
        loss, grads = ug.value_and_grad(_loss_of(case, data), placed_params, placed_data)
        return Outcome(loss=to_float64(loss).reshape(()), grads=tree_to_float64(grads))
    except Exception as err:  # noqa: BLE001 - a framework refusing an op is a result to report
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        return Outcome(error=message[:300])


def reference(case: Case, params: Any, data: Any) -> tuple[np.ndarray, Any, str]:
    """The float64 reference: (loss, grads, what it is)."""
    # Kink cases evaluate functions at the edge of their domain (sqrt of a negative in an untaken
    # branch): NumPy's warnings there are expected, not news.
    with np.errstate(all="ignore"):
        loss = np.asarray(case.loss(params, data), dtype=np.float64).reshape(())
        if case.expected_grad is not None:
            grads = tree_to_float64(case.expected_grad(params, data))
            return loss, grads, case.reference_name
        return loss, ug.reference_grad(_loss_of(case, data), params, data), "finite differences"


def _status(
    case: Case, backend: str, dtype: str, device: str, leaves: list[LeafMetrics], **context: Any
) -> tuple[str, str]:
    if all(leaf.passed for leaf in leaves):
        return PASS, ""
    # Another valid subgradient (known, with the version); else a declared difference; else fail.
    # context: got, want, tolerance, inputs, against, versions, other_backend.
    return judge(case, backend, dtype, device, leaves, **context)


def _compare(
    case: Case,
    kind: str,
    key: tuple[str, str, str],
    outcome: Outcome,
    against: str,
    want_loss: np.ndarray,
    want_grads: Any,
    tolerance: Tolerance,
    other_backend: str | None = None,
    *,
    inputs: tuple[Any, Any] | None = None,
    versions: dict[str, str] | None = None,
) -> Comparison:
    # inputs: the (params, data) of the case (for its valid gradients; default: the case's own when
    # they do not depend on the seed); versions: backend -> framework version, for reasons.
    backend, device, dtype = key
    base = dict(case=case.name, kind=kind, backend=backend, device=device, dtype=dtype, against=against)
    if outcome.error:
        known = case.known_difference(backend, dtype, device)
        if outcome.crashed:
            status, reason = ERROR, outcome.error
        elif dtype in LOW_PRECISION or outcome.error.startswith(UNAVAILABLE_PREFIX):
            status, reason = UNSUPPORTED, outcome.error
        elif known is not None:
            status, reason = KNOWN, f"{known.reason} ({outcome.error})"
        else:
            status, reason = ERROR, outcome.error
        return Comparison(**base, status=status, rtol=tolerance.rtol, atol=tolerance.atol, reason=reason)
    leaves = [compare_leaf("loss", outcome.loss, want_loss, tolerance)]
    leaves += compare_trees(outcome.grads, want_grads, tolerance)
    status, reason = _status(
        case, backend, dtype, device, leaves, got=outcome.grads, want=want_grads, tolerance=tolerance,
        inputs=inputs, against="convention" if against == case.reference_name else against,
        versions=versions, other_backend=other_backend,
    )  # fmt: skip
    return Comparison(
        **base, status=status, rtol=tolerance.rtol, atol=tolerance.atol, leaves=leaves, reason=reason
    )


def _doubled(tolerance: Tolerance) -> Tolerance:
    # Two results each within tol of the reference can be 2 tol apart.
    return Tolerance(2 * tolerance.rtol, 2 * tolerance.atol)


Key = tuple[str, str, str]  # (backend, device, dtype)
Reference = tuple[np.ndarray, Any, str]  # (loss, grads, what it is)


def evaluate_case(
    case: Case, backend: str, devices: Sequence[str], dtypes: Sequence[str], seed: int
) -> dict[Key, Outcome]:
    """Loss and gradients of ``case`` on one backend, for each of its devices and the case's dtypes.

    This is the only phase that runs framework code: the isolated runner calls it in a worker process
    per backend (``unigrad.conformance.worker``) and compares in the parent with :func:`compare_case`.
    """
    params, data = case.make_inputs(seed)
    wanted = [d for d in dtypes if d in case.dtypes]
    return {
        (backend, device, dtype): evaluate(case, backend, device, dtype, params, data)
        for device in devices
        for dtype in wanted
    }


def compare_case(
    case: Case,
    outcomes: dict[Key, Outcome],
    ref: Reference,
    *,
    inputs: tuple[Any, Any] | None = None,
    versions: dict[str, str] | None = None,
) -> list[Comparison]:
    """Every comparison (see the module docstring) of one case's outcomes, in backend order.

    ``inputs`` are the case's ``(params, data)`` (where its valid gradients are evaluated) and
    ``versions`` the backends' framework versions (named in the reasons of known choices).
    """
    ref_loss, ref_grads, ref_name = ref
    context = {"inputs": inputs, "versions": versions}
    comparisons = []
    for key, outcome in outcomes.items():
        backend, device, dtype = key
        own64 = outcomes.get((backend, device, "float64"))
        if dtype == "float64" or own64 is None or own64.error:
            against, want_loss, want_grads = ref_name, ref_loss, ref_grads
        else:
            against, want_loss, want_grads = f"{backend}/{device}/float64", own64.loss, own64.grads
        tolerance = tolerance_for(dtype, case)
        comparisons.append(
            _compare(case, "reference", key, outcome, against, want_loss, want_grads, tolerance, **context)
        )

    for (a_key, a), (b_key, b) in itertools.combinations(outcomes.items(), 2):
        same_place = a_key[1] == b_key[1] and a_key[2] == b_key[2]
        if a_key[0] != b_key[0] and same_place and not a.error and not b.error:
            comparisons.append(
                _compare(
                    case, "pairwise", a_key, a, f"{b_key[0]}/{b_key[1]}/{b_key[2]}",
                    b.loss, b.grads, _doubled(tolerance_for(a_key[2], case)), other_backend=b_key[0],
                    **context,
                )
            )  # fmt: skip
    for key, outcome in outcomes.items():
        backend, device, dtype = key
        cpu = outcomes.get((backend, "cpu", dtype))
        if device.startswith("gpu") and cpu is not None and not cpu.error and not outcome.error:
            comparisons.append(
                _compare(
                    case, "device", key, outcome, f"{backend}/cpu/{dtype}",
                    cpu.loss, cpu.grads, _doubled(tolerance_for(dtype, case)), **context,
                )
            )  # fmt: skip
    return comparisons
