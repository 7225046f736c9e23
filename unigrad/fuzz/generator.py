"""Hypothesis strategies for programs, biased towards the special points where gradients differ.

Values come from three sources in equal parts: **special** values (0, ±1, ½, 2, 3, a tiny and a
large magnitude: zeros of abs and relu, bounds of clip, domain edges of log1p and sqrt),
**generic** floats in [-3, 3] (exact in float32, so float64 and float32 programs see the same
inputs), and **repeats** of an earlier value (ties for maximum, max, clip bounds). Constants (clip
bounds, ``where`` thresholds, shifts) come from the same special values, so they collide with the
inputs on purpose. Everything shrinks towards the first option: the first op of the table, the
first shape, the value 0.

Example:
    >>> from hypothesis import find, settings
    >>> strategy = programs(["sin", "abs"], ["float64"])
    >>> program = find(strategy, lambda p: len(p.steps) >= 2, settings=settings(database=None))
    >>> [step.op for step in program.steps]
    ['sin', 'sin']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from unigrad.fuzz.program import Program, Step

#: Input shapes; the first is where shrinking ends.
SHAPES: tuple[tuple[int, ...], ...] = ((3,), (), (2,), (2, 3), (3, 3), (3, 2))
#: Special values (first: what shrinking tends to).
SPECIAL = (0.0, 1.0, -1.0, 0.5, 2.0, -0.5, -2.0, 3.0, 1e-3, 25.0, -25.0)
#: Constants of steps: clip bounds come from a table, these are thresholds and shifts.
CONSTANTS = (0.0, 1.0, -1.0, 0.5, 2.0, -0.5)
#: How often each extra transform is drawn, relative to the others (one per program).
EXTRA_WEIGHTS = {"none": 6, "jvp": 6, "hvp": 3, "compiled": 1}


def _float32(value: float) -> float:
    return float(np.float32(value))


def _values(count: int) -> st.SearchStrategy[tuple[float, ...]]:
    token = st.one_of(
        st.sampled_from(SPECIAL),
        st.floats(-3.0, 3.0, allow_subnormal=False, width=32).map(_float32),
        st.integers(0, 15).map(lambda k: -1 - k),  # a repeat of the k-th value before this one
    )

    def resolve(tokens: list[float | int]) -> tuple[float, ...]:
        values: list[float] = []
        for token in tokens:
            if isinstance(token, int):
                values.append(values[(-token - 1) % len(values)] if values else 0.0)
            else:
                values.append(float(token))
        return tuple(values)

    return st.lists(token, min_size=count, max_size=count).map(resolve)


def steps(ops: Sequence[str], max_ops: int) -> st.SearchStrategy[tuple[Step, ...]]:
    """A list of 1 to ``max_ops`` steps over ``ops`` (operand selectors favour recent values)."""
    selector = st.integers(0, 4)
    step = st.builds(
        Step,
        op=st.sampled_from(list(ops)),
        operands=st.tuples(selector, selector, selector),
        choice=st.integers(0, 11),
        constant=st.sampled_from(CONSTANTS),
    )
    # The length is drawn first: spread evenly up to max_ops, and it shrinks towards one step.
    return st.integers(1, max_ops).flatmap(lambda n: st.lists(step, min_size=n, max_size=n)).map(tuple)


@st.composite
def programs(
    draw: st.DrawFn,
    ops: Sequence[str],
    dtypes: Sequence[str],
    max_ops: int = 12,
    extras: Sequence[str] = ("none",),
) -> Program:
    """A :class:`Program` over the op names ``ops``, one dtype of ``dtypes``, one extra transform."""
    shapes = tuple(draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3)))
    values = draw(_values(sum(int(np.prod(shape)) for shape in shapes)))
    drawn_steps = draw(steps(ops, max_ops))
    dtype = draw(st.sampled_from(list(dtypes)))
    weighted = [name for name in EXTRA_WEIGHTS if name in extras for _ in range(EXTRA_WEIGHTS[name])]
    extra = draw(st.sampled_from(weighted or ["none"]))
    return Program(shapes, values, drawn_steps, dtype, extra)
