"""Kinks are judged by the subdifferential: another valid choice is `known` (with the framework's
version), a value outside the valid set fails, and the docs page records choices per version."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import types
from typing import Any

import numpy as np
import pytest
from conftest import is_installed, require

import unigrad as ug
from unigrad.conformance import CASES, Case, run_case
from unigrad.conformance.compare import compare_leaf, compare_trees
from unigrad.conformance.known_differences import (
    CHOICES_PATH,
    documented_cases,
    load_choices,
    main,
    render,
)
from unigrad.conformance.results import FAIL, KNOWN, PASS
from unigrad.conformance.subgradients import (
    framework_version,
    interval,
    judge,
    one_of,
    valid_set_of,
    violations,
)
from unigrad.conformance.tolerances import tolerance_for

BY_NAME = {case.name: case for case in CASES}
CLIP = BY_NAME["kink_clip_at_bounds"]  # x = (-1, 1, 0.5, 2, -2); bounds at elements 0 and 1
CONVENTION = np.array([1.0, 1.0, 1.0, 0.0, 0.0])


def _judge(case: Case, got: dict[str, Any], want: dict[str, Any], **context: Any) -> tuple[str, str]:
    """The judgement of float64 gradients ``got`` against ``want`` (the loss agrees)."""
    tolerance = tolerance_for("float64")
    leaves = [compare_leaf("loss", np.array(1.0), np.array(1.0), tolerance)]
    leaves += compare_trees(got, want, tolerance)
    return judge(case, context.pop("backend", "torch"), "float64", "cpu", leaves, got=got, want=want,
                 tolerance=tolerance, **context)  # fmt: skip


def _clip(*at_bounds: float) -> dict[str, np.ndarray]:
    return {"x": np.array([*at_bounds, 1.0, 0.0, 0.0])}


def test_every_convention_lies_in_its_valid_set() -> None:
    stated = [case for case in CASES if case.valid_grads is not None]
    assert {c.name for c in stated} >= {c.name for c in CASES if c.name.startswith("kink_")}
    for case in stated:
        params, data = case.make_inputs(seed=0)
        valid = valid_set_of(case, (params, data))
        assert violations(valid, case.expected_grad(params, data)) == [], case.name


def test_the_convention_passes() -> None:
    assert _judge(CLIP, _clip(1.0, 1.0), {"x": CONVENTION}) == (PASS, "")


@pytest.mark.parametrize("choice", [0.0, 0.5, 0.25])
def test_a_new_release_moving_to_another_valid_value_stays_green(choice: float) -> None:
    status, reason = _judge(CLIP, _clip(choice, choice), {"x": CONVENTION}, versions={"torch": "9.9.9"})
    assert status == KNOWN
    value = f"{choice:.6g}"
    assert reason == f"torch 9.9.9: {value} at params['x'][0], params['x'][1] (convention 1; valid: [0, 1])"
    # Within tolerance of a bound is inside.
    assert _judge(CLIP, _clip(-1e-12, 1 + 1e-12), {"x": CONVENTION})[0] == KNOWN


def test_a_release_leaving_the_subdifferential_fails() -> None:
    for outside in (2.0, -0.5, np.nan, np.inf):
        status, reason = _judge(CLIP, _clip(outside, 1.0), {"x": CONVENTION}, versions={"torch": "9.9.9"})
        assert status == FAIL, outside
        assert "torch 9.9.9 is outside the valid set" in reason
        assert "at params['x'][0] (valid: [0, 1])" in reason
    # Away from the bounds only the ordinary derivative is valid.
    status, reason = _judge(CLIP, {"x": np.array([1.0, 1.0, 0.5, 0.0, 0.0])}, {"x": CONVENTION})
    assert status == FAIL and "0.5 at params['x'][2] (valid: only 1)" in reason


def test_pairwise_names_both_backends_and_versions() -> None:
    status, reason = _judge(
        CLIP, _clip(0.0, 0.0), _clip(0.5, 0.5), other_backend="jax",
        versions={"torch": "2.14.1", "jax": "0.10.2"},
    )  # fmt: skip
    assert status == KNOWN
    assert reason == "torch 2.14.1: 0 at params['x'][0], params['x'][1] (jax 0.10.2: 0.5; valid: [0, 1])"
    # The other side outside the set is not rescued by this side being inside.
    status, _ = _judge(CLIP, _clip(0.0, 0.0), _clip(3.0, 3.0), other_backend="jax", versions={"jax": "1"})
    assert status == FAIL


def test_a_disagreeing_loss_is_never_rescued_by_the_valid_set() -> None:
    tolerance = tolerance_for("float64")
    leaves = [compare_leaf("loss", np.array(2.0), np.array(1.0), tolerance)]
    leaves += compare_trees(_clip(0.0, 0.0), {"x": CONVENTION}, tolerance)
    status, _ = judge(CLIP, "torch", "float64", "cpu", leaves, got=_clip(0.0, 0.0), want={"x": CONVENTION})
    assert status == FAIL


def test_ties_share_one_unit_of_gradient() -> None:
    maximum = BY_NAME["kink_maximum_tie"]  # ties at elements 0 and 1
    convention = {"x": np.array([0.5, 0.5, 0, 0]), "y": np.array([0.5, 0.5, 1, 1])}
    one_and_zero = {"x": np.array([1.0, 1, 0, 0]), "y": np.array([0.0, 0, 1, 1])}  # tf.maximum
    assert _judge(maximum, one_and_zero, convention, backend="tensorflow")[0] == KNOWN
    both_full = {"x": np.array([1.0, 1, 0, 0]), "y": np.array([1.0, 1, 1, 1])}  # each side in [0, 1]
    status, reason = _judge(maximum, both_full, convention, backend="tensorflow")
    assert status == FAIL and "tied elements sum to 2 (valid: 1)" in reason
    max_ties = BY_NAME["kink_max_ties"]  # x = (1, 3, 3, -2)
    assert _judge(max_ties, {"x": np.array([0, 1.0, 0, 0])}, {"x": np.array([0, 0.5, 0.5, 0])})[0] == KNOWN
    assert _judge(max_ties, {"x": np.array([0, 1.0, 1, 0])}, {"x": np.array([0, 0.5, 0.5, 0])})[0] == FAIL


def test_the_norm_at_zero_takes_the_unit_ball_and_not_nan() -> None:
    norm = BY_NAME["kink_norm_at_zero"]
    want = {"x": np.zeros(3), "y": np.ones(2)}
    assert _judge(norm, {"x": np.array([0.6, 0.8, 0]), "y": np.ones(2)}, want)[0] == KNOWN
    status, reason = _judge(norm, {"x": np.array([1.0, 1, 0]), "y": np.ones(2)}, want)  # in the box only
    assert status == FAIL and "norm 1.41421 (valid: at most 1)" in reason
    status, reason = _judge(norm, {"x": np.full(3, np.nan), "y": np.ones(2)}, want, backend="jax")
    assert status == KNOWN and "0 / 0 = nan" in reason  # the declared difference, not the valid set


def test_valid_set_builders_describe_themselves() -> None:
    assert one_of(-1.0, 1.0).describe(()) == "{-1, 1}"
    assert interval(0.0, np.array([0.0, 1.0])).describe((1,), (2,)) == "[0, 1]"
    assert violations({"x": one_of(np.inf)}, {"x": np.array([np.inf])}) == []
    with pytest.raises(ValueError, match="empty or nan interval"):
        interval(1.0, 0.0)


def test_without_inputs_the_valid_set_needs_seed_independent_inputs() -> None:
    assert valid_set_of(CLIP) is not None
    random_points = Case(
        "random_clip",
        ("test",),
        CLIP.loss,
        lambda rng: ({"x": rng.normal(size=3)}, None),
        valid_grads=lambda p, d: {"x": interval(np.abs(p["x"]) < 1, np.abs(p["x"]) <= 1)},
    )
    assert valid_set_of(random_points) is None
    assert valid_set_of(random_points, random_points.make_inputs(3)) is not None


def test_framework_version_reads_the_module_then_the_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(__version__="0.0.1"))
    assert framework_version("jax") == "0.0.1"
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)

    def version(distribution: str) -> str:
        if distribution == "tensorflow-cpu":
            return "2.21.0"
        raise importlib.metadata.PackageNotFoundError(distribution)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert framework_version("tensorflow") == "2.21.0"
    assert framework_version("torch") == "(version unknown)"


def test_framework_version_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from unigrad.conformance.subgradients import framework_version\n"
        "versions = [framework_version(b) for b in ('torch', 'tensorflow', 'jax')]\n"
        "assert not {'torch', 'tensorflow', 'jax'} & set(sys.modules), sorted(sys.modules)\n"
        "print(versions)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def _clip_case(name: str, convention: float, valid_at_bounds: tuple[float, float]) -> Case:
    """The clip case with another stated convention and valid set at the bounds (what a backend returns
    there is what it returns: only the statement changes)."""
    lo, hi = valid_at_bounds
    return Case(
        name,
        ("test",),
        CLIP.loss,
        CLIP.inputs,
        expected_grad=lambda p, d: {"x": np.where(np.abs(p["x"]) == 1, convention, np.abs(p["x"]) < 1)},
        convention=f"clip at a bound: {convention}",
        valid_grads=lambda p, d: {
            "x": interval(np.where(np.abs(p["x"]) == 1, lo, np.abs(p["x"]) < 1),
                          np.where(np.abs(p["x"]) == 1, hi, np.abs(p["x"]) < 1))
        },
    )  # fmt: skip


def test_run_case_reports_another_valid_choice_as_known_with_the_version(backend: str) -> None:
    # No framework returns 0.25 at a bound: every backend departs from this convention, validly.
    case = _clip_case("clip_convention_quarter", 0.25, (0.0, 1.0))
    (comparison,) = run_case(case, [backend], {backend: ["cpu"]}, ["float64"], seed=0)
    assert comparison.status == KNOWN, comparison
    assert comparison.reason.startswith(f"{backend} {framework_version(backend)}: ")
    assert "at params['x'][0], params['x'][1] (convention 0.25; valid: [0, 1])" in comparison.reason


def test_run_case_fails_a_choice_outside_the_stated_set(backend: str) -> None:
    # Every framework returns 0, 1/2 or 1 at a bound; a set that excludes them must turn red.
    case = _clip_case("clip_valid_only_a_quarter", 0.25, (0.2, 0.3))
    (comparison,) = run_case(case, [backend], {backend: ["cpu"]}, ["float64"], seed=0)
    assert comparison.status == FAIL, comparison
    assert f"{backend} {framework_version(backend)} is outside the valid set" in comparison.reason


def _synthetic_clip_choices() -> dict[str, Any]:
    params, _ = CLIP.make_inputs(seed=0)
    return {
        CLIP.name: {
            "inputs": {"params['x']": params["x"].tolist()},
            "grads": {
                "torch": {
                    "2.13.0": {"params['x']": [1.0, 1.0, 1.0, 0.0, 0.0]},
                    "2.14.1": {"params['x']": [0.0, 0.0, 1.0, 0.0, 0.0]},
                },
                "jax": {"0.10.2": {"params['x']": [0.5, 0.5, 1.0, 0.0, 0.0]}},
                "tensorflow": {"2.21.0": {"params['x']": ["nan", 1.0, 1.0, 0.0, 0.0]}},
            },
        }
    }


def test_the_page_shows_versions_and_changes_between_them() -> None:
    page = render(_synthetic_clip_choices())
    assert "measured with torch 2.14.1 and 2.13.0, tensorflow 2.21.0, jax 0.10.2" in page
    assert "| valid | convention | torch 2.14.1 | tensorflow 2.21.0 | jax 0.10.2 |" in page
    assert "**torch** changed its choice: 2.14.1: 0 at `params['x'][0]`, `params['x'][1]`; 2.13.0: 1" in page
    assert "| `params['x'][0]` | -1 | [0, 1] | 1 | **0** | **nan**† | **0.5** |" in page
    assert "## Troubleshooting" in page and "segmentation fault" in page and "import torch._inductor" in page
    assert "## `kink_relu_at_zero`" not in page  # nothing recorded for it


def test_the_generator_keeps_other_backends_and_versions(tmp_path) -> None:
    installed = [b for b in ("jax", "torch", "tensorflow") if is_installed(b)]
    if not installed:
        require("torch")  # skips with the reason
    backend = installed[0]
    choices_path, page_path = tmp_path / "choices.json", tmp_path / "page.md"
    seeded = _synthetic_clip_choices()
    seeded[CLIP.name]["grads"] = {"otherfw": {"1.0": {"params['x']": [0.5, 0.5, 1.0, 0.0, 0.0]}}}
    seeded[CLIP.name]["grads"][backend] = {"0.0.1": {"params['x']": [0.25, 0.25, 1.0, 0.0, 0.0]}}
    choices_path.write_text(json.dumps(seeded))
    main([str(page_path), "--backends", backend, "--choices", str(choices_path)])
    recorded = load_choices(choices_path)
    version = framework_version(backend).split("+")[0]
    assert set(recorded[CLIP.name]["grads"][backend]) == {"0.0.1", version}
    assert "otherfw" in recorded[CLIP.name]["grads"]
    assert {case.name for case in documented_cases()} == set(recorded)
    page = page_path.read_text()
    assert f"{backend} {version}" in page and f"**{backend}** changed its choice" in page
    assert "; 0.0.1: 0.25" in page


def test_the_shipped_choices_match_the_catalogue() -> None:
    recorded = load_choices(CHOICES_PATH)
    assert set(recorded) == {case.name for case in documented_cases()}
    for case in documented_cases():
        params, _ = case.make_inputs(seed=0)
        stored = recorded[case.name]["inputs"]
        for path, leaf in zip(ug._tree.leaf_paths(params), ug._tree.flatten(params)[0], strict=True):
            np.testing.assert_array_equal(np.asarray(stored[path]), leaf, err_msg=f"{case.name} {path}")
