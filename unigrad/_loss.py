"""Validation of what a loss function returns: a real floating array with exactly one element.

Decision (documented in the API reference): the loss may have shape ``()`` or any shape with a single
element (``(1,)``, ``(1, 1)``), as ``loss.backward()`` accepts; the value handed back keeps that shape.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from unigrad._errors import InvalidAuxError, InvalidLossError
from unigrad.backends import FLOAT_DTYPES, LOSS_KEYS, Adapter, backend_name_of
from unigrad.backends._base import OutputCheck


def _describe(value: Any) -> str:
    owner = backend_name_of(value)
    kind = f"{owner} array" if owner else "object"
    return f"a {type(value).__module__}.{type(value).__qualname__} {kind}"


# (backend, type, dtype, shape) of losses already found valid. Validity depends on these alone, so a
# repeated call skips the checks (dtype names cost microseconds on some frameworks). Only valid losses
# are stored, and they have one element, so the set stays as small as the dtypes and ranks in use.
_valid_losses: set[tuple[Any, ...]] = set()


def _check_loss_in_full(loss: Any, adapter: Adapter) -> None:
    if not adapter.is_array(loss):
        raise InvalidLossError(
            f"loss_fn returned {_describe(loss)} on backend {adapter.name!r}; it must return a "
            f"{adapter.name} array with one element computed from params (e.g. xp.sum(...)), "
            f"not a Python number or another framework's array"
        )
    dtype = adapter.dtype_name(loss)
    shape = adapter.shape(loss)
    if dtype.startswith("complex"):
        raise InvalidLossError(
            f"loss_fn returned a {dtype} loss on backend {adapter.name!r}; gradients are defined "
            f"here for real losses only: return the real part or the squared magnitude"
        )
    if dtype not in FLOAT_DTYPES:
        raise InvalidLossError(
            f"loss_fn returned a {dtype} loss on backend {adapter.name!r}; it must be a floating "
            f"array (float16/bfloat16/float32/float64): cast it or compute it from float params"
        )
    if math.prod(shape) != 1:
        raise InvalidLossError(
            f"loss_fn returned a loss of shape {shape} on backend {adapter.name!r}; it must be a "
            f"scalar (shape () or a single element): reduce it, e.g. with a sum or a mean"
        )


@functools.lru_cache(maxsize=64)
def output_checker(adapter: Adapter, has_aux: bool, remember: bool = True) -> OutputCheck:
    """A function that splits a loss function's output into ``(loss, aux)`` and validates it.

    ``remember=False`` neither reads nor fills the cache of valid losses: for code that a compiler
    traces (``torch.compile`` guards on the globals a traced function reads, and would recompile each
    time the cache grew). It is ``False`` inside a compiled step.

    It holds no per-call state, so one is made per adapter and ``has_aux`` and reused (bounded:
    reference_grad makes a NumPy adapter per call).
    """

    name = adapter.name

    def finish(out: Any) -> tuple[Any, Any]:  # (an OutputCheck once has_aux is set below)
        if has_aux:
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                found = f"a {type(out).__name__}" + (
                    f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
                )
                raise InvalidAuxError(
                    f"has_aux=True but loss_fn returned {found} on backend {adapter.name!r}; "
                    f"it must return a pair (loss, aux)"
                )
            loss, aux = out
        else:
            if isinstance(out, tuple) and len(out) == 2 and adapter.is_array(out[0]):
                raise InvalidLossError(
                    f"loss_fn returned a pair on backend {adapter.name!r} but has_aux=False; "
                    f"pass has_aux=True to get (loss, aux), or return the loss alone"
                )
            loss, aux = out, None
        # A loss of a (backend, type, dtype, shape) found valid before is valid: the checks are
        # skipped, in this frame (a GPU step pays its host time in full). ``remember=False`` neither
        # reads nor fills that cache.
        key: tuple[Any, ...] | None = None
        if remember:
            try:
                kind = type(loss)
                fast = LOSS_KEYS.get(kind)
                key = (name, kind, loss.dtype, loss.shape) if fast is None else (name, kind, fast(loss))
                if key in _valid_losses:
                    return loss, aux
            except (AttributeError, TypeError):  # no dtype or shape, or unhashable ones
                key = None
        _check_loss_in_full(loss, adapter)
        if key is not None:
            _valid_losses.add(key)
        return loss, aux

    finish.has_aux = has_aux  # type: ignore[attr-defined]
    return finish  # type: ignore[return-value]
