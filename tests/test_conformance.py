"""The catalogue runs on every installed backend and agrees with the float64 reference.

Each case is one test; it runs all installed backends at once so pairwise comparisons are included.
float16/bfloat16 run in the slow session (``nox -s conformance-low-precision``).
"""

from __future__ import annotations

import pytest

import unigrad as ug
from unigrad.conformance import CASES, run_case
from unigrad.conformance.report_text import describe_failures

BACKENDS = ug.installed_backends()
NAMES = [case.name for case in CASES if "op" not in case.tags]  # op cases: tests/test_op_cases.py


def _check(name: str, dtypes: tuple[str, ...]) -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    (case,) = [c for c in CASES if c.name == name]
    comparisons = run_case(case, BACKENDS, {b: ["cpu"] for b in BACKENDS}, dtypes, seed=0)
    assert comparisons, f"{name}: nothing was compared"
    failures = [c for c in comparisons if not c.ok]
    assert not failures, describe_failures(failures)


@pytest.mark.parametrize("name", NAMES)
def test_case_agrees_at_float64_and_float32(name: str) -> None:
    _check(name, ("float64", "float32"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_case_agrees_at_low_precision(name: str) -> None:
    _check(name, ("float64", "float16", "bfloat16"))
