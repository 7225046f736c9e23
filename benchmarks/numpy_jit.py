"""Case 11: NumPy params into a compiled JAX step, against handing the same list to ``jax.jit`` yourself.

A real client (quimb's optimiser) keeps its parameters as a list of NumPy arrays and calls
``ug.value_and_grad_fn(loss, jit=True, backend="jax")`` on it; the native form is
``jax.jit(jax.value_and_grad(loss))`` on the same list, with its results turned into NumPy (as unigrad
hands them back). Reduced here to ten 8×8 leaves and a tanh-matmul chain, no data: float32 leaves,
and float64 ones (NumPy's default dtype; the native form runs inside ``jax.enable_x64(True)``).
Target: parity, read as the compiled steps' ``≤ 1.02×`` (a median within the same-run noise).

Case 12: ``hvp_fn`` on a NumPy float64 point and vector, as a SciPy solver's ``hessp`` calls it,
against ``jax.jit(jvp(grad))`` on the same arrays inside ``jax.enable_x64(True)``; target the
compiled products' ``≤ 1.10×``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks._results import Result, fmt_ratio, fmt_time, pending
from benchmarks._timing import interleave, ratios
from benchmarks.workloads import is_installed

CASE = "11. NumPy params into a compiled JAX step, ten 8×8 {dtype} leaves"
LIMIT = 1.02
NATIVE = "jax.jit(jax.value_and_grad) on the NumPy list, NumPy results"
#: The dtypes of the rows: float32 (the client's kind) and float64, NumPy's default, for which the
#: native form enters JAX's 64-bit mode around the call (``jax.enable_x64``), as unigrad does.
DTYPES = ("float32", "float64")


def contenders(leaves: int = 10, size: int = 8, dtype: str = "float32") -> dict[str, Callable[[], Any]]:
    """The native call and unigrad's, each returning ``(loss, grads)`` as NumPy."""
    import contextlib

    import jax
    import jax.numpy as jnp
    import numpy as np

    import unigrad as ug

    rng = np.random.default_rng(0)
    params = [(rng.standard_normal((size, size)) * 0.3).astype(dtype) for _ in range(leaves)]
    start = rng.standard_normal((4, size)).astype(dtype)

    def chain(p: list[Any]) -> Any:
        x = jnp.asarray(start)
        for w in p:
            x = jnp.tanh(x @ w)
        return jnp.sum(x**2)

    native_step = jax.jit(jax.value_and_grad(chain))
    wide = dtype == "float64"

    def native() -> Any:
        with jax.enable_x64(True) if wide else contextlib.nullcontext():
            loss, grads = native_step(params)
        return np.asarray(loss), [np.array(g) for g in grads]

    step = ug.value_and_grad_fn(chain, jit=True, backend="jax")
    return {NATIVE: native, "unigrad": lambda: step(params)}


HVP_CASE = "12. hvp_fn on a NumPy float64 point and vector (a solver's hessp), 50 elements"
HVP_LIMIT = 1.10  # the compiled products' target (case 9)
HVP_NATIVE = "jax.jit(jvp(grad)) inside jax.enable_x64(True), NumPy result"


def hvp_contenders(size: int = 50) -> dict[str, Callable[[], Any]]:
    """A SciPy-style ``hessp``: the native compiled product and unigrad's, each returning NumPy."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import unigrad as ug

    rng = np.random.default_rng(0)
    factor = rng.standard_normal((size, size))
    matrix = factor @ factor.T / size
    point, vector = rng.standard_normal(size), rng.standard_normal(size)

    def cost(p: Any) -> Any:
        return 0.5 * p @ (jnp.asarray(matrix) @ p) + jnp.sum(jnp.cos(p))

    native_product = jax.jit(lambda p, t: jax.jvp(jax.grad(cost), (p,), (t,))[1])

    def native() -> Any:
        with jax.enable_x64(True):
            return np.array(native_product(point, vector))

    product = ug.hvp_fn(cost, backend="jax")
    return {HVP_NATIVE: native, "unigrad": lambda: product(point, vector)}


def run(backends: tuple[str, ...], *, rounds: int = 31) -> list[Result]:
    """One row per dtype and the hvp row on JAX (pending where JAX is not installed; none where not
    asked for)."""
    if "jax" not in backends:
        return []
    return [*(_row(dtype, rounds) for dtype in DTYPES), _hvp_row(rounds)]


def _hvp_row(rounds: int) -> Result:
    if not is_installed("jax"):
        return pending(HVP_CASE, "jax", "jax is not installed", f"≤ {HVP_LIMIT:.2f}×")
    notes = f"baseline: {HVP_NATIVE}; ug.hvp_fn(jit=True, backend='jax')"
    notes += " on the NumPy arrays, product as NumPy"
    return _measured(HVP_CASE, hvp_contenders(), HVP_NATIVE, HVP_LIMIT, notes, rounds)


def _row(dtype: str, rounds: int) -> Result:
    case = CASE.format(dtype=dtype)
    if not is_installed("jax"):
        return pending(case, "jax", "jax is not installed", f"≤ {LIMIT:.2f}×")
    notes = f"baseline: {NATIVE}"
    if dtype == "float64":
        notes += " inside jax.enable_x64(True)"
    notes += "; ug.value_and_grad_fn(jit=True, backend='jax'), gradients as NumPy"
    return _measured(case, contenders(dtype=dtype), NATIVE, LIMIT, notes, rounds)


def _measured(
    case: str, steps: dict[str, Callable[[], Any]], native: str, limit: float, notes: str, rounds: int
) -> Result:
    """The row of ``steps`` (``native`` and ``"unigrad"``), timed interleaved after a first call each
    (which compiles), with three times ``rounds`` rounds: the calls take tens to hundreds of µs."""
    for fn in steps.values():  # compiles, outside the timed rounds
        fn()
    times = interleave(steps, rounds=rounds * 3)
    spread = ratios(times["unigrad"], times[native])
    median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    return Result(
        case,
        "jax",
        fmt_time(median[native]),
        fmt_time(median["unigrad"]),
        fmt_ratio(spread),
        f"≤ {limit:.2f}×",
        spread.median <= limit,
        notes,
        {"ratio": spread.median, "native_s": median[native], "unigrad_s": median["unigrad"]},
    )
