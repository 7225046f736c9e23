"""Case 5: the compiled path, ``ug.value_and_grad_fn(loss_fn, jit=True)``, against native compiled code.

Natives: ``jax.jit(jax.value_and_grad(loss))``; a ``tf.function`` around the ``GradientTape`` step;
on PyTorch both ``torch.compile(loss)`` followed by ``loss.backward()`` and the eager
``loss.backward()`` (the faster is the baseline: compiling does not always pay on a small CPU model).
Compilation happens in the warm-up calls, outside the timed rounds; its cost is reported in the notes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks._results import Result, fmt_added, fmt_ratio, fmt_time, pending
from benchmarks._timing import differences, interleave, ratios
from benchmarks.workloads import BACKENDS, Workload, build, is_installed

UNIGRAD = "unigrad jit=True"
TARGET = "≤ 1.02×"
LIMIT = 1.02


def has_compiled_path() -> bool:
    """Whether this unigrad has ``value_and_grad_fn`` (the compiled path is being written separately)."""
    import unigrad

    return hasattr(unigrad, "value_and_grad_fn")


def compiled_natives(work: Workload) -> dict[str, Callable[[], Any]]:
    """The native compiled forms of ``work`` (not yet called: the first call compiles)."""
    loss_fn, params, data = work.loss_fn, work.params, work.data
    if work.compiled_natives is not None:  # MLX (and any backend whose module gives them)
        return work.compiled_natives()
    if work.backend == "jax":
        import jax

        jitted = jax.jit(jax.value_and_grad(loss_fn))
        return {"jax.jit(jax.value_and_grad)": lambda: jax.block_until_ready(jitted(params, data))}
    if work.backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def tape_step(params: Any, data: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = loss_fn(params, data)
            return loss, tape.gradient(loss, params)

        return {"tf.function(GradientTape)": lambda: tape_step(params, data)}
    import torch

    compiled_loss = torch.compile(loss_fn, dynamic=False)
    leaves = list(params.values()) if isinstance(params, dict) else [params]

    def compiled_backward() -> tuple[Any, Any]:
        for leaf in leaves:
            leaf.grad = None
        loss = compiled_loss(params, data)
        loss.backward()
        return loss.detach(), [leaf.grad for leaf in leaves]

    return {
        "torch.compile(loss) + backward()": compiled_backward,
        "eager loss.backward()": work.natives["loss.backward()"],
    }


def unigrad_compiled(work: Workload) -> Callable[[], Any]:
    """``ug.value_and_grad_fn(loss_fn, jit=True)`` on ``work``, synchronised."""
    import unigrad as ug

    step = ug.value_and_grad_fn(work.loss_fn, jit=True)
    return lambda: work.sync(step(work.params, work.data))


def _synced(step: Callable[[], Any], work: Workload) -> Callable[[], Any]:
    """``step`` waiting for the device (a CUDA stream) before the clock is read; as is on the CPU."""
    if work.device == "cpu":
        return step
    return lambda: work.sync(step())


def _first_call_seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(work: Workload, title: str, rounds: int, *, judged: bool) -> Result:
    """One row: ``work`` compiled by unigrad against the fastest native compiled form."""
    contenders = {name: _synced(step, work) for name, step in compiled_natives(work).items()}
    contenders[UNIGRAD] = unigrad_compiled(work)
    compile_s = {name: _first_call_seconds(fn) for name, fn in contenders.items()}
    times = interleave(contenders, rounds=rounds)
    natives = [name for name in times if name != UNIGRAD]
    base = min(natives, key=lambda name: statistics.median(times[name]))
    ratio = ratios(times[UNIGRAD], times[base])
    added = differences(times[UNIGRAD], times[base]).scaled(1e6)
    notes = [f"baseline: {base}"]
    for name in natives:
        if name != base:
            notes.append(f"{name}: {fmt_time(statistics.median(times[name]))}")
    notes.append(
        "first call (compiles): "
        + ", ".join(f"{name} {fmt_time(seconds)}" for name, seconds in compile_s.items())
    )
    if not judged:
        notes.append(f"added {fmt_added(added)}")
    return Result(
        title,
        work.backend,
        fmt_time(statistics.median(times[base])),
        fmt_time(statistics.median(times[UNIGRAD])),
        fmt_ratio(ratio),
        TARGET if judged else "",
        (ratio.median <= LIMIT) if judged else None,
        "; ".join(notes),
        {
            "native_s": statistics.median(times[base]),
            "unigrad_s": statistics.median(times[UNIGRAD]),
            "ratio": ratio.median,
            "ratio_q1": ratio.q1,
            "ratio_q3": ratio.q3,
            "added_us": added.median,
        },
    )


def run(backends: tuple[str, ...] = BACKENDS, *, rounds: int = 31, tiny_size: int = 1000) -> list[Result]:
    """Case 5 on the MLP (judged against the target) and the tiny loss (per-call overhead, no target)."""
    problems = [
        ("5. compiled: MLP 784-256-10, batch 128", "mlp", {}, True),
        (f"5. compiled: tiny loss, {tiny_size:,} elements", "tiny", {"size": tiny_size}, False),
    ]
    results = []
    for title, problem, sizes, judged in problems:
        for backend in backends:
            target = TARGET if judged else ""
            if not has_compiled_path():
                results.append(pending(title, backend, "ug.value_and_grad_fn does not exist yet", target))
            elif not is_installed(backend):
                results.append(pending(title, backend, f"{backend} not installed", target))
            else:
                results.append(measure(build(backend, problem, **sizes), title, rounds, judged=judged))
    return results
