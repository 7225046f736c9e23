"""Float32 matmul precision across frameworks: a call computed on another framework than the params'
never silently computes float32 matrix products at less precision than the params' own would.

On Ampere and later GPUs each framework may round float32 matmul inputs to TF32 (10 mantissa bits)
or bfloat16; the defaults differ (PyTorch: full float32; JAX on a GPU: TF32-class; TensorFlow: TF32
on). Measured on an H200 (docs/known-differences.md): an MLP gradient from torch float32 CUDA
params through ``backend="jax"`` had a relative error of 5.2e-2 against float64, torch itself 4.5e-7.

The rule: inside a cross-framework call, the computing framework works at no less than the highest
float32 matmul precision among the frameworks the params (or NumPy) come from. Where the computing
framework has a scoped, thread-local setting (JAX's ``jax.default_matmul_precision``) the call runs
inside it; where its setting is process-global (PyTorch, TensorFlow) unigrad does not flip it behind
the user's back but warns once with :class:`~unigrad.PrecisionWarning`. On a CPU float32 matmuls are
always computed in full, and nothing is done.

Levels use PyTorch's names: ``'highest'`` (full float32), ``'high'`` (TF32-class), ``'medium'``
(bfloat16-class).

Example:
    >>> from unigrad._precision import stricter
    >>> stricter("high", "highest"), stricter("medium", "high")
    ('highest', 'high')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from unigrad._errors import PrecisionWarning

if TYPE_CHECKING:
    from unigrad.backends._base import Adapter

#: Float32 matmul precision levels, from least to most precise (PyTorch's names).
LEVELS = ("medium", "high", "highest")
_RANK = {level: rank for rank, level in enumerate(LEVELS)}
ScopeFactory = Callable[[], AbstractContextManager[Any]]

# (source framework, computing framework) pairs already warned about: one warning per pair.
_warned: set[tuple[str, str]] = set()


def stricter(first: str, second: str) -> str:
    """The more precise of two levels."""
    return first if _RANK[first] >= _RANK[second] else second


def matmul_scope(target: Adapter, origins: Iterable[Adapter]) -> ScopeFactory | None:
    """The context a cross-framework call on ``target`` runs in to keep its origins' float32
    matmul precision, or ``None`` when none is needed (a CPU, or a setting already as strict).

    Warns with :class:`~unigrad.PrecisionWarning` (once per pair of frameworks) when ``target``
    would compute at less precision and has no scoped setting to raise it with.
    """
    if not target.on_accelerator():
        return None
    sources = {origin.name: origin for origin in origins if origin is not target}
    if not sources:
        return None
    levels = {name: origin.float32_matmul_precision() for name, origin in sources.items()}
    source = max(levels, key=lambda name: _RANK[levels[name]])
    wanted = levels[source]
    have = target.float32_matmul_precision()
    if _RANK[have] >= _RANK[wanted]:
        return None
    scope = target.matmul_precision_scope(wanted)
    if scope is None and (source, target.name) not in _warned:
        _warned.add((source, target.name))
        warnings.warn(
            f"backend {target.name!r} computes float32 matrix products at {have!r} precision on this "
            f"accelerator, less than the params' framework ({source}: {wanted!r}), and its setting is "
            f"global: gradients lose float32 precision (TF32 keeps 10 mantissa bits). Raise it for the "
            f"program ({target.precision_hint()}) or compute on {source!r}",
            PrecisionWarning,
            stacklevel=4,
        )
    return scope
