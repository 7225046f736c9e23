"""Plain result records of a conformance run, serialisable to JSON.

Example:
    >>> from unigrad.conformance.results import LeafMetrics
    >>> LeafMetrics("params['w']", 1e-9, 1e-8, True).passed
    True
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Statuses of a comparison: the first three are successes, the last two failures.
PASS, KNOWN, UNSUPPORTED, FAIL, ERROR = "pass", "known", "unsupported", "fail", "error"
OK_STATUSES = frozenset({PASS, KNOWN, UNSUPPORTED})


@dataclass
class LeafMetrics:
    """Agreement of one gradient leaf (or the loss, path ``'loss'``) with what it is compared to."""

    path: str
    max_abs_err: float
    max_rel_err: float
    passed: bool
    worst_index: tuple[int, ...] = ()
    got: float = 0.0
    want: float = 0.0


@dataclass
class Comparison:
    """One comparison: a (backend, device, dtype) result against a reference or another result.

    ``kind`` is ``'reference'`` (against the float64 reference), ``'pairwise'`` (backend against
    backend, same device kind and dtype) or ``'device'`` (a GPU against the same backend's CPU).
    """

    case: str
    kind: str
    backend: str
    device: str
    dtype: str
    against: str
    status: str
    rtol: float
    atol: float
    leaves: list[LeafMetrics] = field(default_factory=list)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def max_rel_err(self) -> float:
        return max((leaf.max_rel_err for leaf in self.leaves), default=0.0)

    @property
    def max_abs_err(self) -> float:
        return max((leaf.max_abs_err for leaf in self.leaves), default=0.0)


@dataclass
class Report:
    """A whole run: every comparison plus what it ran on."""

    seed: int
    cases: list[str]
    backends: list[str]
    dtypes: list[str]
    devices: dict[str, list[str]]
    versions: dict[str, str]
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    def failures(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.ok]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for comparison in self.comparisons:
            totals[comparison.status] = totals.get(comparison.status, 0) + 1
        return totals

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True, default=_jsonable)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Report:
        comparisons = [
            Comparison(**{**c, "leaves": [_leaf_from(leaf) for leaf in c["leaves"]]})
            for c in raw["comparisons"]
        ]
        return cls(**{**raw, "comparisons": comparisons})


def _leaf_from(raw: dict[str, Any]) -> LeafMetrics:
    return LeafMetrics(**{**raw, "worst_index": tuple(raw["worst_index"])})


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")
