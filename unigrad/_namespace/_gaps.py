"""Declared gaps: guaranteed functions a backend computes but cannot differentiate, and why.

Every guaranteed name computes the same values on every backend. Differentiating it does too, except
for the calls declared here: the framework implements no gradient for them (MLX 0.32 has no VJP for
its LAPACK-backed decompositions), or the derivative does not exist as a function of the input (the
columns a full SVD adds to ``U`` and ``Vh`` are any orthonormal completion). A declared call is a
known, stated difference: a conformance table or a test marks that cell ``n/a`` with the reason
instead of skipping it, and a test checks that the framework still refuses it, so a gap that closes
in a new release is noticed.

Names in ``NOT_DIFFERENTIABLE`` (``unigrad._namespace._names``: creation functions and predicates
such as ``equal`` or ``argmax``) are outside this table: they have no gradient on any backend.

Example:
    >>> from unigrad._namespace import gap_for, unsupported
    >>> sorted(unsupported("mlx"))[:3]
    ['linalg.cholesky', 'linalg.eigh', 'linalg.eigvalsh']
    >>> gap_for("mlx", "linalg.matrix_norm", ord="fro") is None
    True
    >>> gap_for("mlx", "linalg.matrix_norm", ord=2).reason
    'MLX 0.32 has no VJP for SVD'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any


def _every_call(arguments: Mapping[str, Any]) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Gap:
    """One guaranteed function that ``backend`` cannot differentiate, for every call or some.

    Attributes:
        backend: ``'torch'``, ``'tensorflow'``, ``'jax'`` or ``'mlx'``.
        name: the guaranteed name (``'linalg.svd'``).
        reason: why, naming the framework and its version where the framework is the cause.
        arguments: which calls, in words (``"ord=2, -2 or 'nuc'"``); empty for every call.
        applies: the same as a test on a call's keyword arguments (and, where the gap depends on
            them, ``shape``, the input's shape, and ``part``, the field of a tuple result the loss
            uses, e.g. ``"S"`` of ``linalg.svd``): ``True`` when that call has no gradient.
    """

    backend: str
    name: str
    reason: str
    arguments: str = ""
    applies: Callable[[Mapping[str, Any]], bool] = _every_call

    def describe(self) -> str:
        """The reason with the calls it concerns: what ``unsupported`` and the docs show."""
        return f"{self.reason} ({self.arguments})" if self.arguments else self.reason


def _non_square_full(arguments: Mapping[str, Any]) -> bool:
    shape = arguments.get("shape")
    square = shape is not None and shape[-1] == shape[-2]
    return bool(arguments.get("full_matrices", True)) and not square


def _non_square_full_vectors(arguments: Mapping[str, Any]) -> bool:
    return _non_square_full(arguments) and arguments.get("part") != "S"


_MLX = "MLX 0.32 has no VJP for"
_FULL_SVD = (
    "the columns a full SVD adds to U (rows to Vh) are any orthonormal completion, not a function of "
    "the input"
)
_FULL_SVD_CALLS = "full_matrices=True on a non-square matrix, through U or Vh"

#: Every declared gap, one row per backend and name.
GAPS: tuple[Gap, ...] = (
    Gap("mlx", "linalg.solve", f"{_MLX} LUF (its solve's VJP fails on the LU pivots)"),
    Gap("mlx", "linalg.inv", f"{_MLX} Inverse"),
    Gap("mlx", "linalg.cholesky", f"{_MLX} Cholesky"),
    Gap("mlx", "linalg.eigh", f"{_MLX} Eigh"),
    Gap("mlx", "linalg.eigvalsh", f"{_MLX} Eigh"),
    Gap("mlx", "linalg.qr", f"{_MLX} QRF"),
    Gap("mlx", "linalg.svd", f"{_MLX} SVD"),
    Gap("mlx", "linalg.svdvals", f"{_MLX} SVD"),
    Gap("mlx", "linalg.pinv", f"{_MLX} SVD"),
    Gap(
        "mlx",
        "linalg.matrix_power",
        f"{_MLX} Inverse",
        "negative n",
        lambda arguments: arguments.get("n", 0) < 0,
    ),
    Gap(
        "mlx",
        "linalg.matrix_norm",
        f"{_MLX} SVD",
        "ord=2, -2 or 'nuc'",
        lambda arguments: arguments.get("ord", "fro") in (2, -2, "nuc"),
    ),
    Gap("jax", "linalg.svd", f"JAX 0.10 raises NotImplementedError; {_FULL_SVD}",
        "full_matrices=True on a non-square matrix, S too", _non_square_full),
    Gap("torch", "linalg.svd", f"PyTorch ignores their gradient; {_FULL_SVD}", _FULL_SVD_CALLS,
        _non_square_full_vectors),
    Gap("tensorflow", "linalg.svd", f"TensorFlow ignores their gradient; {_FULL_SVD}", _FULL_SVD_CALLS,
        _non_square_full_vectors),
)  # fmt: skip

_BY_KEY: dict[tuple[str, str], Gap] = {(gap.backend, gap.name): gap for gap in GAPS}


def unsupported(backend: str) -> dict[str, str]:
    """The guaranteed names ``backend`` cannot differentiate (for every call or some), with why.

    Args:
        backend: a backend's name (``'torch'``, ``'tensorflow'``, ``'jax'``, ``'mlx'``, ``'numpy'``).

    Returns:
        ``{name: reason}``; the reason ends with the calls concerned in parentheses when the gap is
        only for some arguments (``gap_for`` tells a given call). Empty for NumPy, whose gradients
        are finite differences.
    """
    return {gap.name: gap.describe() for gap in GAPS if gap.backend == backend}


def gap_for(backend: str, name: str, **arguments: Any) -> Gap | None:
    """The declared gap a call of ``name`` on ``backend`` falls in, or ``None`` if it differentiates.

    Args:
        backend: the backend's name.
        name: the guaranteed name (``'linalg.matrix_norm'``).
        **arguments: the call's keyword arguments that matter (``ord=2``, ``n=-1``,
            ``full_matrices=False``), and for ``linalg.svd`` ``shape``, the input's shape, and
            ``part``, the field the loss differentiates through (``"U"``, ``"S"``, ``"Vh"``).
    """
    gap = _BY_KEY.get((backend, name))
    return gap if gap is not None and gap.applies(arguments) else None
