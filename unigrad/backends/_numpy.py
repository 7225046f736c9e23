"""NumPy reference backend: central finite differences in float64.

It differentiates nothing symbolically, so it shares no code path with the frameworks it checks: it
is the independent oracle the tests and the conformance suite compare against. Cost is two loss
evaluations per parameter element; use it on small problems.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from unigrad.backends._base import FLOAT_DTYPES, Adapter, OutputCheck

#: Relative step of the central difference: cbrt(float64 eps) balances truncation (O(h^2)) against
#: round-off (O(eps / h)), giving about 1e-10 relative accuracy on smooth functions.
DEFAULT_STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))


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

    def match(self, x: Any, like: Any) -> Any:
        result = np.asarray(x, dtype=np.asarray(like).dtype)
        # Arrays shared through DLPack may be read-only; users get ordinary writable NumPy arrays.
        return result if result.flags.writeable else result.copy()

    def prepare_data_leaf(self, x: Any) -> Any:
        """Floating data is promoted to float64: the reference computes everything in float64."""
        if self.dtype_name(x) in FLOAT_DTYPES:
            return np.asarray(x, dtype=np.float64)
        return x

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        points = [np.array(leaf, dtype=np.float64) for leaf in leaves]  # private float64 copies

        def loss_at(current: list[np.ndarray]) -> float:
            loss, _ = finish(fn(current))
            return float(np.asarray(loss, dtype=np.float64).reshape(()))

        loss, aux = finish(fn(points))
        grads = []
        for point, leaf in zip(points, leaves, strict=True):
            flat = point.reshape(-1)  # a view: writing it moves the evaluation point
            grad = np.zeros(flat.shape, dtype=np.float64)
            for index in range(flat.size):
                centre = flat[index]
                step = self.step * max(1.0, abs(centre))
                flat[index] = centre + step
                upper = loss_at(points)
                flat[index] = centre - step
                lower = loss_at(points)
                flat[index] = centre
                # Divide by the steps actually taken (x + h is rounded), not by 2h.
                grad[index] = (upper - lower) / ((centre + step) - (centre - step))
            grads.append(grad.reshape(point.shape).astype(np.asarray(leaf).dtype, copy=False))
        return np.asarray(loss, dtype=np.float64), aux, grads


ADAPTER = NumpyAdapter()
