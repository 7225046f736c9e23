"""The float64 reference of a plan: finite differences that estimate their own error, per convention.

* **Error estimate.** Each element's derivative is a central difference at two steps, ``h`` and
  ``2h``; their difference bounds the truncation error (about 4x the error of the smaller step on a
  smooth function, O(1) when the stencil straddles a kink), round-off is added, and an element whose
  estimate is large is *unreliable*: it is not compared with the reference at all.
* **Conventions at kinks.** Where the plan sits on a kink (:attr:`Plan.sites`), every choice of a
  local derivative from each site's subdifferential gives a valid gradient of the program (the
  chain rule of conservative fields: what autodiff computes with any valid choice per op).
  :meth:`Reference.estimate` takes one choice per site and differentiates the program with those
  sites replaced by their tangents (:meth:`Op.linearized`), which is smooth near the point, so the
  finite differences are accurate again. The first assignment is the one central differences see.
* **Rounding sensitivity.** :meth:`Reference.sensitivity` perturbs every intermediate value by a
  relative ``1e-6`` and measures how far the gradient moves: a float32 result may be off by about
  that much per unit round-off without any bug (cancellation, ill-conditioned steps).

Example:
    >>> from unigrad.fuzz.program import Program, Step, make_plan
    >>> plan = make_plan(Program(((2,),), (0.0, 3.0), (Step("abs", (0, 0, 0), 0, 0.0),)))
    >>> reference = Reference(plan)
    >>> [sorted(a.values()) for a in reference.assignments()]
    [[0.0], [1.0], [-1.0]]
    >>> reference.estimate(reference.assignments()[1]).grads[0].round(6).tolist()
    [1.0, -0.5]
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unigrad.fuzz.ops import numpy_namespace
from unigrad.fuzz.program import Override, Plan, run_plan

#: Relative step of the central differences (cbrt of float64's epsilon, as ``ug.reference_grad``).
STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))
#: An element whose error estimate exceeds this (relative to ``1 + |g|``) is not compared.
UNRELIABLE = 1e-3
#: Assignments of choices enumerated per plan at most; beyond, sites of one op share their choice.
MAX_ASSIGNMENTS = 64
#: Relative perturbation of intermediate values in :meth:`Reference.sensitivity`.
NOISE = 1e-6

Assignment = dict[int, float]


@dataclass
class Estimate:
    """Loss and gradient of a plan under one assignment of choices, with error estimates."""

    assignment: Assignment
    loss: float
    grads: list[np.ndarray]
    errors: list[np.ndarray]

    def reliable(self) -> list[np.ndarray]:
        """Per input: the elements whose finite difference can be trusted."""
        return [
            np.isfinite(g) & (e <= UNRELIABLE * (1 + np.abs(g)))
            for g, e in zip(self.grads, self.errors, strict=True)
        ]


def finite_differences(
    plan: Plan, overrides: dict[int, Override] | None = None, noise: Sequence[np.ndarray] | None = None
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Loss, central-difference gradient and its error estimate of ``plan`` at its inputs."""
    xp = numpy_namespace()
    inputs = [np.array(x, dtype=np.float64) for x in plan.inputs]

    def loss() -> float:
        with np.errstate(all="ignore"):
            return float(run_plan(plan, xp, inputs, overrides, noise))

    at_point = loss()
    grads, errors = [], []
    for x in inputs:
        flat = x.reshape(-1)
        grad, error = np.zeros(flat.size), np.zeros(flat.size)
        for j in range(flat.size):
            original = float(flat[j])
            h = STEP * max(1.0, abs(original))
            values = []
            for delta in (h, -h, 2 * h, -2 * h):
                flat[j] = original + delta
                values.append(loss())
            flat[j] = original
            small = (values[0] - values[1]) / (2 * h)
            large = (values[2] - values[3]) / (4 * h)
            rounding = 10 * np.finfo(np.float64).eps * max(abs(v) for v in values) / h
            grad[j] = small if np.all(np.isfinite(values)) else np.nan
            error[j] = abs(small - large) + rounding if np.isfinite(grad[j]) else np.inf
        grads.append(grad.reshape(x.shape))
        errors.append(error.reshape(x.shape))
    return at_point, grads, errors


class Reference:
    """Finite-difference gradients of one plan, per assignment of kink choices, computed on demand."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._estimates: dict[tuple[tuple[int, float], ...], Estimate] = {}
        self._sensitivity: tuple[float, list[np.ndarray]] | None = None
        self._identifiable: dict[int, bool] = {}

    @functools.cached_property
    def _assignments(self) -> list[Assignment]:
        sites = sorted(self.plan.sites)
        choices = [self.plan.sites[k][2] for k in sites]
        if int(np.prod([len(c) for c in choices])) <= MAX_ASSIGNMENTS:
            return [dict(zip(sites, combo, strict=True)) for combo in itertools.product(*choices)]
        by_op: dict[str, list[int]] = {}
        for k in sites:
            by_op.setdefault(self.plan.steps[k].op.name, []).append(k)
        groups = list(by_op.values())
        options = [self.plan.sites[group[0]][2] for group in groups]
        combos = itertools.islice(itertools.product(*options), MAX_ASSIGNMENTS)
        return [{k: c for group, c in zip(groups, combo, strict=True) for k in group} for combo in combos]

    def assignments(self) -> list[Assignment]:
        """Every assignment of choices to the plan's kink sites (``[{}]`` on a smooth plan)."""
        return self._assignments

    def overrides(self, assignment: Assignment) -> dict[int, Override]:
        """Steps replaced by their tangents under ``assignment`` (for :func:`run_plan`)."""
        plan = self.plan
        result: dict[int, Override] = {}
        for k, choice in assignment.items():
            step = plan.steps[k]
            base = [plan.values[i] for i in step.args]
            site = plan.sites[k]
            result[k] = functools.partial(_linearized, step.op, base, step.attrs, site, choice)
        return result

    def estimate(self, assignment: Assignment) -> Estimate:
        """The finite-difference gradient with ``assignment``'s choices at the kinks (cached)."""
        key = tuple(sorted(assignment.items()))
        if key not in self._estimates:
            loss, grads, errors = finite_differences(self.plan, self.overrides(assignment))
            self._estimates[key] = Estimate(dict(assignment), loss, grads, errors)
        return self._estimates[key]

    def identifiable(self, k: int) -> bool:
        """Whether site ``k``'s choice shows in the gradient (another choice there changes it)."""
        if k not in self._identifiable:
            first = self.central
            changed = False
            for choice in self.plan.sites[k][2][1:]:
                other = self.estimate({**first.assignment, k: choice})
                for a, b, ea, eb in zip(first.grads, other.grads, first.errors, other.errors, strict=True):
                    with np.errstate(invalid="ignore"):
                        changed |= bool(np.any(np.abs(a - b) > 1e-6 * (1 + np.abs(a)) + 3 * (ea + eb)))
            self._identifiable[k] = changed
        return self._identifiable[k]

    @property
    def central(self) -> Estimate:
        """The estimate with each site's first choice: what central differences see at a kink."""
        return self.estimate(self.assignments()[0])

    def sensitivity(self) -> tuple[float, list[np.ndarray]]:
        """How far the loss and each gradient element move per unit relative error of every step."""
        if self._sensitivity is None:
            base = self.central
            overrides = self.overrides(base.assignment)
            rng = np.random.default_rng(0)
            loss_moves, grad_moves = 0.0, [np.zeros_like(g) for g in base.grads]
            for _ in range(2):
                noise = [
                    1 + NOISE * rng.choice([-1.0, 1.0], size=np.shape(v))
                    for v in self.plan.values[len(self.plan.inputs) :]
                ]
                loss, grads, _ = finite_differences(self.plan, overrides, noise)
                loss_moves = max(loss_moves, abs(loss - base.loss) / NOISE)
                for move, g, g0 in zip(grad_moves, grads, base.grads, strict=True):
                    with np.errstate(invalid="ignore"):
                        np.maximum(move, np.nan_to_num(np.abs(g - g0) / NOISE, nan=0.0), out=move)
            self._sensitivity = (loss_moves, grad_moves)
        return self._sensitivity


def _linearized(op, base, attrs, site, choice, args):  # type: ignore[no-untyped-def]
    return op.linearized([np.asarray(a, dtype=np.float64) for a in args], base, attrs, site, choice)
