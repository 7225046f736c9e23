"""The op table and the cases generated from it (unigrad.conformance.ops).

The table's bookkeeping is checked in full (every row generates its cases, every guaranteed name is
covered, the suites' sizes); the cases themselves run in ``unigrad check`` (``--suite full`` for all
of them): here only a fixed sample runs, on PyTorch and JAX in this process.
"""

from __future__ import annotations

import doctest
import importlib
import io
from contextlib import redirect_stdout

import numpy as np
import pytest
from conftest import require

from unigrad._namespace import GUARANTEED, NOT_DIFFERENTIABLE, gap_for
from unigrad.cli import main
from unigrad.conformance import CASES, TRANSFORM_CASES, Case, run_case, run_transform_case
from unigrad.conformance.devices import strict_precision
from unigrad.conformance.ops import ROWS
from unigrad.conformance.ops.generate import FULL, cases_per_row, guaranteed
from unigrad.conformance.ops.suites import in_suite
from unigrad.conformance.ops.table import FAMILIES, Op, Unavailable, unary
from unigrad.conformance.report_text import describe_failures
from unigrad.conformance.results import UNSUPPORTED
from unigrad.conformance.subgradients import valid_set_of, violations

OP_CASES = [case for case in [*CASES, *TRANSFORM_CASES] if "op" in case.tags]
BY_NAME = {case.name: case for case in OP_CASES}


def _expected_names(row: Op) -> list[str]:
    base = f"op_{row.slug}"
    names = [base + (f"_{sample.label}" if sample.label else "") for sample in row.samples]
    names += [f"{base}_{special.label}" for special in row.special]
    names += [f"{base}_jvp"] * row.jvp + [f"{base}_hvp"] * row.hvp
    return names


def test_every_row_generates_its_cases_and_nothing_else() -> None:
    active = [row for row in ROWS if guaranteed(row)]
    expected = [name for row in active for name in _expected_names(row)]
    assert len(expected) == sum(cases_per_row(row) for row in active)
    assert sorted(expected) == sorted(BY_NAME)  # row count -> case count, names unique
    assert len({row.slug for row in ROWS}) == len(ROWS)


def test_every_guaranteed_name_has_a_row_and_a_default_case() -> None:
    assert {row.name for row in ROWS} >= set(GUARANTEED)
    default = in_suite(OP_CASES, "default")
    covered = {case.name.removeprefix("op_") for case in default}
    for name in GUARANTEED:
        assert name.replace(".", "_") in covered, f"{name} has no case in the default suite"


def test_suite_sizes() -> None:
    default = in_suite(OP_CASES, "default")
    assert len(OP_CASES) >= 300  # the full suite
    # One reverse-mode case per guaranteed name, nothing else: the default run stays humane.
    assert len(default) == len(GUARANTEED)
    assert all(FULL not in case.tags and isinstance(case, Case) for case in default)
    assert len(in_suite([*CASES, *TRANSFORM_CASES], "default")) <= 300
    # jvp and hvp for most rows; special points where the derivative is a convention.
    assert sum(case.name.endswith("_jvp") for case in OP_CASES) >= 100
    assert sum(case.name.endswith("_hvp") for case in OP_CASES) >= 40
    assert sum("special" in case.tags for case in OP_CASES) >= 40


def test_cases_are_grouped_by_family_and_tagged() -> None:
    for case in OP_CASES:
        area, tag = case.tags[:2]
        assert tag == "op" and area.removeprefix("op_") in FAMILIES, case.name
    assert {case.tags[0] for case in OP_CASES} == {f"op_{family}" for family in FAMILIES}


def test_every_fft_function_has_its_gradient_compared() -> None:
    fft_names = {name for name in GUARANTEED if name.startswith("fft.")}
    compared = {row.name for row in ROWS if row.family == "fft"}
    assert compared == fft_names
    # irfft/hfft take complex half spectra whose DC (and even-length Nyquist) imaginary parts do not
    # reach the output: the reference's gradient there is 0, the convention every backend is held to.
    params, data = BY_NAME["op_fft_irfft"].make_inputs(seed=0)
    assert np.all(params["x"][:, [0, -1]].imag != 0)
    from unigrad.conformance.gradients import reference

    _, grads, _ = reference(BY_NAME["op_fft_irfft"], params, data)
    np.testing.assert_array_equal(grads["x"][:, [0, -1]].imag, 0.0)
    assert np.all(grads["x"][:, 1].imag != 0)


def test_special_points_state_a_convention_inside_their_valid_set() -> None:
    for case in OP_CASES:
        if "special" not in case.tags:
            continue
        assert case.convention.strip() and case.expected_grad is not None, case.name
        params, data = case.make_inputs(seed=0)
        valid = valid_set_of(case, (params, data))
        if valid is not None:
            assert violations(valid, case.expected_grad(params, data)) == [], case.name


def test_not_differentiable_names_are_used_where_a_loss_uses_them() -> None:
    # A predicate or creation function has no gradient of its own; its row puts it inside a loss.
    for name in NOT_DIFFERENTIABLE & set(GUARANTEED):
        (row,) = [row for row in ROWS if row.name == name]
        assert row.family in ("creation", "predicate", "fft") and not row.hvp, name


def test_a_declared_gap_is_n_a_with_its_reason() -> None:
    require("torch")
    # A full SVD of a non-square matrix: its extra columns are no function of the input (a gap
    # unigrad._namespace declares for every backend).
    assert gap_for("torch", "linalg.svd", full_matrices=True, shape=(4, 3)) is not None
    comparisons = run_case(BY_NAME["op_linalg_svd_full"], ["torch"], {"torch": ["cpu"]}, ["float64"], seed=0)
    assert [c.status for c in comparisons] == [UNSUPPORTED]
    reason = comparisons[0].reason
    assert reason.startswith("NotDifferentiableError: torch cannot differentiate linalg.svd")
    assert "orthonormal completion" in reason


def test_a_row_s_unavailable_result_is_n_a_and_others_still_run() -> None:
    require("torch")
    row = unary("exp", unavailable=(Unavailable("torch", "planted: not on torch", modes=("grad",)),))
    (case,) = [c for c in _generated(row) if c.name == "op_exp"]
    comparisons = run_case(case, ["torch"], {"torch": ["cpu"]}, ["float64", "float32"], seed=0)
    assert {c.status for c in comparisons} == {UNSUPPORTED}
    assert all("planted: not on torch" in c.reason for c in comparisons)
    (jvp,) = [c for c in _transforms(row) if c.name == "op_exp_jvp"]  # another mode: runs
    with strict_precision(["torch"]):
        results = run_transform_case(jvp, ["torch"], {"torch": ["cpu"]}, ["float64"], 0)
    assert [c.status for c in results] == ["pass"]


def _generated(row: Op) -> list[Case]:
    from unigrad.conformance.ops.generate import gradient_cases

    return gradient_cases([row])


def _transforms(row: Op) -> list[object]:
    from unigrad.conformance.ops.generate import transform_cases

    return transform_cases([row])


def test_the_suite_option_selects_the_cases() -> None:
    def listed(*args: str) -> str:
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(["check", "--list", *args]) == 0
        return out.getvalue()

    default, full = listed("--cases", "op_exp*"), listed("--cases", "op_exp*", "--suite", "full")
    assert "op_exp " in default and "op_exp_jvp" not in default and "op_expm1 " in default
    assert all(name in full for name in ("op_exp_jvp", "op_exp_hvp", "op_exp_at_inf", "op_exp_scalar"))
    assert "op_exp_jvp" in listed("--cases", "op_exp_jvp")  # a case named exactly is kept
    assert main(["check", "--list", "--suite", "nope"]) == 2


# A fixed sample: the default case of a few rows per family, special points, forward and second order.
SAMPLE = [
    "op_ones", "op_less", "op_argmax_ties", "op_exp", "op_atan2_broadcast", "op_relu_at_zero",
    "op_sqrt_at_zero", "op_maximum_ties", "op_prod_zeros", "op_max_ties", "op_logsumexp",
    "op_softmax_masked", "op_take", "op_sort_ties", "op_linalg_solve", "op_linalg_eigh",
    "op_linalg_vector_norm_at_zero", "op_fft_rfft", "op_fft_irfft", "op_tanh_jvp", "op_fft_hfft_jvp",
    "op_linalg_inv_hvp", "op_logaddexp_hvp",
]  # fmt: skip


@pytest.mark.parametrize("name", SAMPLE)
def test_a_sample_agrees_on_torch_and_jax(name: str) -> None:
    require("torch", "jax")
    case = BY_NAME[name]
    backends = ["torch", "jax"]
    devices = {backend: ["cpu"] for backend in backends}
    if isinstance(case, Case):
        comparisons = run_case(case, backends, devices, ["float64", "float32"], seed=0)
    else:
        with strict_precision(backends):
            comparisons = run_transform_case(case, backends, devices, ["float64", "float32"], 0)
    assert comparisons and {c.kind for c in comparisons} >= {"reference", "pairwise"}
    failures = [c for c in comparisons if not c.ok]
    assert not failures, describe_failures(failures)


@pytest.mark.parametrize(
    "module_name",
    [
        "unigrad.conformance.ops",
        "unigrad.conformance.ops.domains",
        "unigrad.conformance.ops.generate",
        "unigrad.conformance.ops.suites",
        "unigrad.conformance.ops.table",
        "unigrad.conformance.ops.valid",
        "unigrad.conformance.ops.rows_elementwise",
        "unigrad.conformance.ops.rows_fft",
        "unigrad.conformance.ops.rows_linalg",
        "unigrad.conformance.ops.rows_manipulation",
        "unigrad.conformance.ops.rows_reduction",
        "unigrad.conformance.ops.rows_select",
    ],
)
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
