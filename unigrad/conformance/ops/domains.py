"""Where each op's inputs are drawn: seeded float64 (or complex128) NumPy arrays inside its domain.

A :class:`Domain` is a name and a draw ``(rng, shape) -> array``. Elementwise domains keep values of
order one and away from the edges where a derivative blows up or jumps (the edges themselves are
the table's special points); matrix domains give well-conditioned, symmetric positive definite or
spread-spectrum matrices, so that a decomposition's gradient is well defined and finite differences
are accurate.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.ops.domains import POSITIVE, SPD
    >>> rng = np.random.default_rng(0)
    >>> bool((POSITIVE.draw(rng, (2, 3)) > 0).all())
    True
    >>> bool((np.linalg.eigvalsh(SPD.draw(rng, (3, 3))) > 0).all())
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Domain:
    """A set of valid inputs of one argument: ``draw(rng, shape)`` gives a float64 array in it."""

    name: str
    draw: Callable[[np.random.Generator, Shape], np.ndarray]


def _uniform(low: float, high: float) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    return lambda rng, shape: rng.uniform(low, high, size=shape)


def _signed(low: float, high: float) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    """``|x|`` in ``[low, high]`` with a random sign: away from zero on both sides."""
    return lambda rng, shape: rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def _spread(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Distinct values evenly spread over [-1.4, 1.6] (no ties anywhere): for max, sort, argmax..."""
    size = int(np.prod(shape))
    # Offset so that no two values are opposite either: |x| has no ties (ord=inf norms).
    return rng.permutation(np.linspace(-1.5, 1.5, max(size, 1)) + 0.1234)[:size].reshape(shape)


def _spread_between(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Like :func:`_spread`, each value halfway between two of its values: an array drawn from this
    and one from ``DISTINCT`` differ elementwise by at least half the spacing, so no pair ties, not
    even once rounded to bfloat16 (for maximum and minimum, whose ties are special points)."""
    size = int(np.prod(shape))
    half_step = 1.5 / max(size - 1, 1)
    return rng.permutation(np.linspace(-1.5, 1.5, max(size, 1)) + 0.1234 + half_step)[:size].reshape(shape)


def _with_zeros(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Away from zero, except every third element (in a seeded order), which is exactly 0: where an
    op is smooth (a 2-norm of a nonzero vector) but a rewrite through ``abs`` is not (TensorFlow's
    ``abs`` has derivative 0 at 0, so ``square(abs(x))`` had second derivative 0 there)."""
    values = _signed(0.5, 2.0)(rng, shape)
    flat = values.reshape(-1)
    flat[rng.permutation(flat.size)[: flat.size // 3]] = 0.0
    return values


def _fractional(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Integers plus a fraction in [0.15, 0.35]: away from the jumps of floor/ceil/round/trunc."""
    return rng.integers(-3, 3, size=shape) + rng.uniform(0.15, 0.35, size=shape)


def _complex(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(2.0)


def _well_conditioned(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """A random square matrix (or batch) plus ``n·I``: condition number of a few units."""
    n = shape[-1]
    return rng.normal(size=shape) * 0.5 + n * np.eye(n)


def _spd(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Symmetric positive definite: ``A·Aᵀ/n + I``."""
    n = shape[-1]
    factor = rng.normal(size=shape)
    return factor @ np.swapaxes(factor, -1, -2) / n + np.eye(n)


def _spread_spectrum(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Symmetric with eigenvalues 1, 2, ..., n (times ±): eigenvectors are well defined."""
    n = shape[-1]
    q, _ = np.linalg.qr(rng.normal(size=shape))
    values = np.arange(1.0, n + 1.0) * rng.choice([-1.0, 1.0], size=(*shape[:-2], n))
    return (q * values[..., None, :]) @ np.swapaxes(q, -1, -2)


def _spread_singular(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Any shape, singular values 1, 2, ..., k (distinct and away from zero): SVD, QR, pinv."""
    m, n = shape[-2], shape[-1]
    k = min(m, n)
    u, _ = np.linalg.qr(rng.normal(size=(*shape[:-2], m, k)))
    v, _ = np.linalg.qr(rng.normal(size=(*shape[:-2], n, k)))
    return (u * np.arange(1.0, k + 1.0)) @ np.swapaxes(v, -1, -2)


REAL = Domain("real", _uniform(-1.5, 1.5))
SMALL = Domain("small", _uniform(-0.8, 0.8))  # arguments of exp/cosh that compound (hvp, float16)
POSITIVE = Domain("positive", _uniform(0.5, 2.0))
NONZERO = Domain("nonzero", _signed(0.5, 2.0))
UNIT = Domain("open unit interval", _uniform(-0.8, 0.8))  # asin, acos, atanh: away from ±1
ABOVE_ONE = Domain("above one", _uniform(1.3, 3.0))  # acosh
TAN = Domain("away from poles", _uniform(-1.0, 1.0))
DISTINCT = Domain("distinct values", _spread)
BETWEEN_DISTINCT = Domain("distinct values, between DISTINCT's", _spread_between)
WITH_ZEROS = Domain("nonzero, with exact zeros", _with_zeros)
FRACTIONAL = Domain("away from integers", _fractional)
COMPLEX = Domain("complex", _complex)
WELL_CONDITIONED = Domain("well-conditioned matrix", _well_conditioned)
SPD = Domain("symmetric positive definite", _spd)
SPREAD_SPECTRUM = Domain("symmetric, distinct eigenvalues", _spread_spectrum)
SPREAD_SINGULAR = Domain("distinct singular values", _spread_singular)
