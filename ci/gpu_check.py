"""The GPU check: ``python3 ci/gpu_check.py [--out DIR] [--quick] [--dry-run]``, from the checkout.

One command for a GPU machine as it comes (Python with torch and/or JAX, no network, unigrad not
installed). Steps, each timed, each with its own time limit (all of them in 2.5 minutes on 16
cores of the H200 machine):

1. ``setup``: unigrad's own dependencies (optree, array-api-compat) from the wheels in ``ci/wheels``
   into a folder put on ``PYTHONPATH`` (``pip install --no-index --no-deps --target``), unless they
   can already be imported;
2. ``probe``: the versions, and whether torch and JAX see a GPU;
3. ``check``: ``python -m unigrad check`` on every installed backend and device (CPU and GPU), with
   its JSON and Markdown reports;
4. ``tests``: ``pytest -m gpu`` over the test files that use the ``gpu`` marker;
5. ``bench``: ``python -m benchmarks --only gpu``.

Without a GPU, steps 4 and 5 are reported as skipped, with the reason "no GPU", and step 3 runs on
the CPU alone. It prints a summary (the check's exit code and ``err`` count, the torch eager MLP row
of the benchmark, each step's wall time) and writes into ``--out`` (default: ``$OUT``, else a folder
under the temporary directory): ``gpu-check.md`` (the summary and the figures), ``gpu-check.json``,
``gpu-check.log`` (every step's output), ``check.json``, ``check.md`` and ``benchmarks.md``.
``--quick`` is the smoke-sized run (two cases, float64, ``benchmarks --quick``), what the test suite
runs; ``--dry-run`` prints the commands without running any. Exit code: 0 when no step failed.

It imports neither unigrad nor any framework itself: the steps run in child processes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "ci" / "wheels"
#: Each step's time limit in seconds; together under 8 minutes (measured on the H200 machine on
#: 2026-12-04: the default check 79-117 s with 16 workers, the GPU tests 14 s, the benchmarks 44 s).
TIMEOUT_S = {"setup": 60, "probe": 60, "check": 210, "tests": 45, "bench": 85}
QUICK_CASES = "elementwise_exp,elementwise_tanh"
NO_GPU = "no GPU"
PIP_OFFLINE = ("-q", "--no-index", "--no-deps", "--no-compile", "--upgrade")
OUTPUT_FILES = ("gpu-check.md", "gpu-check.json", "gpu-check.log", "check.json", "check.md", "benchmarks.md")

PROBE = """
import importlib.util, json, platform
info = {"python": platform.python_version()}
import numpy
info["numpy"] = numpy.__version__
if importlib.util.find_spec("torch"):
    import torch
    info["torch"] = torch.__version__
    if torch.cuda.is_available():
        info["torch_gpu"] = torch.cuda.get_device_name(0)
if importlib.util.find_spec("jax"):
    import jax
    info["jax"] = jax.__version__
    try:
        info["jax_gpu"] = [str(d) for d in jax.devices("gpu")]
    except RuntimeError:
        pass
print(json.dumps(info))
"""


@dataclasses.dataclass
class Step:
    """One step's outcome: ``status`` is passed, failed, skipped or timed out."""

    name: str
    command: str
    status: str = "skipped"
    seconds: float = 0.0
    detail: str = ""
    returncode: int | None = None


def run(step: Step, argv: list[str], env: dict[str, str], log: Any, timeout: float) -> str:
    """Run ``argv`` for ``step`` (its output appended to ``log``); returns the output."""
    log.write(f"\n===== {step.name}: {step.command}\n")
    log.flush()
    start = time.perf_counter()
    # A session of its own: at the time limit the whole group goes (unigrad check's workers too).
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        step.returncode = proc.returncode
        step.status = "passed" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        step.status = "timed out"
        step.detail = f"stopped after {timeout:g} s"
    step.seconds = time.perf_counter() - start
    text = output.decode(errors="replace")
    log.write(text)
    log.write(f"===== {step.name}: {step.status} in {step.seconds:.1f} s (exit {step.returncode})\n")
    log.flush()
    print(f"[gpu-check] {step.name}: {step.status} in {step.seconds:.1f} s", flush=True)
    return text


def has_dependencies() -> bool:
    """Whether unigrad's own dependencies can be imported by this Python already."""
    return all(importlib.util.find_spec(name) for name in ("optree", "array_api_compat", "numpy"))


def gpu_names(probe: dict[str, Any]) -> list[str]:
    """What the probe saw: ``torch: NVIDIA H200``, ``jax: cuda:0`` (empty: no GPU)."""
    names = [f"torch: {probe['torch_gpu']}"] if probe.get("torch_gpu") else []
    return names + [f"jax: {device}" for device in probe.get("jax_gpu", [])]


def summarize_check(report: dict[str, Any]) -> dict[str, Any]:
    """Counts by status, overall and per device, from ``unigrad check --json``."""
    totals: dict[str, int] = {}
    by_device: dict[str, dict[str, int]] = {}
    errors = []
    for row in report.get("comparisons", []):
        status, device = row.get("status", "?"), str(row.get("device", "?"))
        totals[status] = totals.get(status, 0) + 1
        by_device.setdefault(device, {})
        by_device[device][status] = by_device[device].get(status, 0) + 1
        if status in ("error", "fail"):
            where = f"{row.get('backend')}/{device}/{row.get('dtype')}"
            errors.append(f"{row.get('case')} {where} {status}: {str(row.get('reason', ''))[:240]}")
    return {"comparisons": sum(totals.values()), "totals": totals, "by_device": by_device, "problems": errors}


def counts_text(counts: dict[str, int]) -> str:
    """``2020 pass, 22 known, 14 err`` (the statuses present, in the report's order)."""
    order = ("pass", "known", "unsupported", "fail", "error")
    names = {"error": "err", "unsupported": "n/a"}
    present = [s for s in order if counts.get(s)] + sorted(s for s in counts if s not in order)
    return ", ".join(f"{counts[s]} {names.get(s, s)}" for s in present) or "none"


def benchmark_rows(output: str) -> list[str]:
    """The GPU rows of the table ``python -m benchmarks`` prints."""
    return [line for line in output.splitlines() if line.startswith("| GPU: ")]


def torch_eager_mlp_row(rows: list[str]) -> str:
    """The torch eager MLP row (case 2, not the compiled case 5) of :func:`benchmark_rows`."""
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) > 1 and cells[1] == "torch" and "MLP" in cells[0] and "compiled" not in cells[0]:
            return row
    return ""


def pytest_counts(output: str) -> str:
    """pytest's last line, ``2 passed, 1 skipped in 3.1s``, without its decoration."""
    pattern = re.compile(r"\d+ (passed|failed|skipped|deselected|errors?|xfailed|xpassed)\b.* in [\d.]+s")
    lines = [line.strip("= ") for line in output.splitlines() if pattern.search(line)]
    return lines[-1] if lines else ""


def gpu_test_files() -> list[str]:
    """The test files that use the ``gpu`` marker (the others are not even collected)."""
    return sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").glob("test_*.py")
        if "mark.gpu" in path.read_text(encoding="utf-8", errors="replace")
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 ci/gpu_check.py", description=__doc__.splitlines()[0])
    default_out = os.environ.get("OUT") or os.path.join(tempfile.gettempdir(), "unigrad-gpu-check")
    parser.add_argument("--out", type=Path, default=Path(default_out), help="folder for the files written")
    parser.add_argument("--site", type=Path, default=Path(tempfile.gettempdir()) / "unigrad-gpu-site")
    parser.add_argument("--quick", action="store_true", help="smoke-sized: two cases, benchmarks --quick")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--cases", help="unigrad check --cases (default: all; --quick: two)")
    parser.add_argument("--backends", help="unigrad check --backends (default: all installed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="unigrad check --jobs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    check_argv = [python, "-m", "unigrad", "check", "--no-progress", "--jobs", str(args.jobs)]
    check_argv += ["--json", str(out / "check.json"), "--markdown", str(out / "check.md")]
    cases = args.cases or (QUICK_CASES if args.quick else None)
    check_argv += ["--cases", cases] if cases else []
    check_argv += ["--dtypes", "float64"] if args.quick else []
    check_argv += ["--backends", args.backends] if args.backends else []
    test_files = gpu_test_files()
    tests_argv = [python, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", "-rs", *test_files]
    bench_argv = [python, "-m", "benchmarks", "--only", "gpu", "--output", str(out / "benchmarks.md")]
    bench_argv += ["--quick"] if args.quick else []
    wheels = sorted(str(path) for path in WHEELS.glob("*.whl"))
    setup_argv = [python, "-m", "pip", "install", *PIP_OFFLINE, "--target", str(args.site), *wheels]
    commands = {
        "setup": setup_argv,
        "probe": [python, "-c", "<probe: versions, GPUs>"],
        "check": check_argv,
        "tests": tests_argv,
        "bench": bench_argv,
    }
    steps = {name: Step(name, " ".join(argv)) for name, argv in commands.items()}
    if args.dry_run:
        for step in steps.values():
            print(f"{step.name}: {step.command}")
        return 0

    started = time.time()
    for name in OUTPUT_FILES:  # a report left by an earlier run must not pass for this one's
        (out / name).unlink(missing_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    paths = [str(ROOT)]
    probe: dict[str, Any] = {}
    with open(out / "gpu-check.log", "w", encoding="utf-8") as log:
        if has_dependencies():
            steps["setup"].detail = "optree and array-api-compat already importable"
        elif not wheels:
            steps["setup"].status = "failed"
            steps["setup"].detail = f"no wheels in {WHEELS}: see the module docstring"
        else:
            run(steps["setup"], setup_argv, env, log, TIMEOUT_S["setup"])
            steps["setup"].detail = f"{len(wheels)} wheels into {args.site}"
            paths.insert(0, str(args.site))
        env["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [env.get("PYTHONPATH")])])

        # Light: JAX would otherwise reserve 75% of the GPU only to say that it sees one.
        probe_env = dict(env, XLA_PYTHON_CLIENT_PREALLOCATE="false")
        text = run(steps["probe"], [python, "-c", PROBE], probe_env, log, TIMEOUT_S["probe"])
        try:
            probe = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            probe = {}
        gpus = gpu_names(probe)
        no_gpu = NO_GPU if steps["probe"].status == "passed" else f"the probe {steps['probe'].status}"
        steps["probe"].detail = "; ".join(gpus) or no_gpu

        run(steps["check"], check_argv, env, log, TIMEOUT_S["check"])
        check: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):  # none, or cut: the status and the log say why
            check = summarize_check(json.loads((out / "check.json").read_text(encoding="utf-8")))
        if check:
            devices = ", ".join(f"{d}: {counts_text(c)}" for d, c in sorted(check["by_device"].items()))
            steps["check"].detail = (
                f"exit {steps['check'].returncode}; {check['comparisons']} comparisons: "
                f"{counts_text(check['totals'])} ({devices})"
            )
        if not gpus:
            steps["check"].detail += f"; GPU columns skipped ({no_gpu})"

        rows: list[str] = []
        if not gpus:
            steps["tests"].detail = steps["bench"].detail = no_gpu
        else:
            if not test_files:
                steps["tests"].detail = "no test file uses the gpu marker"
            else:
                # The tests mix frameworks in one process: JAX allocates on demand, beside torch.
                test_env = dict(env)
                test_env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
                text = run(steps["tests"], tests_argv, test_env, log, TIMEOUT_S["tests"])
                steps["tests"].detail = pytest_counts(text) or steps["tests"].detail
                if steps["tests"].returncode == 5:  # pytest: every test deselected
                    steps["tests"].status, steps["tests"].detail = "skipped", "no test is marked gpu"
            text = run(steps["bench"], bench_argv, env, log, TIMEOUT_S["bench"])
            rows = benchmark_rows(text)
            mlp = torch_eager_mlp_row(rows)
            if mlp:
                ratio = [cell.strip() for cell in mlp.strip("|").split("|")][4]
                steps["bench"].detail = f"{len(rows)} GPU rows; torch eager MLP {ratio}"
            else:
                steps["bench"].detail = f"{len(rows)} GPU rows; no torch eager MLP row"
            if steps["bench"].status == "passed" and not rows:  # a GPU was seen, yet nothing ran on it
                steps["bench"].status = "failed"

    total = time.time() - started
    summary = render(list(steps.values()), probe, check, rows, total, started, args, max_problems=10)
    page = render(list(steps.values()), probe, check, rows, total, started, args, max_problems=200)
    (out / "gpu-check.md").write_text(page, encoding="utf-8")
    record = {
        "steps": [dataclasses.asdict(step) for step in steps.values()],
        "probe": probe,
        "check": check,
        "benchmark_gpu_rows": rows,
        "torch_eager_mlp_row": torch_eager_mlp_row(rows),
        "total_seconds": total,
    }
    (out / "gpu-check.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(summary)
    print(f"wrote {', '.join(name for name in OUTPUT_FILES if (out / name).exists())} in {out}")
    return 1 if any(step.status in ("failed", "timed out") for step in steps.values()) else 0


def render(
    steps: list[Step],
    probe: dict[str, Any],
    check: dict[str, Any],
    rows: list[str],
    total: float,
    started: float,
    args: argparse.Namespace,
    max_problems: int = 200,
) -> str:
    """The summary, as Markdown: the machine, one row per step, the check's first ``max_problems``
    err and fail rows, the GPU benchmark table."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started))
    versions = ", ".join(f"{key} {probe[key]}" for key in ("python", "numpy", "torch", "jax") if key in probe)
    by_name = {step.name: step for step in steps}
    check_step = by_name["check"]
    errors = check.get("totals", {}).get("error", 0) if check else "?"
    mlp = torch_eager_mlp_row(rows)
    bench = by_name["bench"]
    bench_state = f"skipped ({bench.detail})" if bench.status == "skipped" else f"no row ({bench.status})"
    lines = [
        "# unigrad GPU check",
        "",
        f"{when}, {os.cpu_count()} CPU cores{', quick' if args.quick else ''}; {versions or 'no versions'}.",
        f"GPU: {'; '.join(gpu_names(probe)) or NO_GPU}.",
        "",
        f"- `unigrad check`: exit {check_step.returncode}, {errors} err",
        f"- torch eager MLP: {mlp or bench_state}",
        f"- wall time: {total:.0f} s in all",
        "",
        "| step | status | wall time | detail |",
        "|---|---|---|---|",
    ]
    for step in steps:
        status = f"{step.status} ({step.detail})" if step.status == "skipped" and step.detail else step.status
        detail = "" if step.status == "skipped" else step.detail
        lines.append(f"| {step.name} | {status} | {step.seconds:.1f} s | {detail.replace('|', '/')} |")
    if check.get("problems"):
        shown = check["problems"][:max_problems]
        lines += ["", f"## The check's err and fail rows ({len(check['problems'])}, first {len(shown)})", ""]
        lines += [f"- {line}" for line in shown]
    if rows:
        lines += [
            "",
            "## GPU benchmarks",
            "",
            "| case | backend | native | unigrad | ratio | target | met? | notes |",
        ]
        lines += ["|---|---|---|---|---|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
