"""Op table rows: linear algebra (``matmul``... and the ``linalg`` extension), float64 and float32.

Decompositions return what is unique: ``eigh``'s eigenvectors, ``qr``'s factors and ``svd``'s singular
vectors enter the loss squared elementwise (a column's sign is a free choice of LAPACK), and the
inputs of ``cholesky``, ``eigh`` and ``eigvalsh`` are symmetrised inside the function (they read one
triangle; the gradient of the symmetric function is defined). Special points: ``det`` of a singular
matrix (its gradient, the cofactor matrix, exists there), the norms at zero (their subdifferential).
Declared gaps (``unigrad._namespace.gap_for``: MLX's decompositions, a full SVD's extra columns) are
``n/a`` with their reason.

Example:
    >>> from unigrad.conformance.ops.rows_linalg import ROWS
    >>> [row.slug for row in ROWS if row.name == "linalg.svd"]
    ['linalg_svd', 'linalg_svd_full']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad.conformance.case import KnownDifference, Tolerance
from unigrad.conformance.ops.domains import (
    DISTINCT,
    NONZERO,
    REAL,
    SPD,
    SPREAD_SINGULAR,
    SPREAD_SPECTRUM,
    WELL_CONDITIONED,
    WITH_ZEROS,
    Domain,
)
from unigrad.conformance.ops.table import FLOAT_DTYPES, Op, Special, Unavailable, call, samples
from unigrad.conformance.subgradients import NormAtMost, Subdifferential, interval

_SQUARE = samples(((4, 4),), batched=((2, 4, 4),))


def _linalg(name: str, fn: Any, domains: tuple[Domain, ...], *shapes: tuple[int, ...], **options: Any) -> Op:
    options.setdefault("samples", samples(shapes))
    return Op(name, "linalg", fn, domains, dtypes=FLOAT_DTYPES, **options)


def _square(name: str, fn: Any, domain: Domain = WELL_CONDITIONED, **options: Any) -> Op:
    options.setdefault("samples", _SQUARE)
    return _linalg(name, fn, (domain,), **options)


def _symmetric(xp: Any, x: Any) -> Any:
    return (x + xp.matrix_transpose(x)) / 2.0


def _eigh(xp: Any, x: Any) -> Any:
    values, vectors = xp.linalg.eigh(_symmetric(xp, x))
    return values, vectors * vectors


def _slogdet(xp: Any, x: Any) -> Any:
    sign, logabsdet = xp.linalg.slogdet(x)
    return sign * logabsdet  # the sign is piecewise constant: it enters through the product


def _qr(xp: Any, x: Any) -> Any:
    q, r = xp.linalg.qr(x)
    return q * q, r * r


def _svd(full: bool) -> Any:
    def fn(xp: Any, x: Any) -> Any:
        u, s, vh = xp.linalg.svd(x, full_matrices=full)
        return u * u, s, vh * vh

    return fn


def _cofactors(x: np.ndarray) -> tuple[np.ndarray]:
    """d det / d x: the cofactor matrix, which exists (and is not zero) at a matrix of rank n - 1."""
    n = x.shape[0]
    minors = np.empty_like(x)
    for i in range(n):
        for j in range(n):
            minors[i, j] = (-1) ** (i + j) * np.linalg.det(np.delete(np.delete(x, i, 0), j, 1))
    return (minors,)


_DET_SINGULAR = (
    KnownDifference(
        ("torch",),
        "torch 2.13 returns 0 for d det / dX at a singular matrix (rank n-1; the gradient is the "
        "cofactor matrix, entries up to 4 here: relative error 1); JAX and MLX return the cofactors",
    ),
    KnownDifference(
        ("tensorflow",),
        "TensorFlow 2.21's gradient of det inverts the matrix: at a singular one it raises "
        "InvalidArgumentError (Input is not invertible)",
    ),
)
_MLX_LU = Unavailable(
    "mlx",
    "MLX 0.32 has no VJP or JVP for LUF (the LU factorisation), which unigrad's MLX det uses above 3x3 "
    "and slogdet always ('[Primitive::vjp] Not implemented for LUF'); not among the namespace's "
    "declared gaps yet (reported)",
)
_SINGULAR = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # rank 2: row 1 = 2 x row 0
_NORM_AT_ZERO_KNOWN = KnownDifference(
    ("tensorflow", "jax", "mlx"),
    "the 2-norm's gradient x / ||x|| at x = 0 is evaluated as 0 / 0 = nan; torch masks the zero norm "
    "and returns 0 (as the kink_norm_at_zero case)",
)


def _unit_ball(x: np.ndarray) -> Subdifferential:
    ball = NormAtMost({"x": np.ones_like(x)}, 1.0)
    return Subdifferential({"x": interval(-1.0, 1.0)}, norms=(ball,))


ROWS: list[Op] = [
    _linalg("matmul", call("matmul"), (REAL, REAL), (3, 4), (4, 2)),
    _linalg(
        "matmul",
        call("matmul"),
        (REAL, REAL),
        (2, 3, 4),
        (4, 2),
        label="broadcast",
        samples=samples(((2, 3, 4), (4, 2)), vector=((4,), (4, 2))),
    ),
    _linalg("tensordot", lambda xp, x, y: xp.tensordot(x, y, axes=1), (REAL, REAL), (3, 4), (4, 2)),
    _linalg(
        "tensordot",
        lambda xp, x, y: xp.tensordot(x, y, axes=([0, 1], [1, 0])),
        (REAL, REAL),
        (3, 4),
        (4, 3),
        label="pairs",
    ),
    _linalg("vecdot", call("vecdot"), (REAL, REAL), (3, 4), (3, 4)),
    _linalg("linalg.matmul", call("linalg.matmul"), (REAL, REAL), (3, 4), (4, 2)),
    _linalg("linalg.matrix_transpose", call("linalg.matrix_transpose"), (REAL,), (3, 4), hvp=False),
    _linalg(
        "linalg.tensordot", lambda xp, x, y: xp.linalg.tensordot(x, y, axes=1), (REAL, REAL), (3, 4), (4, 2)
    ),
    _linalg("linalg.vecdot", call("linalg.vecdot"), (REAL, REAL), (3, 4), (3, 4)),
    _linalg(
        "linalg.solve",
        call("linalg.solve"),
        (WELL_CONDITIONED, REAL),
        (4, 4),
        (4, 2),
        samples=samples(((4, 4), (4, 2)), batched=((2, 4, 4), (2, 4, 2))),
    ),
    _square("linalg.inv", call("linalg.inv")),
    _square(
        "linalg.det",
        call("linalg.det"),
        unavailable=(_MLX_LU,),
        special=(
            Special(
                "singular",
                (_SINGULAR,),
                _cofactors,
                "d det / dX at a singular X of rank n-1: the cofactor matrix",
                known=_DET_SINGULAR,
            ),
        ),
    ),
    _square("linalg.slogdet", _slogdet, unavailable=(_MLX_LU,)),
    _square("linalg.cholesky", lambda xp, x: xp.linalg.cholesky(_symmetric(xp, x)), SPD),
    _square("linalg.eigh", _eigh, SPREAD_SPECTRUM),
    _square(
        "linalg.eigvalsh",
        lambda xp, x: xp.linalg.eigvalsh(_symmetric(xp, x)),
        SPREAD_SPECTRUM,
        tolerances={"float64": Tolerance(1e-6, 1e-7)},
        tolerance_reason=(
            "the hvp reference (five-point differences of finite-difference gradients) is good to about "
            "1e-8 absolute here; torch, JAX and TensorFlow agree with each other to 1e-12 and differ "
            "from it by 1.2e-5 relative at a small element"
        ),
    ),
    _linalg("linalg.qr", _qr, (SPREAD_SINGULAR,), (5, 3), samples=samples(((5, 3),), square=((4, 4),))),
    _linalg("linalg.svd", _svd(False), (SPREAD_SINGULAR,), (5, 3), gap={"full_matrices": False}),
    # A full SVD's extra columns are no function of the input: a declared gap everywhere (n/a).
    _linalg("linalg.svd", _svd(True), (SPREAD_SINGULAR,), (5, 3), label="full", gap={"full_matrices": True}),
    _linalg("linalg.svdvals", call("linalg.svdvals"), (SPREAD_SINGULAR,), (5, 3)),
    _linalg("linalg.pinv", call("linalg.pinv"), (SPREAD_SINGULAR,), (5, 3)),
    _square("linalg.matrix_power", lambda xp, x: xp.linalg.matrix_power(x / 3.0, 3), gap={"n": 3}),
    _square(
        "linalg.matrix_power", lambda xp, x: xp.linalg.matrix_power(x, -2), label="negative", gap={"n": -2}
    ),
    _linalg("linalg.cross", call("linalg.cross"), (REAL, REAL), (4, 3), (4, 3)),
    _linalg("linalg.outer", call("linalg.outer"), (REAL, REAL), (4,), (3,)),
    _linalg("linalg.diagonal", lambda xp, x: xp.linalg.diagonal(x, offset=1), (REAL,), (4, 4), hvp=False),
    _linalg("linalg.trace", call("linalg.trace"), (REAL,), (4, 4), hvp=False),
    _linalg(
        "linalg.vector_norm",
        call("linalg.vector_norm"),
        (NONZERO,),
        (3, 4),
        special=(
            Special(
                "at_zero",
                (np.zeros(3),),
                lambda x: (np.zeros_like(x),),
                "the 2-norm at the zero vector: gradient 0 (the minimal-norm subgradient)",
                _unit_ball,
                known=(_NORM_AT_ZERO_KNOWN,),
            ),
        ),
    ),
    _linalg("linalg.vector_norm", call("linalg.vector_norm"), (WITH_ZEROS,), (3, 4), label="with_zeros"),
    _linalg(
        "linalg.vector_norm",
        lambda xp, x: xp.linalg.vector_norm(x, ord=1, axis=1),
        (NONZERO,),
        (3, 4),
        label="ord_1",
        hvp=False,
    ),
    _linalg(
        "linalg.vector_norm",
        lambda xp, x: xp.linalg.vector_norm(x, ord=np.inf, axis=0),
        (DISTINCT,),
        (3, 4),
        label="ord_inf",
        hvp=False,
    ),
    _linalg(
        "linalg.vector_norm",
        lambda xp, x: xp.linalg.vector_norm(x, ord=3, axis=1, keepdims=True),
        (NONZERO,),
        (3, 4),
        label="ord_3",
    ),
    _linalg("linalg.matrix_norm", call("linalg.matrix_norm"), (REAL,), (4, 4), gap={"ord": "fro"}),
    _linalg(
        "linalg.matrix_norm",
        call("linalg.matrix_norm"),
        (WITH_ZEROS,),
        (4, 4),
        label="with_zeros",
        gap={"ord": "fro"},
    ),
    _linalg(
        "linalg.matrix_norm",
        lambda xp, x: xp.linalg.matrix_norm(x, ord="nuc"),
        (SPREAD_SINGULAR,),
        (5, 3),
        label="nuc",
        gap={"ord": "nuc"},
    ),
    _linalg(
        "linalg.matrix_norm",
        lambda xp, x: xp.linalg.matrix_norm(x, ord=2),
        (SPREAD_SINGULAR,),
        (5, 3),
        label="ord_2",
        gap={"ord": 2},
    ),
    _linalg(
        "linalg.matrix_norm",
        lambda xp, x: xp.linalg.matrix_norm(x, ord=-2),
        (SPREAD_SINGULAR,),
        (4, 4),
        label="ord_minus_2",
        gap={"ord": -2},
    ),
    _linalg(
        "linalg.matrix_norm",
        lambda xp, x: xp.linalg.matrix_norm(x, ord=1),
        (NONZERO,),
        (4, 4),
        label="ord_1",
        gap={"ord": 1},
        hvp=False,
    ),
    _linalg(
        "linalg.matrix_norm",
        lambda xp, x: xp.linalg.matrix_norm(x, ord=np.inf),
        (NONZERO,),
        (4, 4),
        label="ord_inf",
        gap={"ord": np.inf},
        hvp=False,
    ),
    # Extra (outside the standard).
    _linalg("einsum", lambda xp, x, y: xp.einsum("ij,jk->ik", x, y), (REAL, REAL), (3, 4), (4, 2)),
    _linalg(
        "einsum",
        lambda xp, x, y: xp.einsum("bij,bj->bi", x, y),
        (REAL, REAL),
        (2, 4, 4),
        (2, 4),
        label="batched",
    ),
]
