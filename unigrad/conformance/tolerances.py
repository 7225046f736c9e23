"""Default tolerances per dtype, in one place, with the reasoning behind each number.

Gradients are compared elementwise with NumPy's rule ``|got - want| <= atol + rtol * |want|``
against a float64 reference of the same case. The bounds are for the short chains of operations in
the catalogue (≲ 20 ops between a parameter and the loss, values of order one):

- **float64 vs finite differences** — the reference itself is a central difference with relative
  step ``cbrt(eps) ≈ 6e-6``: truncation and round-off leave about ``1e-9`` relative error on smooth
  functions. ``rtol=1e-6, atol=1e-8`` leaves a margin of ~1000 over that.
- **float32** — unit round-off ``6e-8``; accumulated over a few dozen ops and reductions of ~100
  terms, errors reach ``1e-5`` relative. ``rtol=1e-4, atol=1e-5``.
- **float16** — unit round-off ``5e-4`` and a narrow range: ``rtol=atol=3e-2``.
- **bfloat16** — 8 bits of mantissa (unit round-off ``4e-3``): ``rtol=atol=1e-1``.

On GPUs, TensorFloat-32 matrix multiplies would round float32 operands to 10 mantissa bits (like
float16); the runner turns TF32 off while it runs (``torch.backends.cuda.matmul.allow_tf32 = False``,
``jax.default_matmul_precision('highest')``) so float32 keeps the float32 tolerance on every device.

Example:
    >>> from unigrad.conformance.tolerances import tolerance_for
    >>> tolerance_for("float32")
    Tolerance(rtol=0.0001, atol=1e-05)
"""

from __future__ import annotations

from unigrad.conformance.case import Case, Tolerance

DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-6, atol=1e-8),
    "float32": Tolerance(rtol=1e-4, atol=1e-5),
    "float16": Tolerance(rtol=3e-2, atol=3e-2),
    "bfloat16": Tolerance(rtol=1e-1, atol=1e-1),
}

#: Floor added to ``|want|`` when reporting relative error, so zeros do not divide by zero.
RELATIVE_ERROR_FLOOR = 1e-6


def tolerance_for(dtype: str, case: Case | None = None) -> Tolerance:
    """The tolerance for ``dtype``: the case's override if it has one, else the default."""
    if case is not None and dtype in case.tolerances:
        return case.tolerances[dtype]
    return DEFAULT_TOLERANCES[dtype]
