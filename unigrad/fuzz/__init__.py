"""``unigrad fuzz``: a differential gradient fuzzer over the neutral namespace.

It generates random well-typed losses from ``ug.namespace`` functions (Hypothesis draws and shrinks
them), evaluates each on every backend, and compares reverse mode with a float64 finite-difference
reference, forward mode (``ug.jvp``) with reverse mode, ``ug.hvp`` with differences of gradients and
compiled steps with eager ones. A disagreement that is neither within the reference's own error nor
a valid convention at a kink or singular point is a *finding*: it is localised to one op and kind of
input, shrunk, and written as a standalone reproducer. See ``docs/fuzz.md``.

Modules, one job each: :mod:`~unigrad.fuzz.ops`, :mod:`~unigrad.fuzz.ops_structured` and
:mod:`~unigrad.fuzz.op_table` (per-op metadata), :mod:`~unigrad.fuzz.generator` (strategies),
:mod:`~unigrad.fuzz.program` (plans), :mod:`~unigrad.fuzz.reference` (finite differences and
conventions), :mod:`~unigrad.fuzz.runner` (backend calls), :mod:`~unigrad.fuzz.compare` (verdicts),
:mod:`~unigrad.fuzz.evaluate` (both, and localisation), :mod:`~unigrad.fuzz.shrink` (Hypothesis
rounds and shrinking), :mod:`~unigrad.fuzz.reproducer` and :mod:`~unigrad.fuzz.native` (standalone
files), :mod:`~unigrad.fuzz.report`, :mod:`~unigrad.fuzz.campaign`.

Example:
    >>> from unigrad.fuzz import FuzzConfig, run_fuzz
    >>> report = run_fuzz(FuzzConfig(backends=["torch"], programs=3, out=None, extras=()))
    >>> report.programs, report.findings
    (3, {})
"""

from unigrad.fuzz.campaign import FuzzConfig, run_fuzz
from unigrad.fuzz.report import Finding, FuzzReport

__all__ = ["Finding", "FuzzConfig", "FuzzReport", "run_fuzz"]
