"""The ``unigrad`` command: ``unigrad check`` (conformance and user losses) and ``unigrad info``.

Exit codes: 0 when every backend agrees, 1 when a disagreement is found, 2 on usage errors (unknown
case, backend or dtype, an unimportable loss, a missing or malformed ``.npz``) — always with a
one-line message and no traceback.

Example:
    >>> from unigrad.cli import main
    >>> main(["check", "--list", "--cases", "reduce_sum"])
    reduction
      reduce_sum  [reduction]
    0
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from unigrad.cli._check import run_check
from unigrad.cli._diff import add_diff_parser, run_diff
from unigrad.cli._errors import UsageError
from unigrad.cli._fuzz import add_fuzz_parser, run_fuzz_command
from unigrad.cli._info import run_info


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``unigrad`` command."""
    parser = _OneLineParser(prog="unigrad", description="One gradient API for TensorFlow, PyTorch and JAX.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    check = commands.add_parser(
        "check",
        help="run the conformance catalogue, or your own loss, on every backend and compare gradients",
        description=(
            "Without TARGET: run the conformance catalogue. With TARGET (module:function) and "
            "--params: run your own loss, written with ug.namespace, on every backend."
        ),
    )
    check.add_argument("target", nargs="?", help="your loss as module.path:function (optional)")
    check.add_argument("--params", help="params of your loss: a .npz file (one array per name)")
    check.add_argument("--data", help="data of your loss: a .npz file (optional)")
    check.add_argument("--backends", type=_comma_list, help="comma-separated, default: all installed")
    check.add_argument("--devices", type=_comma_list, help="cpu, gpu or names like gpu:1; default: all")
    check.add_argument(
        "--dtypes", type=_comma_list, default=["float64", "float32"], help="default: float64,float32"
    )
    check.add_argument(
        "--cases", type=_comma_list, action="extend", help="case names, globs (linalg_*) or tags (kink)"
    )
    check.add_argument(
        "--suite",
        choices=("default", "full"),
        default="default",
        help="default: the catalogue and one reverse-mode sample per op of the op table; full: every "
        "op sample, special point, jvp and hvp too (see docs/conformance.md)",
    )
    check.add_argument("--seed", type=int, default=0, help="inputs are a function of the seed (default 0)")
    check.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    check.add_argument("--markdown", metavar="PATH", help="write the matrix as Markdown")
    check.add_argument("--plot", metavar="PATH", help="write a PNG heatmap of log10 relative error")
    check.add_argument(
        "--list", action="store_true", help="list the cases (after --cases filtering) and exit"
    )
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.add_argument(
        "--all-rows",
        action="store_true",
        help="show every row of the matrix (default: only rows with a cell that is not ok; the "
        "all-ok rows are counted per area)",
    )
    check.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes at once, each running one backend (default: the CPU cores available)",
    )
    check.add_argument(
        "--in-process",
        action="store_true",
        help="run every backend in this one process instead of isolated workers (faster start, but "
        "two frameworks then share an address space and a native crash ends the run)",
    )
    check.add_argument(
        "--verbose", action="store_true", help="show the frameworks' own log lines and warnings"
    )
    check.add_argument(
        "--world-size",
        type=int,
        metavar="N",
        help="run the data-parallel cases on N local workers per engine (processes, and devices of "
        "one process) and compare them with one process; see docs/distributed.md",
    )
    check.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep JAX's compiled operations in ~/.cache/unigrad/jax between runs",
    )

    info = commands.add_parser("info", help="versions, devices and precision settings of each backend")
    info.add_argument(
        "--verbose", action="store_true", help="show the frameworks' own log lines and warnings"
    )
    add_diff_parser(commands)
    add_fuzz_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "info":
            return run_info(verbose=args.verbose)
        if args.command == "diff":
            return run_diff(args)
        if args.command == "fuzz":
            return run_fuzz_command(args)
        if args.world_size is not None:
            from unigrad.cli._data_parallel import run_data_parallel_check

            return run_data_parallel_check(args)
        return run_check(args)
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return 2


def console_main() -> None:
    """Entry point of the ``unigrad`` console script."""
    # TensorFlow's C++ start-up logging would bury the report; users can still set their own level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
