"""The suites of ``unigrad check``: ``default`` (humane on 2 cores) and ``full`` (every generated case).

The default suite is the whole hand-written catalogue plus the first sample of every op-table row in
reverse mode; every other generated case (other samples, special points, ``jvp``, ``hvp``) carries
the tag ``full`` and runs with ``--suite full``. Why this split: docs/conformance.md, "Suites".

Example:
    >>> from unigrad.conformance.ops.suites import in_suite
    >>> from unigrad.conformance import CASES
    >>> len(in_suite(CASES, "default")) < len(in_suite(CASES, "full")) == len(CASES)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from unigrad.conformance.ops.generate import FULL

#: The suites, the default first.
SUITES = ("default", "full")


def in_suite(cases: Iterable[Any], suite: str, patterns: Sequence[str] | None = None) -> list[Any]:
    """The cases of ``suite`` among ``cases``; a case named exactly in ``patterns`` is always kept.

    Raises:
        ValueError: ``suite`` is not one of :data:`SUITES`.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}: choose from {', '.join(SUITES)}")
    if suite == "full":
        return list(cases)
    named = set(patterns or ())
    return [case for case in cases if FULL not in case.tags or case.name in named]
