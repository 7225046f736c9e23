"""Case 6: cold start, in fresh processes.

- ``python -c "import unigrad"`` against ``python -c "import numpy, optree, array_api_compat"`` (its
  hard dependencies), alternating, wall time of the whole process; and which frameworks
  ``import unigrad`` pulls in (none, by design).
- ``import unigrad`` timed inside fresh processes that have imported ``numpy`` and ``optree`` (the
  dependencies it imports at start-up): the module work alone, without the process-start noise of
  the whole-process row (whose spread is several milliseconds here).
- The first gradient per backend: a fresh process imports the framework (and unigrad), builds the
  MLP, and times its first ``ug.grad`` call or its first native call.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks._child import run_json, run_python
from benchmarks._results import Result, fmt_time, pending
from benchmarks._timing import Spread, differences
from benchmarks.workloads import BACKENDS, is_installed

IMPORT_TARGET = "≤ +15 ms over its hard dependencies"
IMPORT_LIMIT_S = 0.015
OWN_IMPORT_TARGET = "≤ 5 ms over import numpy, optree"
OWN_IMPORT_LIMIT_S = 0.005
_OWN_IMPORT = (
    "import time, numpy, optree\nstart = time.perf_counter()\nimport unigrad\n"
    "print(time.perf_counter() - start)"
)
FRAMEWORKS = ("torch", "tensorflow", "jax", "jaxlib", "keras")

_FIRST_CALL = """
import json, time
from benchmarks.workloads import build
work = build({backend!r}, "mlp")
{prepare}
start = time.perf_counter()
{call}
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""


def import_time(rounds: int = 21) -> list[Result]:
    """``import unigrad`` vs importing its hard dependencies, and that it imports no framework."""
    commands = {
        "python": "pass",
        "deps": "import numpy, optree, array_api_compat",
        "unigrad": "import unigrad",
        "own": _OWN_IMPORT,
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    own: list[float] = []
    names = list(commands)
    for index in range(rounds + 1):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, stdout = run_python(commands[name])
            if index:  # the first round only warms the file cache
                walls[name].append(wall)
                if name == "own":
                    own.append(float(stdout.strip().splitlines()[-1]) * 1e3)
    own_spread = Spread.of(own)
    added = differences(walls["unigrad"], walls["deps"]).scaled(1e3)
    bare = statistics.median(walls["python"])
    deps = statistics.median(walls["deps"])
    ours = statistics.median(walls["unigrad"])
    imported = run_json(
        "import json, sys, unigrad\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))"
    )
    frameworks: list[str] = list(imported)  # type: ignore[arg-type]
    return [
        Result(
            '6. cold start: python -c "import unigrad" (whole process)',
            "-",
            f"{fmt_time(deps)} (numpy, optree, array_api_compat)",
            fmt_time(ours),
            f"{added.median:+.1f} ms (IQR {added.q1:.1f}–{added.q3:.1f})",
            IMPORT_TARGET,
            added.median / 1e3 <= IMPORT_LIMIT_S,
            f"bare python -c pass: {fmt_time(bare)}; {rounds} alternating rounds",
            {"deps_s": deps, "unigrad_s": ours, "python_s": bare, "added_ms": added.median},
        ),
        Result(
            "6. cold start: import unigrad after import numpy, optree (timed in the process)",
            "-",
            "-",
            f"{own_spread.median:.1f} ms",
            f"{own_spread.median:.1f} ms (IQR {own_spread.q1:.1f}–{own_spread.q3:.1f})",
            OWN_IMPORT_TARGET,
            own_spread.median / 1e3 <= OWN_IMPORT_LIMIT_S,
            f"{rounds} fresh processes, interleaved with the whole-process rounds",
            {"own_import_ms": own_spread.median},
        ),
        Result(
            "6. cold start: frameworks imported by import unigrad",
            "-",
            "-",
            ", ".join(frameworks) if frameworks else "none",
            "-",
            "none",
            not frameworks,
            "checked in sys.modules of a fresh process",
            {"frameworks_imported": float(len(frameworks))},
        ),
    ]


def first_call(backends: tuple[str, ...] = BACKENDS, *, rounds: int = 3) -> list[Result]:
    """The first ``ug.grad`` per backend vs the first native call, fresh processes alternating."""
    title = "6. cold start: first gradient call (MLP), fresh process"
    results = []
    for backend in backends:
        if not is_installed(backend):
            results.append(pending(title, backend, f"{backend} not installed"))
            continue
        codes = {
            "native": _FIRST_CALL.format(
                backend=backend, prepare="step = next(iter(work.natives.values()))", call="step()"
            ),
            "unigrad": _FIRST_CALL.format(
                backend=backend,
                prepare="import unigrad as ug",
                call="work.sync(ug.grad(work.loss_fn, work.params, work.data))",
            ),
        }
        seconds: dict[str, list[float]] = {"native": [], "unigrad": []}
        for index in range(rounds):
            for mode in ("native", "unigrad") if index % 2 == 0 else ("unigrad", "native"):
                seconds[mode].append(float(run_json(codes[mode])["seconds"]))
        added = differences(seconds["unigrad"], seconds["native"]).scaled(1e3)
        results.append(_first_call_row(title, backend, seconds, added, rounds))
    return results


def _first_call_row(
    title: str, backend: str, seconds: dict[str, list[float]], added: Spread, rounds: int
) -> Result:
    native = statistics.median(seconds["native"])
    ours = statistics.median(seconds["unigrad"])
    figures: dict[str, Any] = {"native_s": native, "unigrad_s": ours, "added_ms": added.median}
    return Result(
        title,
        backend,
        fmt_time(native),
        fmt_time(ours),
        f"{added.median:+.1f} ms (IQR {added.q1:.1f}–{added.q3:.1f})",
        "",
        None,
        f"unigrad imported before the clock starts; its first call imports the adapter; {rounds} "
        f"processes each",
        figures,
    )
