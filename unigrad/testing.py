"""Assertions for other libraries' test suites: the same gradients on every backend.

Example:
    >>> import numpy as np
    >>> import unigrad as ug
    >>> from unigrad.testing import assert_grad_matches_reference
    >>> def loss(p):
    ...     xp = ug.namespace(p)
    ...     return xp.sum(xp.tanh(p["w"]) ** 2)
    >>> assert_grad_matches_reference(loss, {"w": np.array([0.1, -0.5, 2.0])}, backend="numpy")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import unigrad as ug
from unigrad import _tree
from unigrad._host import tree_to_float64
from unigrad.backends import backend_name_of, canonical_name, get_adapter
from unigrad.conformance.case import Case, Tolerance
from unigrad.conformance.compare import compare_trees
from unigrad.conformance.devices import strict_precision
from unigrad.conformance.report_text import describe_failures
from unigrad.conformance.results import Comparison, Report
from unigrad.conformance.runner import framework_versions, run_case
from unigrad.conformance.tolerances import DEFAULT_TOLERANCES, tolerance_for

__all__ = ["assert_data_parallel_matches", "assert_grad_matches_reference", "assert_grads_agree"]


def _dtype_name(leaf: Any) -> str | None:
    owner = backend_name_of(leaf)
    return None if owner is None else get_adapter(owner).dtype_name(leaf)


def _tolerances(dtypes: Sequence[str], rtol: float | None, atol: float | None) -> dict[str, Tolerance]:
    if rtol is None and atol is None:
        return {}
    return {
        d: Tolerance(
            DEFAULT_TOLERANCES[d].rtol if rtol is None else rtol,
            DEFAULT_TOLERANCES[d].atol if atol is None else atol,
        )
        for d in dtypes
    }


def assert_grads_agree(
    loss_fn: Callable[..., Any],
    params: Any,
    data: Any = None,
    *,
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    devices: Sequence[str] = ("cpu",),
    rtol: float | None = None,
    atol: float | None = None,
) -> Report:
    """Assert that ``loss_fn`` has the same gradients on every backend, dtype and device.

    The loss (written with ``ug.namespace``) runs on each backend at each dtype; float64 results are
    compared with central finite differences, lower precisions with the backend's float64 result,
    and backends pairwise. Tolerances default to unigrad's table per dtype.

    Args:
        loss_fn: ``loss_fn(params, data)``, or ``loss_fn(params)`` when ``data`` is ``None``.
        params: pytree of floating arrays of any framework (read as float64 NumPy).
        data: optional pytree; floating leaves are cast to the dtype under test.
        backends: default: every installed one.
        dtypes: default ``("float64", "float32")``.
        devices: device kinds or names (``"cpu"``, ``"gpu"``).
        rtol, atol: override the tolerance table for every dtype.

    Returns:
        The full :class:`~unigrad.conformance.Report` (for further inspection).

    Raises:
        AssertionError: per failing leaf path, the worst element, both values, the absolute and
            relative errors and the tolerance used.
    """
    from unigrad.conformance.devices import available_devices

    backends = list(ug.installed_backends() if backends is None else backends)
    if not backends:
        raise AssertionError("assert_grads_agree: no backend to compare (pip install 'unigrad[all]')")
    dtypes = list(dtypes or ("float64", "float32"))
    params64, data64 = tree_to_float64(params), tree_to_float64(data)
    tolerances = _tolerances(dtypes, rtol, atol)
    case = Case(
        name=getattr(loss_fn, "__name__", "loss_fn"),
        tags=("user",),
        loss=lambda p, d: loss_fn(p) if d is None else loss_fn(p, d),
        inputs=lambda rng: (params64, data64),
        tolerances=tolerances,
        tolerance_reason="given by the caller" if tolerances else "",
    )
    device_map = {
        b: [d for d in available_devices(b) if d in devices or d.split(":")[0] in devices] for b in backends
    }
    report = Report(0, [case.name], backends, dtypes, device_map, framework_versions(backends))
    with strict_precision(backends):
        report.comparisons = run_case(case, backends, device_map, dtypes, seed=0)
    failures = report.failures()
    if failures:
        raise AssertionError(
            f"gradients of {case.name} disagree in {len(failures)} comparison(s):\n"
            + describe_failures(failures)
        )
    return report


def assert_grad_matches_reference(
    loss_fn: Callable[..., Any],
    params: Any,
    data: Any = None,
    *,
    backend: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """A gradcheck that works the same way on every framework: one backend against finite differences.

    ``ug.grad`` runs on ``params`` as given (their framework, dtype and device; NumPy params need
    ``backend=``); the result is compared with float64 central differences of the same loss run on
    NumPy, with the tolerance of the params' dtype unless ``rtol``/``atol`` are given. As in
    ``unigrad check``, the gradient is computed at full float32 precision (TF32 off on GPUs, JAX's
    ``'highest'`` matmul precision), restored afterwards.

    Raises:
        AssertionError: naming each failing leaf path with its worst element and errors.
    """
    computing = canonical_name(backend) if backend else backend_name_of(_tree.flatten(params)[0][0])
    with strict_precision([str(computing)]):  # no TF32: float32 is checked at float32's tolerance
        grads = ug.grad(loss_fn, params, data, backend=backend)
    params64, data64 = tree_to_float64(params), tree_to_float64(data)
    reference = ug.reference_grad(loss_fn, params64, data64)
    # the loosest tolerance among the params' dtypes (a complex dtype: that of its parts)
    parts = {"complex64": "float32", "complex128": "float64"}
    dtype_names = {parts.get(name, name) for name in map(_dtype_name, _tree.flatten(params)[0]) if name}
    dtype = next((d for d in ("bfloat16", "float16", "float32", "float64") if d in dtype_names), "float64")
    default = tolerance_for(dtype)
    tolerance = Tolerance(default.rtol if rtol is None else rtol, default.atol if atol is None else atol)
    leaves = compare_trees(tree_to_float64(grads), reference, tolerance)
    if not all(leaf.passed for leaf in leaves):
        comparison = Comparison(
            case=getattr(loss_fn, "__name__", "loss_fn"),
            kind="reference",
            backend=backend or str(backend_name_of(_tree.flatten(params)[0][0])),
            device="-",
            dtype=dtype,
            against="finite differences",
            status="fail",
            rtol=tolerance.rtol,
            atol=tolerance.atol,
            leaves=leaves,
        )
        raise AssertionError(
            "gradient does not match finite differences:\n" + describe_failures([comparison])
        )


def assert_data_parallel_matches(
    example_loss_fn: Callable[..., Any] | str,
    params: Any,
    batch: Any,
    *,
    backend: str,
    world_size: int = 2,
    rtol: float | None = None,
    launches: Sequence[str] | None = None,
    jit: bool = False,
) -> list[Any]:
    """Assert that the data-parallel step on ``world_size`` local workers equals one process.

    Starts the workers itself, on this machine: PyTorch, ``world_size`` processes in a gloo group;
    JAX, one process with ``world_size`` forced host devices and ``world_size`` processes joined by
    ``jax.distributed``; TensorFlow, ``world_size`` logical CPUs under ``MirroredStrategy`` and
    ``world_size`` ``MultiWorkerMirroredStrategy`` workers from ``TF_CONFIG``. Processes get uneven
    shares of ``batch`` on purpose (7 examples over 2: 4 and 3). Every worker's loss and gradients
    must equal the single-process full-batch ``ug.value_and_grad`` of the mean loss.

    Args:
        example_loss_fn: a function defined at the top level of an importable module (workers import
            it by name), or its name as ``'package.module:function'``; returns per-example losses.
        params: pytree of floating arrays (any framework, or NumPy; sent to the workers as NumPy with
            their dtypes).
        batch: pytree whose array leaves hold the examples along axis 0.
        backend: ``'torch'``, ``'jax'`` or ``'tensorflow'``.
        world_size: workers (processes or devices) per launch.
        rtol: largest allowed ``max|g - ref| / max|ref|`` per leaf (default ``1e-12`` when every param
            is float64, else ``1e-5``).
        launches: ``"devices"`` and/or ``"processes"`` (default: every launch the backend has).
        jit: run the compiled step (``jit=True``).

    Returns:
        One :class:`~unigrad.distributed._launch.WorkerResult` per worker and launch.

    Raises:
        AssertionError: naming the launch, the worker, the leaf path, the worst element and the error.
        NotImportableError: ``example_loss_fn`` is a lambda, a closure or defined in ``__main__``.
        DistributedSetupError: a worker failed to start or crashed (its output is in the message).
    """
    from unigrad.backends import canonical_name
    from unigrad.distributed._launch import LAUNCHES, run_local

    if rtol is None:
        dtypes = {_dtype_name(leaf) for leaf in _tree.flatten(params)[0]}
        rtol = 1e-12 if dtypes == {"float64"} else 1e-5
    backend = canonical_name(backend)
    results = []
    for launch in launches or LAUNCHES.get(backend, ("processes",)):
        results += run_local(
            example_loss_fn, params, batch, backend=backend, launch=launch, world_size=world_size, jit=jit
        )
    problems = []
    for result in results:
        where = f"worker {result.worker} ({result.examples} examples) of launch {result.launch!r}"
        if not result.loss_rel_error <= rtol:
            problems.append(f"  {where}: loss rel error {result.loss_rel_error:.3g} > rtol {rtol:.3g}")
        for path, error in result.leaf_rel_errors.items():
            if not error <= rtol:
                index, got, want = result.worst[path]
                problems.append(
                    f"  {where}: grads of {path} max rel error {error:.3g} > rtol {rtol:.3g} "
                    f"(at {list(index)}: {got!r} vs single process {want!r})"
                )
    if problems:
        raise AssertionError(
            f"data-parallel gradients on {backend} (world size {world_size}, jit={jit}) differ from the "
            f"single-process full-batch gradient:\n" + "\n".join(problems)
        )
    return results
