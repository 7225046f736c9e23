"""What a fuzzing campaign found: findings by cause, known conventions by family, and counts.

Example:
    >>> report = FuzzReport(seed=0, backends=["torch"], dtypes=["float64"], versions={"torch": "2.13.0"})
    >>> report.exit_code(), report.summary().splitlines()[0]
    (0, 'unigrad fuzz: 0 programs (0 run) in 0 s, seed 0; torch 2.13.0')
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from unigrad.fuzz.compare import FINDING, KNOWN, Verdict
from unigrad.fuzz.program import Program


@dataclass
class Finding:
    """One cause of disagreement: a check, the backend(s), the op and the kind of input."""

    check: str
    backend: str
    op: str
    kind: str
    dtype: str
    detail: str
    program: Program
    steps: list[str]
    count: int = 1
    shrunk_steps: list[str] | None = None
    reproducer: str | None = None
    #: 'exits 1' once run and reproducing; otherwise why not
    verified: str = "not run"
    shrink_note: str = "not shrunk"
    #: where Hypothesis drew it: (round seed, examples in the round)
    origin: tuple[int, int] = (0, 0)

    @property
    def cause(self) -> str:
        return cause_of(self.check, self.backend, self.op, self.kind)


def cause_of(check: str, backend: str, op: str, kind: str) -> str:
    """``'reverse torch: sin at generic'``; an error by what raised: ``'error jax: hvp raised TypeError'``."""
    if check == "error":
        return f"error {backend}: {kind}"
    return f"{check} {backend}: {op} at {kind}"


@dataclass
class FuzzReport:
    """The outcome of :func:`unigrad.fuzz.run_fuzz`; :meth:`exit_code` is 1 if a finding exists."""

    seed: int
    backends: list[str]
    dtypes: list[str]
    versions: dict[str, str]
    programs: int = 0
    plans: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    findings: dict[str, Finding] = field(default_factory=dict)
    #: family -> backend -> detail -> count (known verdicts)
    known: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    #: kink -> backend -> choice -> count (every comparison at a kink, passed or known)
    choices: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)
    unlisted: list[str] = field(default_factory=list)
    fuzzer_errors: list[str] = field(default_factory=list)

    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def record(self, verdict: Verdict) -> None:
        """Count a verdict; remember a known one's family and the choices made at kinks."""
        self.statuses[f"{verdict.check} {verdict.status}"] += 1
        if verdict.status == KNOWN:
            by_backend = self.known.setdefault(verdict.family, {})
            by_backend.setdefault(verdict.backend, Counter())[verdict.detail] += 1
        if verdict.status != FINDING:
            for site, choice in verdict.choices.items():
                self.choices.setdefault(site, {}).setdefault(verdict.backend, Counter())[choice] += 1

    def merge(self, part: FuzzReport) -> list[Finding]:
        """Add the counts of ``part`` (a round run elsewhere, see :mod:`unigrad.fuzz.parallel`) to
        this report; returns the findings whose cause was new here (the others only add counts)."""
        self.programs += part.programs
        self.plans += part.plans
        self.statuses.update(part.statuses)
        self.ops.update(part.ops)
        self.fuzzer_errors.extend(part.fuzzer_errors)
        for mine, theirs in ((self.known, part.known), (self.choices, part.choices)):
            for site, by_backend in theirs.items():
                for backend, counts in by_backend.items():
                    mine.setdefault(site, {}).setdefault(backend, Counter()).update(counts)
        added = []
        for cause, finding in part.findings.items():
            if cause in self.findings:
                self.findings[cause].count += finding.count
            elif finding.count:
                self.findings[cause] = finding
                added.append(finding)
        return added

    def to_dict(self) -> dict[str, Any]:
        data = {
            "seed": self.seed,
            "backends": self.backends,
            "dtypes": self.dtypes,
            "versions": self.versions,
            "programs": self.programs,
            "plans": self.plans,
            "seconds": round(self.seconds, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "findings": [{**asdict(f), "cause": f.cause} for f in self.findings.values()],
            "known": {k: {b: dict(c) for b, c in v.items()} for k, v in sorted(self.known.items())},
            "choices_at_kinks": {
                k: {b: dict(c) for b, c in v.items()} for k, v in sorted(self.choices.items())
            },
            "ops_generated": dict(self.ops.most_common()),
            "guaranteed_names_not_fuzzed": self.unlisted,
            "fuzzer_errors": self.fuzzer_errors,
        }
        return data

    def to_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=1, default=str)
            handle.write("\n")

    def summary(self) -> str:
        """The report as text: a header, findings by cause, known families, choices at kinks."""
        versions = ", ".join(f"{b} {self.versions.get(b, '?')}" for b in self.backends)
        rate = f", {self.programs / self.seconds * 60:.0f} programs/min" if self.seconds >= 1 else ""
        lines = [
            f"unigrad fuzz: {self.programs} programs ({self.plans} run) in {self.seconds:.0f} s{rate}, "
            f"seed {self.seed}; {versions}"
        ]
        lines += self._findings_table() + self._known_table() + self._choices_table()
        if self.unlisted:
            lines.append(
                "Guaranteed names not fuzzed yet (no row in unigrad/fuzz/op_table.py): "
                + ", ".join(self.unlisted)
            )
        if self.fuzzer_errors:
            lines.append(
                f"Fuzzer errors (programs skipped): {len(self.fuzzer_errors)}; first: {self.fuzzer_errors[0]}"
            )
        return "\n".join(lines)

    def _findings_table(self) -> list[str]:
        if not self.findings:
            return ["", "Findings: none (every disagreement was within tolerance or a known convention)."]
        lines = ["", "Findings (not explained by tolerance or a valid convention), by op and backend:"]
        rows = [("cause", "check", "backend", "dtype", "programs", "reproducer")]
        for f in sorted(self.findings.values(), key=lambda f: (f.op, f.backend, f.check)):
            where = f"{f.reproducer} ({f.verified})" if f.reproducer else "-"
            what = f.kind if f.check == "error" else f"{f.op} at {f.kind}"
            rows.append((what, f.check, f.backend, f.dtype, str(f.count), where))
        lines += _table(rows)
        for f in self.findings.values():
            lines.append(f"  {f.cause}: {f.detail}")
        return lines

    def _known_table(self) -> list[str]:
        if not self.known:
            return []
        lines = ["", "Known (a valid convention at a kink, or nan/inf at a singular point), by family:"]
        rows = [("family", *self.backends)]
        for family, by_backend in sorted(self.known.items()):
            cells = []
            for backend in self.backends:
                details = by_backend.get(backend, Counter())
                cells.append(str(sum(details.values())) if details else "-")
            rows.append((family, *cells))
        lines += _table(rows)
        for family, by_backend in sorted(self.known.items()):
            for details in by_backend.values():
                detail, _ = details.most_common(1)[0]
                lines.append(f"  {family}: {detail}")
        return lines

    def _choices_table(self) -> list[str]:
        if not self.choices:
            return []
        lines = ["", "Kinks visited and what each backend chose there (most common choice, how often):"]
        rows = [("kink", *self.backends)]
        for site, by_backend in sorted(self.choices.items()):
            cells = []
            for backend in self.backends:
                counts = by_backend.get(backend)
                cells.append(f"{counts.most_common(1)[0][0]} ({sum(counts.values())})" if counts else "-")
            rows.append((site, *cells))
        return lines + _table(rows)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
