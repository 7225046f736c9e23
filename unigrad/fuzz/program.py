"""Programs: what the generator draws, and the concrete, well-typed plan every backend runs.

A :class:`Program` is what Hypothesis generates and shrinks: input shapes and values, and a list of
:class:`Step` (an op name, operand selectors, a drawn integer, a constant). Any program is valid:
:func:`make_plan` resolves it into a :class:`Plan` by evaluating it once in float64 NumPy, skipping
steps whose operands do not fit the op (shapes) or where the op is ill-conditioned, and dropping the
first step that makes the loss non-finite. Deleting steps or simplifying values therefore always
leaves a valid program, which is what lets Hypothesis shrink freely.

The loss of a plan is ``sum_k sum(w_k * v_k)`` over the values no later step uses, with fixed,
distinct weights (a plain sum would hide a gradient that comes back permuted).

The same evaluation records where the program sits on a kink (:attr:`Plan.sites`) and where a local
derivative is infinite or a value non-finite (:attr:`Plan.singular`): what decides whether a
disagreement can be a valid convention (``known``) rather than a finding.

Example:
    >>> import numpy as np
    >>> from unigrad.fuzz.program import Program, Step, make_plan, describe
    >>> program = Program(shapes=((3,),), values=(0.0, 1.0, -2.0), steps=(Step("abs", (0, 0, 0), 0, 0.0),))
    >>> plan = make_plan(program)
    >>> describe(plan)
    ['v1 = abs(v0)']
    >>> [(plan.steps[k].op.name, kind) for k, (kind, _, _) in plan.sites.items()]
    [('abs', 'zero')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unigrad.fuzz.ops import Attrs, Op, Shape, Site, numpy_namespace

#: Relative distance to a kink within which rounding may put a backend on either side of it.
MARGIN = {"float64": 1e-9, "float32": 1e-5}
#: Largest magnitude a value may reach. Finite differences step each input by a relative 6e-6: on
#: values near 1e10 that is a step of 6e4, which steps over everything a softmax of their
#: differences or a sin of them does (and the two-step error estimate cannot tell). Up to 1e4 the
#: steps stay small enough for the estimate to flag what they cannot resolve.
LIMIT = {"float64": 1e4, "float32": 1e4}
#: Smallest non-zero magnitude (float32 underflows into subnormals below 1e-38).
FLOOR = {"float64": 1e-200, "float32": 1e-30}
#: The finite differences' relative step (as ``unigrad.fuzz.reference.STEP``).
FD_STEP = float(np.finfo(np.float64).eps ** (1.0 / 3.0))
#: Largest number of elements of one value.
MAX_SIZE = 64
#: The gradient weights cycle through these (exact in float32, none zero, distinct neighbours).
WEIGHTS = (1.0, -0.5, 1.5, -1.0, 0.5, 2.0, -1.5)
#: How many times :func:`make_plan` drops a step that makes the loss non-finite before giving up.
RETRIES = 4


@dataclass(frozen=True)
class Step:
    """One drawn operation: ``operands`` count back from the newest value (modulo how many exist)."""

    op: str
    operands: tuple[int, int, int]
    choice: int
    constant: float


@dataclass(frozen=True)
class Program:
    """A drawn program: inputs (shapes, and their values in one flat tuple) and steps."""

    shapes: tuple[Shape, ...]
    values: tuple[float, ...]
    steps: tuple[Step, ...]
    dtype: str = "float64"
    #: the transform checked beyond reverse mode: 'jvp', 'hvp', 'compiled' or 'none'
    extra: str = "none"


@dataclass(frozen=True)
class PlanStep:
    """A resolved step: the op, the ids of its operand values, its static arguments."""

    op: Op
    args: tuple[int, ...]
    attrs: Attrs


@dataclass
class Plan:
    """A well-typed program with its float64 values, kinks and singular points at its inputs."""

    dtype: str
    inputs: tuple[np.ndarray, ...]
    steps: tuple[PlanStep, ...]
    sinks: tuple[int, ...]
    weights: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]
    margin: float
    #: step index -> (kind, mask, choices): the step's op sits on a kink at these elements
    sites: dict[int, Site] = field(default_factory=dict)
    #: (step index, kind): an infinite local derivative or a non-finite value at that step
    singular: tuple[tuple[int, str], ...] = ()
    #: a bound on sum |d loss / d input| over every path, local derivatives taken in absolute value:
    #: what round-off in the backward pass scales with (``x / x`` near 0: huge, though the gradient is 0)
    backward_scale: float = 0.0

    @property
    def loss(self) -> float:
        return float(sum(np.sum(self.values[i] * w) for i, w in zip(self.sinks, self.weights, strict=True)))

    def names(self) -> list[str]:
        return [f"x{i}" for i in range(len(self.inputs))]


def _rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(dtype).astype(np.float64)


def _weights(shape: Shape, offset: int) -> np.ndarray:
    size = int(np.prod(shape))
    cycle = [WEIGHTS[(offset + i) % len(WEIGHTS)] for i in range(size)]
    return np.asarray(cycle, dtype=np.float64).reshape(shape)


def _evaluate(op: Op, args: Sequence[np.ndarray], attrs: Attrs) -> np.ndarray | None:
    with np.errstate(all="ignore"):
        try:
            return np.asarray(op.apply(numpy_namespace(), args, attrs), dtype=np.float64)
        except (ValueError, np.linalg.LinAlgError, IndexError, TypeError):
            return None


def _in_range(out: np.ndarray, dtype: str) -> bool:
    finite = np.abs(out[np.isfinite(out)])
    return bool(np.all(finite <= LIMIT[dtype]) and not np.any((finite > 0) & (finite < FLOOR[dtype])))


def build_plan(dtype: str, inputs: Sequence[np.ndarray], steps: Sequence[PlanStep]) -> Plan:
    """The plan of already-resolved steps: values, sinks, weights, kinks and singular points."""
    values = [_rounded(x, dtype) for x in inputs]
    for step in steps:
        out = _evaluate(step.op, [values[i] for i in step.args], step.attrs)
        values.append(np.full((), np.nan) if out is None else out)
    used = {i for step in steps for i in step.args}
    sinks = tuple(i for i in range(len(values)) if i not in used)
    weights = tuple(_weights(values[i].shape, 3 * n) for n, i in enumerate(sinks))
    finite = [np.abs(v[np.isfinite(v)]) for v in values]
    scale = max([1.0] + [float(v.max()) for v in finite if v.size])
    plan = Plan(
        dtype,
        tuple(values[: len(inputs)]),
        tuple(steps),
        sinks,
        weights,
        tuple(values),
        # at least ten finite-difference steps: a kink closer than that is straddled by both
        # stencils, which the two-step error estimate cannot see
        max(MARGIN[dtype], 10 * FD_STEP) * scale,
    )
    singular = []
    for k, step in enumerate(steps):
        args = [values[i] for i in step.args]
        out = values[len(inputs) + k]
        with np.errstate(all="ignore"):
            site = step.op.site(args, step.attrs, out, plan.margin)
            kind = step.op.singular(args, step.attrs, out, plan.margin)
        if site is not None:
            plan.sites[k] = site
        if kind is None and not np.all(np.isfinite(out)):
            kind = "non-finite value"
        if step.op.name == "where" and step.op.kind(args, step.attrs, plan.margin) == "unsafe branch":
            kind = "unsafe branch"
        if kind is not None:
            singular.append((k, kind))
    if dtype == "float32":
        singular += _float32_singular(plan, [s for s, _ in singular])
    plan.singular = tuple(singular)
    plan.backward_scale = _backward_scale(plan)
    return plan


def _float32_singular(plan: Plan, known: list[int]) -> list[tuple[int, str]]:
    """Singular points the program has only in float32 (1e-11 in float64 rounds to 0, then 0 / 0)."""
    values = [x.astype(np.float32) for x in plan.inputs]
    found = []
    for k, step in enumerate(plan.steps):
        args = [values[i] for i in step.args]
        with np.errstate(all="ignore"):
            try:
                out = np.asarray(step.op.apply(numpy_namespace(), args, step.attrs), dtype=np.float32)
            except (ValueError, np.linalg.LinAlgError, IndexError, TypeError):
                out = np.full(np.shape(plan.values[len(plan.inputs) + k]), np.nan, np.float32)
            args64 = [a.astype(np.float64) for a in args]
            kind = step.op.singular(args64, step.attrs, out.astype(np.float64), 0.0)
        if kind is None and not np.all(np.isfinite(out)):
            kind = "non-finite value"
        if kind is not None and k not in known:
            found.append((k, f"{kind} in float32"))
        values.append(out)
    return found


def _slope(op: Op, args: list[np.ndarray], attrs: Attrs, slot: int, out: np.ndarray) -> float:
    """The largest local derivative of ``op`` with respect to operand ``slot`` (finite differences)."""
    moved = [np.array(a, dtype=np.float64) for a in args]
    step = 1e-7 * np.maximum(1.0, np.abs(moved[slot]))
    moved[slot] = moved[slot] + step
    shifted = _evaluate(op, moved, attrs)
    if shifted is None or shifted.shape != out.shape:
        return 0.0
    with np.errstate(all="ignore"):
        change = np.abs(shifted - out)
    change = change[np.isfinite(change)]
    return float(change.max() / step.max()) if change.size else 0.0


def _backward_scale(plan: Plan) -> float:
    count = len(plan.inputs)
    reach = [1.0] * count  # per value: a bound on the absolute sum of its derivatives by the inputs
    for k, step in enumerate(plan.steps):
        args = [plan.values[i] for i in step.args]
        out = plan.values[count + k]
        total = sum(
            _slope(step.op, args, step.attrs, slot, out) * reach[i] for slot, i in enumerate(step.args)
        )
        reach.append(total)
    return float(
        sum(reach[i] * np.max(np.abs(w), initial=0.0) for i, w in zip(plan.sinks, plan.weights, strict=True))
    )


def _inputs_of(program: Program) -> list[np.ndarray]:
    inputs, start = [], 0
    for shape in program.shapes:
        size = int(np.prod(shape))
        chunk = list(program.values[start : start + size])
        chunk += [1.0] * (size - len(chunk))
        inputs.append(_rounded(np.asarray(chunk, dtype=np.float64).reshape(shape), program.dtype))
        start += size
    return inputs


def _resolve(
    program: Program, ops: Mapping[str, Op], inputs: list[np.ndarray], banned: set[int]
) -> tuple[list[PlanStep], float, int | None]:
    values = list(inputs)
    steps: list[PlanStep] = []
    first_bad = None
    for k, step in enumerate(program.steps):
        op = ops.get(step.op)
        if op is None or k in banned:
            continue
        count = len(values)
        args = tuple(count - 1 - (selector % count) for selector in step.operands[: op.arity])
        planned = op.plan([values[i].shape for i in args], step.choice, step.constant)
        if planned is None or int(np.prod(planned[1])) > MAX_SIZE:
            continue
        attrs, shape = planned
        operands = [values[i] for i in args]
        out = _evaluate(op, operands, attrs)
        if out is None or out.shape != tuple(shape) or not _in_range(out, program.dtype):
            continue
        with np.errstate(all="ignore"):
            if not op.valid(operands, attrs, out):
                continue
        if first_bad is None and not np.all(np.isfinite(out)):
            first_bad = k
        values.append(out)
        steps.append(PlanStep(op, args, attrs))
    used = {i for step in steps for i in step.args}
    sinks = [i for i in range(len(values)) if i not in used]
    with np.errstate(all="ignore"):
        loss = sum(float(np.sum(values[i] * _weights(values[i].shape, 3 * n))) for n, i in enumerate(sinks))
    return steps, loss, first_bad


def make_plan(program: Program, ops: Mapping[str, Op] | None = None) -> Plan | None:
    """The plan of ``program`` with ``ops`` (default: every available op), or ``None`` if it is empty."""
    if ops is None:
        from unigrad.fuzz.op_table import available_ops

        ops = available_ops()
    inputs = _inputs_of(program)
    banned: set[int] = set()
    for _ in range(RETRIES):
        steps, loss, first_bad = _resolve(program, ops, inputs, banned)
        if np.isfinite(loss):
            return build_plan(program.dtype, inputs, steps) if steps else None
        if first_bad is None:
            return None
        banned.add(first_bad)
    return None


def sub_plan(plan: Plan, k: int) -> Plan:
    """Step ``k`` of ``plan`` alone, its operands' values (at the plan's inputs) as the inputs."""
    step = plan.steps[k]
    unique = list(dict.fromkeys(step.args))
    inputs = [plan.values[i] for i in unique]
    alone = PlanStep(step.op, tuple(unique.index(i) for i in step.args), step.attrs)
    return build_plan(plan.dtype, inputs, [alone])


def without_unused_inputs(plan: Plan) -> Plan:
    """The plan without the inputs no step reads (they only add ``sum(w * x)`` to the loss)."""
    count = len(plan.inputs)
    used = sorted({i for step in plan.steps for i in step.args if i < count})
    if len(used) == count:
        return plan
    new_id = {old: new for new, old in enumerate(used)}

    def moved(i: int) -> int:
        return new_id[i] if i < count else len(used) + i - count

    steps = [PlanStep(step.op, tuple(moved(i) for i in step.args), step.attrs) for step in plan.steps]
    return build_plan(plan.dtype, [plan.inputs[i] for i in used], steps)


Override = Callable[[list[Any]], Any]


def run_plan(
    plan: Plan,
    xp: Any,
    inputs: Sequence[Any],
    overrides: Mapping[int, Override] | None = None,
    noise: Sequence[float] | None = None,
) -> Any:
    """The plan's loss on namespace ``xp``; ``overrides`` replace steps, ``noise`` scales their outputs."""
    values = list(inputs)
    for k, step in enumerate(plan.steps):
        args = [values[i] for i in step.args]
        if overrides is not None and k in overrides:
            out = overrides[k](args)
        else:
            out = step.op.apply(xp, args, step.attrs)
        if noise is not None:
            out = out * noise[k]
        values.append(out)
    total = None
    for i, weight in zip(plan.sinks, plan.weights, strict=True):
        value = values[i]
        term = xp.sum(value * xp.asarray(weight, dtype=value.dtype))
        total = term if total is None else total + term
    return total


def loss_function(plan: Plan) -> Callable[[dict[str, Any]], Any]:
    """``loss(params)`` for ``ug.grad``: params are ``{'x0': ..., 'x1': ...}`` of any backend."""
    from unigrad._namespace import namespace

    names = plan.names()

    def loss(params: dict[str, Any]) -> Any:
        return run_plan(plan, namespace(params), [params[name] for name in names])

    return loss


def describe(plan: Plan) -> list[str]:
    """One line per step, ``v3 = clip(v1, -1.0, 1.0)``, for reports."""
    lines = []
    for k, step in enumerate(plan.steps):
        target = f"v{len(plan.inputs) + k}"
        args = [f"v{i}" for i in step.args]
        attrs = [repr(a) for a in step.attrs]
        lines.append(f"{target} = {step.op.name}({', '.join(args + attrs)})")
    return lines
