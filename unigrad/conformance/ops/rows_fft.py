"""Op table rows: the ``fft`` extension, every function's gradient compared (float64 and float32 columns
mean complex128 and complex64 for complex inputs and outputs).

A complex output enters the loss through its real and imaginary parts, a complex input's gradient is
``∂L/∂Re + i·∂L/∂Im`` (docs/complex.md), and the reference takes finite differences on both parts.

``irfft`` and ``hfft`` take a half spectrum ``X[0..m-1]`` of a real signal of even length
``n = 2(m-1)``: the imaginary parts of ``X[0]`` (DC) and ``X[m-1]`` (Nyquist) do not reach the
output (NumPy's and every framework's ``irfft`` drop them). The function is constant along them, so
the reference's finite differences give 0 there, and 0 is the convention every framework is held to:
``∂L/∂Im X[0] = ∂L/∂Im X[m-1] = 0`` (an odd ``n`` has no Nyquist bin; only DC's imaginary part is
dropped). The inputs drawn here are general complex numbers, so those imaginary parts are not zero.

Example:
    >>> from unigrad.conformance.ops.rows_fft import ROWS
    >>> sorted({row.name for row in ROWS})[:3]
    ['fft.fft', 'fft.fftfreq', 'fft.fftn']
"""

from __future__ import annotations

from typing import Any

from unigrad.conformance.ops.domains import COMPLEX, REAL, Domain
from unigrad.conformance.ops.table import FLOAT_DTYPES, Op, Unavailable, call, samples


def _fft(name: str, fn: Any, domain: Domain, shape: tuple[int, ...] = (3, 4), **options: Any) -> Op:
    options.setdefault("samples", samples((shape,)))
    return Op(name, "fft", fn, (domain,), dtypes=FLOAT_DTYPES, **options)


# Transforms are linear: no second-order cases (their Hessian is zero).
_LINEAR = {"hvp": False}

# Found by these rows (torch 2.13, MLX 0.32.4, CPU); reported.
_MLX_SINGLE = Unavailable(
    "mlx",
    "MLX has no complex128: a float64 signal's spectrum is complex64, float32-accurate (jvp outputs "
    "off by up to 2.8e-6 relative)",
    dtypes=("float64",),
)
_MLX_ODD_JVP = Unavailable(
    "mlx",
    "MLX 0.32's jvp of irfft with an odd output length is wrong (inf, or a broadcast error of the "
    "even length against the odd one): its rule assumes an even length",
    modes=("jvp",),
)

ROWS: list[Op] = [
    _fft("fft.fft", call("fft.fft"), COMPLEX, **_LINEAR),
    _fft("fft.fft", call("fft.fft"), REAL, label="real_input", unavailable=(_MLX_SINGLE,), **_LINEAR),
    _fft(
        "fft.fft",
        lambda xp, x: xp.fft.fft(x, n=6, axis=0, norm="ortho"),
        COMPLEX,
        label="padded_ortho",
        **_LINEAR,
    ),
    _fft("fft.ifft", call("fft.ifft"), COMPLEX, **_LINEAR),
    _fft("fft.fftn", call("fft.fftn"), COMPLEX, **_LINEAR),
    _fft("fft.ifftn", lambda xp, x: xp.fft.ifftn(x, norm="forward"), COMPLEX, **_LINEAR),
    _fft(
        "fft.rfft",
        call("fft.rfft"),
        REAL,
        samples=samples(((3, 4),), odd=((3, 5),)),
        unavailable=(_MLX_SINGLE,),
        **_LINEAR,
    ),
    _fft(
        "fft.rfft",
        lambda xp, x: xp.fft.rfft(x, n=3, norm="ortho"),
        REAL,
        label="trimmed_ortho",
        unavailable=(_MLX_SINGLE,),
        **_LINEAR,
    ),
    # Complex half spectra: Im X[0] and Im X[-1] do not reach the output (the module docstring).
    _fft("fft.irfft", call("fft.irfft"), COMPLEX, (3, 3), **_LINEAR),
    _fft(
        "fft.irfft",
        lambda xp, x: xp.fft.irfft(x, n=5),
        COMPLEX,
        (3, 3),
        label="odd",
        unavailable=(_MLX_ODD_JVP,),
        **_LINEAR,
    ),
    _fft("fft.rfftn", call("fft.rfftn"), REAL, unavailable=(_MLX_SINGLE,), **_LINEAR),
    _fft("fft.irfftn", call("fft.irfftn"), COMPLEX, (3, 3), **_LINEAR),
    _fft("fft.hfft", call("fft.hfft"), COMPLEX, (3, 3), **_LINEAR),
    _fft(
        "fft.hfft",
        lambda xp, x: xp.fft.hfft(x, n=5, norm="ortho"),
        COMPLEX,
        (3, 3),
        label="odd_ortho",
        unavailable=(_MLX_ODD_JVP,),
        **_LINEAR,
    ),
    _fft("fft.ihfft", call("fft.ihfft"), REAL, unavailable=(_MLX_SINGLE,), **_LINEAR),
    _fft("fft.fftshift", call("fft.fftshift"), REAL, (3, 3), **_LINEAR),
    _fft("fft.ifftshift", lambda xp, x: xp.fft.ifftshift(x, axes=1), COMPLEX, (3, 3), **_LINEAR),
    _fft(
        "fft.fftfreq", lambda xp, x: x * xp.fft.fftfreq(4, d=0.5, dtype=x.dtype), REAL, jvp=False, **_LINEAR
    ),
    _fft(
        "fft.rfftfreq",
        lambda xp, x: x * xp.fft.rfftfreq(4, dtype=x.dtype),
        REAL,
        (3, 3),
        jvp=False,
        **_LINEAR,
    ),
]
