"""Kinks judged by the subdifferential: any valid (sub)gradient is accepted, and named with its version.

At a kink, a tie or a bound every element of the subdifferential is a correct gradient, and a
framework may change its choice between releases (``torch.clamp`` at a bound: 1 in torch 2.13, 0 in
2.14). A case states its set of valid gradients in ``Case.valid_grads``; this module builds those
sets and judges a comparison with them:

1. every leaf within tolerance of what it is compared with (the stated convention, or another
   backend) → ``pass``;
2. otherwise, the loss agrees and every gradient element of both sides lies (within tolerance) in the
   valid set → ``known``, with a reason naming the backend, its version and its choice, e.g.
   ``torch 2.14.1: 0 at params['x'][0] (convention 1; valid: [0, 1])``;
3. otherwise, a declared :class:`~unigrad.conformance.case.KnownDifference` (a convention outside the
   subdifferential, such as nan at the norm of zero) covers the backend → ``known``;
4. otherwise ``fail``, naming the elements outside the valid set.

A new release that moves to another valid value stays green; one that leaves the set turns red.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.subgradients import interval, violations
    >>> x = np.array([-1.0, 1.0, 0.5, 2.0])
    >>> valid = {"x": interval(np.abs(x) < 1, np.abs(x) <= 1)}  # clip(x, -1, 1)
    >>> violations(valid, {"x": np.array([0.0, 0.5, 1.0, 0.0])})
    []
    >>> violations(valid, {"x": np.array([2.0, 1.0, 1.0, 0.0])})
    ["2 at params['x'][0] (valid: [0, 1])"]
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from unigrad import _tree
from unigrad.conformance.case import Tolerance
from unigrad.conformance.results import FAIL, KNOWN, PASS, LeafMetrics

if TYPE_CHECKING:
    from unigrad.conformance.case import Case

#: Used where no tolerance is given: exact up to float64 round-off.
EXACT = Tolerance(rtol=1e-9, atol=1e-12)

#: Distributions that may provide each framework, in the order they are looked up.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "jax": ("jax",),
    "numpy": ("numpy",),
}

#: How many groups of differing elements a reason lists before "and N more".
MAX_LISTED = 4


class ValidSet:
    """The valid values of each element of one gradient leaf: a union of closed intervals.

    A single value is the interval ``[v, v]``; build sets with :func:`interval` and :func:`one_of`
    rather than directly. Bounds broadcast against the leaf. nan is never in a set.

    Deliberately not a dataclass: unigrad flattens dataclasses as pytree nodes, and a tree of valid
    sets must keep each set as one leaf.
    """

    __slots__ = ("intervals",)

    def __init__(self, intervals: Sequence[tuple[Any, Any]]) -> None:
        self.intervals = tuple(
            (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)) for lo, hi in intervals
        )
        for lo, hi in self.intervals:
            if np.any(lo > hi) or np.any(np.isnan(lo) | np.isnan(hi)):
                raise ValueError(f"empty or nan interval: lo={lo}, hi={hi}")

    def contains(self, values: np.ndarray, tolerance: Tolerance = EXACT) -> np.ndarray:
        """Elementwise: whether each value lies in the set (bounds widened by ``tolerance``)."""
        values = np.asarray(values, dtype=np.float64)
        inside = np.zeros(values.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            for lo, hi in self.intervals:
                low = np.where(np.isfinite(lo), lo - (tolerance.atol + tolerance.rtol * np.abs(lo)), lo)
                high = np.where(np.isfinite(hi), hi + (tolerance.atol + tolerance.rtol * np.abs(hi)), hi)
                inside |= (values >= low) & (values <= high)
        return inside

    def describe(self, index: tuple[int, ...], shape: tuple[int, ...] | None = None) -> str:
        """The set at one element of a leaf of ``shape``, e.g. ``[0, 1]``, ``only 0`` or ``{-1, 1}``."""
        if shape is None:  # the bounds' own shape: enough when they are given per element
            shape = np.broadcast_shapes(*(bound.shape for pair in self.intervals for bound in pair))
        parts = list(
            dict.fromkeys(
                (float(np.broadcast_to(lo, shape)[index]), float(np.broadcast_to(hi, shape)[index]))
                for lo, hi in self.intervals
            )
        )
        if len(parts) == 1 and parts[0][0] == parts[0][1]:
            return f"only {format_value(parts[0][0])}"
        if all(low == high for low, high in parts):
            return "{" + ", ".join(format_value(low) for low, _ in parts) + "}"
        return " or ".join(
            format_value(low) if low == high else f"[{format_value(low)}, {format_value(high)}]"
            for low, high in parts
        )

    def __repr__(self) -> str:
        return f"ValidSet({[(lo.tolist(), hi.tolist()) for lo, hi in self.intervals]})"


def interval(lo: Any, hi: Any) -> ValidSet:
    """Each element in the closed interval ``[lo, hi]`` (arrays or scalars, broadcast to the leaf).

    Away from a kink give ``lo == hi`` (the ordinary derivative); at it, the subdifferential.

    Example:
        >>> import numpy as np
        >>> x = np.array([0.0, 2.0])
        >>> interval(x > 0, x >= 0).describe((0,))  # relu: [0, 1] at 0, 1 above
        '[0, 1]'
    """
    return ValidSet([(lo, hi)])


def one_of(*values: Any) -> ValidSet:
    """Each element equal to one of ``values`` (arrays or scalars, broadcast to the leaf).

    Example:
        >>> one_of(np.inf).describe(())
        'only inf'
    """
    return ValidSet([(value, value) for value in values])


@dataclass(frozen=True)
class SumIs:
    """A linear condition across elements: ``sum(weights * grads) == total`` (weights: a tree like params).

    States how ties share one unit of gradient: ``SumIs({"x": tied_mask}, 1.0)``.
    """

    weights: Any
    total: float


@dataclass(frozen=True)
class NormAtMost:
    """``||weights * grads||_2 <= radius`` (weights: a tree like params), e.g. the unit ball."""

    weights: Any
    radius: float


@dataclass(frozen=True)
class Subdifferential:
    """The valid gradients of a case at its inputs.

    Attributes:
        elements: a tree like params, each leaf a :class:`ValidSet` for that leaf's elements.
        sums: linear conditions across elements (ties share one unit of gradient).
        norms: norm bounds across elements (the unit ball of a norm at zero).
    """

    elements: Any
    sums: tuple[SumIs, ...] = ()
    norms: tuple[NormAtMost, ...] = ()


ValidGrads = Callable[[Any, Any], Any]


def as_subdifferential(valid: Any) -> Subdifferential:
    """``valid`` as a :class:`Subdifferential` (a bare tree of :class:`ValidSet` is its elements)."""
    return valid if isinstance(valid, Subdifferential) else Subdifferential(valid)


def valid_set_of(case: Case, inputs: tuple[Any, Any] | None = None) -> Subdifferential | None:
    """The case's valid gradients at ``inputs`` (``(params, data)``), or ``None`` if it states none.

    Without ``inputs`` the case's own inputs are used when they do not depend on the seed (every
    kink case: its points are chosen by hand); otherwise ``None``, as the valid set cannot be known.
    """
    if case.valid_grads is None:
        return None
    if inputs is None:
        inputs = _seed_independent_inputs(case)
        if inputs is None:
            return None
    params, data = inputs
    with np.errstate(all="ignore"):  # sets are stated at singular points (sqrt'(0) = inf)
        return as_subdifferential(case.valid_grads(params, data))


def _seed_independent_inputs(case: Case) -> tuple[Any, Any] | None:
    first, other = case.make_inputs(seed=0), case.make_inputs(seed=1)
    first_leaves, first_def = _tree.flatten(first)
    other_leaves, other_def = _tree.flatten(other)
    same = first_def == other_def and all(
        np.array_equal(a, b, equal_nan=True) for a, b in zip(first_leaves, other_leaves, strict=True)
    )
    return first if same else None


def format_value(value: float) -> str:
    """A short, exact-enough rendering of one gradient entry.

    Example:
        >>> format_value(float("nan")), format_value(0.5), format_value(-float("inf"))
        ('nan', '0.5', '-inf')
    """
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _index_text(index: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in index)


def violations(valid: Any, grads: Any, tolerance: Tolerance = EXACT) -> list[str]:
    """Why ``grads`` is not a valid gradient: one line per element or condition outside the set.

    Args:
        valid: a :class:`Subdifferential`, or a tree of :class:`ValidSet` like ``grads``.
        grads: float64 NumPy gradients (a tree like params).
        tolerance: how far outside a bound still counts as inside (the comparison's tolerance).

    Returns:
        ``[]`` when ``grads`` is in the set; else e.g. ``["2 at params['x'][0] (valid: [0, 1])"]``.
    """
    valid = as_subdifferential(valid)
    sets, sets_def = _tree.flatten(valid.elements)
    leaves, leaves_def = _tree.flatten(grads)
    if sets_def != leaves_def:
        return [f"the gradient's structure {leaves_def} is not the valid set's {sets_def}"]
    paths = _tree.leaf_paths(grads)
    found = []
    for path, valid_leaf, leaf in zip(paths, sets, leaves, strict=True):
        leaf = np.asarray(leaf, dtype=np.float64)
        for index in zip(*np.nonzero(~valid_leaf.contains(leaf, tolerance)), strict=True):
            index = tuple(int(i) for i in index)
            found.append(
                f"{format_value(float(leaf[index]))} at {path}{_index_text(index)} "
                f"(valid: {valid_leaf.describe(index, leaf.shape)})"
            )
    for condition in valid.sums:
        total = _weighted(condition.weights, leaves, leaves_def).sum()
        count = sum(int(np.count_nonzero(w)) for w in _tree.flatten(condition.weights)[0])
        # Round-off of each term adds up: the absolute tolerance scales with the number of terms.
        atol = tolerance.atol * max(count, 1)
        if not np.isclose(total, condition.total, rtol=tolerance.rtol, atol=atol):
            wanted = format_value(condition.total)
            found.append(f"tied elements sum to {format_value(total)} (valid: {wanted})")
    for condition in valid.norms:
        norm = float(np.linalg.norm(_weighted(condition.weights, leaves, leaves_def)))
        if not norm <= condition.radius * (1 + tolerance.rtol) + tolerance.atol:
            found.append(f"norm {format_value(norm)} (valid: at most {format_value(condition.radius)})")
    return found


def _weighted(weights: Any, leaves: list[Any], leaves_def: Any) -> np.ndarray:
    weight_leaves, weights_def = _tree.flatten(weights)
    if weights_def != leaves_def:
        raise ValueError(f"a condition's weights {weights_def} are not shaped like the params {leaves_def}")
    pairs = zip(weight_leaves, leaves, strict=True)
    return np.concatenate([(np.asarray(w, np.float64) * np.asarray(g, np.float64)).ravel() for w, g in pairs])


def framework_version(backend: str) -> str:
    """The installed version of ``backend``'s framework, without importing it.

    Reads ``__version__`` of the module when it is already imported, else the installed
    distribution's metadata (``tensorflow`` or ``tensorflow-cpu`` for TensorFlow).

    Example:
        >>> framework_version("numpy") == __import__("numpy").__version__
        True
    """
    module = sys.modules.get(backend)
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)
    for distribution in DISTRIBUTIONS.get(backend, (backend,)):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "(version unknown)"


def release(version: str) -> str:
    """The public release of a version: ``'2.13.0+cpu'`` → ``'2.13.0'`` (the build label dropped)."""
    return version.split("+")[0]


def _choices(got: Any, want: Any, against: str, valid: Subdifferential, tolerance: Tolerance) -> list[str]:
    """Where ``got`` differs from ``want``, grouped: ``"0 at p[0], p[1] (convention 1; valid: [0, 1])"``."""
    sets = _tree.flatten(valid.elements)[0]
    got_leaves, want_leaves = _tree.flatten(got)[0], _tree.flatten(want)[0]
    groups: dict[tuple[str, str, str], list[str]] = {}
    for path, valid_leaf, g, w in zip(_tree.leaf_paths(got), sets, got_leaves, want_leaves, strict=True):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        differs = ~np.isclose(g, w, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
        for index in zip(*np.nonzero(differs), strict=True):
            index = tuple(int(i) for i in index)
            described = valid_leaf.describe(index, g.shape)
            key = (format_value(float(g[index])), format_value(float(w[index])), described)
            groups.setdefault(key, []).append(f"{path}{_index_text(index)}")
    # "convention 1" for the reference; "jax 0.10.2: 0.5" for another result.
    separator = " " if against == "convention" else ": "
    return [
        f"{value} at {', '.join(where)} ({against}{separator}{wanted}; valid: {described})"
        for (value, wanted, described), where in groups.items()
    ]


def _listed(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return "; ".join(items[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def judge(
    case: Case,
    backend: str,
    dtype: str,
    device: str,
    leaves: list[LeafMetrics],
    *,
    got: Any = None,
    want: Any = None,
    tolerance: Tolerance = EXACT,
    inputs: tuple[Any, Any] | None = None,
    against: str = "convention",
    versions: Mapping[str, str] | None = None,
    other_backend: str | None = None,
) -> tuple[str, str]:
    """The status and reason of one comparison (the rule in this module's docstring).

    Args:
        case: the case compared.
        backend, dtype, device: what was evaluated.
        leaves: the per-leaf metrics of ``got`` against ``want`` (the loss first, path ``'loss'``).
        got: the backend's float64 NumPy gradients (``None``: the valid-set rule is not applied).
        want: what they were compared with: the convention, or another result.
        tolerance: the comparison's tolerance, also used for membership in the valid set.
        inputs: ``(params, data)`` the gradients were taken at (default: the case's own, see
            :func:`valid_set_of`).
        against: how reasons name ``want``: ``'convention'``, or another backend (its version is
            added) or result.
        versions: backend → framework version (default: :func:`framework_version`).
        other_backend: in a pairwise comparison, the backend ``want`` comes from.

    Returns:
        ``(status, reason)`` with status ``pass``, ``known`` or ``fail``.

    Example:
        >>> import numpy as np
        >>> from unigrad.conformance.cases.kinks import CASES
        >>> from unigrad.conformance.compare import compare_trees
        >>> clip = next(c for c in CASES if c.name == "kink_clip_at_bounds")
        >>> got, want = {"x": np.array([0.0, 0.0, 1, 0, 0])}, {"x": np.array([1.0, 1.0, 1, 0, 0])}
        >>> judge(clip, "torch", "float64", "cpu", compare_trees(got, want, EXACT), got=got, want=want,
        ...       versions={"torch": "2.14.1"})
        ('known', "torch 2.14.1: 0 at params['x'][0], params['x'][1] (convention 1; valid: [0, 1])")
    """
    if all(leaf.passed for leaf in leaves):
        return PASS, ""

    def version_of(name: str) -> str:
        return versions[name] if versions is not None and name in versions else framework_version(name)

    valid = valid_set_of(case, inputs) if got is not None else None
    outside: list[str] = []
    if valid is not None:
        loss_agrees = all(leaf.passed for leaf in leaves if leaf.path == "loss")
        outside = violations(valid, got, tolerance)
        want_outside = violations(valid, want, tolerance) if want is not None else []
        if loss_agrees and not outside and not want_outside:
            label = f"{other_backend} {version_of(other_backend)}" if other_backend else against
            choices = _choices(got, want, label, valid, tolerance)
            return KNOWN, f"{backend} {version_of(backend)}: {_listed(choices)}"
    for name in (backend, other_backend):
        declared = case.known_difference(name, dtype, device) if name else None
        if declared is not None:
            return KNOWN, declared.reason
    if outside:
        return FAIL, f"{backend} {version_of(backend)} is outside the valid set: {_listed(outside)}"
    return FAIL, ""
