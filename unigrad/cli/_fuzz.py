"""``unigrad fuzz``: parse the options, run :func:`unigrad.fuzz.run_fuzz` with a progress bar, print.

Exit codes: 0 when every disagreement found is within tolerance or a known convention, 1 when a
finding exists, 2 on usage errors (unknown backend, dtype or check; both ``--minutes`` and
``--programs``). Neither of those two runs 200 programs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from unigrad.cli._errors import UsageError

#: Programs run when neither --minutes nor --programs is given.
DEFAULT_PROGRAMS = 200
CHECKS = ("jvp", "hvp", "compiled")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_fuzz_parser(commands: Any) -> None:
    """Add the ``fuzz`` subcommand to ``commands`` (the ``unigrad`` parser's subparsers)."""
    fuzz = commands.add_parser(
        "fuzz",
        help="generate random losses from ug.namespace and compare gradients across backends and modes",
        description=(
            "A differential gradient fuzzer: random well-typed losses over the neutral namespace, "
            "inputs drawn to hit zeros, ties, bounds and domain edges; reverse mode against float64 "
            "finite differences and across backends, jvp against reverse mode, hvp against differences "
            "of gradients, compiled against eager. Findings are shrunk and written as standalone "
            "reproducers. See docs/fuzz.md."
        ),
    )
    fuzz.add_argument(
        "--backends", type=_comma_list, help="comma-separated (default: torch, tensorflow, jax if installed)"
    )
    fuzz.add_argument(
        "--dtypes", type=_comma_list, default=["float64", "float32"], help="default: float64,float32"
    )
    budget = fuzz.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="run for about this long (stops at a round boundary)")
    budget.add_argument("--programs", type=int, help=f"run this many programs (default {DEFAULT_PROGRAMS})")
    fuzz.add_argument(
        "--seed", type=int, default=0, help="the programs are a function of the seed (default 0)"
    )
    fuzz.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    fuzz.add_argument(
        "--out", metavar="DIR", default="fuzz-findings", help="where reproducers go (default fuzz-findings)"
    )
    fuzz.add_argument(
        "--checks",
        type=_comma_list,
        default=list(CHECKS),
        help="transforms checked beyond reverse mode, one per program: jvp, hvp, compiled (default: all)",
    )
    fuzz.add_argument(
        "--ops", type=_comma_list, help="generate only these ops (default: all; see docs/fuzz.md)"
    )
    fuzz.add_argument("--max-ops", type=int, default=12, help="most steps in a program (default 12)")
    fuzz.add_argument("--no-shrink", action="store_true", help="write findings as found, unshrunk")
    fuzz.add_argument("--no-verify", action="store_true", help="do not run each reproducer once")
    fuzz.add_argument("--no-progress", action="store_true", help="no progress bar")
    fuzz.add_argument(
        "--jobs",
        type=int,
        help="worker processes, each running whole rounds of programs (default: one per CPU core, at "
        "most one per round; 1 runs in this process). The results do not depend on it",
    )
    fuzz.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep JAX's compiled operations in ~/.cache/unigrad/jax between runs",
    )


def _validate(args: argparse.Namespace) -> list[str]:
    import unigrad as ug
    from unigrad.fuzz.campaign import SUPPORTED

    installed = ug.installed_backends()
    backends = args.backends if args.backends is not None else [b for b in SUPPORTED if b in installed]
    for backend in backends:
        if backend not in SUPPORTED:
            raise UsageError(
                f"unigrad fuzz: backend {backend!r} is not supported: choose from {', '.join(SUPPORTED)}"
            )
        if backend not in installed:
            raise UsageError(
                f"unigrad fuzz: backend {backend!r} is not installed (pip install 'unigrad[{backend}]')"
            )
    if not backends:
        raise UsageError(
            "unigrad fuzz: no backend installed (pip install 'unigrad[torch]', [tensorflow] or [jax])"
        )
    for dtype in args.dtypes:
        if dtype not in ("float64", "float32"):
            raise UsageError(f"unigrad fuzz: dtype {dtype!r} is not fuzzed: choose from float64, float32")
    for check in args.checks:
        if check not in CHECKS:
            raise UsageError(f"unigrad fuzz: unknown check {check!r}: choose from {', '.join(CHECKS)}")
    from unigrad.fuzz.op_table import available_ops

    unknown = sorted(set(args.ops or ()) - set(available_ops()))
    if unknown:
        raise UsageError(
            f"unigrad fuzz: unknown ops {', '.join(unknown)}: choose from {', '.join(available_ops())}"
        )
    if args.programs is not None and args.programs < 1:
        raise UsageError(f"unigrad fuzz: --programs must be at least 1, got {args.programs}")
    if args.max_ops < 1:
        raise UsageError(f"unigrad fuzz: --max-ops must be at least 1, got {args.max_ops}")
    return list(backends)


def _progress_bar(total: int | None, enabled: bool) -> Any:
    """A tqdm bar on stderr (programs/s, findings, known) when tqdm is installed; else ``None``."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="program", file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)


def run_fuzz_command(args: argparse.Namespace) -> int:
    """Run ``unigrad fuzz``; returns the exit code."""
    try:
        import hypothesis  # noqa: F401 - the generator and shrinker
    except ImportError:
        raise UsageError("unigrad fuzz needs Hypothesis: pip install 'unigrad[cli]'") from None
    from unigrad.fuzz import FuzzConfig, run_fuzz

    backends = _validate(args)
    programs = args.programs if args.programs is not None or args.minutes is not None else DEFAULT_PROGRAMS
    bar = _progress_bar(programs, not args.no_progress)

    def on_programs(report: Any, done: int = 1) -> None:
        if bar is not None:
            known = sum(sum(c.values()) for by_backend in report.known.values() for c in by_backend.values())
            bar.set_postfix(findings=len(report.findings), known=known, refresh=False)
            bar.update(done)

    config = FuzzConfig(
        backends=backends,
        dtypes=args.dtypes,
        programs=programs,
        minutes=args.minutes,
        seed=args.seed,
        extras=args.checks,
        max_ops=args.max_ops,
        shrink=not args.no_shrink,
        out=args.out,
        verify=not args.no_verify,
        compile_cache=not args.no_compile_cache,
        ops=args.ops,
    )
    jobs = _jobs(args.jobs, programs, config.round_size)
    try:
        if jobs > 1:
            from unigrad.fuzz.parallel import run_parallel

            report = run_parallel(config, jobs, on_programs)
        else:
            report = run_fuzz(config, on_programs)
    finally:
        if bar is not None:
            bar.close()
    print(report.summary())
    if args.json:
        report.to_json(args.json)
    return report.exit_code()


def _jobs(asked: int | None, programs: int | None, round_size: int) -> int:
    """Worker processes: as asked, else one per core but no more than there are rounds."""
    if asked is not None:
        if asked < 1:
            raise UsageError(f"--jobs must be at least 1, got {asked}")
        return asked
    rounds = None if programs is None else -(-programs // round_size)
    return max(1, min(os.cpu_count() or 1, rounds or os.cpu_count() or 1))
