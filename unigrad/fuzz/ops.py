"""What the fuzzer knows about each namespace operation: its typing rule, kinks, singular points, source.

One :class:`Op` per operation the generator may place in a program (the "OpInfo" of the fuzzer). An
op knows

* its **typing rule** (:meth:`Op.plan`): given the shapes of its operands and a drawn integer, the
  static arguments (axis, bounds, indices) and the result's shape, or ``None`` when it does not apply;
* how to **call** it on any namespace (:meth:`Op.apply`), NumPy included (the float64 reference);
* its **kinks** (:meth:`Op.site`): where, at the operands' values, the op is not differentiable but
  has a subdifferential (abs at 0, maximum at a tie, clip at a bound, max over tied elements), and
  the local derivatives a framework may validly pick there (``choices``; the first is the one a
  central difference sees). :meth:`Op.linearized` evaluates the op with the kink elements replaced
  by the tangent of one choice, so that finite differences of the program give the gradient under
  that convention (see :mod:`unigrad.fuzz.reference`);
* its **singular points** (:meth:`Op.singular`): an infinite or undefined local derivative (sqrt at 0,
  the 2-norm of the zero vector), where reverse mode may produce nan even when the loss is smooth;
* its **source** in each framework's own API (:meth:`Op.source`), for standalone reproducers.

The families (unary, binary) live here; clip and where in :mod:`unigrad.fuzz.ops_select`; ops of a
constant, reductions, linear algebra and indexing in :mod:`unigrad.fuzz.ops_structured`; the table
of instances in :mod:`unigrad.fuzz.op_table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Shape = tuple[int, ...]
Attrs = tuple[Any, ...]
#: What a kink site is: (kind of input, element mask, the local choices a framework may make).
Site = tuple[str, np.ndarray, tuple[float, ...]]
FRAMEWORKS = ("numpy", "torch", "tensorflow", "jax")


def resolve(xp: Any, dotted: str) -> Any:
    """``xp.linalg.det`` for ``'linalg.det'``."""
    target = xp
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def numpy_namespace() -> Any:
    """unigrad's NumPy namespace: the float64 reference evaluates programs with it."""
    from unigrad._namespace import namespace

    return namespace("numpy")


#: A choice of ``EXACT + c``: ``c`` at the elements exactly on the kink only, the others (within the
#: rounding margin of it) following their own side, as a backend that sees them apart does.
EXACT = 10.0


def with_exact(choices: tuple[float, ...], near: np.ndarray, exact: np.ndarray) -> tuple[float, ...]:
    """``choices``, and when some elements are only near the kink, each again for exact ones only."""
    if np.array_equal(near, exact):
        return choices
    return choices + tuple(EXACT + c for c in choices)


def classify(args: Sequence[np.ndarray], zero: bool = False) -> str:
    """The kind of input of an op at none of its kinks or singular points, for grouping findings.

    ``'non-finite'``, ``'zero'`` (only for ops where zero is special: ``zero=True``), ``'large'``
    (beyond 10 in magnitude) or ``'generic'``: coarse on purpose, so that one bug seen at many inputs
    stays one finding.
    """
    values = np.concatenate([np.ravel(a) for a in args]) if args else np.zeros(0)
    if values.size and not np.all(np.isfinite(values)):
        return "non-finite"
    if zero and np.any(values == 0):
        return "zero"
    if values.size and np.max(np.abs(values)) > 10:
        return "large"
    return "generic"


class Op:
    """One operation of the neutral namespace (or an operator on arrays) the fuzzer can generate."""

    #: Operands taken from the program's values.
    arity = 1
    #: Whether a zero operand is a kind of input of its own (prod, divide, pow), for grouping findings.
    zero_is_special = False

    def __init__(self, name: str, requires: tuple[str, ...], natives: dict[str, str]) -> None:
        self.name = name
        #: Names in ``unigrad._namespace.GUARANTEED`` the op calls; an op is generated only when the
        #: running namespace guarantees all of them.
        self.requires = requires
        self.natives = natives

    def __repr__(self) -> str:
        return f"<fuzz op {self.name}>"

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        """Static arguments and the result's shape, or ``None`` if the op does not apply."""
        return (), shapes[0]

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        """The op on any namespace's arrays."""
        return resolve(xp, self.requires[0])(*args)

    def site(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float) -> Site | None:
        """The op's kink at these float64 operands, or ``None`` (smooth here)."""
        return None

    def linearized(
        self, args: Sequence[np.ndarray], base: Sequence[np.ndarray], attrs: Attrs, site: Site, choice: float
    ) -> np.ndarray:
        """The op near ``base`` with the site's elements following the tangent of ``choice``."""
        raise NotImplementedError(f"{self.name} has no kink")

    def singular(
        self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float
    ) -> str | None:
        """The kind of singular point (infinite local derivative) at these operands, or ``None``."""
        return None

    def valid(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray) -> bool:
        """Whether the op is well enough conditioned here to be compared (inv of a singular matrix is not)."""
        return True

    def kind(self, args: Sequence[np.ndarray], attrs: Attrs, margin: float) -> str:
        """The kind of input, for grouping findings by cause: the kink or singularity, else generic."""
        out = np.asarray(self.apply(numpy_namespace(), args, attrs))
        site = self.site(args, attrs, out, margin)
        if site is not None:
            return site[0]
        return self.singular(args, attrs, out, margin) or classify(args, self.zero_is_special)

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        """The op as one expression of ``framework``'s own API (for reproducers)."""
        return f"{self.natives[framework]}({', '.join(args)})"


class Unary(Op):
    """An elementwise function of one array; optionally a kink or a jump at some points."""

    def __init__(
        self,
        name: str,
        natives: dict[str, str],
        *,
        kink: tuple[float, ...] | None = None,
        jump: str | None = None,
        singular_at: tuple[float, ...] = (),
        max_abs: float | None = None,
    ) -> None:
        super().__init__(name, (name,), natives)
        self.max_abs = max_abs  # periodic ops: beyond, finite differences cannot resolve a period
        self.kink = kink  # local derivatives valid at 0 (abs, relu)
        self.jump = jump  # 'zero', 'integer', 'half-integer': piecewise constant (sign, floor, round)
        self.singular_at = singular_at  # points of an infinite derivative: sqrt at 0, asin at ±1

    def _at_kink(self, x: np.ndarray, margin: float) -> np.ndarray:
        if self.jump == "integer":
            return np.abs(x - np.round(x)) <= margin * np.maximum(1, np.abs(x))
        if self.jump == "half-integer":  # round: half to even jumps at x.5
            return np.abs(x - np.floor(x) - 0.5) <= margin * np.maximum(1, np.abs(x))
        return np.abs(x) <= margin

    def site(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float) -> Site | None:
        if self.kink is None and self.jump is None:
            return None
        mask = self._at_kink(args[0], margin)
        if not mask.any():
            return None
        return (self.jump or "zero", mask, with_exact(self.kink or (0.0,), mask, self._at_kink(args[0], 0.0)))

    def linearized(
        self, args: Sequence[np.ndarray], base: Sequence[np.ndarray], attrs: Attrs, site: Site, choice: float
    ) -> np.ndarray:
        xp = numpy_namespace()
        base_out = np.asarray(self.apply(xp, base, attrs))
        slope = np.full(base_out.shape, choice % EXACT)
        if choice >= EXACT:  # near the kink but not on it: the slope of the element's own side
            x0 = base[0]
            offset = np.where(self._at_kink(x0, 0.0), 0.0, x0 - np.round(x0) if self.jump else x0) / 4
            ahead = np.asarray(self.apply(xp, [x0 + offset], attrs))
            behind = np.asarray(self.apply(xp, [x0 - offset], attrs))
            with np.errstate(invalid="ignore", divide="ignore"):
                slope = np.where(
                    offset != 0, (ahead - behind) / (2 * np.where(offset != 0, offset, 1)), slope
                )
        return np.where(site[1], base_out + slope * (args[0] - base[0]), self.apply(xp, args, attrs))

    def singular(
        self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float
    ) -> str | None:
        for point in self.singular_at:
            if np.any(np.abs(args[0] - point) <= margin):
                return "zero" if point == 0 else f"{point:g}"
        return None

    def valid(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray) -> bool:
        return self.max_abs is None or bool(np.all(np.abs(args[0]) <= self.max_abs))


class Binary(Op):
    """An elementwise function of two broadcastable arrays (or an arithmetic operator)."""

    arity = 2

    def __init__(
        self,
        name: str,
        natives: dict[str, str],
        *,
        operator: str | None = None,
        tie: bool = False,
        singular: str | None = None,
        pairs: tuple[tuple[float, float], ...] = (),
    ) -> None:
        super().__init__(name, () if operator else (name,), natives)
        self.operator = operator  # '+', '-', '*', '/': arithmetic on the arrays themselves
        self.tie = tie  # maximum, minimum: a kink where the operands are equal
        self.singular_kind = singular  # 'both zero' (atan2), 'zero base' (pow)
        # hypot at (0, 0): the valid gradients (d/da, d/db) are the unit disk; these are tried
        self.pairs = pairs

    def plan(self, shapes: Sequence[Shape], choice: int, constant: float) -> tuple[Attrs, Shape] | None:
        try:
            return (), tuple(np.broadcast_shapes(shapes[0], shapes[1]))
        except ValueError:
            return None

    def apply(self, xp: Any, args: Sequence[Any], attrs: Attrs) -> Any:
        a, b = args
        if self.operator == "+":
            return a + b
        if self.operator == "-":
            return a - b
        if self.operator == "*":
            return a * b
        if self.operator == "/":
            return a / b
        return resolve(xp, self.name)(a, b)

    def site(self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float) -> Site | None:
        if self.pairs:
            a, b = np.broadcast_arrays(*args)
            mask = (np.abs(a) <= margin) & (np.abs(b) <= margin)
            # the pairs everywhere, or near (0, 0) the point's own gradient (a, b) / r with (0, 0) or
            # (1/2, 1/2) where r is exactly 0: what a backend that sees r > 0 there computes
            choices = tuple(float(i) for i in range(len(self.pairs) + 2))
            return ("both zero", mask, choices) if mask.any() else None
        if not self.tie:
            return None
        a, b = np.broadcast_arrays(*args)
        mask = np.abs(a - b) <= margin * np.maximum(1, np.maximum(np.abs(a), np.abs(b)))
        # the share of the gradient going to the first operand; 10 + share: that share at exact ties
        # only, near-ties following the larger (smaller) operand, as a backend that sees them apart does
        return ("tie", mask, with_exact((0.5, 1.0, 0.0), mask, a == b)) if mask.any() else None

    def linearized(
        self, args: Sequence[np.ndarray], base: Sequence[np.ndarray], attrs: Attrs, site: Site, choice: float
    ) -> np.ndarray:
        xp = numpy_namespace()
        base_out = np.asarray(self.apply(xp, base, attrs))
        if self.pairs and int(choice) >= len(self.pairs):
            a0, b0 = np.broadcast_arrays(*base)
            radius = np.hypot(a0, b0)
            at_zero = 0.0 if int(choice) == len(self.pairs) else 0.5
            safe = np.where(radius > 0, radius, 1.0)
            first, second = np.where(radius > 0, a0 / safe, at_zero), np.where(radius > 0, b0 / safe, at_zero)
        else:
            first, second = self.pairs[int(choice)] if self.pairs else (choice % EXACT, 1 - choice % EXACT)
        if choice >= EXACT:  # near a tie but not on it: everything to the larger (smaller) operand
            a0, b0 = np.broadcast_arrays(*base)
            side = (a0 > b0) if self.name == "maximum" else (a0 < b0)
            first = np.where(a0 == b0, first, side.astype(np.float64))
            second = np.where(a0 == b0, second, 1.0 - side)
        tangent = first * (args[0] - base[0]) + second * (args[1] - base[1])
        return np.where(site[1], base_out + tangent, self.apply(xp, args, attrs))

    def singular(
        self, args: Sequence[np.ndarray], attrs: Attrs, out: np.ndarray, margin: float
    ) -> str | None:
        a, b = np.broadcast_arrays(*args)
        if self.singular_kind == "both zero" and np.any((np.abs(a) <= margin) & (np.abs(b) <= margin)):
            return "both zero"
        if self.singular_kind == "tiny denominator" and np.any(np.abs(b) <= max(margin, 1e-18)):
            return "tiny denominator"  # 1 / b**2 in the derivative overflows float32 from 1e-19
        if self.singular_kind == "zero base" and np.any(np.abs(a) <= margin):
            return "zero base"
        if self.singular_kind == "zero base" and np.any(a < 0):  # d/db a**b = a**b log(a): undefined
            return "negative base"
        return None

    def source(self, framework: str, args: Sequence[str], attrs: Attrs) -> str:
        if self.operator:
            return f"({args[0]} {self.operator} {args[1]})"
        return super().source(framework, args, attrs)
