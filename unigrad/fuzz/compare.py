"""Judge what the backends computed for one plan: ``pass``, ``known``, ``finding`` or ``inconclusive``.

Rules, per backend and check (reverse mode against the reference; ``jvp``, ``hvp`` and compiled
steps against the same backend's reverse mode and the reference):

1. Tolerances are the catalogue's per dtype (:mod:`unigrad.conformance.tolerances`), plus three
   times the reference's own error estimate per element; elements whose estimate is too large are
   not compared (:meth:`Estimate.reliable`). If that fails, the tolerance is widened by the plan's
   rounding sensitivity (:meth:`Reference.sensitivity`) times the dtype's unit round-off, then by
   three times the backend's own round-off on the plan (:func:`~unigrad.fuzz.runner.rounding_noise`:
   how far its result moves when the inputs move by a few units of round-off).
2. At a kink, a result that matches the reference under **any** assignment of valid local choices
   (:meth:`Reference.assignments`) is ``known``: a convention, named with the op, the kind of input,
   the choice and the framework's version. At a singular point (infinite local derivative,
   non-finite value in an untaken branch), nan or inf where the reference is finite is ``known``.
3. Anything else is a ``finding``. Elements the reference cannot judge are compared across
   backends instead (``pairwise``); a loss that disagrees is a ``value`` finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from unigrad.conformance.subgradients import format_value, framework_version, release
from unigrad.conformance.tolerances import DEFAULT_TOLERANCES
from unigrad.fuzz.ops import EXACT
from unigrad.fuzz.program import Plan
from unigrad.fuzz.reference import Assignment, Estimate, Reference
from unigrad.fuzz.runner import BackendRun, direction

PASS, KNOWN, FINDING, INCONCLUSIVE = "pass", "known", "finding", "inconclusive"
#: A backend's own round-off on a plan: (of the loss, of each gradient element), or None.
Noise = tuple[float, list[np.ndarray]] | None
NoiseOf = Callable[[str, float, list[np.ndarray]], Noise]
#: Unit round-off per dtype, times which the rounding sensitivity widens a tolerance.
EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
#: How many unit round-offs per unit of sensitivity a result may be off without a bug.
ROUNDING_FACTOR = 30.0


@dataclass
class Verdict:
    """The outcome of one check of one backend on one plan."""

    check: str  # 'value', 'reverse', 'pairwise', 'jvp', 'hvp', 'compiled', 'error'
    backend: str  # 'torch', or 'torch~jax' for a pairwise check
    status: str
    family: str = ""  # known: 'clip at bound'; finding: filled in by localisation ('sin at generic')
    detail: str = ""
    #: for a finding: what was computed and what it was compared with (float64), for reproducers
    got: list[np.ndarray] | float | None = None
    want: list[np.ndarray] | float | None = None
    #: per-backend choices at each kink this verdict matched: 'clip at bound' -> '1'
    choices: dict[str, str] = field(default_factory=dict)


def element_text(i: int, index: tuple[int, ...], got: np.ndarray, want: np.ndarray) -> str:
    """``x0[1, 2]: 1.5 vs 1``: one element of input ``i``'s gradient against what it is compared with."""
    where = ", ".join(str(int(j)) for j in index)
    return f"x{i}[{where}]: {format_value(float(got[index]))} vs {format_value(float(want[index]))}"


def label(plan: Plan, k: int, choice: float) -> str:
    """How a choice at site ``k`` reads: a derivative, a share, or a rule for ties."""
    name = plan.steps[k].op.name
    if name in ("max", "min"):
        return ("shared equally", "all to the first", "all to the last", "shared by the exact ties")[
            int(choice)
        ]
    if name == "where":
        return "condition as float64 computes it" if choice == 0 else "condition flipped by rounding"
    if name == "hypot":
        pairs = plan.steps[k].op.pairs  # type: ignore[attr-defined]
        if int(choice) >= len(pairs):
            rest = "(0, 0)" if int(choice) == len(pairs) else "(0.5, 0.5)"
            return f"(a, b) / hypot(a, b) near (0, 0), {rest} at it"
        first, second = pairs[int(choice)]
        return f"({format_value(first)}, {format_value(second)})"
    where = " on the kink exactly (near it: its side)" if choice >= EXACT else ""
    if name in ("maximum", "minimum"):
        return f"{format_value(choice % EXACT)} to the first operand{where}"
    return format_value(choice % EXACT) + where


def site_name(plan: Plan, k: int) -> str:
    return f"{plan.steps[k].op.name} at {plan.sites[k][0]}"


def singular_family(plan: Plan) -> str:
    """The family of a plan's singular points: an unsafe ``where`` branch first, else the first one."""
    for _, kind in plan.singular:
        if kind == "unsafe branch":
            return "where with an unsafe branch"
    k, kind = plan.singular[0]
    return f"{plan.steps[k].op.name} at {kind}"


class Judge:
    """Compares runs of one plan with its reference under the rules above."""

    def __init__(
        self,
        plan: Plan,
        reference: Reference,
        noise_of: NoiseOf | None = None,
        hvp_noise_of: Callable[[str, list[np.ndarray]], list[np.ndarray]] | None = None,
    ) -> None:
        self.plan = plan
        self.noise_of = noise_of
        self.hvp_noise_of = hvp_noise_of
        self._noises: dict[str, Noise] = {}
        self.reference = reference
        self.tolerance = DEFAULT_TOLERANCES[plan.dtype]
        self.poisoned = bool(plan.singular)
        # a value passes through inf or nan on its way to the loss (1 / (1 / x) at 0, an unsafe branch)
        self.through_infinity = any(
            kind in ("non-finite value", "unsafe branch") or kind.endswith("in float32")
            for _, kind in plan.singular
        )

    def _widening(self, widen: bool) -> tuple[float, list[np.ndarray]]:
        if not widen:
            return 0.0, [np.zeros_like(x) for x in self.plan.inputs]
        loss_moves, grad_moves = self.reference.sensitivity()
        factor = ROUNDING_FACTOR * EPS[self.plan.dtype]
        # round-off of the backward pass: unit round-off per step times the bound of its terms
        backward = len(self.plan.steps) * EPS[self.plan.dtype] * self.plan.backward_scale
        return factor * loss_moves, [factor * m + backward for m in grad_moves]

    def _grad_mismatch(
        self,
        got: Sequence[np.ndarray],
        estimate: Estimate,
        widen: bool,
        scale: float = 1.0,
        noise: Noise = None,
    ) -> tuple[list[str], bool]:
        """Elements of ``got`` outside the tolerance of ``estimate``; whether non-finite ones were excused."""
        _, extra = self._widening(widen)
        if noise is not None:
            extra = [e + 3 * n / scale for e, n in zip(extra, noise[1], strict=True)]
        bad: list[str] = []
        excused = False
        reliable = estimate.reliable()
        for i, (g, want, err, ok, more) in enumerate(
            zip(got, estimate.grads, estimate.errors, reliable, extra, strict=True)
        ):
            tol = scale * (self.tolerance.atol + self.tolerance.rtol * np.abs(want)) + 3 * err + scale * more
            finite = np.isfinite(g)
            if self.poisoned and np.any(ok & ~finite):
                excused = True
            outside = ok & (~finite if not self.poisoned else np.zeros_like(finite))
            with np.errstate(invalid="ignore"):
                outside |= ok & finite & ~(np.abs(g - want) <= tol)
            if self.through_infinity and np.any(outside & (g == 0)):
                # inf * 0 in the chain rule: nan, or 0 from kernels that never return nan for a zero
                # cotangent (TensorFlow's): both are conventions
                excused = True
                outside &= g != 0
            for index in map(tuple, np.argwhere(outside)):
                bad.append(element_text(i, index, g, want))
        return bad, excused

    def _loss_ok(
        self, loss: float, estimate: Estimate, widen: bool, scale: float = 1.0, noise: Noise = None
    ) -> bool:
        if not np.isfinite(estimate.loss):  # the reference cannot judge the loss; the gradient decides
            return True
        extra, _ = self._widening(widen)
        extra += 0.0 if noise is None else 3 * noise[0] / scale
        tol = scale * (self.tolerance.atol + self.tolerance.rtol * abs(estimate.loss)) + scale * extra
        return bool(abs(loss - estimate.loss) <= tol)

    def match(
        self, loss: float | None, grads: Sequence[np.ndarray], scale: float = 1.0, noise: Noise = None
    ) -> tuple[str, Assignment | None, str]:
        """Status, the assignment matched, and why the central estimate (widened) does not match."""
        first = self.reference.central.assignment
        if loss is not None and not np.isfinite(loss) and self.poisoned:  # nan from a singular value
            return KNOWN, None, ""
        attempts = [(False, first)] + [(True, a) for a in self.reference.assignments()]
        central_text = ""
        for n, (widen, assignment) in enumerate(attempts):
            estimate = self.reference.estimate(assignment)
            if loss is not None and not self._loss_ok(loss, estimate, widen, scale, noise):
                if n == 1:
                    central_text = f"loss {format_value(loss)} vs {format_value(estimate.loss)}"
                continue
            bad, excused = self._grad_mismatch(grads, estimate, widen, scale, noise)
            if not bad:
                return (PASS if assignment == first and not excused else KNOWN), assignment, ""
            if n == 1:
                central_text = "; ".join(bad[:4]) + (f"; and {len(bad) - 4} more" if len(bad) > 4 else "")
        return FINDING, None, central_text

    def _known(self, check: str, backend: str, assignment: Assignment | None, what: str = "") -> Verdict:
        version = f"{backend} {release(framework_version(backend))}"
        first = self.reference.central.assignment
        moved = [k for k, c in (assignment or {}).items() if c != first.get(k)]
        moved = [k for k in moved if self.reference.identifiable(k)] or moved
        if moved and not self.plan.singular and not any(self._on_kink(k) for k in moved):
            # only near a kink, never on it: the backend took each element's own side; no convention
            return Verdict(check, backend, PASS)
        if moved:
            family = site_name(self.plan, moved[0])
            picks = "; ".join(
                f"{site_name(self.plan, k)}: {label(self.plan, k, assignment[k])}" for k in moved
            )  # type: ignore[index]
            return Verdict(
                check, backend, KNOWN, family, f"{version}{what}: {picks}", choices=self._choices(assignment)
            )
        family = singular_family(self.plan)
        return Verdict(
            check,
            backend,
            KNOWN,
            family,
            f"{version}{what}: nan or inf at {family}",
            choices=self._choices(assignment),
        )

    def _on_kink(self, k: int) -> bool:
        """Whether some element of site ``k`` is exactly on the kink (not only within the margin)."""
        step = self.plan.steps[k]
        args = [self.plan.values[i] for i in step.args]
        out = self.plan.values[len(self.plan.inputs) + k]
        with np.errstate(all="ignore"):
            return step.op.site(args, step.attrs, out, 0.0) is not None

    def _choices(self, assignment: Assignment | None) -> dict[str, str]:
        """The choice made at each kink that is hit exactly and whose choice shows in the gradient."""
        return {
            site_name(self.plan, k): label(self.plan, k, c)
            for k, c in (assignment or {}).items()
            if self._on_kink(k) and self.reference.identifiable(k)
        }

    def _noise(self, run: BackendRun) -> Noise:
        """The backend's own round-off of this plan (:func:`~unigrad.fuzz.runner.rounding_noise`), once."""
        if self.noise_of is None or run.loss is None or run.grads is None:
            return None
        if run.backend not in self._noises:
            self._noises[run.backend] = self.noise_of(run.backend, run.loss, run.grads)
        return self._noises[run.backend]

    def reverse(self, run: BackendRun) -> Verdict:
        assert run.grads is not None and run.loss is not None
        status, assignment, text = self.match(run.loss, run.grads)
        if status == FINDING and self.noise_of is not None:
            status, assignment, text = self.match(run.loss, run.grads, noise=self._noise(run))
        if status == PASS:
            return Verdict("reverse", run.backend, PASS, choices=self._choices(assignment))
        if status == KNOWN:
            return self._known("reverse", run.backend, assignment)
        central = self.reference.central
        if text.startswith("loss"):
            return Verdict("value", run.backend, FINDING, detail=text, got=run.loss, want=central.loss)
        return Verdict("reverse", run.backend, FINDING, detail=text, got=run.grads, want=central.grads)

    def pairwise(self, runs: Sequence[BackendRun]) -> list[Verdict]:
        """Backends against each other where the reference cannot judge (smooth plans only)."""
        if self.plan.sites or self.poisoned or len(runs) < 2:
            return []
        central = self.reference.central
        unjudged = [~r for r in central.reliable()]
        if not any(u.any() for u in unjudged):
            return []
        verdicts = []
        first = runs[0]
        for other in runs[1:]:
            assert first.grads is not None and other.grads is not None
            for i, (a, b, u) in enumerate(zip(first.grads, other.grads, unjudged, strict=True)):
                tol = 2 * (self.tolerance.atol + self.tolerance.rtol * np.abs(b))
                with np.errstate(invalid="ignore"):
                    outside = u & ~(np.abs(a - b) <= tol) & ~(np.isnan(a) & np.isnan(b))
                if outside.any():
                    index = tuple(int(j) for j in np.argwhere(outside)[0])
                    text = element_text(i, index, a, b)
                    pair = f"{first.backend}~{other.backend}"
                    verdicts.append(
                        Verdict("pairwise", pair, FINDING, detail=text, got=first.grads, want=other.grads)
                    )
                    break
        return verdicts

    def jvp(self, run: BackendRun) -> Verdict:
        assert run.grads is not None and run.jvp is not None
        vector = direction(self.plan)
        own = float(sum(np.sum(g * v) for g, v in zip(run.grads, vector, strict=True)))
        size = float(sum(np.sum(np.abs(g * v)) for g, v in zip(run.grads, vector, strict=True)))
        tol = 2 * (self.tolerance.atol + self.tolerance.rtol * size)
        if abs(run.jvp - own) <= tol:
            return Verdict("jvp", run.backend, PASS)
        if not np.isfinite(own):  # reverse mode itself is judged by the reverse check
            return Verdict("jvp", run.backend, INCONCLUSIVE, detail="reverse mode is not finite")
        if self.poisoned:  # nan, or round-off through 1 / b**2, in either mode: a singular point
            return self._known("jvp", run.backend, None, " (forward mode)")
        for assignment in self.reference.assignments():
            estimate = self.reference.estimate(assignment)
            want = float(sum(np.sum(g * v) for g, v in zip(estimate.grads, vector, strict=True)))
            if np.isfinite(want) and abs(run.jvp - want) <= tol + 3 * sum(
                float(np.sum(e * np.abs(v))) for e, v in zip(estimate.errors, vector, strict=True)
            ):
                return (
                    self._known("jvp", run.backend, assignment, " (forward mode)")
                    if self.plan.sites
                    else Verdict("jvp", run.backend, PASS)
                )
        detail = f"jvp {format_value(run.jvp)} vs grad·v {format_value(own)}"
        return Verdict("jvp", run.backend, FINDING, detail=detail, got=run.jvp, want=own)

    def _hvp_mismatch(self, run: BackendRun, noise: list[np.ndarray] | None) -> list[str]:
        assert run.hvp is not None and run.hvp_reference is not None
        want, errors = run.hvp_reference
        tolerance = DEFAULT_TOLERANCES["float64"]
        bad = []
        for i, (g, w, e) in enumerate(zip(run.hvp, want, errors, strict=True)):
            reliable = e <= 1e-3 * (1 + np.abs(w))
            slack = 10 * (tolerance.atol + tolerance.rtol * np.abs(w)) + 3 * e
            if noise is not None:
                slack = slack + 3 * noise[i]
            with np.errstate(invalid="ignore"):
                outside = reliable & ~(np.abs(g - w) <= slack)
            bad += [element_text(i, index, g, w) for index in map(tuple, np.argwhere(outside))]
        return bad

    def hvp(self, run: BackendRun) -> Verdict:
        if self.plan.sites or self.poisoned or run.hvp is None or run.hvp_reference is None:
            return Verdict("hvp", run.backend, INCONCLUSIVE, detail="at a kink or singular point")
        bad = self._hvp_mismatch(run, None)
        if bad and self.hvp_noise_of is not None:  # the product's own round-off (x / x near 0)
            bad = self._hvp_mismatch(run, self.hvp_noise_of(run.backend, run.hvp))
        if not bad:
            return Verdict("hvp", run.backend, PASS)
        want = run.hvp_reference[0]
        return Verdict("hvp", run.backend, FINDING, detail="; ".join(bad[:4]), got=run.hvp, want=want)

    def compiled(self, run: BackendRun) -> Verdict:
        assert run.compiled is not None and run.grads is not None
        loss, grads = run.compiled
        status, assignment, text = self.match(loss, grads, scale=2.0)
        if status == FINDING and self.noise_of is not None:
            status, assignment, text = self.match(loss, grads, scale=2.0, noise=self._noise(run))
        if status == PASS:
            return Verdict("compiled", run.backend, PASS)
        if status == KNOWN:
            return self._known("compiled", run.backend, assignment, " (compiled)")
        return Verdict("compiled", run.backend, FINDING, detail=text, got=grads, want=run.grads)
