"""The MLX shim's ``fft`` extension: ``mx.fft``'s transforms handed to ``_fft``.

``mx.fft`` has NumPy's one-dimensional transforms (``n``, any ``axis``) but no ``norm=`` and no
``hfft`` / ``ihfft``; ``_fft`` builds the standard's functions from them. MLX's only complex dtype
is complex64: a float64 array is transformed in complex64 (float32 precision), and ``irfft`` of it
is float32.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from unigrad._namespace._fft import Transforms, fourier_functions


def _conj(x: Any) -> Any:
    return mx.conj(x) if x.dtype == mx.complex64 else x


def _asarray(obj: Any, *, dtype: Any, device: Any = None) -> Any:
    return mx.array(obj, dtype=dtype)


#: The standard's ``fft`` functions on MLX (attributes ``fft``, ``rfftn``...).
FUNCTIONS = fourier_functions(
    Transforms(
        fft=lambda x, n, axis: mx.fft.fft(x, n, axis),
        ifft=lambda x, n, axis: mx.fft.ifft(x, n, axis),
        rfft=lambda x, n, axis: mx.fft.rfft(x, n, axis),
        irfft=lambda x, n, axis: mx.fft.irfft(x, n, axis),
        conj=_conj,
        roll=lambda x, shifts, axes: mx.roll(x, shifts, axes) if axes else x,
        asarray=_asarray,
        default_float=mx.float32,
    )
)
