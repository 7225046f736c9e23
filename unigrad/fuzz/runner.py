"""Run one plan on one backend through unigrad: reverse mode, and one more transform.

Everything runs in this process through the public API (``ug.value_and_grad``, ``ug.jvp``,
``ug.hvp``, ``ug.value_and_grad_fn(jit=True)``), NumPy in and NumPy out, so what is fuzzed is
exactly what a user of unigrad gets. An exception is recorded, not raised: a backend that refuses
what the others compute is itself a difference.

Example:
    >>> from unigrad.fuzz.program import Program, Step, make_plan
    >>> plan = make_plan(Program(((2,),), (1.0, 2.0), (Step("square", (0, 0, 0), 0, 0.0),)))
    >>> run = run_backend(plan, "torch", "none")
    >>> run.loss, [g.tolist() for g in run.grads]
    (-1.0, [[2.0, -2.0]])
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from unigrad.fuzz.program import Plan, loss_function
from unigrad.fuzz.reference import STEP

#: Transforms checked beyond reverse mode, one per program.
EXTRAS = ("jvp", "hvp", "compiled")


@dataclass
class BackendRun:
    """What one backend computed for one plan (float64 NumPy copies), or the error it raised."""

    backend: str
    loss: float | None = None
    grads: list[np.ndarray] | None = None
    error: str | None = None
    #: the directional derivative along :func:`direction` (``extra == 'jvp'``)
    jvp: float | None = None
    #: the Hessian-vector product along :func:`direction`, at float64 (``extra == 'hvp'``)
    hvp: list[np.ndarray] | None = None
    #: finite differences of this backend's float64 gradient along the direction, and their error
    hvp_reference: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    #: loss and gradient of ``value_and_grad_fn(jit=True)`` (``extra == 'compiled'``)
    compiled: tuple[float, list[np.ndarray]] | None = None
    extra_error: str | None = None


def direction(plan: Plan) -> list[np.ndarray]:
    """A fixed pseudo-random direction per plan (exact in float32), for jvp and hvp."""
    key = zlib.crc32(b"".join(np.ascontiguousarray(x).tobytes() for x in plan.inputs))
    rng = np.random.default_rng(key)
    return [rng.standard_normal(x.shape).astype(np.float32).astype(np.float64) for x in plan.inputs]


def _params(plan: Plan, dtype: str, inputs: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    values = plan.inputs if inputs is None else inputs
    return {name: np.asarray(x, dtype=dtype) for name, x in zip(plan.names(), values, strict=True)}


def _floats(tree: dict[str, Any], plan: Plan) -> list[np.ndarray]:
    return [np.asarray(tree[name], dtype=np.float64) for name in plan.names()]


def _describe(err: Exception) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def gradient(plan: Plan, backend: str, inputs: list[np.ndarray], dtype: str = "float64") -> list[np.ndarray]:
    """``backend``'s gradient of the plan's loss at ``inputs``."""
    import unigrad as ug

    grads = ug.grad(loss_function(plan), _params(plan, dtype, inputs), backend=backend)
    return _floats(grads, plan)


def rounding_noise(
    plan: Plan, backend: str, loss: float, grads: list[np.ndarray]
) -> tuple[float, list[np.ndarray]]:
    """How much ``backend``'s loss and gradient move when every input moves by a few units of round-off.

    The true function barely moves, so what moves is round-off, including the backward pass's own
    (``x / x`` in float32 has a gradient of ``1e-4`` at ``x = 1e-3``, zero in exact arithmetic),
    which perturbing intermediate values cannot show. The inputs move both ways and the smaller of
    the two moves counts: a kink next to the point moves the result one way only.
    """
    eps = float(np.finfo(plan.dtype).eps)
    loss_moves, grad_moves = [], []
    for sign in (1.0, -1.0):
        nudged = [x * (1 + sign * 4 * eps) for x in plan.inputs]
        moved_loss, moved = value_and_gradient(plan, backend, nudged, plan.dtype)
        loss_moves.append(abs(moved_loss - loss))
        with np.errstate(invalid="ignore"):
            grad_moves.append([np.nan_to_num(np.abs(g - g0)) for g, g0 in zip(moved, grads, strict=True)])
    grad_noise = [np.minimum(a, b) for a, b in zip(*grad_moves, strict=True)]
    return float(np.nan_to_num(min(loss_moves))), grad_noise


def hvp_noise(plan: Plan, backend: str, product: list[np.ndarray]) -> list[np.ndarray]:
    """How much ``backend``'s float64 Hessian-vector product moves under a few units of input round-off."""
    import unigrad as ug

    vectors = dict(zip(plan.names(), direction(plan), strict=True))
    moves = []
    for sign in (1.0, -1.0):
        nudged = [x * (1 + sign * 4 * np.finfo(np.float64).eps) for x in plan.inputs]
        moved = _floats(
            ug.hvp(loss_function(plan), _params(plan, "float64", nudged), vectors, backend=backend), plan
        )
        with np.errstate(invalid="ignore"):
            moves.append([np.nan_to_num(np.abs(a - b)) for a, b in zip(moved, product, strict=True)])
    return [np.minimum(a, b) for a, b in zip(*moves, strict=True)]


def value_and_gradient(
    plan: Plan, backend: str, inputs: list[np.ndarray], dtype: str
) -> tuple[float, list[np.ndarray]]:
    """``backend``'s loss and gradient of the plan at ``inputs``, at ``dtype``."""
    import unigrad as ug

    loss, grads = ug.value_and_grad(loss_function(plan), _params(plan, dtype, inputs), backend=backend)
    return float(loss), _floats(grads, plan)


def gradient_differences(
    plan: Plan, backend: str, vector: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Central differences of ``backend``'s float64 gradient along ``vector``, with an error estimate.

    The estimate adds truncation (steps ``h`` and ``2h`` compared) and round-off: the gradient's own
    noise, measured as its change under a relative move of 1e-12 (a gradient that is a difference of
    large terms, such as that of ``x / x``, is noise of the size of those terms), divided by ``h``.
    """
    size = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in vector) or 1.0
    scale = max([1.0] + [float(np.max(np.abs(x))) for x in plan.inputs if x.size])
    h = STEP * scale / size
    moved = {}
    for factor in (1, -1, 2, -2):
        point = [x + factor * h * v for x, v in zip(plan.inputs, vector, strict=True)]
        moved[factor] = gradient(plan, backend, point)
    at_point = gradient(plan, backend, list(plan.inputs))
    nudged = gradient(
        plan, backend, [x * (1 + 1e-12 * np.sign(v)) for x, v in zip(plan.inputs, vector, strict=True)]
    )
    small = [(a - b) / (2 * h) for a, b in zip(moved[1], moved[-1], strict=True)]
    large = [(a - b) / (4 * h) for a, b in zip(moved[2], moved[-2], strict=True)]
    noise = [np.max(np.abs(a - b)) for a, b in zip(at_point, nudged, strict=True)]
    errors = [np.abs(s - lg) + 4 * n / h for s, lg, n in zip(small, large, noise, strict=True)]
    return small, errors


def run_backend(plan: Plan, backend: str, extra: str) -> BackendRun:
    """Reverse mode on ``backend`` at the plan's dtype, then ``extra`` (``'none'`` for nothing more)."""
    import unigrad as ug

    run = BackendRun(backend)
    loss_fn = loss_function(plan)
    params = _params(plan, plan.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loss, grads = ug.value_and_grad(loss_fn, params, backend=backend)
            run.loss, run.grads = float(loss), _floats(grads, plan)
        except Exception as err:  # noqa: BLE001 - any failure of a backend is a result
            run.error = _describe(err)
            return run
        vector = direction(plan)
        try:
            if extra == "jvp":
                tangents = {name: v.astype(plan.dtype) for name, v in zip(plan.names(), vector, strict=True)}
                _, out_tangent = ug.jvp(loss_fn, params, tangents, backend=backend)
                run.jvp = float(out_tangent)
            elif extra == "hvp":
                vectors = dict(zip(plan.names(), vector, strict=True))
                product = ug.hvp(loss_fn, _params(plan, "float64"), vectors, backend=backend)
                run.hvp = _floats(product, plan)
                run.hvp_reference = gradient_differences(plan, backend, vector)
            elif extra == "compiled":
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ug.CompileFallbackWarning)
                    step = ug.value_and_grad_fn(loss_fn, backend=backend, jit=True)
                    loss, grads = step(params)
                fallback = [w for w in caught if issubclass(w.category, ug.CompileFallbackWarning)]
                if fallback:  # the step ran eagerly: nothing compiled to compare, and the compiler failed
                    reason = str(fallback[0].message).split("(", 1)[-1]
                    run.extra_error = f"{reason.split(');')[0]} (the compiler failed; unigrad ran eagerly)"
                else:
                    run.compiled = (float(loss), _floats(grads, plan))
        except Exception as err:  # noqa: BLE001
            run.extra_error = _describe(err)
    return run
