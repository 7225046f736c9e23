"""The TensorFlow shim's ``fft`` extension: ``tf.signal``'s transforms handed to ``_fft``.

``tf.signal`` transforms the innermost axis only, takes complex input for ``fft`` / ``ifft`` and
real input for ``rfft``, and pads or trims to a length only in ``rfft`` / ``irfft``
(``fft_length``). The pieces below move the axis last and back, pad or trim, and cast real input
to the complex dtype of its precision (float64 to complex128), as NumPy does; ``_fft`` builds the
standard's functions (``norm=``, n-dimensional transforms, ``hfft``...) from them.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from unigrad._namespace._fft import Transforms, fourier_functions
from unigrad._namespace._tensorflow_base import moved_to_last, restored, tensor
from unigrad._namespace._tensorflow_creation import asarray


def _complex(x: Any) -> Any:
    x = tensor(x)
    if x.dtype.is_complex:
        return x
    return tf.cast(x, tf.complex128 if x.dtype == tf.float64 else tf.complex64)


def _real(x: Any) -> Any:
    x = tensor(x)
    if x.dtype.is_complex:
        raise TypeError(f"rfft needs a real array, got dtype {x.dtype.name}; use fft for complex input")
    return x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)


def _resized(x: Any, n: int) -> Any:
    """``x`` zero-padded or trimmed to length ``n`` along its last axis."""
    size = x.shape[-1]
    if size == n:
        return x
    if size > n:
        return x[..., :n]
    padding = [[0, 0]] * (x.shape.rank - 1) + [[0, n - size]]
    return tf.pad(x, padding)


def _along(transform: Any, x: Any, axis: int) -> Any:
    moved, back = moved_to_last(x, axis)
    return restored(transform(moved), back)


def _fft(x: Any, n: int, axis: int) -> Any:
    return _along(lambda y: tf.signal.fft(_resized(y, n)), _complex(x), axis)


def _ifft(x: Any, n: int, axis: int) -> Any:
    return _along(lambda y: tf.signal.ifft(_resized(y, n)), _complex(x), axis)


# tf.signal pads or trims to fft_length itself, but the gradient of IRFFT assumes it did not (a
# shape error): the input is resized here first, to the n // 2 + 1 points irfft reads.


def _rfft(x: Any, n: int, axis: int) -> Any:
    return _along(lambda y: tf.signal.rfft(_resized(y, n), fft_length=[n]), _real(x), axis)


def _irfft(x: Any, n: int, axis: int) -> Any:
    return _along(lambda y: tf.signal.irfft(_resized(y, n // 2 + 1), fft_length=[n]), _complex(x), axis)


def _roll(x: Any, shifts: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    return tf.roll(x, list(shifts), list(axes)) if axes else tensor(x)


#: The standard's ``fft`` functions on TensorFlow (attributes ``fft``, ``rfftn``...).
FUNCTIONS = fourier_functions(
    Transforms(
        fft=_fft,
        ifft=_ifft,
        rfft=_rfft,
        irfft=_irfft,
        conj=lambda x: tf.math.conj(_complex(x)),
        roll=_roll,
        asarray=asarray,
        default_float=tf.float32,
    )
)
