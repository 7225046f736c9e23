"""The guaranteed namespace on MLX, with NumPy / Array API semantics: creation, extras, and the whole.

``mlx.core`` follows the Array API only in part (array-api-compat does not wrap it), so this shim
maps the standard names onto it, one module per job: this one (creation, the names outside the
standard, and the assembly), ``_mlx_elementwise``, ``_mlx_arrays`` (reductions, scans, sorting,
manipulation), ``_mlx_linalg`` and ``_mlx_fft``. Where MLX differs, the functions bridge the gap:

* ``asarray`` keeps a NumPy array's float64 (``mx.array`` alone would make it float32);
* ``var`` / ``std`` take ``correction``, the scans ``axis=None`` for 1-D input and
  ``include_initial``, ``concat`` takes ``axis=None`` (flatten first), ``repeat`` an array of
  repeats, ``sort`` / ``argsort`` ``descending``; index results are int64 (MLX's are uint32);
* linear algebra runs on the CPU stream (MLX implements it there only) and returns the shared named
  tuples; ``fft`` takes ``norm=`` and has ``hfft`` / ``ihfft`` (``_fft``), in complex64, MLX's only
  complex dtype;
* the non-standard extras (``softplus``, ``relu``, ``log_softmax``...) are built from MLX's own ops.

Creation functions accept the Array API's ``device=`` and ignore it: an MLX array lives in one
unified memory that the CPU and the GPU both read, and carries no device. (MLX's own ``stream=``
chooses which device *runs* an operation, not where its result lives.)

Default dtypes stay MLX's: ``zeros(3)``, ``asarray(1.5)`` and ``linspace(0, 1, 5)`` are float32,
``arange(3)`` is int32. This module imports MLX, so it is only imported once an MLX array has been
seen.

Example:
    >>> import mlx.core as mx
    >>> from unigrad._namespace import namespace
    >>> xp = namespace(mx.array([1.0, 2.0, 3.0]))
    >>> xp.name, xp.var(xp.asarray([1.0, 2.0, 3.0]), correction=1).item()
    ('mlx', 1.0)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from unigrad._namespace import _mlx_arrays as arrays
from unigrad._namespace import _mlx_elementwise as elementwise
from unigrad._namespace import _mlx_fft as fourier
from unigrad._namespace import _mlx_linalg as linear_algebra
from unigrad._namespace._names import gather

Axis = int | Sequence[int] | None

DTYPES = {
    "float16": mx.float16,
    "bfloat16": mx.bfloat16,
    "float32": mx.float32,
    "float64": mx.float64,
    "int32": mx.int32,
    "int64": mx.int64,
    "bool": mx.bool_,
    "complex64": mx.complex64,  # MLX has no complex128
}


def functions(skip: Collection[str] = ()) -> dict[str, Callable[..., Any]]:
    """Every guaranteed function on MLX but those in ``skip``."""
    core = [sys.modules[__name__], elementwise, arrays, linear_algebra]
    return gather({"": core, "linalg": [linear_algebra], "fft": [fourier.FUNCTIONS]}, skip=skip)


# -- creation ----------------------------------------------------------------------------------
# ``device=`` is accepted for the Array API's signatures and unused: one unified memory (above).


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    if isinstance(obj, mx.array):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    if dtype is None and isinstance(obj, np.ndarray | np.generic):
        from unigrad.backends._mlx import DTYPES as ALL_DTYPES

        dtype = ALL_DTYPES.get(np.asarray(obj).dtype.name)  # float64 stays float64
    return mx.array(obj) if dtype is None else mx.array(obj, dtype=dtype)


def _shape(shape: int | Sequence[int]) -> list[int]:
    return [shape] if isinstance(shape, int) else list(shape)


def zeros(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    return mx.zeros(_shape(shape), dtype=dtype or mx.float32)


def ones(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    return mx.ones(_shape(shape), dtype=dtype or mx.float32)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.zeros_like(x) if dtype is None else mx.zeros(x.shape, dtype=dtype)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.ones_like(x) if dtype is None else mx.ones(x.shape, dtype=dtype)


def full(shape: int | Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.full(_shape(shape), fill_value) if dtype is None else mx.full(_shape(shape), fill_value, dtype)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.full(x.shape, fill_value, dtype or x.dtype)


def eye(
    n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None
) -> Any:
    return mx.eye(n_rows, n_cols, k, dtype=dtype or mx.float32)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Any:
    if stop is None:
        start, stop = 0, start
    result = mx.arange(start, stop, step)
    return result if dtype is None else result.astype(dtype)


def linspace(
    start: float, stop: float, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
) -> Any:
    return mx.linspace(start, stop, num, endpoint=endpoint, dtype=dtype or mx.float32)


def astype(x: Any, dtype: Any, /) -> Any:
    return x.astype(dtype)


# -- extras (names outside the standard) -------------------------------------------------------


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    return mx.logsumexp(x, axis=axis, keepdims=keepdims)


def softplus(x: Any) -> Any:
    return mx.logaddexp(x, mx.zeros_like(x))


def relu(x: Any) -> Any:
    return mx.maximum(x, mx.zeros_like(x))


def log_softmax(x: Any, axis: int = -1) -> Any:
    return x - mx.logsumexp(x, axis=axis, keepdims=True)


def softmax(x: Any, axis: int = -1) -> Any:
    return mx.softmax(x, axis=axis, precise=True)


sigmoid = mx.sigmoid
erf = mx.erf
rsqrt = mx.rsqrt
einsum = mx.einsum
