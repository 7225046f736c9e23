"""Host (Python) time of unigrad's eager path against the hand-written native calls, per backend.

On a launch-bound GPU step every µs of Python per call shows in the step time, so this measures it in
one process, interleaved: a tiny loss (``{"w": 3 floats}``, sum of squares; on torch the native form
is a detached alias and ``torch.autograd.grad``, elsewhere the benchmarks' native: a
``tf.GradientTape``, ``jax.value_and_grad``), the MLP of the benchmarks (784-256-10, batch 128) and
the pytree of 1,000 leaves (8 floats each; its row is per leaf) against the benchmarks' natives. Each
round times every contender once (the order rotating); the figures are medians of the per-round
differences and ratios, with their IQR. ``--backend`` picks the framework (default torch).

``--profile`` prints where a unigrad call's time goes (cProfile over many tiny calls).
``--callgrind`` counts instructions per call, which stay repeatable on a loaded machine: run under
``valgrind --tool=callgrind --dump-before=os_getppid``, the script calls ``os.getppid()`` around each
contender's calls (``--calls`` tiny, ``--mlp-calls`` MLP, ``--tree-calls`` pytree), so callgrind
writes one profile per contender; ``--read-callgrind`` then prints the instructions per call from
those files (garbage collection is off while counting).

Example:
    python -m benchmarks.host                        # the interleaved table (about a minute)
    python -m benchmarks.host --backend jax          # the same for JAX
    python -m benchmarks.host --profile              # where unigrad's time goes
    python -m benchmarks.host --device cuda          # on a GPU: the host time its steps pay
    valgrind --tool=callgrind --dump-before=os_getppid --callgrind-out-file=/tmp/cg.out \\
        python -m benchmarks.host --callgrind            # a few minutes: the framework's import too
    python -m benchmarks.host --read-callgrind /tmp/cg.out
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks._threads import limit_threads
from benchmarks._timing import Spread, differences, ratios
from benchmarks.workloads import build

#: case -> (its native step, its unigrad step)
PAIRS = {
    "tiny": ("native_tiny", "unigrad_tiny"),
    "mlp": ("native_mlp", "unigrad_mlp"),
    "pytree": ("native_pytree", "unigrad_pytree"),
}
#: The pytree's row is per leaf: its figures are divided by this.
TREE_LEAVES = 1000


def contenders(backend: str = "torch", device: str = "cpu") -> dict[str, Callable[[], Any]]:
    """The six steps: native and unigrad on the tiny loss, the MLP and the pytree, on ``backend`` and
    ``device`` (``"cuda"`` or ``"gpu"``: the host time a launch-bound GPU step pays)."""
    on = "gpu" if device in ("cuda", "gpu") else device
    steps = {}
    for case in PAIRS:
        sizes = {"size": 3} if case == "tiny" else {"leaves": TREE_LEAVES} if case == "pytree" else {}
        work = build(backend, case, device=on, **sizes)
        steps[f"native_{case}"] = next(iter(work.natives.values()))
        steps[f"unigrad_{case}"] = work.unigrad_step
    if backend == "torch":
        steps.update(_torch_tiny("cuda" if on == "gpu" else on))
    return steps


def _torch_tiny(device: str) -> dict[str, Callable[[], Any]]:
    """torch's tiny pair: the native form a careful user writes for one call (no ``.grad`` to reset)."""
    import torch

    import unigrad as ug

    params = {"w": torch.tensor([0.5, -1.0, 2.0], requires_grad=True, device=device)}

    def tiny_loss(p: dict[str, Any]) -> Any:
        return (p["w"] ** 2).sum()

    def native_tiny() -> tuple[Any, Any]:
        alias = params["w"].detach().requires_grad_()
        loss = tiny_loss({"w": alias})
        (grad,) = torch.autograd.grad(loss, [alias])
        return loss.detach(), {"w": grad}

    def unigrad_tiny() -> tuple[Any, Any]:
        return ug.value_and_grad(tiny_loss, params)

    return {"native_tiny": native_tiny, "unigrad_tiny": unigrad_tiny}


def measure(
    steps: dict[str, Callable[[], Any]],
    rounds: int,
    sample_s: float,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], Any] = lambda: None,
) -> dict[str, list[float]]:
    """Seconds per call of every step, one figure per round; the pairs alternate within a round.

    ``clock=time.process_time`` counts the CPU time of this process only: on a machine that others
    load, the time its threads wait for a core stays out (their caches' effects do not). ``sync``
    ends every sample (``torch.cuda.synchronize`` on a GPU: once per sample of many calls)."""
    for _ in range(20):  # warm-up: lazy imports, unigrad's plan and loss caches, allocator
        for step in steps.values():
            step()
    inner = {}
    for name, step in steps.items():
        start = time.perf_counter()
        for _ in range(20):
            step()
        inner[name] = max(1, round(sample_s / ((time.perf_counter() - start) / 20)))
    for first, second in PAIRS.values():  # both of a pair run as many calls per sample
        inner[first] = inner[second] = min(inner[first], inner[second])
    times: dict[str, list[float]] = {name: [] for name in steps}
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        for index in range(rounds):
            for pair in PAIRS.values():
                for name in pair[index % 2 :] + pair[: index % 2]:
                    step, calls = steps[name], inner[name]
                    start = clock()
                    for _ in range(calls):
                        step()
                    sync()
                    times[name].append((clock() - start) / calls)
            gc.collect()
    finally:
        gc.unfreeze()
        gc.enable()
    return times


def report(times: dict[str, list[float]]) -> str:
    """The table: median time per call of each contender, unigrad's added µs and ratio (median, IQR)."""
    lines = [
        "| case | native | unigrad | added µs/call (median, IQR) | ratio (median, IQR) |",
        "|---|---|---|---|---|",
    ]
    for case, (native, unigrad) in PAIRS.items():
        per = TREE_LEAVES if case == "pytree" else 1
        added = differences(times[unigrad], times[native]).scaled(1e6 / per)
        ratio = ratios(times[unigrad], times[native])
        label = f"{case} (added per leaf)" if per > 1 else case
        lines.append(
            f"| {label} | {statistics.median(times[native]) * 1e6:.2f} µs "
            f"| {statistics.median(times[unigrad]) * 1e6:.2f} µs | {_spread(added, '+.2f')} "
            f"| {_spread(ratio, '.4f')} |"
        )
    return "\n".join(lines)


def _spread(spread: Spread, fmt: str) -> str:
    return f"{spread.median:{fmt}} ({spread.q1:{fmt}} – {spread.q3:{fmt}})"


def profile(step: Callable[[], Any], calls: int, top: int) -> None:
    """cProfile over ``calls`` calls of ``step``: the functions with the most own time."""
    for _ in range(100):
        step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def count_instructions(steps: dict[str, Callable[[], Any]], calls: dict[str, int]) -> None:
    """Run each step ``calls[name]`` times between two ``os.getppid()`` calls (callgrind's dump
    markers), after a few untimed calls of every step."""
    for _ in range(5):
        for step in steps.values():
            step()
    gc.collect()
    gc.disable()
    for name, step in steps.items():
        os.getppid()
        for _ in range(calls[name]):
            step()
    os.getppid()
    gc.enable()


def read_counts(prefix: str, calls: dict[str, int]) -> dict[str, float]:
    """Instructions per call of each step from the profiles ``count_instructions`` made callgrind
    write (``prefix.1`` is everything before the first marker, ``prefix.2`` the first step...)."""
    counts = {}
    for index, name in enumerate(calls, start=2):
        with open(f"{prefix}.{index}") as dump:
            total = next(line for line in dump if line.startswith(("summary:", "totals:")))
        counts[name] = int(total.split()[1]) / calls[name]
    return counts


def main(argv: list[str] | None = None) -> None:
    """The command line: the interleaved table, ``--profile``, ``--callgrind`` or ``--read-callgrind``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.host", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "tensorflow", "jax"), default="torch")
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("--sample-ms", type=float, default=20.0, help="length of one timed sample")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time, or this process's CPU time"
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: the host time a GPU step pays")
    parser.add_argument(
        "--profile", choices=tuple(PAIRS), nargs="?", const="tiny", help="cProfile a unigrad call"
    )
    parser.add_argument("--callgrind", action="store_true", help="run under callgrind: see above")
    parser.add_argument("--read-callgrind", metavar="PREFIX", help="instructions per call from its files")
    parser.add_argument("--calls", type=int, default=300, help="tiny calls per step (modes above)")
    parser.add_argument("--mlp-calls", type=int, default=10, help="MLP calls per step (callgrind)")
    parser.add_argument("--tree-calls", type=int, default=3, help="pytree calls per step (callgrind)")
    args = parser.parse_args(argv)
    per_case = {"tiny": args.calls, "mlp": args.mlp_calls, "pytree": args.tree_calls}
    calls = {name: per_case[case] for case, pair in PAIRS.items() for name in pair}
    if args.read_callgrind:
        counts = read_counts(args.read_callgrind, calls)
        print("| case | native instr/call | unigrad instr/call | added | ratio |\n|---|---|---|---|---|")
        for case, (native, unigrad) in PAIRS.items():
            n, u = counts[native], counts[unigrad]
            per = f" ({(u - n) / TREE_LEAVES:+,.0f} a leaf)" if case == "pytree" else ""
            print(f"| {case} | {n:,.0f} | {u:,.0f} | {u - n:+,.0f}{per} | {u / n:.4f} |")
        return
    limit_threads(1)
    steps = contenders(args.backend, args.device)
    if args.callgrind:
        count_instructions(steps, calls)
    elif args.profile:
        profile(steps[f"unigrad_{args.profile}"], per_case[args.profile] * 10, 25)
    else:
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        sync = _synchronizer(args.device)
        print(report(measure(steps, args.rounds, args.sample_ms / 1e3, clock, sync)))


def _synchronizer(device: str) -> Callable[[], Any]:
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    return torch.cuda.synchronize


if __name__ == "__main__":
    main()
