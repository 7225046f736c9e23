"""The transform catalogue (jit, jvp, vjp, jacobian, hessian, hvp, per-example) agrees with float64 FD.

Each case is one test running every installed backend at float64 and float32, so pairwise
comparisons are included; float64 is compared with the NumPy finite-difference reference, float32 with
the same backend's float64 result. float16/bfloat16 run in the slow session
(``nox -s conformance-low-precision``).
"""

from __future__ import annotations

import pytest

import unigrad as ug
from unigrad.conformance import (
    ALL_CASE_NAMES,
    TRANSFORM_CASES,
    run_conformance,
    run_transform_case,
    select_cases,
    select_transform_cases,
)
from unigrad.conformance.report_text import describe_failures

BACKENDS = ug.installed_backends()
TRANSFORMS = ("value_and_grad_fn", "jvp", "vjp", "jacobian", "hessian", "hvp", "per_example_grads")
# The op table's jvp/hvp cases run in `unigrad check --suite full`, a sample in tests/test_op_cases.py.
NAMES = [case.name for case in TRANSFORM_CASES if "op" not in case.tags]


@pytest.mark.parametrize("name", NAMES)
def test_transform_case_agrees_at_float64_and_float32(name: str) -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    (case,) = [c for c in TRANSFORM_CASES if c.name == name]
    comparisons = run_transform_case(
        case, BACKENDS, {b: ["cpu"] for b in BACKENDS}, ("float64", "float32"), 0
    )
    kinds = {c.kind for c in comparisons}
    assert "reference" in kinds and (len(BACKENDS) < 2 or "pairwise" in kinds)
    failures = [c for c in comparisons if not c.ok]
    assert not failures, describe_failures(failures)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_transform_case_agrees_at_float16_and_bfloat16(name: str) -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    (case,) = [c for c in TRANSFORM_CASES if c.name == name]
    if "float16" not in case.dtypes:  # complex params: no complex float16 or bfloat16
        pytest.skip(f"{name} runs in {', '.join(case.dtypes)} only")
    dtypes = ("float64", "float16", "bfloat16")  # float64 is what the low precisions are held to
    comparisons = run_transform_case(case, BACKENDS, {b: ["cpu"] for b in BACKENDS}, dtypes, 0)
    assert {c.dtype for c in comparisons} == set(dtypes)
    failures = [c for c in comparisons if not c.ok]
    assert not failures, describe_failures(failures)


def test_every_transform_is_in_the_catalogue() -> None:
    assert {case.transform for case in TRANSFORM_CASES} == set(TRANSFORMS)
    assert sum(case.transform == "value_and_grad_fn" for case in TRANSFORM_CASES) >= 2
    assert set(ALL_CASE_NAMES) >= {case.name for case in TRANSFORM_CASES}
    assert len(set(ALL_CASE_NAMES)) == len(ALL_CASE_NAMES)


def test_transform_cases_are_selected_by_name_glob_and_tag() -> None:
    assert len(select_transform_cases(["transform"])) == len(TRANSFORM_CASES)
    hvp_cases = ["transform_hvp_mlp", "transform_hvp_complex_phase_retrieval"]
    assert [c.name for c in select_transform_cases(["hvp"])] == hvp_cases
    assert select_cases(["transform"]) == []  # a transform tag is a valid pattern, not an error
    with pytest.raises(ValueError, match="no conformance case matches 'nope'"):
        select_cases(["nope"])


def test_run_conformance_runs_transform_cases() -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    report = run_conformance(cases=["transform_jvp_layer"], backends=BACKENDS[:1], dtypes=["float64"])
    assert report.cases == ["transform_jvp_layer"]
    assert report.comparisons and report.ok
    assert {leaf.path.split("[")[0] for c in report.comparisons for leaf in c.leaves} == {"out", "tangent"}
