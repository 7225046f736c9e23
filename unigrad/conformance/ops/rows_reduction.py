"""Op table rows: reductions, scans and the softmax family, with ties, zeros and masked entries.

Special points: ties of ``max``/``min`` (the tied elements share one unit of gradient), zeros in
``prod``/``cumulative_prod`` (the derivative is the product of the others, which a division by the
element would turn into nan), and ``-inf`` logits in ``softmax``/``logsumexp`` (a masked entry gets
gradient 0, the others the softmax of the rest).

Example:
    >>> from unigrad.conformance.ops.rows_reduction import ROWS
    >>> next(row for row in ROWS if row.name == "prod").special[0].label
    'zeros'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad.conformance.case import KnownDifference
from unigrad.conformance.ops import valid
from unigrad.conformance.ops.domains import DISTINCT, NONZERO, REAL
from unigrad.conformance.ops.table import Op, Special, Unavailable, samples

#: A 3×4 matrix (default: the hand-written cases' shape), a 0-d array, a batch of them.
_ALL = samples(((3, 4),), scalar=((),), batched=((2, 3, 4),))
#: The same plus an empty input, for reductions defined on one (sum of nothing is 0).
_ALL_EMPTY = samples(((3, 4),), scalar=((),), empty=((0, 4),))
#: Along axis 1 of a 3×4 matrix, and of a batch.
_AXIS = samples(((3, 4),), batched=((2, 3, 4),))


def _reduction(name: str, fn: Any, domain: Any = REAL, **options: Any) -> Op:
    options.setdefault("samples", _AXIS)
    return Op(name, "reduction", fn, (domain,), **options)


def _prod_zeros_grad(x: np.ndarray) -> tuple[np.ndarray]:
    others = np.empty_like(x)
    for index in np.ndindex(x.shape):
        row = np.delete(x[index[0]], index[1])
        others[index] = np.prod(row)
    return (others,)


def _cumprod_zeros_grad(x: np.ndarray) -> tuple[np.ndarray]:
    grad = np.zeros_like(x)
    for row in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(i, x.shape[1]):  # output j = prod(x[:j+1]) depends on x[i] for i <= j
                grad[row, i] += np.prod(np.delete(x[row, : j + 1], i))
    return (grad,)


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


_MASKED = np.array([[0.0, -np.inf, 1.0], [2.0, -1.0, -np.inf]])
_MASK_WEIGHTS = np.array([[1.0, 2.0, 3.0], [0.5, 1.5, 2.5]])
_TIES = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
_ZEROS = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])


def _ties(extreme: Any, name: str) -> Special:
    def convention(x: np.ndarray) -> tuple[np.ndarray]:
        tied = x == extreme(x, axis=1, keepdims=True)
        return (tied / tied.sum(axis=1, keepdims=True),)

    return Special(
        "ties",
        (_TIES if extreme is np.max else -_TIES,),
        convention,
        f"{name} along an axis over tied elements: the gradient is shared equally",
        lambda x: valid.ties_share_one_unit(
            x == extreme(x, axis=1, keepdims=True), groups=np.indices(x.shape)[0]
        ),
    )


# Found by these rows (MLX 0.32.4, CPU); reported.
_MLX_PROD_HVP = Unavailable(
    "mlx",
    "MLX 0.32's gradient of prod goes through cumprod, which has no JVP ('JVP is not implemented for "
    "cumulative prod/min/max'), so no second order (unigrad's MLX hvp is forward-over-reverse)",
    modes=("hvp",),
)
_MLX_LOG_SOFTMAX_HVP = Unavailable(
    "mlx",
    "MLX computes float64 exp with a float32 approximation (ml-explore/mlx issue #3047): its float64 "
    "log_softmax hvp is float32-accurate (measured max relative error 3.6e-6)",
    modes=("hvp",),
    dtypes=("float64",),
)
_MLX_SOFTMAX = KnownDifference(
    ("mlx",),
    "MLX computes float64 exp with a float32 approximation (ml-explore/mlx issue #3047), so its float64 "
    "softmax gradient is float32-accurate: measured max relative error 1.1e-5 (batched sample)",
    dtypes=("float64",),
)

ROWS: list[Op] = [
    _reduction("sum", lambda xp, x: xp.sum(x), samples=_ALL_EMPTY, hvp=False),
    _reduction("sum", lambda xp, x: xp.sum(x, axis=1, keepdims=True), label="axis_keepdims", hvp=False),
    _reduction("mean", lambda xp, x: xp.mean(x), samples=_ALL, hvp=False),
    _reduction("mean", lambda xp, x: xp.mean(x, axis=0), label="axis", hvp=False),
    _reduction(
        "prod",
        lambda xp, x: xp.prod(x, axis=1),
        NONZERO,
        unavailable=(_MLX_PROD_HVP,),
        special=(
            Special(
                "zeros",
                (_ZEROS,),
                _prod_zeros_grad,
                "d prod / d x_i = the product of the others (0 at two zeros)",
            ),
        ),
    ),
    _reduction("max", lambda xp, x: xp.max(x, axis=1), DISTINCT, special=(_ties(np.max, "max"),), hvp=False),
    _reduction("min", lambda xp, x: xp.min(x, axis=1), DISTINCT, special=(_ties(np.min, "min"),), hvp=False),
    _reduction("var", lambda xp, x: xp.var(x), samples=_ALL),
    _reduction("var", lambda xp, x: xp.var(x, axis=1, correction=1), label="unbiased"),
    _reduction("std", lambda xp, x: xp.std(x, axis=1), NONZERO),
    _reduction("std", lambda xp, x: xp.std(x, axis=0, correction=1), NONZERO, label="unbiased"),
    _reduction("cumulative_sum", lambda xp, x: xp.cumulative_sum(x, axis=1), hvp=False),
    _reduction(
        "cumulative_sum",
        lambda xp, x: xp.cumulative_sum(x, axis=1, include_initial=True),
        label="include_initial",
        hvp=False,
    ),
    _reduction(
        "cumulative_prod",
        lambda xp, x: xp.cumulative_prod(x, axis=1),
        NONZERO,
        special=(
            Special(
                "zeros",
                (_ZEROS,),
                _cumprod_zeros_grad,
                "d cumprod / d x_i = the sum over outputs of the product of the other factors (no 0/0)",
            ),
        ),
    ),
    _reduction("diff", lambda xp, x: xp.diff(x, axis=1), hvp=False),
    _reduction(
        "diff", lambda xp, x: xp.diff(x, axis=0, n=1, prepend=x[:1] * 0.5), label="prepend", hvp=False
    ),
    # Extras (outside the standard).
    _reduction(
        "logsumexp",
        lambda xp, x: xp.logsumexp(x, axis=1),
        special=(
            Special(
                "masked",
                (_MASKED,),
                lambda x: (_softmax(x) * np.array([[1.0], [1.0]]),),
                "logsumexp with -inf entries: gradient softmax(x), 0 at the masked entries",
            ),
        ),
    ),
    _reduction(
        "softmax",
        lambda xp, x: xp.softmax(x, axis=1),
        known=(_MLX_SOFTMAX,),
        special=(
            Special(
                "masked",
                (_MASKED,),
                lambda x: (
                    _softmax(x) * (_MASK_WEIGHTS - (_softmax(x) * _MASK_WEIGHTS).sum(axis=1, keepdims=True)),
                ),
                "softmax with -inf entries (masked attention): 0 at the masked entries, the softmax "
                "Jacobian of the others",
                weights=(_MASK_WEIGHTS,),
            ),
        ),
    ),
    _reduction("log_softmax", lambda xp, x: xp.log_softmax(x, axis=1), unavailable=(_MLX_LOG_SOFTMAX_HVP,)),
]
