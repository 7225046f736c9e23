"""The runner, comparisons and reports: they can fail, they explain, they are reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import require

import unigrad as ug
from unigrad.conformance import CASES, Case, KnownDifference, Report, run_case, run_conformance, select_cases
from unigrad.conformance.case import Tolerance
from unigrad.conformance.compare import compare_leaf
from unigrad.conformance.report_text import describe_failures


def test_catalogue_size_and_coverage() -> None:
    assert len(CASES) >= 80
    tags = {tag for case in CASES for tag in case.tags}
    for area in ("elementwise", "kink", "reduction", "linalg", "indexing", "loss", "model", "pytree"):
        assert area in tags, f"no case tagged {area!r}"
    assert len({c.name for c in CASES}) == len(CASES)


def test_every_known_difference_and_override_has_a_reason() -> None:
    for case in CASES:
        for difference in case.known_differences:
            assert difference.reason.strip(), case.name
        if case.tolerances:
            assert case.tolerance_reason.strip(), case.name
        if case.expected_grad is not None:
            assert case.convention.strip(), f"{case.name} has a closed form but no stated convention"


def test_inputs_are_deterministic_per_seed() -> None:
    case = select_cases(["model_*"])[0]
    first, second, other = case.make_inputs(0), case.make_inputs(0), case.make_inputs(1)
    leaves = lambda tree: [np.asarray(x) for x in ug._tree.flatten(tree)[0]]  # noqa: E731
    for a, b in zip(leaves(first), leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(leaves(first), leaves(other), strict=True))


def test_select_cases_by_name_glob_and_tag() -> None:
    assert [c.name for c in select_cases(["reduce_sum"])] == ["reduce_sum"]
    assert all(c.name.startswith("kink_") for c in select_cases(["kink_*"]))
    assert all("linalg" in c.tags for c in select_cases(["linalg"]))
    with pytest.raises(ValueError, match="no conformance case matches 'nope'"):
        select_cases(["nope"])


def test_compare_leaf_metrics() -> None:
    tol = Tolerance(rtol=1e-3, atol=0.0)
    ok = compare_leaf("w", np.array([1.0, 2.0005]), np.array([1.0, 2.0]), tol)
    assert ok.passed and ok.worst_index == (1,)
    assert ok.max_abs_err == pytest.approx(5e-4)
    bad = compare_leaf("w", np.array([1.0, np.nan]), np.array([1.0, 2.0]), tol)
    assert not bad.passed and bad.max_rel_err == np.inf
    both_nan = compare_leaf("w", np.array([np.nan]), np.array([np.nan]), tol)
    assert both_nan.passed and both_nan.max_abs_err == 0.0
    infinities = compare_leaf("w", np.array([np.inf]), np.array([np.inf]), tol)
    assert infinities.passed
    assert not compare_leaf("w", np.zeros(2), np.zeros(3), tol).passed


def _planted_loss(params: Any, data: Any) -> Any:
    xp = ug.namespace(params)
    scale = 1.01 if xp.name == "torch" else 1.0  # a backend that computes something else
    return xp.sum(params["x"] ** 2) * scale


def _planted_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"x": rng.normal(size=(3,))}, None


PLANTED = Case("planted", ("test",), _planted_loss, _planted_inputs)


def test_a_planted_disagreement_fails_with_a_precise_message() -> None:
    require("torch")
    backends = [b for b in ug.installed_backends()]
    comparisons = run_case(PLANTED, backends, {b: ["cpu"] for b in backends}, ["float64"], seed=0)
    failing = [c for c in comparisons if not c.ok]
    assert failing and all("torch" in (c.backend, c.against.split("/")[0]) for c in failing)
    message = describe_failures(failing)
    assert "planted: torch/cpu/float64 vs finite differences (reference) fail" in message
    assert "params['x']" in message and "rel err 0.01" in message


def test_a_declared_difference_is_known_not_failed() -> None:
    require("torch")
    declared = Case(
        "planted_known",
        ("test",),
        _planted_loss,
        _planted_inputs,
        known_differences=(KnownDifference(("torch",), "torch scales by 1.01 on purpose"),),
    )
    comparisons = run_case(declared, ["torch"], {"torch": ["cpu"]}, ["float64"], seed=0)
    assert [c.status for c in comparisons] == ["known"]
    assert comparisons[0].reason == "torch scales by 1.01 on purpose"


def test_report_is_deterministic_and_round_trips_json(tmp_path) -> None:
    backends = ug.installed_backends()[:1]
    runs = [
        run_conformance(cases=["reduce_sum", "kink_abs_at_zero"], backends=backends, dtypes=["float64"])
        for _ in range(2)
    ]
    assert runs[0].to_json() == runs[1].to_json()
    path = tmp_path / "report.json"
    runs[0].to_json(path)
    raw = json.loads(path.read_text())
    assert raw["cases"] == ["kink_abs_at_zero", "reduce_sum"]  # catalogue order
    assert "unigrad" in raw["versions"] and "numpy" in raw["versions"]
    restored = Report.from_dict(raw)
    assert restored.to_json() == runs[0].to_json()


def test_unknown_dtype_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown dtype"):
        run_conformance(cases=["reduce_sum"], backends=[], dtypes=["float8"])


def test_jax_placement_on_a_second_cpu_device() -> None:
    require("jax")
    code = (
        "import jax\n"
        "from unigrad.conformance import run_conformance\n"
        "from unigrad.conformance.devices import available_devices, place, device_of\n"
        "import numpy as np\n"
        "assert available_devices('jax')[:2] == ['cpu', 'cpu:1'], available_devices('jax')\n"
        "x = place('jax', np.ones(2), 'float32', 'cpu:1')\n"
        "assert device_of('jax', x) == 'cpu:1'\n"
        "import unigrad as ug\n"
        "g = ug.grad(lambda p: (p ** 2).sum(), x)\n"
        "assert device_of('jax', g) == 'cpu:1', g.devices()\n"
        "r = run_conformance(cases=['reduce_mean'], backends=['jax'], devices=['cpu:1'],"
        " dtypes=['float64'])\n"
        "assert r.devices == {'jax': ['cpu:1']} and r.ok, r.counts()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_tensorflow_placement_on_a_second_logical_cpu() -> None:
    require("tensorflow")
    code = (
        "import tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from unigrad.conformance import run_conformance\n"
        "from unigrad.conformance.devices import available_devices, place, device_of\n"
        "import numpy as np\n"
        "assert available_devices('tensorflow')[:2] == ['cpu', 'cpu:1'], available_devices('tensorflow')\n"
        "x = place('tensorflow', np.ones(2), 'float32', 'cpu:1')\n"
        "assert device_of('tensorflow', x) == 'cpu:1', x.device\n"
        "import unigrad as ug\n"
        "# TF runs eager ops on its default device; the gradient still comes back on the param's\n"
        "g = ug.grad(lambda p: tf.reduce_sum(p['x'] ** 2), {'x': x})\n"
        "assert device_of('tensorflow', g['x']) == 'cpu:1', g['x'].device\n"
        "r = run_conformance(cases=['reduce_mean', 'model_mlp_tanh', 'model_attention'],"
        " backends=['tensorflow'], devices=['cpu:1'], dtypes=['float64'], isolate=False)\n"
        "assert r.devices == {'tensorflow': ['cpu:1']} and r.ok, r.counts()\n"
        "# Worker processes do not see this process's logical devices: err rows that say so\n"
        "r = run_conformance(cases=['reduce_mean'], backends=['tensorflow'], devices=['cpu:1'],"
        " dtypes=['float64'])\n"
        "assert not r.ok and all(c.status == 'error' for c in r.comparisons), r.counts()\n"
        "assert 'isolate=False' in r.comparisons[0].reason, r.comparisons[0].reason\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_runner_leaves_global_modes_as_it_found_them() -> None:
    require("jax")
    import jax

    before = jax.config.jax_enable_x64
    with jax.enable_x64(False):
        run_conformance(cases=["reduce_sum"], backends=["jax"], dtypes=["float64"])
        assert jax.config.jax_enable_x64 is False
    assert jax.config.jax_enable_x64 == before
