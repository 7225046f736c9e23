"""Cases 8-10: the paths a second-order solver takes through unigrad, against native code.

8. ``ug.hvp`` on the matrix cost ``-trace(XᵀAX)`` (X 128×3, float64) against the hand-written
   Hessian-vector product of each framework: PyTorch's double backward (``autograd.grad`` with
   ``create_graph=True``, then once more with the vector), JAX's ``jvp`` of ``grad``, TensorFlow's
   ``ForwardAccumulator`` over a ``GradientTape``. Target on PyTorch: ≤ 1.15×.
9. ``ug.hvp_fn(loss_fn, jit=True)`` against the native compiled product (``jax.jit`` of the JAX form,
   ``tf.function`` of the TF form, ``torch.compile`` of ``torch.func.jvp(torch.func.grad)``).
10. ``ug.grad`` with NumPy params and data and ``backend="torch"`` against ``ug.grad`` with torch
   tensors, on an 8×2 least-squares loss: the cost of the NumPy path. Target: ≤ +15 µs per call.

Every row is a same-run comparison (``benchmarks._timing.interleave``): ratios and differences are
taken round by round, then summarised by median and IQR.

``python -m benchmarks.second_order`` prints the rows and rewrites this benchmark's section of
``docs/benchmarks.md`` (between its own markers; the rest of the page is left as it is).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import _timing
from benchmarks._results import Result, fmt_added, fmt_ratio, fmt_time, pending
from benchmarks._timing import differences, interleave, ratios
from benchmarks.workloads import is_installed

HVP_CASE = "8. hvp, cost -trace(XᵀAX), X 128×3, float64"
COMPILED_CASE = "9. compiled hvp (hvp_fn jit=True), same cost"
NUMPY_CASE = "10. NumPy path: ug.grad(NumPy, backend=) vs native tensors, 8×2 loss"
HVP_LIMIT, COMPILED_LIMIT, NUMPY_LIMIT_US = 1.15, 1.10, 15.0
BEGIN, END = "<!-- second-order benchmarks: begin -->", "<!-- second-order benchmarks: end -->"


def _matrix_problem(rows: int = 128, cols: int = 3) -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.normal(size=(rows, rows))
    return a + a.T, rng.normal(size=(rows, cols)), rng.normal(size=(rows, cols))


def _contenders(backend: str, compiled: bool) -> dict[str, Callable[[], Any]]:
    """Native forms first (the first is the baseline), then unigrad's."""
    import unigrad as ug

    a_np, x_np, v_np = _matrix_problem()
    if backend == "torch":
        import torch

        a, x, v = (torch.from_numpy(t) for t in (a_np, x_np, v_np))

        def cost(p: Any) -> Any:
            return -torch.trace(p.T @ a @ p)

        def double_backward() -> Any:
            alias = x.detach().requires_grad_()
            (g,) = torch.autograd.grad(cost(alias), alias, create_graph=True)
            return torch.autograd.grad(g, alias, grad_outputs=v)[0]

        def forward_over_reverse(p: Any, t: Any) -> Any:
            return torch.func.jvp(torch.func.grad(cost), (p,), (t,))[1]

        if compiled:
            native = torch.compile(forward_over_reverse)
            product = ug.hvp_fn(cost)
            return {
                "torch.compile(torch.func.jvp(grad))": lambda: native(x, v),
                "eager double backward": double_backward,
                "unigrad": lambda: product(x, v),
            }
        return {
            "double backward": double_backward,
            "torch.func.jvp(grad)": lambda: forward_over_reverse(x, v),
            "unigrad": lambda: ug.hvp(cost, x, v),
        }
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        # float64 natives need the mode on where they run: this process turns it on for good.
        jax.config.update("jax_enable_x64", True)
        a, x, v = (jnp.asarray(t) for t in (a_np, x_np, v_np))

        def cost(p: Any) -> Any:
            return -jnp.trace(p.T @ a @ p)

        def native_hvp(p: Any, t: Any) -> Any:
            return jax.jvp(jax.grad(cost), (p,), (t,))[1]

        if compiled:
            jitted = jax.jit(native_hvp)
            product = ug.hvp_fn(cost)
            return {
                "jax.jit(jvp(grad))": lambda: jitted(x, v).block_until_ready(),
                "unigrad": lambda: product(x, v).block_until_ready(),
            }
        return {
            "jax.jvp(jax.grad)": lambda: native_hvp(x, v).block_until_ready(),
            "unigrad": lambda: ug.hvp(cost, x, v).block_until_ready(),
        }
    import tensorflow as tf

    a, x, v = (tf.constant(t) for t in (a_np, x_np, v_np))

    def cost(p: Any) -> Any:
        return -tf.linalg.trace(tf.transpose(p) @ a @ p)

    def native_hvp(p: Any, t: Any) -> Any:
        with tf.autodiff.ForwardAccumulator(p, t) as accumulator:
            with tf.GradientTape() as tape:
                tape.watch(p)
                loss = cost(p)
            g = tape.gradient(loss, p)
        return accumulator.jvp(g)

    if compiled:
        traced = tf.function(native_hvp, autograph=False)
        product = ug.hvp_fn(cost)
        return {"tf.function(accumulator over tape)": lambda: traced(x, v), "unigrad": lambda: product(x, v)}
    return {
        "ForwardAccumulator over GradientTape": lambda: native_hvp(x, v),
        "unigrad": lambda: ug.hvp(cost, x, v),
    }


def _ratio_row(case: str, backend: str, times: dict[str, list[float]], limit: float | None) -> Result:
    names = [name for name in times if name != "unigrad"]
    baseline = names[0]
    spread = ratios(times["unigrad"], times[baseline])
    median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    others = [f"{name}: {fmt_time(median[name])}" for name in names[1:]]
    notes = f"baseline: {baseline}" + ("; " + "; ".join(others) if others else "")
    target = f"≤ {limit:.2f}×" if limit is not None else ""
    met = (spread.median <= limit) if limit is not None else None
    return Result(
        case,
        backend,
        fmt_time(median[baseline]),
        fmt_time(median["unigrad"]),
        fmt_ratio(spread),
        target,
        met,
        notes,
        {"ratio": spread.median, "native_s": median[baseline], "unigrad_s": median["unigrad"]},
    )


def hvp_rows(backends: tuple[str, ...], rounds: int, compiled: bool) -> list[Result]:
    """Case 8 (eager) or 9 (``compiled``): one row per installed backend."""
    case = COMPILED_CASE if compiled else HVP_CASE
    rows = []
    for backend in backends:
        if backend not in ("torch", "tensorflow", "jax"):
            rows.append(pending(case, backend, "no hand-written HVP of this backend in this benchmark yet"))
            continue
        if not is_installed(backend):
            rows.append(pending(case, backend, f"{backend} is not installed"))
            continue
        contenders = _contenders(backend, compiled)
        started = time.perf_counter()
        for fn in contenders.values():  # compiles, outside the timed rounds
            fn()
        first = time.perf_counter() - started
        limit = COMPILED_LIMIT if compiled else (HVP_LIMIT if backend == "torch" else None)
        row = _ratio_row(case, backend, interleave(contenders, rounds=rounds), limit)
        if compiled:
            row.notes += f"; first calls (compiling every contender) {fmt_time(first)}"
        rows.append(row)
    return rows


def numpy_path_rows(rounds: int) -> list[Result]:
    """Case 10 on PyTorch: the NumPy path's added cost per call, against native tensors."""
    if not is_installed("torch"):
        return [pending(NUMPY_CASE, "torch", "torch is not installed")]
    import numpy as np
    import torch

    import unigrad as ug

    rng = np.random.default_rng(0)
    params_np = {"w": rng.normal(size=2).astype(np.float32), "b": np.asarray(0.1, np.float32)}
    data_np = {"x": rng.normal(size=(8, 2)).astype(np.float32), "y": rng.normal(size=8).astype(np.float32)}
    params_t = {k: torch.from_numpy(v) for k, v in params_np.items()}
    data_t = {k: torch.from_numpy(v) for k, v in data_np.items()}

    def loss(p: Any, d: Any) -> Any:
        return ((d["x"] @ p["w"] + p["b"] - d["y"]) ** 2).mean()

    def hand_written() -> Any:
        w, b = (params_t[k].detach().requires_grad_() for k in ("w", "b"))
        return torch.autograd.grad(loss({"w": w, "b": b}, data_t), [w, b])

    def converted_by_hand() -> Any:
        # What the NumPy path must do at least: the tensor path with the conversions written out.
        params = {k: torch.from_numpy(v) for k, v in params_np.items()}
        data = {k: torch.from_numpy(v) for k, v in data_np.items()}
        return {k: g.numpy() for k, g in ug.grad(loss, params, data).items()}

    contenders = {
        "hand-written autograd.grad": hand_written,
        "tensors": lambda: ug.grad(loss, params_t, data_t),
        "converted by hand": converted_by_hand,
        "numpy": lambda: ug.grad(loss, params_np, data_np, backend="torch"),
    }
    times = interleave(contenders, rounds=rounds * 3)  # tiny calls: more rounds, as eager.py does
    added = differences(times["numpy"], times["tensors"]).scaled(1e6)
    conversions = differences(times["converted by hand"], times["tensors"]).scaled(1e6)
    median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    return [
        Result(
            NUMPY_CASE,
            "torch",
            fmt_time(median["tensors"]),
            fmt_time(median["numpy"]),
            fmt_added(added),
            f"≤ +{NUMPY_LIMIT_US:.0f} µs/call over the tensor path",
            added.median <= NUMPY_LIMIT_US,
            f"native column: ug.grad on torch tensors; hand-written autograd.grad: "
            f"{fmt_time(median['hand-written autograd.grad'])}; the 6 conversions written out by hand "
            f"(torch.from_numpy of 4 arrays, .numpy() of 2 gradients) around the tensor call add "
            f"{fmt_added(conversions)}, so unigrad's own part is the rest",
            {
                "added_us": added.median,
                "conversions_us": conversions.median,
                "tensors_s": median["tensors"],
                "numpy_s": median["numpy"],
            },
        )
    ]


def run(backends: tuple[str, ...], rounds: int) -> list[Result]:
    """Cases 8-10."""
    return hvp_rows(backends, rounds, False) + hvp_rows(backends, rounds, True) + numpy_path_rows(rounds)


@contextlib.contextmanager
def cpu_clock() -> Iterator[None]:
    """Within the block, the interleaved rounds read this process's CPU time instead of the wall clock.

    On a machine whose cores other jobs keep busy (a load of 8 on 2 cores), wall-clock samples
    mostly measure time spent waiting to be scheduled; CPU time leaves that out. Every framework runs
    one thread here, so the CPU time is the time the call computes.
    """
    wall = _timing.time
    _timing.time = types.SimpleNamespace(perf_counter=time.process_time)  # type: ignore[assignment]
    try:
        yield
    finally:
        _timing.time = wall


def section(results: list[Result], rounds: int, elapsed: float, clock: str = "wall") -> str:
    """This benchmark's section of docs/benchmarks.md, markers included."""
    lines = [
        BEGIN,
        "## Second-order paths (cases 8-10)",
        "",
        f"`python -m benchmarks.second_order --clock {clock}` on {datetime.date.today()}, {rounds} rounds "
        f"({elapsed / 60:.1f} minutes), same machine and thread settings as above"
        + (
            ", timed by this process's CPU time (the cores were shared with other jobs)"
            if clock == "cpu"
            else ""
        )
        + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores when it ended. Case 8 compares "
        "`ug.hvp` with each framework's hand-written Hessian-vector product, case 9 `ug.hvp_fn(jit=True)` "
        "with the native compiled product, case 10 the NumPy path of `ug.grad` (NumPy params and "
        'data, `backend="torch"`) with `ug.grad` on torch tensors.',
        "",
        "| case | backend | native | unigrad | ratio / added (median, IQR) | target | met? | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.case} | {r.backend} | {r.native} | {r.unigrad} | {r.ratio} | {r.target or '-'} | {met} "
            f"| {r.notes} |"
        )
    lines += [
        "",
        "Ratios and differences are per round (the contenders alternate within each round), so load "
        "that hits a round hits every contender of it; on a loaded machine the absolute times are "
        "inflated for all of them, natives included. The rows are regenerated by "
        "`python -m benchmarks.second_order` (this section only) or `python -m benchmarks` (group "
        "`second_order`, rows in the main table).",
        END,
    ]
    return "\n".join(lines)


def write_section(page: Path, text: str) -> None:
    """Replace this benchmark's section of ``page`` (or append it), leaving the rest as it is."""
    content = page.read_text(encoding="utf-8")
    if BEGIN in content and END in content:
        head, rest = content.split(BEGIN, 1)
        content = head + text + rest.split(END, 1)[1]
    else:
        content = content.rstrip("\n") + "\n\n" + text + "\n"
    page.write_text(content, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.second_order", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "jax"])
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    )
    parser.add_argument("--no-write", action="store_true", help="print the rows only")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="what the rounds time")
    args = parser.parse_args(argv)
    from benchmarks._threads import limit_threads

    limit_threads(1)
    started = time.perf_counter()
    with cpu_clock() if args.clock == "cpu" else contextlib.nullcontext():
        results = run(tuple(args.backends), args.rounds)
    text = section(results, args.rounds, time.perf_counter() - started, args.clock)
    print(text)
    if not args.no_write:
        write_section(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
