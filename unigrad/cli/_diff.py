"""``unigrad diff OLD.json NEW.json``: what changed between two ``unigrad check --json`` reports.

The comparison is :mod:`unigrad.conformance.drift`; this module parses the arguments and prints.
Exit codes: 0 when nothing left the valid set (drift: another valid subgradient, ``ok`` ↔ ``known``,
a moved error, vanished rows), 1 when a row fails or raises in NEW that did not in OLD, 2 when a
file is missing or is not such a report.
"""

from __future__ import annotations

import argparse
from typing import Any

from unigrad.cli._errors import UsageError
from unigrad.conformance.drift import diff_reports, load_report, render_drift


def add_diff_parser(commands: Any) -> None:
    """Add the ``diff`` subcommand to ``commands`` (the ``unigrad`` parser's subparsers)."""
    diff = commands.add_parser(
        "diff",
        help="what changed between two `unigrad check --json` reports (two installs, two versions)",
        description=(
            "Compare two reports of `unigrad check --json`: framework versions side by side, then "
            "every case × backend/device/dtype row whose verdict, chosen subgradient or error "
            "magnitude changed. Exit code 1 only when a row fails in NEW that did not in OLD."
        ),
    )
    diff.add_argument("old", metavar="OLD.json", help="the earlier report")
    diff.add_argument("new", metavar="NEW.json", help="the later report")


def run_diff(args: argparse.Namespace) -> int:
    """Run ``unigrad diff``; returns the exit code."""
    try:
        old, new = load_report(args.old), load_report(args.new)
    except ValueError as err:
        raise UsageError(f"unigrad diff: {err}") from None
    drift = diff_reports(old, new)
    print(f"unigrad diff: {args.old} → {args.new}")
    print(render_drift(drift))
    return 0 if drift.ok else 1
