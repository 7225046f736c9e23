"""``unigrad check``: run the catalogue or a user's loss, print the matrix, write the reports."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import unigrad as ug
from unigrad.backends import framework_backends
from unigrad.cli._errors import UsageError
from unigrad.conformance import (
    ALL_DTYPES,
    CASES,
    Case,
    Report,
    TransformCase,
    run_conformance,
    select_cases,
    select_transform_cases,
)
from unigrad.conformance.devices import available_devices, strict_precision
from unigrad.conformance.isolated import run_isolated
from unigrad.conformance.ops.suites import in_suite
from unigrad.conformance.render import render_markdown, render_text
from unigrad.conformance.render_plot import render_plot
from unigrad.conformance.report_text import describe_failures
from unigrad.conformance.runner import framework_versions, run_case
from unigrad.conformance.user_loss import user_case


def _validate(args: argparse.Namespace) -> list[str]:
    installed = ug.installed_backends()
    backends = args.backends if args.backends is not None else installed
    for backend in backends:
        if backend not in framework_backends():
            raise UsageError(
                f"unigrad check: unknown backend {backend!r}: choose from {', '.join(framework_backends())}"
            )
        if backend not in installed:
            raise UsageError(
                f"unigrad check: backend {backend!r} is not installed (pip install 'unigrad[{backend}]')"
            )
    for dtype in args.dtypes:
        if dtype not in ALL_DTYPES:
            raise UsageError(f"unigrad check: unknown dtype {dtype!r}: choose from {', '.join(ALL_DTYPES)}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"unigrad check: --jobs must be at least 1, got {args.jobs}")
    if args.target is None and (args.params or args.data):
        raise UsageError("unigrad check: --params/--data need a loss TARGET (module.path:function)")
    return list(backends)


def _areas(cases: list[Case | TransformCase]) -> dict[str, str]:
    return {case.name: case.tags[0] for case in cases}


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar on stderr when tqdm is installed and stderr is a terminal; else a no-op."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="case", file=sys.stderr, disable=None, leave=False)
        except ImportError:
            pass
    return None


def _list_cases(cases: list[Case | TransformCase]) -> int:
    groups: dict[str, list[Case | TransformCase]] = {}
    for case in cases:
        groups.setdefault(case.tags[0], []).append(case)
    for group, members in groups.items():
        print(group)
        for case in members:
            print(f"  {case.name}  [{', '.join(case.tags)}]")
    return 0


def _run_user_loss(
    args: argparse.Namespace, backends: list[str]
) -> tuple[Report, list[Case | TransformCase]]:
    case = user_case(args.target, args.params, args.data, backends)
    if not args.in_process:
        user = {"target": args.target, "params": args.params, "data": args.data}
        report = run_isolated(
            None, backends, args.dtypes, args.seed, args.devices,
            jobs=args.jobs, verbose=args.verbose, compile_cache=not args.no_compile_cache,
            user=user, user_case=case,
        )  # fmt: skip
        return report, [case]
    devices = {b: _filter_devices(available_devices(b), args.devices) for b in backends}
    report = Report(
        args.seed, [case.name], backends, list(args.dtypes), devices, framework_versions(backends)
    )
    with strict_precision(backends):
        report.comparisons = run_case(case, backends, devices, args.dtypes, args.seed)
    return report, [case]


def _filter_devices(found: list[str], wanted: list[str] | None) -> list[str]:
    if wanted is None:
        return found
    return [d for d in found if d in wanted or d.split(":")[0] in wanted]


def _per_leaf_lines(report: Report) -> list[str]:
    """For a user loss: the worst relative error of each leaf on each backend/device/dtype."""
    lines = ["", "per leaf (worst relative error against the reference):"]
    for comparison in report.comparisons:
        if comparison.kind != "reference":
            continue
        where = f"{comparison.backend}/{comparison.device}/{comparison.dtype}"
        if not comparison.leaves:
            lines.append(f"  {where}: {comparison.status} {comparison.reason}")
        for leaf in comparison.leaves:
            mark = "ok" if leaf.passed else "DISAGREES"
            lines.append(f"  {where:<28} {leaf.path:<24} {leaf.max_rel_err:9.2e}  {mark}")
    return lines


def run_check(args: argparse.Namespace) -> int:
    """Run ``unigrad check``; returns the exit code."""
    backends = _validate(args)
    if args.target is not None:
        if args.list:
            raise UsageError("unigrad check: --list lists the catalogue; it takes no TARGET")
        report, cases = _run_user_loss(args, backends)
    else:
        try:
            selected = [*select_cases(args.cases), *select_transform_cases(args.cases)]
        except ValueError as err:
            raise UsageError(f"unigrad check: {err}") from None
        cases = in_suite(selected, args.suite, args.cases)
        if selected and not cases:
            raise UsageError("unigrad check: the cases selected are in the full suite only: add --suite full")
        if args.list:
            return _list_cases(cases)
        bar = _progress(len(cases) * len(backends), not args.no_progress)
        report = run_conformance(
            cases=args.cases if len(cases) == len(selected) else [case.name for case in cases],
            backends=backends,
            devices=args.devices,
            dtypes=args.dtypes,
            seed=args.seed,
            progress=(lambda case, backend: bar.update(1)) if bar is not None else None,
            isolate=not args.in_process,
            jobs=args.jobs,
            verbose=args.verbose,
            compile_cache=not args.no_compile_cache,
        )
        if bar is not None:
            bar.close()
    areas = _areas(cases or CASES)
    # A user's loss is one row: always shown.
    print(render_text(report, areas, all_rows=args.all_rows or args.target is not None))
    if args.target is not None:
        print("\n".join(_per_leaf_lines(report)))
    failures = report.failures()
    if failures:
        print("\n" + describe_failures(failures[:20]))
    _write_outputs(args, report, areas)
    return 0 if report.ok else 1


def _write_outputs(args: argparse.Namespace, report: Report, areas: dict[str, str]) -> None:
    if args.json:
        report.to_json(args.json)
    if args.plot:  # before the Markdown, which links to it
        try:
            render_plot(report, areas, args.plot)
        except ImportError:
            raise UsageError("unigrad check: --plot needs matplotlib: pip install 'unigrad[plot]'") from None
    if args.markdown:
        with open(args.markdown, "w") as handle:
            image = (
                os.path.relpath(args.plot, os.path.dirname(os.path.abspath(args.markdown)))
                if args.plot
                else None
            )
            handle.write(render_markdown(report, areas, image) + "\n")
