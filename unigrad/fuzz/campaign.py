"""A fuzzing campaign: rounds of generated programs, findings localised, shrunk and written out.

1. Round ``r`` draws ``round_size`` programs with Hypothesis, seeded with ``(seed, r)``
   (:func:`unigrad.fuzz.shrink.run_round`); each is planned, run on every backend and judged
   (:mod:`unigrad.fuzz.evaluate`). The campaign stops after ``programs`` programs, or at the first
   round boundary after ``minutes`` (programs drawn after the deadline are not run): for one seed,
   every run evaluates a prefix of the same sequence of programs.
2. A finding is localised to the step that shows it alone (op and kind of input); its cause —
   check, backend(s), op, kind — de-duplicates findings.
3. After each round, every new cause is shrunk by replaying its round (:func:`unigrad.fuzz.shrink.shrink`)
   and written as a standalone reproducer, which is run once to confirm it exits 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from unigrad.conformance.subgradients import framework_version
from unigrad.fuzz.compare import EPS, FINDING, ROUNDING_FACTOR, Verdict
from unigrad.fuzz.evaluate import error_signature, evaluate_plan, extra_of, localize, same_finding
from unigrad.fuzz.generator import programs as program_strategy
from unigrad.fuzz.op_table import available_ops, unlisted_names
from unigrad.fuzz.ops import Op
from unigrad.fuzz.program import Program, describe, make_plan, without_unused_inputs
from unigrad.fuzz.report import Finding, FuzzReport, cause_of
from unigrad.fuzz.reproducer import reproducer_source
from unigrad.fuzz.runner import EXTRAS
from unigrad.fuzz.shrink import run_round, shrink

#: Backends the fuzzer can write reproducers for.
SUPPORTED = ("torch", "tensorflow", "jax")


@dataclass
class FuzzConfig:
    """What to fuzz and for how long; see ``unigrad fuzz --help``."""

    backends: Sequence[str]
    dtypes: Sequence[str] = ("float64", "float32")
    programs: int | None = None
    minutes: float | None = None
    seed: int = 0
    extras: Sequence[str] = EXTRAS
    max_ops: int = 12
    round_size: int = 50
    shrink: bool = True
    out: str | None = "fuzz-findings"
    verify: bool = True
    compile_cache: bool = False
    #: op names to generate (default: every op of the table the namespace guarantees)
    ops: Sequence[str] | None = None


def round_seed(seed: int, round_index: int) -> int:
    """The Hypothesis seed of round ``round_index`` of a campaign seeded ``seed``."""
    return seed * 1_000_003 + round_index


def enable_compile_cache() -> None:
    """Keep JAX's compiled operations between runs (as ``unigrad check`` does), unless configured."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    import jax

    from unigrad.conformance.pool import compile_cache_dir

    jax.config.update("jax_compilation_cache_dir", str(compile_cache_dir()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def check_backends(config: FuzzConfig) -> None:
    """Raise ``ValueError`` for a backend the fuzzer cannot write reproducers for."""
    unknown = [b for b in config.backends if b not in SUPPORTED]
    if unknown:
        raise ValueError(f"unigrad fuzz runs on {', '.join(SUPPORTED)}; not on {', '.join(unknown)}")


def selected_ops(config: FuzzConfig) -> dict[str, Op]:
    """The ops of the table ``config`` generates (``ValueError`` for unknown or unavailable ones)."""
    available = available_ops()
    unknown = sorted(set(config.ops or ()) - set(available))
    if unknown:
        raise ValueError(f"unknown or unavailable ops {unknown}: choose from {', '.join(available)}")
    return {name: op for name, op in available.items() if config.ops is None or name in config.ops}


def empty_report(config: FuzzConfig) -> FuzzReport:
    """A report with nothing counted yet, for ``config``'s seed, backends, dtypes and versions."""
    versions = {b: framework_version(b) for b in config.backends}
    report = FuzzReport(config.seed, list(config.backends), list(config.dtypes), versions)
    report.unlisted = unlisted_names()
    return report


class Campaign:
    """The state of one run of the fuzzer."""

    def __init__(self, config: FuzzConfig, on_program: Callable[[FuzzReport], None] | None = None) -> None:
        self.config = config
        self.on_program = on_program
        self.ops = selected_ops(config)
        self.strategy = program_strategy(
            list(self.ops), list(config.dtypes), config.max_ops, [*list(config.extras), "none"]
        )
        self.report = empty_report(config)
        self.deadline = None if config.minutes is None else time.monotonic() + 60 * config.minutes
        self.new: list[tuple[Finding, Verdict]] = []
        self.round_seed = 0
        self.round_count = 0

    def _done(self) -> bool:
        if self.config.programs is not None and self.report.programs >= self.config.programs:
            return True
        return self.deadline is not None and time.monotonic() > self.deadline

    def run(self) -> FuzzReport:
        start = time.monotonic()
        round_index = 0
        while not self._done():
            left = None if self.config.programs is None else self.config.programs - self.report.programs
            self.run_round(
                round_index, self.config.round_size if left is None else min(self.config.round_size, left)
            )
            round_index += 1
            self.report.seconds = time.monotonic() - start
        self.report.seconds = time.monotonic() - start
        return self.report

    def run_round(self, round_index: int, count: int) -> None:
        """Draw and evaluate round ``round_index`` (``count`` programs), then shrink and write out
        the causes it found first."""
        self.round_count = count
        self.round_seed = round_seed(self.config.seed, round_index)
        self.new = []
        run_round(self.strategy, self.round_seed, self.round_count, self._body)
        for finding, verdict in self.new:
            self._finish(finding, verdict)

    def _body(self, program: Program) -> None:
        if self._done():
            return
        self.report.programs += 1
        try:
            self._evaluate(program)
        except Exception:  # noqa: BLE001 - a defect of the fuzzer must not end the campaign
            self.report.fuzzer_errors.append(traceback.format_exc(limit=3).strip().splitlines()[-1])
        if self.on_program is not None:
            self.on_program(self.report)

    def _evaluate(self, program: Program) -> None:
        plan = make_plan(program, self.ops)
        if plan is None:
            return
        self.report.plans += 1
        self.report.ops.update(step.op.name for step in plan.steps)
        result = evaluate_plan(plan, self.config.backends, program.extra)
        for verdict in result.verdicts:
            self.report.record(verdict)
            if verdict.status != FINDING:
                continue
            extra = extra_of(verdict, program.extra)
            if verdict.check == "error":  # one exception is one cause, whichever ops raise it
                op, kind = "program", error_signature(verdict.detail)
            else:
                known = self.report.findings.values()
                culprits = [f.op for f in known if (f.check, f.backend) == (verdict.check, verdict.backend)]
                op, kind = localize(plan, verdict, extra, culprits)
            cause = cause_of(verdict.check, verdict.backend, op, kind)
            if cause in self.report.findings:
                self.report.findings[cause].count += 1
                continue
            finding = Finding(
                verdict.check, verdict.backend, op, kind, plan.dtype, verdict.detail, program, describe(plan),
                origin=(self.round_seed, self.round_count),
            )  # fmt: skip
            self.report.findings[cause] = finding
            self.new.append((finding, verdict))

    def _reproduces(self, finding: Finding, verdict: Verdict, extra: str) -> Callable[[Program], bool]:
        def reproduces(program: Program) -> bool:
            plan = make_plan(program, self.ops)
            if plan is None:
                return False
            result = evaluate_plan(plan, finding.backend.split("~"), extra)
            for found in result.verdicts:
                if not same_finding(verdict, found):
                    continue
                if finding.check == "error" or localize(plan, found, extra, [finding.op]) == (
                    finding.op,
                    finding.kind,
                ):
                    return True
            return False

        return reproduces

    def _finish(self, finding: Finding, verdict: Verdict) -> None:
        extra = extra_of(verdict, finding.program.extra)
        program = finding.program
        if self.config.shrink:
            seed, count = finding.origin
            shrunk = shrink(self.strategy, seed, count, program, self._reproduces(finding, verdict, extra))
            program = shrunk.example
            finding.shrink_note = (
                f"shrunk with {shrunk.evaluations} evaluations"
                if shrunk.reached
                else "not shrunk: replaying its round did not draw it again"
            )
        plan = make_plan(program, self.ops)
        if plan is None:
            return
        result = evaluate_plan(plan, finding.backend.split("~"), extra)
        pruned = without_unused_inputs(plan)
        if pruned is not plan:  # inputs no step reads only add sum(w * x): drop them if the finding stays
            pruned_result = evaluate_plan(pruned, finding.backend.split("~"), extra)
            if any(same_finding(verdict, v) for v in pruned_result.verdicts):
                plan, result = pruned, pruned_result
        finding.shrunk_steps = describe(plan)
        shown = next((v for v in result.verdicts if same_finding(verdict, v)), verdict)
        finding.detail = shown.detail or finding.detail
        if self.config.out is None:
            return
        widen = None
        if finding.check in ("reverse", "compiled", "value"):
            loss_moves, grad_moves = result.reference.sensitivity()
            factor = ROUNDING_FACTOR * EPS[plan.dtype]
            widen = [factor * m for m in grad_moves]
        versions = ", ".join(f"{b} {framework_version(b)}" for b in finding.backend.split("~"))
        notes = [
            f"Cause: {finding.cause} ({plan.dtype}; {versions}).",
            f"Found by: unigrad fuzz --seed {self.config.seed} --backends {','.join(self.config.backends)}"
            f" --dtypes {','.join(self.config.dtypes)};"
            f" {len(finding.steps)} steps, {len(plan.steps)} after shrinking ({finding.shrink_note}).",
            f"Fuzzer's comparison: {finding.detail}",
        ]
        source = reproducer_source(
            plan, finding.check, finding.backend.split("~"), title=finding.cause, extra=extra, notes=notes,
            widen=widen, widen_loss=0.0 if widen is None else factor * loss_moves,
        )  # fmt: skip
        directory = Path(self.config.out)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (re.sub(r"[^A-Za-z0-9]+", "-", finding.cause).strip("-").lower() + ".py")
        path.write_text(source, encoding="utf-8")
        finding.reproducer = str(path)
        if self.config.verify:
            finding.verified = verify(path)


def verify(path: Path, timeout: float = 600) -> str:
    """Run a reproducer once: ``'exits 1'`` when it reproduces, else what happened."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    try:
        done = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if done.returncode == 1 and ("DISAGREE" in done.stdout or " raised " in done.stdout):
        return "exits 1"
    if done.returncode == 0:
        return "exits 0: does not reproduce outside the fuzzer"
    return f"exit code {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1][:200]}"


def run_fuzz(config: FuzzConfig, on_program: Callable[[FuzzReport], None] | None = None) -> FuzzReport:
    """Run a campaign; ``on_program`` is called after each program (progress bars).

    Example:
        >>> report = run_fuzz(FuzzConfig(backends=["torch"], programs=5, out=None, extras=()))
        >>> report.programs, report.exit_code()
        (5, 0)
    """
    check_backends(config)
    if config.compile_cache and "jax" in config.backends:
        enable_compile_cache()
    return Campaign(config, on_program).run()
