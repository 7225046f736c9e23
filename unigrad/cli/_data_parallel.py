"""``unigrad check --world-size N``: the data-parallel cases in local workers on every engine.

For each installed backend among PyTorch, JAX and TensorFlow and each launch it has (``devices``:
one process with N devices; ``processes``: N processes), one set of workers runs every case at every
dtype (float64, float32), and each worker's loss and gradients are compared with the single-process
full-batch ones. Exit code 0 when all agree, 1 otherwise.

Example:
    >>> from unigrad.cli._data_parallel import select_cases
    >>> select_cases(["dp_*regression"])
    ['dp_linear_regression', 'dp_logistic_regression']
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import time

import numpy as np

import unigrad as ug
from unigrad.cli._errors import UsageError
from unigrad.distributed.cases import CASES

#: Largest allowed relative error per leaf (max|g - ref| / max|ref|) at each dtype.
RTOL = {"float64": 1e-12, "float32": 1e-5}
ENGINES = ("torch", "jax", "tensorflow")


def select_cases(patterns: list[str] | None) -> list[str]:
    """Case names matching any of ``patterns`` (names or globs); all of them for ``None``."""
    if not patterns:
        return list(CASES)
    chosen = [name for name in CASES if any(fnmatch.fnmatch(name, p) for p in patterns)]
    if not chosen:
        raise UsageError(
            f"unigrad check --world-size: no data-parallel case matches {', '.join(patterns)} "
            f"(cases: {', '.join(CASES)})"
        )
    return chosen


def run_data_parallel_check(args: argparse.Namespace) -> int:
    """Run, print one line per case, backend, launch and dtype, and return the exit code."""
    from unigrad.distributed._launch import LAUNCHES, run_local_cases

    world = args.world_size
    if world < 1:
        raise UsageError(f"unigrad check: --world-size must be at least 1, got {world}")
    installed = ug.installed_backends()
    backends = [b for b in (args.backends or ENGINES) if b in ENGINES and b in installed]
    if not backends:
        raise UsageError("unigrad check --world-size: none of torch, jax, tensorflow is installed")
    dtypes = [d for d in args.dtypes if d in RTOL]
    if not dtypes:
        raise UsageError("unigrad check --world-size: runs at float64 and/or float32 (--dtypes)")
    names = select_cases(args.cases)
    rng = np.random.default_rng(args.seed)
    inputs = {(n, d): CASES[n][1](rng, d, 2 * world + 3) for n in names for d in dtypes}
    rows, failed = [], 0
    print(f"data-parallel check, world size {world}: {len(names)} cases x {', '.join(dtypes)}")
    for backend in backends:
        for launch in LAUNCHES[backend]:
            start = time.perf_counter()
            keys = list(inputs)
            cases = [(CASES[n][0], *inputs[(n, d)]) for n, d in keys]
            results = run_local_cases(cases, backend=backend, launch=launch, world_size=world)
            seconds = time.perf_counter() - start
            print(f"{backend} {launch} ({seconds:.1f} s)")
            for (name, dtype), workers in zip(keys, results, strict=True):
                error = max(w.max_rel_error for w in workers)
                ok = error <= RTOL[dtype]
                failed += not ok
                shards = "/".join(str(w.examples) for w in workers)
                status = "ok" if ok else "FAIL"
                print(f"  {name:24} {dtype:8} shards {shards:8} max rel error {error:.1e}  {status}")
                rows.append(
                    {"case": name, "backend": backend, "launch": launch, "dtype": dtype, "shards": shards,
                     "max_rel_error": error, "rtol": RTOL[dtype], "passed": ok}
                )  # fmt: skip
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"world_size": world, "rows": rows}, file, indent=1)
    print(
        f"{len(rows) - failed} of {len(rows)} agree with one process"
        + (f"; {failed} differ" if failed else "")
    )
    return 1 if failed else 0
