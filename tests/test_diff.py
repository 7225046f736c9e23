"""`unigrad diff OLD.json NEW.json` and the drift rules behind it (unigrad.conformance.drift).

tests/data/ holds two small reports of ``unigrad check --cases kink_clip_at_bounds,reduce_sum
--backends torch --json``: ``check-torch-2.13.0.json`` from a real run with torch 2.13.0+cpu, and
``check-torch-2.14.1-derived.json``, the same report as torch 2.14.1 gives it, derived by
:func:`derive_torch_2_14` from torch 2.14.1's recorded choice at the clip bounds (0, in
``unigrad/conformance/kink_choices.json``) with the runner's own comparison and judgement. Run
``python tests/test_diff.py`` to write it again.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unigrad.cli import main
from unigrad.conformance.case import Tolerance
from unigrad.conformance.cases import CASES
from unigrad.conformance.compare import compare_trees
from unigrad.conformance.drift import (
    DRIFT,
    FIXED,
    NEW_FAILURE,
    diff_reports,
    moved_materially,
    render_drift,
)
from unigrad.conformance.known_differences import CHOICES_PATH
from unigrad.conformance.results import LeafMetrics, Report
from unigrad.conformance.subgradients import judge

DATA = Path(__file__).parent / "data"
OLD = DATA / "check-torch-2.13.0.json"
NEW = DATA / "check-torch-2.14.1-derived.json"
TORCH_2_14 = "2.14.1"  # as pip reports the PyPI build, which tests-latest installs


def derive_torch_2_14(old: dict[str, Any]) -> dict[str, Any]:
    """``old`` (a torch 2.13 report) as torch 2.14.1 makes it: clip's gradient at its bounds is 0.

    Each kink_clip_at_bounds comparison is made again with torch 2.14.1's recorded gradient: against
    the closed form (float64), and float32 against torch's own float64, which 2.14.1 computes the
    same way. Every other row is kept as it is.
    """
    new = copy.deepcopy(old)
    new["versions"]["torch"] = TORCH_2_14
    recorded = json.loads(CHOICES_PATH.read_text())["kink_clip_at_bounds"]["grads"]["torch"][TORCH_2_14]
    got = {"x": np.array(recorded["params['x']"], dtype=np.float64)}
    clip = next(case for case in CASES if case.name == "kink_clip_at_bounds")
    params, data = clip.make_inputs(old["seed"])
    for row in new["comparisons"]:
        if row["case"] != clip.name:
            continue
        tolerance = Tolerance(row["rtol"], row["atol"])
        want = clip.expected_grad(params, data) if row["against"] == clip.reference_name else got
        loss = row["leaves"][0]
        leaves = [LeafMetrics(**{**loss, "worst_index": tuple(loss["worst_index"])})]
        leaves += compare_trees(got, want, tolerance)
        status, reason = judge(
            clip, row["backend"], row["dtype"], row["device"], leaves, got=got, want=want,
            tolerance=tolerance, versions={"torch": TORCH_2_14},
        )  # fmt: skip
        row.update(status=status, reason=reason, leaves=[dataclasses.asdict(leaf) for leaf in leaves])
    return new


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write(raw: dict[str, Any], path: Path) -> Path:
    Report.from_dict(raw).to_json(path)
    return path


def run_diff(old: Path, new: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["diff", str(old), str(new)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def line_of(output: str, *words: str) -> str:
    matches = [line for line in output.splitlines() if all(word in line for word in words)]
    assert len(matches) == 1, f"{words} in:\n{output}"
    return matches[0]


def test_the_stored_torch_2_14_report_is_derived_from_the_recorded_choice() -> None:
    assert load(NEW) == json.loads(json.dumps(derive_torch_2_14(load(OLD))))
    reference = next(
        row
        for row in load(NEW)["comparisons"]
        if row["case"] == "kink_clip_at_bounds" and row["dtype"] == "float64"
    )
    assert reference["status"] == "known"
    assert reference["reason"].startswith("torch 2.14.1: 0 at params['x'][0], params['x'][1]")


def test_the_clip_change_of_torch_2_14_is_drift_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_diff(OLD, NEW, capsys)
    assert code == 0, output
    row = line_of(output, "kink_clip_at_bounds")
    assert "torch/cpu/f64" in row and "ok → known" in row
    assert "chose 0 at params['x'][0], params['x'][1] (convention 1; valid: [0, 1])" in row
    assert "was: agrees with closed form" in row and "worst rel. error" not in row  # the choice says it
    assert line_of(output, "drift (1)")
    assert "reduce_sum" not in output  # unchanged rows are not listed
    assert "nothing left the valid set" in output.splitlines()[-1]


def test_versions_are_side_by_side_at_the_top(capsys: pytest.CaptureFixture[str]) -> None:
    _, output = run_diff(OLD, NEW, capsys)
    lines = output.splitlines()
    assert lines[1] == "versions (OLD → NEW)"
    torch = line_of(output, "torch ", "→")
    assert torch.split() == ["torch", "2.13.0+cpu", "→", "2.14.1", "changed"]
    assert line_of(output, "numpy ", "→").split() == ["numpy", "2.4.6", "→", "2.4.6"]
    assert lines.index(torch) < lines.index(line_of(output, "kink_clip_at_bounds"))


def test_a_row_that_fails_only_in_new_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = load(NEW)
    row = next(r for r in raw["comparisons"] if r["case"] == "reduce_sum" and r["dtype"] == "float32")
    row["status"] = "fail"
    row["leaves"][1].update(max_rel_err=3e-2, max_abs_err=3e-2, passed=False)
    code, output = run_diff(OLD, write(raw, tmp_path / "new.json"), capsys)
    assert code == 1, output
    failure = line_of(output, "reduce_sum")
    assert (
        "torch/cpu/f32" in failure and "ok → fail" in failure and "worst rel. error 2e-07 → 3e-02" in failure
    )
    assert output.index("new failure (1)") < output.index("drift (1)")
    assert "NEW FAILURES" in output.splitlines()[-1]
    # the same failure in both reports is no news: exit 0
    code, output = run_diff(tmp_path / "new.json", tmp_path / "new.json", capsys)
    assert code == 0 and "1 failing in both" in output


def test_a_fixed_row_exits_zero() -> None:
    broken = load(OLD)
    broken["comparisons"][2].update(status="error", reason="RuntimeError: boom")
    drift = diff_reports(Report.from_dict(broken), Report.from_dict(load(OLD)))
    assert drift.ok and [(row.case, row.kind) for row in drift.rows] == [("reduce_sum", FIXED)]


def test_a_vanished_case_is_listed_not_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = load(NEW)
    raw["cases"].remove("reduce_sum")
    raw["comparisons"] = [row for row in raw["comparisons"] if row["case"] != "reduce_sum"]
    code, output = run_diff(OLD, write(raw, tmp_path / "new.json"), capsys)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[lines.index("vanished cases (in OLD, not in NEW): 1") + 1] == "  reduction: reduce_sum"
    assert "2 rows only in OLD" in lines[-1]


def test_a_new_case_that_fails_is_a_failure() -> None:
    old, new = load(OLD), load(OLD)
    old["cases"].remove("reduce_sum")
    old["comparisons"] = [row for row in old["comparisons"] if row["case"] != "reduce_sum"]
    new["comparisons"][3]["status"] = "fail"
    drift = diff_reports(Report.from_dict(old), Report.from_dict(new))
    assert drift.added_cases == ["reduce_sum"]
    assert [(row.case, row.column[2], row.kind) for row in drift.rows] == [
        ("reduce_sum", "float32", NEW_FAILURE)
    ]
    assert not drift.ok


@pytest.mark.parametrize(
    ("old", "new", "rtol", "moved"),
    [
        (2e-16, 5e-13, 1e-6, False),  # ×2500 but far inside the tolerance: round-off, not news
        (1e-9, 2e-7, 1e-6, True),  # ×200 and above a tenth of rtol
        (5e-8, 4e-7, 1e-6, False),  # above the tenth but only ×8
        (0.0, 1e-5, 1e-4, True),  # from exact agreement to a tenth of rtol
        (3e-5, 1e-7, 1e-4, True),  # moving down counts too
        (float("inf"), float("inf"), 1e-4, False),
    ],
)
def test_moved_materially(old: float, new: float, rtol: float, moved: bool) -> None:
    assert moved_materially(old, new, rtol) is moved


def test_an_error_that_moved_materially_is_drift() -> None:
    new = load(OLD)
    leaf = new["comparisons"][3]["leaves"][1]  # reduce_sum float32: 2e-07 (the loss), rtol 1e-4
    leaf["max_rel_err"] = 2e-5
    drift = diff_reports(Report.from_dict(load(OLD)), Report.from_dict(new))
    assert [(row.case, row.kind) for row in drift.rows] == [("reduce_sum", DRIFT)]
    assert "worst rel. error 2e-07 → 2e-05 (×8e+01; rtol 0.0001)" in render_drift(drift)
    leaf["max_rel_err"] = 9e-6  # ×36 but under a tenth of rtol
    assert diff_reports(Report.from_dict(load(OLD)), Report.from_dict(new)).rows == []


def test_versions_alone_do_not_change_a_known_choice() -> None:
    old, new = load(NEW), load(NEW)
    new["versions"]["torch"] = "2.14.2"
    for row in new["comparisons"]:
        row["reason"] = row["reason"].replace("torch 2.14.1", "torch 2.14.2")
    assert diff_reports(Report.from_dict(old), Report.from_dict(new)).rows == []


@pytest.mark.parametrize("content", [None, "not json", '{"rows": []}'])
def test_a_missing_or_malformed_report_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    code, output = run_diff(OLD, path, capsys)
    assert code == 2
    assert output.strip().count("\n") == 0 and output.startswith(f"unigrad diff: {path}"), output


if __name__ == "__main__":
    write(derive_torch_2_14(load(OLD)), NEW)
    print(f"wrote {NEW}")
