"""The standard's ``fft`` extension, built once from four one-dimensional transforms of a backend.

TensorFlow (transforms along the innermost axis only, no ``norm=``, no ``hfft``) and MLX (no
``norm=``, no ``hfft`` / ``ihfft``) lack parts of the extension; array-api-compat covers the others.
Both shims hand :func:`fourier_functions` their backend's one-dimensional transforms
(:class:`Transforms`, NumPy's ``"backward"`` normalisation: the forward transform unscaled, the
inverse scaled by ``1/n``) and get every standard function back with NumPy's semantics:

* ``norm=`` ``"backward"`` (default), ``"ortho"`` (``1/sqrt(n)`` each way) or ``"forward"``
  (``1/n`` on the forward transform), ``n`` being the logical size (the product of ``s`` for the
  n-dimensional transforms);
* ``n=`` / ``s=`` zero-pad or trim the transformed axes (``irfft``'s default is ``2 * (m - 1)``);
  ``s`` given without ``axes`` means the last ``len(s)`` axes, ``-1`` in ``s`` the axis's size;
* ``hfft(x, n)`` is ``irfft(conj(x), n)`` with the normalisation direction swapped, ``ihfft`` its
  inverse, as in NumPy;
* ``fftshift`` / ``ifftshift`` roll by ``size // 2`` (``axes=None``: every axis); ``fftfreq`` and
  ``rfftfreq`` are computed in float64 by NumPy and created with the backend's ``asarray``.

Gradients are the backend's own for its transforms (the scalings are multiplications).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

_NORMS = ("backward", "ortho", "forward")
_SWAPPED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


@dataclasses.dataclass(frozen=True)
class Transforms:
    """One backend's pieces: 1-D transforms ``(x, n, axis)`` with NumPy's default normalisation."""

    fft: Callable[[Any, int, int], Any]
    ifft: Callable[[Any, int, int], Any]
    rfft: Callable[[Any, int, int], Any]
    irfft: Callable[[Any, int, int], Any]
    conj: Callable[[Any], Any]
    roll: Callable[[Any, tuple[int, ...], tuple[int, ...]], Any]
    asarray: Callable[..., Any]  # (obj, dtype=..., device=...): for fftfreq / rfftfreq
    default_float: Any


def _size(x: Any, axis: int) -> int:
    size = x.shape[axis]
    if size is None:
        raise ValueError(
            f"fft: the size of axis {axis} is unknown (a symbolic shape); pass n= or s= to say it"
        )
    return int(size)


def _scaled(x: Any, n: int, norm: str, inverse: bool) -> Any:
    """``x``, a transform of logical size ``n`` with the default normalisation, scaled to ``norm``."""
    if norm not in _NORMS:
        raise ValueError(f"fft: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    if norm == "backward":
        return x
    # "ortho": 1/sqrt(n) each way; "forward": the forward transform carries 1/n, the inverse none.
    size = math.sqrt(n) if norm == "ortho" else n
    return x * (size if inverse else 1 / size)


def _axes_and_sizes(
    x: Any, s: Sequence[int] | None, axes: Sequence[int] | None, real_output: bool = False
) -> tuple[list[int], list[int]]:
    ndim = len(x.shape)
    if axes is None:
        axes = range(ndim) if s is None else range(ndim - len(s), ndim)
    axes = [axis % ndim for axis in axes]
    if s is None:
        sizes = [_size(x, axis) for axis in axes]
        if real_output:  # irfftn: the last axis holds n // 2 + 1 of n points
            sizes[-1] = 2 * (sizes[-1] - 1)
    else:
        if len(s) != len(axes):
            raise ValueError(f"fft: s and axes must have the same length, got s={s!r}, axes={axes!r}")
        sizes = [_size(x, axis) if size == -1 else int(size) for size, axis in zip(s, axes, strict=True)]
    return axes, sizes


def fourier_functions(t: Transforms) -> SimpleNamespace:
    """The standard ``fft`` functions over ``t``, as attributes (``.fft``, ``.rfftn``...)."""

    def fft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
        n = _size(x, axis) if n is None else n
        return _scaled(t.fft(x, n, axis), n, norm, inverse=False)

    def ifft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
        n = _size(x, axis) if n is None else n
        return _scaled(t.ifft(x, n, axis), n, norm, inverse=True)

    def rfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
        n = _size(x, axis) if n is None else n
        return _scaled(t.rfft(x, n, axis), n, norm, inverse=False)

    def irfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
        n = 2 * (_size(x, axis) - 1) if n is None else n
        return _scaled(t.irfft(x, n, axis), n, norm, inverse=True)

    def hfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
        return irfft(t.conj(x), n=n, axis=axis, norm=_SWAPPED.get(norm, norm))

    def ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
        return t.conj(rfft(x, n=n, axis=axis, norm=_SWAPPED.get(norm, norm)))

    def fftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
             norm: str = "backward") -> Any:  # fmt: skip
        axes, sizes = _axes_and_sizes(x, s, axes)
        for axis, size in zip(axes, sizes, strict=True):
            x = t.fft(x, size, axis)
        return _scaled(x, math.prod(sizes), norm, inverse=False)

    def ifftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
              norm: str = "backward") -> Any:  # fmt: skip
        axes, sizes = _axes_and_sizes(x, s, axes)
        for axis, size in zip(axes, sizes, strict=True):
            x = t.ifft(x, size, axis)
        return _scaled(x, math.prod(sizes), norm, inverse=True)

    def rfftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
              norm: str = "backward") -> Any:  # fmt: skip
        axes, sizes = _axes_and_sizes(x, s, axes)
        x = t.rfft(x, sizes[-1], axes[-1])  # the real axis first, then complex transforms
        for axis, size in zip(axes[:-1], sizes[:-1], strict=True):
            x = t.fft(x, size, axis)
        return _scaled(x, math.prod(sizes), norm, inverse=False)

    def irfftn(x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
               norm: str = "backward") -> Any:  # fmt: skip
        axes, sizes = _axes_and_sizes(x, s, axes, real_output=True)
        for axis, size in zip(axes[:-1], sizes[:-1], strict=True):
            x = t.ifft(x, size, axis)
        x = t.irfft(x, sizes[-1], axes[-1])  # the real axis last
        return _scaled(x, math.prod(sizes), norm, inverse=True)

    def _shift(x: Any, axes: int | Sequence[int] | None, sign: int) -> Any:
        ndim = len(x.shape)
        axes = tuple(range(ndim)) if axes is None else (axes,) if isinstance(axes, int) else tuple(axes)
        return t.roll(x, tuple(sign * (_size(x, axis) // 2) for axis in axes), axes)

    def fftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
        return _shift(x, axes, 1)

    def ifftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
        return _shift(x, axes, -1)

    def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
        return t.asarray(np.fft.fftfreq(n, d), dtype=dtype or t.default_float, device=device)

    def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
        return t.asarray(np.fft.rfftfreq(n, d), dtype=dtype or t.default_float, device=device)

    return SimpleNamespace(
        fft=fft, ifft=ifft, fftn=fftn, ifftn=ifftn, rfft=rfft, irfft=irfft, rfftn=rfftn,
        irfftn=irfftn, hfft=hfft, ihfft=ihfft, fftshift=fftshift, ifftshift=ifftshift,
        fftfreq=fftfreq, rfftfreq=rfftfreq,
    )  # fmt: skip
