"""Linear-algebra cases: products, contractions, factorisations and norms.

Factorisations (solve, inv, det, slogdet, cholesky, eigh, qr) run in float64 and float32 only: several
backends have no float16/bfloat16 kernels for them, and their gradients amplify round-off by the
condition number. Matrices are kept well conditioned (``+ n·I``, well-separated spectra) and losses
of eigenvectors and QR factors are invariant to the arbitrary sign of each column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case

#: dtypes in which every backend has factorisation kernels and gradients.
FACTORISATION_DTYPES = ("float64", "float32")


def _shifted(xp: Any, a: Any) -> Any:
    """``a + n·I``: diagonally dominant enough to stay far from singular for ``a`` ~ N(0, 1)."""
    n = a.shape[-1]
    return a + float(n) * xp.eye(n, dtype=a.dtype)


def _spd(xp: Any, m: Any) -> Any:
    """``m mᵀ + n·I``: symmetric positive definite, smallest eigenvalue at least ``n``."""
    return _shifted(xp, xp.matmul(m, xp.matrix_transpose(m)))


def _diagonal(xp: Any, a: Any) -> Any:
    """The diagonal of a square matrix (the namespace has no ``diagonal``)."""
    return xp.sum(a * xp.eye(a.shape[-1], dtype=a.dtype), axis=-1)


# -- products and contractions ----------------------------------------------------------------------


def _matmul_matrix_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.sum(xp.sin(xp.matmul(params["a"], params["b"])))


def _matmul_matrix_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(4, 2))}, None


def _matmul_vector_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.sum(xp.square(xp.matmul(params["a"], params["x"]) - data["y"]))


def _matmul_vector_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {"a": rng.normal(size=(4, 3)), "x": rng.normal(size=3)}
    return params, {"y": rng.normal(size=4)}


def _matmul_batched_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.sum(xp.cos(xp.matmul(params["a"], params["b"])))


def _matmul_batched_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(2, 3, 4)), "b": rng.normal(size=(2, 4, 3))}, None


def _einsum_bilinear_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.einsum("bi,ij,bj->", params["x"], params["w"], data["y"])


def _einsum_bilinear_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {"x": rng.normal(size=(3, 4)), "w": rng.normal(size=(4, 5))}
    return params, {"y": rng.normal(size=(3, 5))}


def _einsum_batched_loss(params: Any, data: Any = None) -> Any:
    # Attention-style scores: batch and head axes kept, the feature axis contracted.
    xp = namespace(params)
    scores = xp.einsum("bhqd,bhkd->bhqk", params["q"], params["k"])
    return xp.sum(xp.tanh(scores))


def _einsum_batched_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"q": rng.normal(size=(2, 2, 3, 4)), "k": rng.normal(size=(2, 2, 5, 4))}, None


def _einsum_chain_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    product = xp.einsum("ij,jk,kl->il", params["a"], params["b"], params["c"])
    return xp.sum(xp.square(product)) * 0.1


def _einsum_chain_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {"a": rng.normal(size=(2, 3)), "b": rng.normal(size=(3, 4)), "c": rng.normal(size=(4, 2))}
    return params, None


def _tensordot_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.sum(xp.tanh(xp.tensordot(params["a"], params["b"], axes=2)))


def _tensordot_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(2, 3, 4)), "b": rng.normal(size=(3, 4, 2)) * 0.5}, None


# -- solves, inverses, determinants ------------------------------------------------------------------


def _solve_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    x = xp.linalg.solve(_shifted(xp, params["a"]), params["b"])
    return xp.sum(xp.sin(x))


def _solve_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(4, 4)), "b": rng.normal(size=(4, 2))}, None


def _inv_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.sum(xp.linalg.inv(_shifted(xp, params["a"])) * data["w"])


def _inv_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(4, 4))}, {"w": rng.normal(size=(4, 4))}


def _det_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    # Scaled so the loss, and its gradient det·A⁻ᵀ, are of order one.
    return xp.linalg.det(_shifted(xp, params["a"])) * 0.05


def _det_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(3, 3))}, None


def _slogdet_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    # The sign is piecewise constant (zero gradient); only log|det| carries a gradient.
    _, logabsdet = xp.linalg.slogdet(_shifted(xp, params["a"]))
    return logabsdet


def _slogdet_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(4, 4))}, None


# -- factorisations -----------------------------------------------------------------------------------


def _cholesky_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    factor = xp.linalg.cholesky(_spd(xp, params["m"]))
    return xp.sum(factor * data["w"]) + xp.sum(xp.log(_diagonal(xp, factor)))


def _cholesky_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"m": rng.normal(size=(4, 4))}, {"w": np.tril(rng.normal(size=(4, 4)))}


def _eigh_loss(params: Any, data: Any = None) -> Any:
    # Eigenvectors enter only through v², which does not depend on each column's arbitrary sign.
    xp = namespace(params)
    m = params["m"]
    symmetric = (m + xp.matrix_transpose(m)) * 0.25 + data["spectrum"]
    eigenvalues, eigenvectors = xp.linalg.eigh(symmetric)
    return xp.sum(eigenvalues * data["value_weights"]) + xp.sum(xp.square(eigenvectors) * data["w"])


def _eigh_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Spectrum 0, 3, 6, 9 plus a symmetric perturbation of norm ~1: over 2000 seeds the smallest gap
    # is 0.59 (1st percentile 1.2), so eigenvector derivatives, which scale as 1/gap, stay tame.
    data = {
        "spectrum": np.diag([0.0, 3.0, 6.0, 9.0]),
        "value_weights": rng.normal(size=4),
        "w": rng.normal(size=(4, 4)),
    }
    return {"m": rng.normal(size=(4, 4))}, data


def _qr_loss(params: Any, data: Any = None) -> Any:
    # diag(R)² and the projector Q Qᵀ are invariant to flipping the sign of a column of Q.
    xp = namespace(params)
    q, r = xp.linalg.qr(params["a"])
    projector = xp.matmul(q, xp.matrix_transpose(q))
    return xp.sum(xp.square(_diagonal(xp, r)) * data["r_weights"]) + xp.sum(projector * data["w"])


def _qr_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    data = {"r_weights": rng.uniform(0.5, 1.5, size=3), "w": rng.normal(size=(5, 5))}
    return {"a": rng.normal(size=(5, 3))}, data


# -- norms ----------------------------------------------------------------------------------------------


def _vector_norm_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    x = params["x"]
    rows = xp.linalg.vector_norm(x, axis=-1)
    return xp.linalg.vector_norm(x) + xp.sum(rows * data["w"])


def _vector_norm_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    # Every component at least 0.5 in magnitude, so rows have norm >= 1: far from the kink at zero.
    signs = rng.choice([-1.0, 1.0], size=(3, 4))
    return {"x": signs * rng.uniform(0.5, 2.0, size=(3, 4))}, {"w": rng.normal(size=3)}


def _matrix_norm_fro_loss(params: Any, data: Any = None) -> Any:
    xp = namespace(params)
    return xp.sum(xp.linalg.matrix_norm(params["a"], ord="fro") * data["w"])


def _matrix_norm_fro_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"a": rng.normal(size=(2, 3, 4))}, {"w": np.array([1.0, -0.5])}


CASES: list[Case] = [
    Case("linalg_matmul_matrix", ("linalg", "matmul"), _matmul_matrix_loss, _matmul_matrix_inputs),
    Case("linalg_matmul_vector", ("linalg", "matmul"), _matmul_vector_loss, _matmul_vector_inputs),
    Case("linalg_matmul_batched", ("linalg", "matmul"), _matmul_batched_loss, _matmul_batched_inputs),
    Case("linalg_einsum_bilinear", ("linalg", "einsum"), _einsum_bilinear_loss, _einsum_bilinear_inputs),
    Case("linalg_einsum_batched", ("linalg", "einsum"), _einsum_batched_loss, _einsum_batched_inputs),
    Case("linalg_einsum_chain", ("linalg", "einsum"), _einsum_chain_loss, _einsum_chain_inputs),
    Case("linalg_tensordot", ("linalg", "contraction"), _tensordot_loss, _tensordot_inputs),
    Case("linalg_solve", ("linalg", "solve"), _solve_loss, _solve_inputs, dtypes=FACTORISATION_DTYPES),
    Case("linalg_inv", ("linalg", "solve"), _inv_loss, _inv_inputs, dtypes=FACTORISATION_DTYPES),
    Case("linalg_det", ("linalg", "determinant"), _det_loss, _det_inputs, dtypes=FACTORISATION_DTYPES),
    Case(
        "linalg_slogdet",
        ("linalg", "determinant"),
        _slogdet_loss,
        _slogdet_inputs,
        dtypes=FACTORISATION_DTYPES,
    ),
    Case(
        "linalg_cholesky",
        ("linalg", "factorisation"),
        _cholesky_loss,
        _cholesky_inputs,
        dtypes=FACTORISATION_DTYPES,
    ),
    Case(
        "linalg_eigh",
        ("linalg", "factorisation"),
        _eigh_loss,
        _eigh_inputs,
        dtypes=FACTORISATION_DTYPES,
    ),
    Case("linalg_qr", ("linalg", "factorisation"), _qr_loss, _qr_inputs, dtypes=FACTORISATION_DTYPES),
    Case("linalg_vector_norm", ("linalg", "norm", "reduction"), _vector_norm_loss, _vector_norm_inputs),
    Case(
        "linalg_matrix_norm_fro",
        ("linalg", "norm", "reduction"),
        _matrix_norm_fro_loss,
        _matrix_norm_fro_inputs,
    ),
]
