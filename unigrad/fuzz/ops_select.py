"""Ops that select between values: ``clip`` at its bounds and ``where`` at its threshold.

See :mod:`unigrad.fuzz.ops` for what an :class:`~unigrad.fuzz.ops.Op` knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unigrad.fuzz.ops import EXACT, Attrs, Op, Shape, Site, numpy_namespace, with_exact

#: (low, high) bounds of clip, drawn by index: both bounds, or one, at values inputs often take.
CLIP_BOUNDS: tuple[tuple[float | None, float | None], ...] = (
    (-1.0, 1.0),
    (0.0, 1.0),
    (0.0, None),
    (None, 0.5),
    (-0.5, 2.0),
    (1.0, 3.0),
)


class Clip(Op):
    """``clip(x, min=lo, max=hi)`` with constant bounds; a kink at each bound."""

    def __init__(self, natives: dict[str, str]) -> None:
        super().__init__("clip", ("clip",), natives)

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        return CLIP_BOUNDS[choice % len(CLIP_BOUNDS)], shapes[0]

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        low, high = attrs
        return xp.clip(args[0], min=low, max=high)

    def site(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float) -> Site | None:
        x = args[0]
        mask = np.zeros(x.shape, bool)
        for bound in attrs:
            if bound is not None:
                mask |= np.abs(x - bound) <= margin * max(1.0, abs(bound))
        # the derivative at a bound: 1 (inside), 0 (outside) or the midpoint
        exact = np.isin(x, [b for b in attrs if b is not None])
        return ("bound", mask, with_exact((0.5, 1.0, 0.0), mask, exact)) if mask.any() else None

    def linearized(
        self, args: Sequence[np.ndarray], base: Sequence[np.ndarray], attrs: Attrs, site: Site, choice: float
    ) -> np.ndarray:
        xp = numpy_namespace()
        base_out = np.asarray(self.apply(xp, base, attrs))
        slope = np.full(base_out.shape, choice % EXACT)
        if choice >= EXACT:  # near a bound but not on it: 1 inside the range, 0 outside
            low, high = attrs
            x0 = base[0]
            inside = (x0 > (-np.inf if low is None else low)) & (x0 < (np.inf if high is None else high))
            on_bound = np.isin(x0, [b for b in attrs if b is not None])
            slope = np.where(on_bound, slope, inside.astype(np.float64))
        return np.where(site[1], base_out + slope * (args[0] - base[0]), self.apply(xp, args, attrs))

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        low, high = attrs
        x = args[0]
        if framework == "tensorflow":  # as unigrad's shim: maximum, then minimum
            if low is not None:
                x = f"tf.math.maximum({x}, tf.cast({low!r}, {args[0]}.dtype))"
            if high is not None:
                x = f"tf.math.minimum({x}, tf.cast({high!r}, {args[0]}.dtype))"
            return x
        if framework == "torch":
            return f"torch.clamp({x}, min={low!r}, max={high!r})"
        return f"{self.natives[framework]}({x}, {low!r}, {high!r})"


class Where(Op):
    """``where(x > t, a, b)``, or ``where(a > t, a, b)`` (drawn): a jump where the condition flips.

    The second form is how an unsafe branch usually reads: ``where(log(x) > t, log(x), b)`` with
    ``log(x)`` nan where ``x < 0``: nan fails the condition, ``b`` is taken, and reverse mode still
    multiplies the nan branch's derivative by a zero cotangent.
    """

    arity = 3

    def __init__(self, natives: dict[str, str]) -> None:
        super().__init__("where", ("where",), natives)

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        try:
            return (constant, choice % 2 == 0), tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            return None

    @staticmethod
    def _condition_source(args: Sequence[Any], attrs: Attrs) -> Any:
        return args[1] if attrs[1] else args[0]

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        _, a, b = args
        return xp.where(self._condition_source(args, attrs) > attrs[0], a, b)

    def site(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float) -> Site | None:
        x = np.broadcast_to(self._condition_source(args, attrs), out.shape)
        threshold = attrs[0]
        with np.errstate(invalid="ignore"):
            mask = np.abs(x - threshold) <= margin * max(1.0, abs(threshold))
        # choice 0: the condition as float64 computes it; 1: flipped (rounding on the other side)
        return ("threshold", mask, (0.0, 1.0)) if mask.any() else None

    def linearized(
        self, args: Sequence[np.ndarray], base: Sequence[np.ndarray], attrs: Attrs, site: Site, choice: float
    ) -> np.ndarray:
        x = self._condition_source(args, attrs)
        x, a, b = np.broadcast_arrays(x, args[1], args[2])
        with np.errstate(invalid="ignore"):
            fixed = np.broadcast_to(self._condition_source(base, attrs) > attrs[0], x.shape) ^ bool(choice)
            condition = np.where(site[1], fixed, x > attrs[0])
        return np.where(condition, a, b)

    def kind(self, args: Sequence[np.ndarray], attrs: Attrs, margin: float) -> str:
        x = self._condition_source(args, attrs)
        x, a, b = np.broadcast_arrays(x, args[1], args[2])
        with np.errstate(invalid="ignore"):
            untaken = np.where(x > attrs[0], b, a)
        if not np.all(np.isfinite(untaken)):
            return "unsafe branch"
        return super().kind(args, attrs, margin)

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        x, a, b = args
        condition = a if attrs[1] else x
        return f"{self.natives[framework]}({condition} > {attrs[0]!r}, {a}, {b})"
