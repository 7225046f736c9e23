"""Op families beyond the elementwise ones: ops of a constant, reductions, products, linear algebra,
indexing and reshaping.

See :mod:`unigrad.fuzz.ops` for what an :class:`~unigrad.fuzz.ops.Op` knows. Sources here are
templates with ``{x}``, ``{y}``, ``{axis}``, ``{dims}`` (the axes as a tuple, all of them for
``None``), ``{keepdims}``, ``{indices}`` and ``{shape}``; names starting with ``_`` are helpers a
reproducer defines (:mod:`unigrad.fuzz.reproducer`), mirroring unigrad's own implementation where the
namespace adds code around the framework's function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unigrad.fuzz.ops import Attrs, Op, Shape, Site, numpy_namespace, resolve


def _axes(axis: int | None, ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim)) if axis is None else (axis % ndim,)


class Templated(Op):
    """An op whose reproducer source is a template per framework."""

    def fields(self, args: Sequence[str], attrs: Attrs) -> dict[str, Any]:
        return {"x": args[0], "y": args[1] if len(args) > 1 else ""}

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        return self.natives[framework].format(**self.fields(args, attrs))


class Reduce(Templated):
    """A reduction (or a normalisation along an axis) with ``axis`` and ``keepdims`` drawn."""

    def __init__(
        self,
        name: str,
        natives: dict[str, str],
        *,
        tie: str | None = None,
        axis_required: bool = False,
        keeps_shape: bool = False,
        singular: str | None = None,
        requires: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, requires or (name,), natives)
        self.tie = tie  # 'max' or 'min': a kink where the extreme is repeated
        self.axis_required = axis_required  # cumulative_sum, softmax: one int axis
        self.keeps_shape = keeps_shape  # cumulative_sum, softmax: no keepdims
        self.singular_kind = singular  # 'constant slice' (std), 'zero vector' (2-norm)

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        shape = shapes[0]
        ndim = len(shape)
        options: list[int | None] = list(range(ndim)) if self.axis_required else [None, *range(ndim)]
        if not options or 0 in shape:
            return None
        axis = options[choice % len(options)]
        if self.keeps_shape:
            return (axis, False), shape
        keepdims = axis is not None and (choice // len(options)) % 2 == 1
        reduced = _axes(axis, ndim)
        out = tuple(1 if i in reduced else n for i, n in enumerate(shape) if keepdims or i not in reduced)
        return (axis, keepdims), out

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        axis, keepdims = attrs
        function = resolve(xp, self.requires[0])
        if self.keeps_shape:
            return function(args[0], axis=axis)
        if self.name == "vector_norm":
            return function(args[0], axis=axis, keepdims=keepdims, ord=2)
        return function(args[0], axis=axis, keepdims=keepdims)

    def _slices(self, x: np.ndarray, axis: int | None) -> tuple[np.ndarray, tuple[int, ...]]:
        if x.ndim == 0:
            return x.reshape(1, 1), ()
        reduced = _axes(axis, x.ndim)
        kept = [i for i in range(x.ndim) if i not in reduced]
        order = kept + list(reduced)
        return np.transpose(x, order).reshape(-1, int(np.prod([x.shape[i] for i in reduced]))), tuple(order)

    def _tied(self, x: np.ndarray, attrs: Attrs, margin: float) -> np.ndarray:
        reduced = _axes(attrs[0], x.ndim)
        extreme = (np.max if self.tie == "max" else np.min)(x, axis=reduced, keepdims=True)
        return np.abs(x - extreme) <= margin * np.maximum(1, np.abs(extreme))

    def site(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float) -> Site | None:
        if self.tie is None or args[0].ndim == 0:
            return None
        tied = self._tied(args[0], attrs, margin)
        rows, _ = self._slices(tied, attrs[0])
        if not np.any(rows.sum(axis=1) > 1):
            return None
        # how tied elements share the gradient: equally, all to the first, all to the last, or
        # equally among the exactly equal ones only (a near-tie a float32 backend resolves itself)
        exact = self._tied(args[0], attrs, 0.0)
        choices = (0.0, 1.0, 2.0) if np.array_equal(exact, tied) else (0.0, 1.0, 2.0, 3.0)
        return ("tie", tied, choices)

    def linearized(
        self, args: Sequence[np.ndarray], base: Sequence[np.ndarray], attrs: Attrs, site: Site, choice: float
    ) -> np.ndarray:
        x, x0 = args[0], base[0]
        tied = self._tied(x0, attrs, 0.0) if choice == 3.0 else site[1]
        rows, order = self._slices(tied, attrs[0])
        rows = rows.astype(np.float64)
        if choice == 1.0:
            rows = np.eye(rows.shape[1])[np.argmax(rows, axis=1)]
        elif choice == 2.0:
            rows = np.eye(rows.shape[1])[rows.shape[1] - 1 - np.argmax(rows[:, ::-1], axis=1)]
        else:
            rows = rows / rows.sum(axis=1, keepdims=True)
        moved = tuple(x.shape[i] for i in order)
        weights = np.transpose(rows.reshape(moved), np.argsort(order))
        base_out = np.asarray(self.apply(numpy_namespace(), base, attrs))
        axis, keepdims = attrs
        return base_out + np.sum(weights * (x - x0), axis=_axes(axis, x.ndim), keepdims=keepdims)

    def singular(
        self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float
    ) -> str | None:
        x = args[0]
        if self.singular_kind is None:
            return None
        rows, _ = self._slices(x, attrs[0])
        if self.singular_kind == "zero vector" and np.any(np.all(np.abs(rows) <= margin, axis=1)):
            return "zero vector"
        if self.singular_kind == "constant slice" and np.any(np.ptp(rows, axis=1) <= margin):
            return "constant slice"
        return None

    def fields(self, args: Sequence[str], attrs: Attrs) -> dict[str, Any]:
        axis, keepdims = attrs
        return {"x": args[0], "axis": axis, "keepdims": keepdims, "dims": "DIMS", "all": axis is None}

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        template = self.natives[framework]
        # "form with axis|form for all axes", e.g. torch.prod(x) when axis is None
        template = template.split("|")[1] if attrs[0] is None and "|" in template else template.split("|")[0]
        text = template.format(**self.fields(args, attrs))
        axis = attrs[0]
        # {dims}: torch's dim tuple; all axes when axis is None (the rank is known at run time)
        dims = f"tuple(range({args[0]}.ndim))" if axis is None else f"({axis},)"
        return text.replace("DIMS", dims)


class Matmul(Templated):
    """``matmul(a, b)`` of vectors and matrices with matching inner dimensions; ``outer`` of two vectors."""

    arity = 2

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        a, b = shapes
        if self.name == "outer":
            return ((), (a[0], b[0])) if len(a) == 1 and len(b) == 1 else None
        if not a or not b:
            return None
        inner = b[0] if len(b) == 1 else b[-2]
        if a[-1] != inner:
            return None
        return (), np.matmul(np.zeros(a), np.zeros(b)).shape


class SquareMatrix(Templated):
    """A function of one square matrix (det, inv, slogdet, eigenvalues), or ``solve(A, b)``."""

    def __init__(
        self, name: str, requires: tuple[str, ...], natives: dict[str, str], *, arity: int = 1
    ) -> None:
        super().__init__(name, requires, natives)
        self.arity = arity

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        a = shapes[0]
        if len(a) != 2 or a[0] != a[1] or a[0] < 2:
            return None
        if self.arity == 2:
            b = shapes[1]
            if not b or len(b) > 2 or b[0] != a[0]:
                return None
            return (), b
        return (), {"det": (), "slogdet": (), "trace": (), "eigvalsh": (a[0],)}.get(self.name, a)

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        if self.name == "slogdet":
            return xp.linalg.slogdet(args[0]).logabsdet
        if self.name == "eigvalsh":
            a = args[0]
            return xp.linalg.eigh((a + xp.matrix_transpose(a)) / 2).eigenvalues
        return resolve(xp, self.requires[0])(*args)

    def valid(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray) -> bool:
        a = args[0]
        if not np.all(np.isfinite(a)):  # LAPACK would complain on stdout
            return False
        if self.name in ("inv", "solve", "slogdet"):
            return bool(np.linalg.cond(a) < 1e4)
        if self.name == "eigvalsh":  # a repeated eigenvalue is a kink of each of them
            values = np.linalg.eigvalsh((a + a.T) / 2)
            return bool(np.min(np.diff(values)) > 1e-2 * max(1.0, float(np.max(np.abs(values)))))
        return True

    def kind(self, args: Sequence[np.ndarray], attrs: Attrs, margin: float) -> str:
        if (
            self.name == "det"
            and abs(np.linalg.det(args[0])) <= 1e-8 * max(1.0, np.max(np.abs(args[0]))) ** 2
        ):
            return "singular matrix"
        return super().kind(args, attrs, margin)


class Take(Templated):
    """``take(x, indices, axis=...)`` with constant indices, repeated ones included."""

    PATTERNS = ((0,), (0, 0), (1, 0, 1), (-1,), (2, 2, 0), (1,))

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        shape = shapes[0]
        if not shape:
            return None
        options: list[int | None] = [None, *range(len(shape))]
        axis = options[choice % len(options)]
        size = int(np.prod(shape)) if axis is None else shape[axis]
        indices = self.PATTERNS[(choice // len(options)) % len(self.PATTERNS)]
        if any(i >= size or i < -size for i in indices):
            return None
        if axis is None:
            return (indices, axis), (len(indices),)
        return (indices, axis), (*shape[:axis], len(indices), *shape[axis + 1 :])

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        indices, axis = attrs
        return xp.take(args[0], xp.asarray(np.asarray(indices, dtype=np.int64)), axis=axis)

    def kind(self, args: Sequence[np.ndarray], attrs: Attrs, margin: float) -> str:
        indices = attrs[0]
        return "repeated indices" if len(set(indices)) < len(indices) else super().kind(args, attrs, margin)

    def fields(self, args: Sequence[str], attrs: Attrs) -> dict[str, Any]:
        return {"x": args[0], "indices": list(attrs[0]), "axis": attrs[1]}


class Rearrange(Templated):
    """Reshaping ops: ``flip``, ``matrix_transpose``, ``reshape`` (to one axis, or reversed)."""

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        shape = shapes[0]
        if self.name == "matrix_transpose":
            return ((), (*shape[:-2], shape[-1], shape[-2])) if len(shape) >= 2 else None
        if self.name == "flip":
            if not shape:
                return None
            options: list[int | None] = [None, *range(len(shape))]
            return (options[choice % len(options)],), shape
        target = (int(np.prod(shape)),) if choice % 2 == 0 or len(shape) < 2 else tuple(reversed(shape))
        return (target,), target

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        if self.name == "matrix_transpose":
            return xp.matrix_transpose(args[0])
        if self.name == "flip":
            return xp.flip(args[0], axis=attrs[0])
        return xp.reshape(args[0], attrs[0])

    def fields(self, args: Sequence[str], attrs: Attrs) -> dict[str, Any]:
        value = attrs[0] if attrs else None
        dims = "DIMS" if self.name == "flip" else ""
        return {"x": args[0], "axis": value, "shape": value, "dims": dims}

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        text = super().source(framework, args, attrs)
        if self.name != "flip":
            return text
        axis = attrs[0]
        dims = f"list(range({args[0]}.ndim))" if axis is None else f"[{axis}]"
        return text.replace("DIMS", dims)


#: Exponents of ``pow(x, c)``: integer powers are smooth at 0, fractional and negative ones singular.
EXPONENTS = (2.0, 3.0, 0.5, -1.0, 1.5)


class PowConstant(Op):
    """``pow(x, c)`` with a constant exponent."""

    def __init__(self, natives: dict[str, str]) -> None:
        super().__init__("pow_const", ("pow",), natives)

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        return (EXPONENTS[choice % len(EXPONENTS)],), shapes[0]

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        return xp.pow(args[0], attrs[0])

    def singular(
        self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float
    ) -> str | None:
        if attrs[0] < 1 and np.any(np.abs(args[0]) <= margin):
            return "zero base"
        return None

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        return f"{self.natives[framework]}({args[0]}, {attrs[0]!r})"


class Shift(Op):
    """``x - c`` with a constant ``c``: moves values onto kinks and domain edges (``abs(x - 1)``)."""

    def __init__(self) -> None:
        super().__init__("shift", (), {})

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        return (constant,), shapes[0]

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        return args[0] - attrs[0]

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        return f"({args[0]} - {attrs[0]!r})"
