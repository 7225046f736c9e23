"""Builders of valid gradient sets at special points, in the terms of ``unigrad.conformance.subgradients``.

Each returns what a :class:`~unigrad.conformance.ops.table.Special` gives as ``valid``: a tuple of
:class:`~unigrad.conformance.subgradients.ValidSet` (one per input) or a
:class:`~unigrad.conformance.subgradients.Subdifferential` over the params ``x``, ``y``.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.ops.valid import tie_split
    >>> valid = tie_split(np.array([1.0, 2.0]), np.array([1.0, 0.0]), larger=True)
    >>> valid.elements["x"].describe((0,)), valid.elements["x"].describe((1,))
    ('[0, 1]', 'only 1')
"""

from __future__ import annotations

import numpy as np

from unigrad.conformance.subgradients import NormAtMost, Subdifferential, SumIs, ValidSet, interval, one_of


def one_unit_per_tie(tied: np.ndarray, leaves: tuple[str, ...]) -> tuple[SumIs, ...]:
    """At each tied element the leaves' gradients share one unit (``sum over leaves == 1``)."""
    conditions = []
    for flat_index in np.flatnonzero(tied):
        unit = np.zeros(tied.shape)
        unit.flat[flat_index] = 1.0
        conditions.append(SumIs({leaf: unit for leaf in leaves}, 1.0))
    return tuple(conditions)


def tie_split(x: np.ndarray, y: np.ndarray, *, larger: bool) -> Subdifferential:
    """maximum (``larger``) or minimum of ``x``, ``y``: the winner gets 1; at a tie they share one unit."""
    tie = x == y
    x_wins = (x > y) if larger else (x < y)
    y_wins = ~x_wins & ~tie
    return Subdifferential(
        {"x": interval(x_wins, x_wins | tie), "y": interval(y_wins, y_wins | tie)},
        sums=one_unit_per_tie(tie, ("x", "y")),
    )


def ties_share_one_unit(tied: np.ndarray, groups: np.ndarray | None = None) -> Subdifferential:
    """A max or min reduction: in each reduced group (a label per element; default one group) the
    elements tied at the extreme share one unit of gradient; a lone extreme gets 1, the others 0."""
    groups = np.zeros(tied.shape, dtype=int) if groups is None else groups
    lone = np.zeros(tied.shape, dtype=bool)
    shares = []
    for group in np.unique(groups):
        members = tied & (groups == group)
        if members.sum() == 1:
            lone |= members
        else:
            shares.append(SumIs({"x": members.astype(np.float64)}, 1.0))
    return Subdifferential({"x": interval(lone, tied)}, sums=tuple(shares))


def symmetric_kink(x: np.ndarray) -> tuple[ValidSet]:
    """``abs``-like: -1 below zero, 1 above, anything in ``[-1, 1]`` at zero."""
    return (interval(np.where(x > 0, 1.0, -1.0), np.where(x < 0, -1.0, 1.0)),)


def ramp_kink(x: np.ndarray) -> tuple[ValidSet]:
    """``relu``-like: 0 below zero, 1 above, anything in ``[0, 1]`` at zero."""
    return (interval(x > 0, x >= 0),)


def unit_ball_at_zero(x: np.ndarray, y: np.ndarray) -> Subdifferential:
    """``hypot(x, y)``: ``(x, y) / r`` away from the origin; the unit disc where ``x = y = 0``."""
    radius = np.hypot(x, y)
    origin = radius == 0
    safe = np.where(origin, 1.0, radius)
    ball = tuple(
        NormAtMost({"x": unit, "y": unit}, 1.0)
        for unit in (np.eye(1, x.size, index).reshape(x.shape) for index in np.flatnonzero(origin))
    )
    low_x = np.where(origin, -1.0, x / safe)
    low_y = np.where(origin, -1.0, y / safe)
    return Subdifferential(
        {
            "x": interval(low_x, np.where(origin, 1.0, x / safe)),
            "y": interval(low_y, np.where(origin, 1.0, y / safe)),
        },
        norms=ball,
    )


def only(*grads: np.ndarray) -> tuple[ValidSet, ...]:
    """Exactly these gradients (a limit that every framework should reach)."""
    return tuple(one_of(np.asarray(g, np.float64)) for g in grads)
