"""NumPy reference backend: central finite differences in float64.

It differentiates nothing symbolically, so it shares no code path with the frameworks it checks: it
is the independent oracle the tests and the conformance suite compare against. Cost is two loss
evaluations per parameter element; use it on small problems.

The other transformations are built on one finite-difference Jacobian: ``jvp`` and ``vjp`` contract
it, ``hessian`` is the Jacobian of the finite-difference gradient (both with the larger step
``SECOND_ORDER_STEP``), ``hvp`` contracts the Hessian and ``per_example_grads`` loops over examples.

Complex parameters are differentiated as pairs of real numbers: each complex leaf of shape ``s`` is
moved as a float64 array of shape ``s + (2,)`` (real and imaginary parts, stepped separately), and its
derivatives ``d/dRe`` and ``d/dIm`` come back joined as ``d/dRe + i·d/dIm`` (see docs/complex.md).

Example:
    >>> import numpy as np
    >>> from unigrad.backends._numpy import NumpyAdapter
    >>> _, _, (grad,) = NumpyAdapter().value_and_grad(
    ...     lambda leaves: np.abs(leaves[0]) ** 2, [np.array(1.0 + 2.0j)], lambda out: (out, None)
    ... )
    >>> complex(np.round(grad, 6))
    (2+4j)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from unigrad.backends._base import COMPLEX_DTYPES, FLOAT_DTYPES, Adapter, ExampleFn, FlatFn, OutputCheck

#: Relative step of the central difference: cbrt(float64 eps) balances truncation (O(h^2)) against
#: round-off (O(eps / h)), giving about 1e-10 relative accuracy on smooth functions.
DEFAULT_STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))

#: Relative step of both (nested) differences of a second derivative. Round-off grows as eps / h^2:
#: plain central differences (truncation O(h^2)) would leave ~1e-6 here. The five-point stencil
#: (truncation O(h^4)) with h = eps^(1/5) ~ 7e-4 leaves about 1e-9: eps^(1/6), the textbook balance
#: for unit-size derivatives, loses to truncation on the catalogue's tanh layers (4th derivatives ~100).
SECOND_ORDER_STEP = float(np.finfo(np.float64).eps ** (1.0 / 5.0))


class NumpyAdapter(Adapter):
    name = "numpy"

    def __init__(self, step: float = DEFAULT_STEP) -> None:
        self.step = step

    def is_array(self, x: Any) -> bool:
        return isinstance(x, (np.ndarray, np.generic))

    def dtype_name(self, x: Any) -> str:
        return np.asarray(x).dtype.name

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(np.shape(x))

    def version(self) -> str:
        return str(np.__version__)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def from_numpy(self, array: np.ndarray) -> Any:
        return np.asarray(array)

    def from_dlpack(self, source: Any) -> Any:
        return np.from_dlpack(source)

    def from_foreign(self, x: Any, origin: Adapter) -> Any:
        # The framework's own export (zero-copy where it can be: torch's .numpy(), JAX's buffer) is
        # several times cheaper than DLPack's Python protocol, and knows bfloat16 and devices.
        return np.asarray(origin.to_numpy(x))  # an ndarray even where .numpy() gives a scalar (TF)

    def restore(self, x: Any, origin: Adapter, like: Any) -> Any:
        # One step instead of from_foreign then match: this runs once per gradient of every NumPy call.
        result = origin.to_numpy(x)
        if type(result) is not np.ndarray:
            result = np.asarray(result)  # TF's .numpy() of a 0-d tensor is a NumPy scalar
        dtype = like.dtype if type(like) is np.ndarray else np.asarray(like).dtype
        flags = result.flags
        # A copy when the export is read-only (DLPack and JAX views), of another dtype, or laid out
        # so that elements share memory: PyTorch hands back the gradient of a sum as an expanded
        # (stride 0) tensor, and writing one element of its NumPy view would change them all.
        if result.dtype != dtype or not flags.writeable or not (flags.c_contiguous or flags.f_contiguous):
            return np.array(result, dtype=dtype)
        return result

    def match(self, x: Any, like: Any) -> Any:
        result = np.asarray(x, dtype=like.dtype if type(like) is np.ndarray else np.asarray(like).dtype)
        # Arrays shared through DLPack may be read-only; users get ordinary writable NumPy arrays.
        return result if result.flags.writeable else result.copy()

    def data_preparer(self) -> Callable[[Any], Any] | None:
        return self.prepare_data_leaf

    def prepare_data_leaf(self, x: Any) -> Any:
        """Floating data is promoted to float64 (complex to complex128): the reference computes
        everything in 64 bits."""
        name = self.dtype_name(x)
        if name in FLOAT_DTYPES:
            return np.asarray(x, dtype=np.float64)
        if name in COMPLEX_DTYPES:
            return np.asarray(x, dtype=np.complex128)
        return x

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        points, is_complex = _real_points(leaves)
        fn = _on_real_points(fn, is_complex)

        def loss_at(current: list[np.ndarray]) -> list[np.ndarray]:
            loss, _ = finish(fn(current))
            return [np.asarray(loss, dtype=np.float64).reshape(())]

        loss, aux = finish(fn(points))
        jacobian = _joined_row(_difference_jacobian(loss_at, points, self.step)[0], is_complex)
        grads = [
            g.astype(np.asarray(leaf).dtype, copy=False) for g, leaf in zip(jacobian, leaves, strict=True)
        ]
        return np.asarray(loss, dtype=np.float64), aux, grads

    def jvp(self, fn: FlatFn, leaves: list[Any], tangents: list[Any]) -> tuple[list[Any], list[Any]]:
        # A complex tangent is a direction in the real sense: its real and imaginary parts move the
        # parameter's real and imaginary parts.
        points, is_complex = _real_points(leaves)
        fn = _on_real_points(fn, is_complex)
        out = _float64_outputs(fn, points)
        jacobian = _difference_jacobian(fn, points, self.step)
        real_tangents = _real_points(tangents)[0]
        return out, [_contract_params(row, real_tangents) for row in jacobian]

    def vjp(self, fn: FlatFn, leaves: list[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        points, is_complex = _real_points(leaves)
        fn = _on_real_points(fn, is_complex)
        out = _float64_outputs(fn, points)
        jacobian = _difference_jacobian(fn, points, self.step)

        def pullback(cotangents: list[Any]) -> list[Any]:
            return _joined_row([
                np.asarray(sum(
                    (np.tensordot(np.asarray(c, np.float64), jacobian[i][j], axes=np.ndim(c))
                     for i, c in enumerate(cotangents)),
                    start=np.zeros(point.shape),
                ))
                for j, point in enumerate(points)
            ], is_complex)  # fmt: skip

        return out, pullback

    def jacobian(self, fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
        points, is_complex = _real_points(leaves)
        jacobian = _difference_jacobian(_on_real_points(fn, is_complex), points, self.step)
        return [_joined_row(row, is_complex) for row in jacobian]

    def hessian(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> list[list[Any]]:
        return _real_hessian(fn, leaves, finish)

    def hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        # For complex leaves: the real Hessian (of real and imaginary parts) times the vector's real
        # and imaginary parts, joined back: the derivative of the gradient along ``vector``.
        points, is_complex = _real_points(leaves)
        real_vector = _real_points(vector)[0]
        rows = _real_hessian(_on_real_points(fn, is_complex), points, finish)
        return _joined_row([_contract_params(row, real_vector) for row in rows], is_complex)

    def per_example_grads(
        self, fn: ExampleFn, leaves: list[Any], batch: list[Any], finish: OutputCheck
    ) -> list[Any]:
        size = np.shape(batch[0])[0]
        rows = [
            self.value_and_grad(lambda params, i=i: fn(params, [b[i] for b in batch]), leaves, finish)[2]
            for i in range(size)
        ]
        return [np.stack(column) for column in zip(*rows, strict=True)]


def _real_hessian(fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck) -> list[list[Any]]:
    """The Hessian of ``finish(fn(leaves))`` by nested five-point differences (real leaves)."""

    def loss_at(current: list[np.ndarray]) -> list[np.ndarray]:
        loss, _ = finish(fn(current))
        return [np.asarray(loss, dtype=np.float64).reshape(())]

    def gradient(current: list[np.ndarray]) -> list[np.ndarray]:
        return _difference_jacobian(loss_at, current, SECOND_ORDER_STEP, five_point=True)[0]

    return _difference_jacobian(gradient, _float64_copies(leaves), SECOND_ORDER_STEP, five_point=True)


def _float64_copies(leaves: list[Any]) -> list[np.ndarray]:
    return [np.array(leaf, dtype=np.float64) for leaf in leaves]  # private copies: they get moved


def _real_points(leaves: list[Any]) -> tuple[list[np.ndarray], list[bool]]:
    """Private float64 copies of ``leaves`` (they get moved), each complex one as its real and
    imaginary parts along a new last axis; and which leaves were complex."""
    points, is_complex = [], []
    for leaf in leaves:
        array = np.asarray(leaf)
        complex_leaf = array.dtype.kind == "c"
        if complex_leaf:
            array = np.stack([array.real, array.imag], axis=-1)
        points.append(np.array(array, dtype=np.float64))
        is_complex.append(complex_leaf)
    return points, is_complex


def _on_real_points(fn: Callable[[list[Any]], Any], is_complex: list[bool]) -> Callable[[list[Any]], Any]:
    """``fn`` of the complex leaves, as a function of their :func:`_real_points` (``fn`` itself when
    no leaf is complex)."""
    if not any(is_complex):
        return fn

    def on_real_points(points: list[np.ndarray]) -> Any:
        return fn([_join(p) if c else p for p, c in zip(points, is_complex, strict=True)])

    return on_real_points


def _join(parts: np.ndarray) -> np.ndarray:
    """``parts[..., 0] + i·parts[..., 1]``: real and imaginary parts (or d/dRe and d/dIm) as complex128."""
    return parts[..., 0] + 1j * parts[..., 1]


def _joined_row(row: list[np.ndarray], is_complex: list[bool]) -> list[np.ndarray]:
    """Derivatives with respect to :func:`_real_points`, joined as ``d/dRe + i·d/dIm`` for complex leaves."""
    return [_join(block) if c else block for block, c in zip(row, is_complex, strict=True)]


def _float64_outputs(fn: FlatFn, points: list[np.ndarray]) -> list[np.ndarray]:
    # Copies: an output may be a view of a point (fn returning p, p[1:], p.reshape(...)), which the
    # differences move in place; as a view, f(x + h) and f(x - h) were the same array (derivative 0).
    return [np.array(o, dtype=np.float64) for o in fn(points)]


def _difference_jacobian(
    fn: FlatFn, points: list[np.ndarray], relative_step: float, five_point: bool = False
) -> list[list[Any]]:
    """``J[i][j]`` of shape ``out_i.shape + point_j.shape`` by central differences around ``points``.

    Moves one element of ``points`` at a time (in place, restored exactly afterwards). The five-point
    stencil ``(8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h`` has O(h^4) truncation error.
    """
    outputs = _float64_outputs(fn, points)
    jacobian = [[np.zeros(out.shape + point.shape) for point in points] for out in outputs]
    for j, point in enumerate(points):
        flat = point.reshape(-1)  # a view: writing it moves the evaluation point
        for index in range(flat.size):
            centre = flat[index]
            step = relative_step * max(1.0, abs(centre))
            flat[index] = centre + step
            upper = _float64_outputs(fn, points)
            flat[index] = centre - step
            lower = _float64_outputs(fn, points)
            # Divide by the steps actually taken (x + h is rounded), not by 2h.
            width = (centre + step) - (centre - step)
            differences = [(u - v) / width for u, v in zip(upper, lower, strict=True)]
            if five_point:
                flat[index] = centre + 2 * step
                upper = _float64_outputs(fn, points)
                flat[index] = centre - 2 * step
                lower = _float64_outputs(fn, points)
                wide = (centre + 2 * step) - (centre - 2 * step)
                differences = [
                    (4 * near - (u - v) / wide) / 3
                    for near, u, v in zip(differences, upper, lower, strict=True)
                ]
            flat[index] = centre
            for i, out in enumerate(outputs):
                jacobian[i][j].reshape(out.size, flat.size)[:, index] = differences[i].reshape(-1)
    return jacobian


def _contract_params(row: list[np.ndarray], vectors: list[Any]) -> np.ndarray:
    """``sum_j row[j] . vectors[j]`` over each vector's axes (a Jacobian row times a params-like vector)."""
    total = None
    for block, vector in zip(row, vectors, strict=True):
        term = np.tensordot(block, np.asarray(vector, np.float64), axes=np.ndim(vector))
        total = term if total is None else total + term
    assert total is not None
    return np.asarray(total)


ADAPTER = NumpyAdapter()
