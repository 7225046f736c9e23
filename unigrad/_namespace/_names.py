"""What a namespace guarantees: its function names, dtype names and the named tuples it returns.

Names follow the Array API standard (2024.12): the core functions a loss can differentiate through,
the ``linalg`` and ``fft`` extensions (``linalg.solve``, ``fft.rfft``: dotted, as they are reached,
``xp.linalg.solve``), non-differentiable helpers that are useful inside losses (comparisons and
logical functions for ``where`` conditions, ``argmax``...), and a few names outside the standard
(:data:`EXTRAS`). Nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NamedTuple

CREATION = (
    "asarray",
    "zeros",
    "ones",
    "zeros_like",
    "ones_like",
    "full",
    "full_like",
    "eye",
    "arange",
    "linspace",
    "meshgrid",
    "tril",
    "triu",
    "astype",
)
ELEMENTWISE = (
    "abs",
    "acos",
    "acosh",
    "add",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "ceil",
    "clip",
    "conj",
    "copysign",
    "cos",
    "cosh",
    "divide",
    "exp",
    "expm1",
    "floor",
    "hypot",
    "imag",
    "log",
    "log1p",
    "log2",
    "log10",
    "logaddexp",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "positive",
    "pow",
    "real",
    "reciprocal",
    "remainder",
    "round",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "trunc",
    "where",
)
#: Functions whose result is boolean or an index: no gradient flows through them (they select).
PREDICATES = (
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "isfinite",
    "isinf",
    "isnan",
    "signbit",
    "all",
    "any",
    "argmax",
    "argmin",
    "argsort",
)
REDUCTIONS = (
    "sum",
    "mean",
    "prod",
    "max",
    "min",
    "var",
    "std",
    "cumulative_sum",
    "cumulative_prod",
    "diff",
)
MANIPULATION = (
    "reshape",
    "permute_dims",
    "matrix_transpose",
    "moveaxis",
    "concat",
    "stack",
    "unstack",
    "take",
    "take_along_axis",
    "expand_dims",
    "squeeze",
    "flip",
    "roll",
    "repeat",
    "tile",
    "broadcast_to",
    "broadcast_arrays",
    "sort",
)
LINEAR_ALGEBRA = (
    "matmul",
    "tensordot",
    "vecdot",
    "linalg.matmul",
    "linalg.matrix_transpose",
    "linalg.tensordot",
    "linalg.vecdot",
    "linalg.solve",
    "linalg.inv",
    "linalg.det",
    "linalg.slogdet",
    "linalg.cholesky",
    "linalg.eigh",
    "linalg.eigvalsh",
    "linalg.qr",
    "linalg.svd",
    "linalg.svdvals",
    "linalg.pinv",
    "linalg.matrix_power",
    "linalg.cross",
    "linalg.outer",
    "linalg.diagonal",
    "linalg.trace",
    "linalg.vector_norm",
    "linalg.matrix_norm",
)
FOURIER = (
    "fft.fft",
    "fft.ifft",
    "fft.fftn",
    "fft.ifftn",
    "fft.rfft",
    "fft.irfft",
    "fft.rfftn",
    "fft.irfftn",
    "fft.hfft",
    "fft.ihfft",
    "fft.fftshift",
    "fft.ifftshift",
    "fft.fftfreq",
    "fft.rfftfreq",
)
#: Names outside the Array API standard, implemented per backend (``unigrad._namespace._extras``).
EXTRAS = ("logsumexp", "sigmoid", "softplus", "relu", "erf", "rsqrt", "log_softmax", "softmax", "einsum")

#: Every function name a :class:`~unigrad._namespace.Namespace` guarantees on every backend
#: (``linalg.*`` and ``fft.*`` included, reached as ``xp.linalg.solve`` and ``xp.fft.rfft``).
GUARANTEED: tuple[str, ...] = (
    CREATION + ELEMENTWISE + PREDICATES + REDUCTIONS + MANIPULATION + LINEAR_ALGEBRA + FOURIER + EXTRAS
)

#: Guaranteed names that take no array to differentiate, or whose result does not depend smoothly on
#: one: creation functions (``zeros_like`` reads only a shape) and :data:`PREDICATES`. Every other
#: guaranteed name differentiates on every backend, except the gaps ``unsupported(backend)`` declares.
NOT_DIFFERENTIABLE: frozenset[str] = frozenset(
    {"asarray", "zeros", "ones", "zeros_like", "ones_like", "full", "full_like", "eye", "arange"}
    | {"linspace", "fft.fftfreq", "fft.rfftfreq"}
    | set(PREDICATES)
)

#: The sub-namespaces of the standard's extensions: ``xp.linalg``, ``xp.fft``.
EXTENSIONS = ("linalg", "fft")

#: ``linalg`` names that are the core function of the same name (the standard lists them twice).
LINALG_ALIASES = ("matmul", "matrix_transpose", "tensordot", "vecdot")

#: The dtype attributes of a :class:`~unigrad._namespace.Namespace` (each only where the backend
#: has it: ``bfloat16`` on NumPy needs ml_dtypes, MLX has no ``complex128``).
DTYPE_NAMES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "int32",
    "int64",
    "bool",
)


class SlogdetResult(NamedTuple):
    """``linalg.slogdet``'s result on every backend."""

    sign: Any
    logabsdet: Any


class EighResult(NamedTuple):
    """``linalg.eigh``'s result on every backend: ascending eigenvalues, eigenvectors as columns."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``linalg.qr``'s result on every backend."""

    Q: Any
    R: Any


class SVDResult(NamedTuple):
    """``linalg.svd``'s result on every backend: ``U @ diag(S) @ Vh`` is the matrix, ``S`` descending."""

    U: Any
    S: Any
    Vh: Any


def gather(modules: Mapping[str, Sequence[Any]], skip: Collection[str] = ()) -> dict[str, Callable[..., Any]]:
    """Every guaranteed function but those in ``skip``, found as an attribute of the modules given
    for its prefix.

    ``modules`` maps a prefix (``""`` for core names, ``"linalg"``, ``"fft"``) to the modules (or
    namespaces) that implement it, searched in order: the shims that implement the names
    themselves (TensorFlow, MLX) spread them over several modules. The ``linalg`` aliases of core
    names are left out: the namespace points them at the core function.

    Raises:
        AttributeError: a guaranteed name none of the modules has (a shim that is incomplete).
    """
    functions: dict[str, Callable[..., Any]] = {}
    for name in GUARANTEED:
        prefix, _, base = name.rpartition(".")
        if name in skip or (prefix == "linalg" and base in LINALG_ALIASES):
            continue
        for module in modules[prefix]:
            function = getattr(module, base, None)
            if function is not None:
                functions[name] = function
                break
        else:
            raise AttributeError(f"no module of {prefix or 'the core'!r} implements {name!r}")
    return functions
