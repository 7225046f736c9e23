"""Standalone reproducers: one Python file per finding, needing only NumPy and the frameworks involved.

The file defines the shrunk program once per framework in that framework's own API (from
:meth:`Op.source`, with the helpers of :mod:`unigrad.fuzz.native` where unigrad's namespace adds
code), computes both sides of the disagreement, prints them, and exits 1 while they disagree, 0 once
they agree (2 if the file itself fails). What "agree" means is the fuzzer's rule for that check: the
catalogue's tolerance per dtype plus three times the finite differences' own error estimate; at a
kink, the gradient under any valid choice (those gradients are written into the file, computed by
the fuzzer's finite differences); nan or inf excused where the program has a singular point.

Example:
    >>> from unigrad.fuzz.program import Program, Step, make_plan
    >>> plan = make_plan(Program(((2,),), (0.5, 2.0), (Step("sin", (0, 0, 0), 0, 0.0),)))
    >>> source = reproducer_source(plan, "reverse", ["torch"], title="sin")
    >>> "import unigrad" in source, "torch.sin(x0)" in source
    (False, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unigrad.conformance.tolerances import DEFAULT_TOLERANCES
from unigrad.fuzz.native import IMPORTS, TRANSFORMS, WEIGHTED_SUM, helpers_for
from unigrad.fuzz.program import Plan, describe
from unigrad.fuzz.reference import Reference
from unigrad.fuzz.runner import direction

#: The name each framework's module has in a reproducer.
MODULE = {"numpy": "np", "torch": "torch", "tensorflow": "tf", "jax": "jax"}


def _array(value: np.ndarray) -> str:
    flat = ", ".join(repr(float(v)) for v in np.ravel(value))
    return f"np.array([{flat}], dtype=np.float64).reshape({tuple(np.shape(value))})"


def _arrays(values: Sequence[np.ndarray]) -> str:
    return "[" + ", ".join(_array(v) for v in values) + "]"


def loss_source(plan: Plan, framework: str) -> str:
    """``def loss_<framework>(x0, ...)``: the plan in ``framework``'s own API."""
    n = len(plan.inputs)

    def name(i: int) -> str:
        return f"x{i}" if i < n else f"v{i}"

    lines = [f"def loss_{framework}({', '.join(name(i) for i in range(n))}):"]
    for k, step in enumerate(plan.steps):
        call = step.op.source(framework, [name(i) for i in step.args], step.attrs)
        lines.append(f"    {name(n + k)} = {call}")
    terms = [WEIGHTED_SUM[framework].format(value=name(i), weight=f"W{i}") for i in plan.sinks]
    lines.append(f"    return {' + '.join(terms)}")
    return "\n".join(lines) + "\n"


_MAIN_HEADER = '''
def close(got, want, slack, excuse_nonfinite=POISONED):
    """Elementwise: got within ATOL + RTOL * |want| + slack of want (nan or inf excused if singular)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    inside = np.abs(got - want) <= ATOL + RTOL * np.abs(want) + slack
    if excuse_nonfinite:
        inside |= ~np.isfinite(got)
    return inside | ~np.isfinite(want)


def finite_differences(loss, inputs):
    """Central differences at steps h and 2h: the gradient and an estimate of its error."""
    grads, errors = [], []
    for i, x in enumerate(inputs):
        grad, error = np.zeros(x.size), np.zeros(x.size)
        for j in range(x.size):
            h = STEP * max(1.0, abs(float(x.flat[j])))
            moved = []
            for delta in (h, -h, 2 * h, -2 * h):
                point = [y.copy() for y in inputs]
                point[i].flat[j] += delta
                moved.append(float(loss(*point)))
            small, large = (moved[0] - moved[1]) / (2 * h), (moved[2] - moved[3]) / (4 * h)
            grad[j] = small
            error[j] = abs(small - large) + 1e-15 * max(map(abs, moved)) / h
        grads.append(grad.reshape(x.shape))
        errors.append(error.reshape(x.shape))
    return grads, errors

'''


_ENTRY = """
if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # the reproducer itself failed: neither 'present' (1) nor 'gone' (0)
        import traceback

        traceback.print_exc()
        code = 2
    sys.exit(code)
"""


def _check_source(plan: Plan, check: str, backends: Sequence[str], reference: Reference, extra: str) -> str:
    first = backends[0]
    lines = ["def main():"]
    if check == "error":
        transform = {
            "jvp": f"{first}_jvp(INPUTS, DIRECTION)",
            "hvp": f"{first}_hvp(INPUTS, DIRECTION)",
            "compiled": f"{first}_compiled(INPUTS)",
        }.get(extra, f"{first}_value_and_grad(INPUTS)")
        lines += [
            "    try:",
            f"        print({first!r}, VERSION, '->', {transform})",
            "    except Exception as err:",
            f"        print({first!r}, VERSION, 'raised', type(err).__name__, err)",
            "        return 1",
            "    return 0",
        ]
        return "\n".join(lines) + "\n"
    if check == "value":
        lines += [
            f"    got = {first}_value_and_grad(INPUTS)[0]",
            "    want = float(loss_numpy(*INPUTS))",
            f"    print({first!r}, VERSION, 'loss:', got)",
            "    print('float64 NumPy loss:', want)",
            "    bad = not close(got, want, WIDEN_LOSS, False)",
        ]
    elif check == "reverse" and not plan.sites:
        lines += [
            f"    _, got = {first}_value_and_grad(INPUTS)",
            "    want, error = finite_differences(loss_numpy, INPUTS)",
            f"    print({first!r}, VERSION, 'gradient:', got)",
            "    print('float64 finite differences:', want)",
            "    bad = any(",
            "        np.any(((e <= 1e-3 * (1 + np.abs(w))) & ~close(g, w, 3 * e + s)))",
            "        for g, w, e, s in zip(got, want, error, WIDEN)",
            "    )",
        ]
    elif check == "compiled" and not plan.sites:
        lines += [
            f"    _, got = {first}_compiled(INPUTS)",
            f"    _, want = {first}_value_and_grad(INPUTS)",
            f"    print({first!r}, VERSION, 'compiled gradient:', got)",
            "    print('its eager gradient:', want)",
            "    slack = [ATOL + RTOL * np.abs(w) + 2 * s for w, s in zip(want, WIDEN)]",
            "    bad = any(np.any(~close(g, w, t)) for g, w, t in zip(got, want, slack))",
        ]
    elif check in ("reverse", "compiled"):
        call = f"{first}_value_and_grad(INPUTS)" if check == "reverse" else f"{first}_compiled(INPUTS)"
        lines += [
            f"    _, got = {call}",
            f"    print({first!r}, VERSION, {check!r}, 'gradient:', got)",
            "    print('valid gradients (one per choice at the kinks):', len(VALID))",
            "    for want in VALID:",
            "        print('   ', want)",
            "    bad = not any(",
            "        all(np.all(close(g, w, 3 * e + s)) for g, w, e, s in zip(got, want, error, WIDEN))",
            "        for want, error in zip(VALID, VALID_ERRORS)",
            "    )",
        ]
    elif check == "pairwise":
        second = backends[1]
        lines += [
            f"    _, got = {first}_value_and_grad(INPUTS)",
            f"    _, want = {second}_value_and_grad(INPUTS)",
            f"    print({first!r}, {first}_VERSION, got)",
            f"    print({second!r}, {second}_VERSION, want)",
            "    bad = any(np.any(~close(g, w, ATOL + RTOL * np.abs(w), False)) for g, w in zip(got, want))",
        ]
    elif check == "jvp":
        lines += [
            f"    got = {first}_jvp(INPUTS, DIRECTION)",
            f"    _, grads = {first}_value_and_grad(INPUTS)",
            "    want = float(sum(np.sum(g * v) for g, v in zip(grads, DIRECTION)))",
            "    size = float(sum(np.sum(np.abs(g * v)) for g, v in zip(grads, DIRECTION)))",
            f"    print({first!r}, VERSION, 'jvp:', got)",
            "    print('its reverse mode, grad . direction:', want)",
            "    bad = not abs(got - want) <= 2 * (ATOL + RTOL * size)",
        ]
    elif check == "hvp":
        lines += [
            f"    got = {first}_hvp(INPUTS, DIRECTION)",
            "    scale = max([1.0] + [float(np.max(np.abs(x))) for x in INPUTS])",
            "    h = STEP * scale / max(float(np.max(np.abs(v))) for v in DIRECTION)",
            "    moved = {}",
            "    for f in (1, -1, 2, -2):",
            "        point = [x + f * h * v for x, v in zip(INPUTS, DIRECTION)]",
            f"        moved[f] = {first}_value_and_grad(point, 'float64')[1]",
            "    want = [(a - b) / (2 * h) for a, b in zip(moved[1], moved[-1])]",
            f"    at_point = {first}_value_and_grad(INPUTS, 'float64')[1]",
            "    nudged_inputs = [x * (1 + 1e-12 * np.sign(v)) for x, v in zip(INPUTS, DIRECTION)]",
            f"    nudged = {first}_value_and_grad(nudged_inputs, 'float64')[1]",
            "    noise = [np.max(np.abs(a - b)) for a, b in zip(at_point, nudged)]  # round-off",
            "    twice = [(a - b) / (4 * h) for a, b in zip(moved[2], moved[-2])]",
            "    error = [np.abs(w - t) + 4 * n / h for w, t, n in zip(want, twice, noise)]",
            f"    print({first!r}, VERSION, 'hvp:', got)",
            "    print('finite differences of its gradient:', want)",
            "    bad = False",
            "    for g, w, e in zip(got, want, error):",
            "        reliable = e <= 1e-3 * (1 + np.abs(w))",
            "        bad |= bool(np.any(reliable & (np.abs(g - w) > 1e-7 + 1e-5 * np.abs(w) + 3 * e)))",
        ]
    lines += ["    print('DISAGREE' if bad else 'agree')", "    return 1 if bad else 0"]
    return "\n".join(lines) + "\n"


def reproducer_source(
    plan: Plan,
    check: str,
    backends: Sequence[str],
    *,
    title: str,
    extra: str = "none",
    notes: Sequence[str] = (),
    widen: Sequence[np.ndarray] | None = None,
    widen_loss: float = 0.0,
) -> str:
    """The text of a standalone reproducer of ``check`` on ``backends`` for ``plan``."""
    reference = Reference(plan)
    frameworks = list(dict.fromkeys(backends))
    uses_numpy = check == "value" or (check == "reverse" and not plan.sites)
    tolerance = DEFAULT_TOLERANCES[plan.dtype]
    sources = [loss_source(plan, f) for f in (["numpy"] if uses_numpy else []) + frameworks]
    body = "\n\n".join(sources)
    header = [f'"""unigrad fuzz: {title}', ""]
    header += [
        *list(notes),
        "",
        "The program (float64 values; the loss is sum(W_k * v_k) over the unused values):",
    ]
    header += [f"    {line}" for line in describe(plan)]
    header += [
        "",
        f"Needs only: numpy, {', '.join(frameworks)}. Exit code 1 while the disagreement is present.",
        '"""',
        "",
    ]
    parts = ["\n".join(header), "import sys\n", "import numpy as np"]
    parts += [IMPORTS[f] for f in frameworks]
    if "jax" in frameworks:
        parts.append('\njax.config.update("jax_enable_x64", True)  # float64 arrays stay float64')
    versions = [f"{f}_VERSION = {MODULE[f]}.__version__" for f in frameworks]
    values = [
        "",
        f"DTYPE = {plan.dtype!r}",
        f"VERSION = {MODULE[frameworks[0]]}.__version__",
        *versions,
        f"INPUTS = {_arrays(plan.inputs)}",
        f"DIRECTION = {_arrays(direction(plan))}",
        *[f"W{i} = {_array(w)}" for i, w in zip(plan.sinks, plan.weights, strict=True)],
        f"RTOL, ATOL = {tolerance.rtol!r}, {tolerance.atol!r}",
        f"STEP = {float(np.finfo(np.float64).eps ** (1 / 3))!r}",
        f"POISONED = {bool(plan.singular)}",
        f"WIDEN = {_arrays(widen if widen is not None else [np.zeros_like(x) for x in plan.inputs])}",
        f"WIDEN_LOSS = {widen_loss!r}",
    ]
    if plan.sites and check in ("reverse", "compiled"):
        estimates = [reference.estimate(a) for a in reference.assignments()]
        values.append("VALID = [" + ", ".join(_arrays(e.grads) for e in estimates) + "]")
        values.append("VALID_ERRORS = [" + ", ".join(_arrays(e.errors) for e in estimates) + "]")
    parts.append("\n".join(values) + "\n")
    parts += helpers_for(body)
    parts.append(body)
    parts += [TRANSFORMS[f] for f in frameworks]
    parts.append(_MAIN_HEADER + _check_source(plan, check, frameworks, reference, extra))
    parts.append(_ENTRY)
    return "\n".join(parts).replace("\n\n\n\n", "\n\n\n")
