"""Evaluate one plan on the backends and judge it; find which step of a plan causes a finding.

Example:
    >>> from unigrad.fuzz.program import Program, Step, make_plan
    >>> plan = make_plan(Program(((3,),), (0.0, 1.0, 2.0), (Step("relu", (0, 0, 0), 0, 0.0),)))
    >>> result = evaluate_plan(plan, ["torch"], "none")
    >>> [(v.check, v.status, v.family) for v in result.verdicts]
    [('reverse', 'known', 'relu at zero')]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from unigrad.fuzz.compare import FINDING, Verdict, judge
from unigrad.fuzz.program import Plan, sub_plan
from unigrad.fuzz.reference import Reference
from unigrad.fuzz.runner import EXTRAS, BackendRun, run_backend


@dataclass
class PlanResult:
    """The runs of one plan and the verdicts on them."""

    plan: Plan
    runs: list[BackendRun]
    verdicts: list[Verdict]
    reference: Reference


def evaluate_plan(plan: Plan, backends: Sequence[str], extra: str) -> PlanResult:
    """Run ``plan`` on each backend (reverse mode and ``extra``) and judge the results."""
    reference = Reference(plan)
    runs = [run_backend(plan, backend, extra) for backend in backends]
    return PlanResult(plan, runs, judge(plan, reference, runs, extra), reference)


def extra_of(verdict: Verdict, extra: str) -> str:
    """The transform a verdict's check needs (``'none'`` for reverse mode, values and errors of it)."""
    if verdict.check in EXTRAS:
        return verdict.check
    if verdict.check == "error" and verdict.detail.split(":")[0] in EXTRAS:
        return verdict.detail.split(":")[0]
    return "none"


def same_finding(verdict: Verdict, found: Verdict) -> bool:
    """Whether ``found`` is a finding of ``verdict``'s check on its backend(s) (an error: the same one)."""
    if verdict.check == "error" and error_signature(found.detail) != error_signature(verdict.detail):
        return False
    return found.status == FINDING and found.check == verdict.check and found.backend == verdict.backend


def error_signature(detail: str) -> str:
    """What identifies an error finding: the transform and the exception, ``'hvp raised AttributeError'``.

    Example:
        >>> error_signature("hvp: AttributeError: 'IndexedSlices' object has no attribute 'numpy'")
        'hvp raised AttributeError'
    """
    match = re.match(r"(?:(jvp|hvp|compiled): )?(\w+)", detail)
    if match is None:
        return "raised"
    return f"{match.group(1) or 'reverse'} raised {match.group(2)}"


def localize(plan: Plan, verdict: Verdict, extra: str, first: Sequence[str] = ()) -> tuple[str, str]:
    """The op and kind of input of the first step that shows ``verdict``'s finding on its own.

    Each step is run alone on the values its operands have at the plan's inputs; steps whose op is
    in ``first`` are tried first (ops already known to cause findings). ``('composition', '-')``
    when no single step does.
    """
    backends = verdict.backend.split("~")
    order = sorted(range(len(plan.steps)), key=lambda k: plan.steps[k].op.name not in first)
    for k in order:
        alone = sub_plan(plan, k)
        result = evaluate_plan(alone, backends, extra_of(verdict, extra))
        if any(same_finding(verdict, found) for found in result.verdicts):
            step = plan.steps[k]
            args = [plan.values[i] for i in step.args]
            return step.op.name, step.op.kind(args, step.attrs, plan.margin)
    return "composition", "-"
