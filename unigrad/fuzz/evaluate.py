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

import numpy as np

from unigrad.fuzz.compare import FINDING, INCONCLUSIVE, Judge, Noise, Verdict
from unigrad.fuzz.program import Plan, sub_plan
from unigrad.fuzz.reference import Reference
from unigrad.fuzz.runner import EXTRAS, BackendRun, hvp_noise, rounding_noise, run_backend


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


def _shared_rounding(verdict: Verdict, run: BackendRun, runs: Sequence[BackendRun], judge_: Judge) -> Verdict:
    """A float32 finding another backend shares (within float32's tolerance) is float32, not a bug.

    float32 round-off the fuzzer's bounds miss (near-ties resolved differently, cancellations,
    values rounding to 0) comes out alike in two frameworks; a framework's own float32 bug does not.
    A bug two frameworks share in float32 only is missed: the price of no false alarms.
    """
    if verdict.status != FINDING or run.grads is None or run.loss is None:
        return verdict
    tolerance = judge_.tolerance
    close = {"rtol": 2 * tolerance.rtol, "atol": 2 * tolerance.atol, "equal_nan": True}
    for other in runs:
        if other is run or other.grads is None or other.loss is None:
            continue
        same_loss = bool(np.isclose(run.loss, other.loss, **close))
        same_grads = all(np.allclose(a, b, **close) for a, b in zip(run.grads, other.grads, strict=True))
        if same_loss and (verdict.check == "value" or same_grads):
            detail = f"{other.backend}'s float32 result is the same ({verdict.detail})"
            return Verdict(verdict.check, verdict.backend, INCONCLUSIVE, detail=detail)
    return verdict


def judge(plan: Plan, reference: Reference, runs: Sequence[BackendRun], extra: str) -> list[Verdict]:
    """Every verdict on one plan: errors, reverse mode, pairwise, and the extra transform."""
    verdicts: list[Verdict] = []

    def noise_of(backend: str, loss: float, grads: list[np.ndarray]) -> Noise:
        return rounding_noise(plan, backend, loss, grads)

    def hvp_noise_of(backend: str, product: list[np.ndarray]) -> list[np.ndarray]:
        return hvp_noise(plan, backend, product)

    judge_ = Judge(plan, reference, noise_of, hvp_noise_of)
    ok = [run for run in runs if run.error is None]
    failed = [run for run in runs if run.error is not None]
    for run in failed:
        # several backends and every one refusing: the fuzzer's plan is at fault, not a framework
        status = INCONCLUSIVE if not ok and len(runs) > 1 else FINDING
        verdicts.append(Verdict("error", run.backend, status, detail=run.error or ""))
    reverse = [judge_.reverse(run) for run in ok]
    if plan.dtype == "float32":
        reverse = [
            _shared_rounding(verdict, run, ok, judge_) for verdict, run in zip(reverse, ok, strict=True)
        ]
    verdicts += reverse
    verdicts += judge_.pairwise(ok)
    for run in ok:
        if run.extra_error is not None:
            verdicts.append(Verdict("error", run.backend, FINDING, detail=f"{extra}: {run.extra_error}"))
        elif extra == "jvp" and run.jvp is not None:
            verdicts.append(judge_.jvp(run))
        elif extra == "hvp" and run.hvp is not None:
            verdicts.append(judge_.hvp(run))
        elif extra == "compiled" and run.compiled is not None:
            verdicts.append(judge_.compiled(run))
    return verdicts
