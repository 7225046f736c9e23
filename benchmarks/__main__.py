"""``python -m benchmarks``: run every benchmark and write ``docs/benchmarks.md``.

Example:
    python -m benchmarks --quick --output /tmp/bench.md   # the smoke-sized run, a minute or two
    python -m benchmarks                                  # the full run (under ten minutes)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._child import ROOT
from benchmarks._results import Result
from benchmarks._threads import limit_threads
from benchmarks.workloads import BACKENDS

GROUPS = ("eager", "compiled", "cold", "memory", "peer", "gpu", "second_order")
GPU_NOTE = (
    "Not measured: no framework saw a GPU in this run. Where PyTorch or JAX sees one, the `gpu` group "
    "(`python -m benchmarks --only gpu`) runs the MLP, transformer and compiled-path cases on it, "
    "synchronising the device before the clock is read, and this section holds its table."
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds and small sizes (a smoke run)")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the Markdown page to write"
    )
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS), help="groups to run")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per framework (default 1)")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[], list[Result]]]]:
    """The benchmark groups to run, sized for a full or a ``--quick`` run."""
    from benchmarks import cold_start, compiled, eager, gpu, memory, numpy_jit, peer, second_order

    quick, backends = args.quick, tuple(args.backends)
    rounds = 3 if quick else 41
    size = {"rows": 512, "hidden": 768} if quick else {}
    groups: dict[str, Callable[[], list[Result]]] = {
        "eager": lambda: eager.run(backends, rounds=rounds, quick=quick),
        "compiled": lambda: compiled.run(backends, rounds=rounds) + numpy_jit.run(backends, rounds=rounds),
        "cold": lambda: (
            cold_start.import_time(3 if quick else 21)
            + cold_start.first_call(backends, rounds=1 if quick else 3)
        ),
        "memory": lambda: (
            memory.peak_rss(backends, repeats=1 if quick else 3, **size) + memory.zero_copy(backends)
        ),
        "peer": lambda: peer.run(backends, rounds=rounds),
        "second_order": lambda: second_order.run(backends, rounds=rounds),
        "gpu": lambda: gpu.run(rounds, [b for b in gpu.gpu_backends() if b in backends]),
    }
    return [(name, groups[name]) for name in GROUPS if name in args.only]


def _keep_data_parallel_section(path: Path, page: str) -> str:
    """``page`` with the section ``python -m benchmarks.data_parallel`` wrote in ``path``, if any (it is
    measured by its own command, in worker processes, and kept when the rest is regenerated)."""
    from benchmarks.data_parallel import BEGIN, END, replace_section

    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN not in old or END not in old:
        return page
    return replace_section(page, old.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n"))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table and write the page."""
    args = parse(argv)
    thread_vars = limit_threads(args.threads)
    from benchmarks import machine, report

    start = time.perf_counter()
    results: list[Result] = []
    for name, run in plan(args):
        group_start = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        results += run()
        print(
            f"[bench] {name} done in {time.perf_counter() - group_start:.0f} s", file=sys.stderr, flush=True
        )
    elapsed = time.perf_counter() - start
    settings = {
        "mode": "quick" if args.quick else "full",
        "threads": f"{args.threads} per framework (OMP/MKL, TF intra/inter-op, XLA CPU): "
        + ", ".join(f"{key}={value}" for key, value in thread_vars.items() if "THREADS" in key),
    }
    page = report.render(results, machine.describe(), machine.versions(), settings, elapsed, GPU_NOTE)
    page = _keep_data_parallel_section(args.output, page)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page, encoding="utf-8")
    print(report.table(results))
    print(f"\nwrote {args.output} in {elapsed / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
