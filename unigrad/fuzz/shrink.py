"""Hypothesis, driven programmatically: one seeded round of generation, and shrinking a finding.

A fuzzing campaign is a sequence of rounds; each round is one ``@given`` run with its own seed and a
fixed number of examples, whose body never fails (:func:`run_round`). So a round is deterministic,
and to shrink a finding the round is **replayed** (:func:`shrink`): the same seed and strategy make
Hypothesis draw the same programs in the same order; the replay skips every program before the one
that showed the finding (no evaluation), fails on that one, and from there Hypothesis's own shrinker
minimises it (fewer steps, smaller shapes, simpler values, earlier ops of the table) while the
predicate — the same finding, localised to the same op and kind of input — still holds.

Example:
    >>> from hypothesis import strategies as st
    >>> drawn = []
    >>> run_round(st.integers(0, 1000), seed=3, count=20, body=drawn.append)
    >>> target = next(n for n in drawn if n > 100)
    >>> shrink(st.integers(0, 1000), 3, 20, target, lambda n: n > 100).example
    101
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

T = TypeVar("T", bound=Hashable)

#: Evaluations of new candidates one shrink may spend; past it, only cached answers are given.
SHRINK_BUDGET = 120


class _Reproduced(Exception):
    """Raised in the replay to tell Hypothesis this example shows the finding."""


def _settings(count: int, phases: list[Phase]) -> settings:
    return settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )


def run_round(strategy: st.SearchStrategy[Any], seed: int, count: int, body: Callable[[Any], None]) -> None:
    """Draw ``count`` examples of ``strategy`` with ``seed``; call ``body`` (which must not raise) on each."""

    @hypothesis_seed(seed)
    @_settings(count, [Phase.generate])
    @given(strategy)
    def round_(example: Any) -> None:
        body(example)

    round_()


@dataclass
class Shrunk(Generic[T]):
    """What :func:`shrink` found: the smallest example, whether the replay reached the target, the cost."""

    example: T
    reached: bool
    evaluations: int


def shrink(
    strategy: st.SearchStrategy[T],
    seed: int,
    count: int,
    target: T,
    reproduces: Callable[[T], bool],
    budget: int = SHRINK_BUDGET,
) -> Shrunk[T]:
    """The smallest example Hypothesis finds from ``target`` that still ``reproduces``.

    ``target`` was drawn in the round of ``seed`` and ``count`` examples (:func:`run_round`).

    The example is ``target`` itself if the replay does not reach it or nothing smaller reproduces.
    """
    state: dict[str, Any] = {"reached": False, "smallest": target, "calls": 0}
    answers: dict[T, bool] = {target: True}

    @hypothesis_seed(seed)
    @_settings(count, [Phase.generate, Phase.shrink])
    @given(strategy)
    def replay(example: T) -> None:
        if not state["reached"]:
            if example != target:
                return
            state["reached"] = True
        if example not in answers:
            if state["calls"] >= budget:
                return  # no new evaluations: Hypothesis settles on what it has
            state["calls"] += 1
            answers[example] = reproduces(example)
        if answers[example]:
            state["smallest"] = example
            raise _Reproduced

    with contextlib.suppress(_Reproduced, HypothesisException):
        replay()
    return Shrunk(state["smallest"], state["reached"], state["calls"])
