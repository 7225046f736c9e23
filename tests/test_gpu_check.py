"""``ci/gpu_check.py``, the one command for a GPU machine: its CPU path here, its summary of a GPU run
from recorded pieces, and the tests it runs there (marked ``gpu``, skipped here with "no GPU")."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import is_installed, require

import unigrad as ug

ROOT = Path(__file__).resolve().parents[1]


def _load_gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "ci" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gpu_check = _load_gpu_check()


def test_quick_run_without_a_gpu_writes_the_summary_and_skips_the_gpu_steps(tmp_path: Path) -> None:
    """The whole script, smoke-sized, with the GPUs hidden (so it is the CPU path on any machine)."""
    backend = next((name for name in ("torch", "jax") if is_installed(name)), None)
    if backend is None:
        pytest.skip("neither torch nor jax is installed")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    env.pop("OUT", None)
    command = [sys.executable, "ci/gpu_check.py", "--quick", "--backends", backend, "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    summary = (tmp_path / "gpu-check.md").read_text(encoding="utf-8")
    assert summary in done.stdout  # printed and written (the same when it has at most 10 err rows)
    assert "[gpu-check] check: " in done.stdout  # progress, as each step ends
    record = json.loads((tmp_path / "gpu-check.json").read_text(encoding="utf-8"))
    steps = {step["name"]: step for step in record["steps"]}
    assert list(steps) == ["setup", "probe", "check", "tests", "bench"]
    for name in ("tests", "bench"):  # the GPU steps: skipped, with the reason, never passed
        assert (steps[name]["status"], steps[name]["detail"]) == ("skipped", "no GPU")
        assert f"| {name} | skipped (no GPU) |" in summary
    assert "GPU: no GPU." in summary and "- torch eager MLP: skipped (no GPU)" in summary
    check = steps["check"]
    assert check["status"] in ("passed", "failed") and check["seconds"] > 0
    errors = record["check"]["totals"].get("error", 0)
    assert f"- `unigrad check`: exit {check['returncode']}, {errors} err" in summary
    assert record["check"]["comparisons"] == 2 and set(record["check"]["by_device"]) == {"cpu"}
    assert "GPU columns skipped (no GPU)" in check["detail"]
    assert (tmp_path / "check.json").exists() and (tmp_path / "check.md").exists()
    assert "===== check:" in (tmp_path / "gpu-check.log").read_text(encoding="utf-8")
    assert done.returncode == (0 if check["status"] == "passed" else 1)


def test_dry_run_prints_each_step_and_runs_none(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "ci/gpu_check.py", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["setup", "probe", "check", "tests", "bench"]
    assert "-m unigrad check --no-progress --jobs" in lines[2] and "--json" in lines[2]
    assert "-m pytest -m gpu" in lines[3] and "tests/test_gpu_check.py" in lines[3]
    assert "-m benchmarks --only gpu --output" in lines[4]
    assert not (tmp_path / "gpu-check.md").exists()


BENCH_OUTPUT = """[bench] gpu ...
| case | backend | native | unigrad | ratio / added (median, IQR) | target | met? | notes |
|---|---|---|---|---|---|---|---|
| GPU: 2. MLP 784-256-10, batch 128 | torch | 101 µs | 115 µs | 1.137× (1.12-1.15) | ≤ 1.05× | **no** |  |
| GPU: 4. transformer, batch 32 | torch | 1.2 ms | 1.25 ms | 1.046× (1.03-1.06) | ≤ 1.05× | yes |  |
| GPU: 5. compiled: MLP 784-256-10, batch 128 | torch | 90 µs | 64 µs | 0.715× (0.70-0.72) | - | - |  |
| GPU: 2. MLP 784-256-10, batch 128 | jax | 80 µs | 81 µs | 1.010× (1.00-1.02) | ≤ 1.05× | yes |  |
"""


def test_the_summary_of_a_gpu_run_names_the_err_count_and_the_torch_eager_mlp_row() -> None:
    """From recorded pieces of a GPU run (a check report, the benchmark's table): what the GPU
    machine's summary shows."""
    comparisons = (
        [{"case": "mlp", "backend": "torch", "device": "cpu", "dtype": "float32", "status": "pass"}] * 3
        + [{"case": "mlp", "backend": "jax", "device": "gpu", "dtype": "float32", "status": "pass"}] * 2
        + [{"case": "eye", "backend": "torch", "device": "gpu", "dtype": "float64", "status": "error",
            "reason": "RuntimeError: Expected all tensors to be on the same device"}]
        + [{"case": "svd", "backend": "jax", "device": "gpu", "dtype": "float32", "status": "known"}]
    )  # fmt: skip
    check = gpu_check.summarize_check({"comparisons": comparisons})
    assert check["comparisons"] == 7 and check["totals"] == {"pass": 5, "error": 1, "known": 1}
    assert gpu_check.counts_text(check["by_device"]["gpu"]) == "2 pass, 1 known, 1 err"
    assert check["problems"] == [
        "eye torch/gpu/float64 error: RuntimeError: Expected all tensors to be on the same device"
    ]
    rows = gpu_check.benchmark_rows(BENCH_OUTPUT)
    assert len(rows) == 4
    mlp = gpu_check.torch_eager_mlp_row(rows)
    assert mlp.startswith("| GPU: 2. MLP") and "| torch |" in mlp and "1.137×" in mlp

    steps = [
        gpu_check.Step("setup", "pip install", "passed", 1.5, "2 wheels into /tmp/site", 0),
        gpu_check.Step("probe", "python -c", "passed", 6.0, "torch: NVIDIA H200; jax: cuda:0", 0),
        gpu_check.Step("check", "unigrad check", "failed", 85.0, "exit 1; 7 comparisons", 1),
        gpu_check.Step("tests", "pytest -m gpu", "passed", 20.0, "2 passed in 9.1s", 0),
        gpu_check.Step("bench", "benchmarks", "passed", 62.0, "4 GPU rows; torch eager MLP 1.137×", 0),
    ]
    probe = {"python": "3.12.3", "torch": "2.11.0+cu130", "torch_gpu": "NVIDIA H200", "jax_gpu": ["cuda:0"]}
    summary = gpu_check.render(steps, probe, check, rows, 175.0, 0.0, argparse.Namespace(quick=False))
    assert "GPU: torch: NVIDIA H200; jax: cuda:0." in summary
    assert "- `unigrad check`: exit 1, 1 err" in summary
    assert f"- torch eager MLP: {mlp}" in summary
    assert "| bench | passed | 62.0 s | 4 GPU rows; torch eager MLP 1.137× |" in summary
    assert "- eye torch/gpu/float64 error: RuntimeError" in summary
    assert summary.rstrip().endswith(rows[-1])


def test_the_wheels_for_the_gpu_machine_are_checked_in_and_small() -> None:
    """optree (CPython 3.12, manylinux x86-64) and array-api-compat: what the offline machine lacks."""
    wheels = sorted(path.name for path in (ROOT / "ci" / "wheels").glob("*.whl"))
    assert any(name.startswith("optree-") and "cp312" in name and "x86_64" in name for name in wheels)
    assert any(name.startswith("array_api_compat-") for name in wheels)
    assert sum(path.stat().st_size for path in (ROOT / "ci" / "wheels").glob("*.whl")) < 2_000_000


def test_pytest_counts_reads_the_last_line() -> None:
    output = "..s\n=========== 2 passed, 1 skipped in 3.10s ===========\n"
    assert gpu_check.pytest_counts(output) == "2 passed, 1 skipped in 3.10s"
    assert gpu_check.pytest_counts("..\n2 passed, 1 skipped in 3.10s\n") == "2 passed, 1 skipped in 3.10s"
    assert gpu_check.pytest_counts("3 deselected in 0.50s\n") == "3 deselected in 0.50s"


# The tests the GPU check runs on the GPU machine (``pytest -m gpu``); here they skip: no GPU.


def _squared_error(params, data):
    xp = ug.namespace(params["w"])
    residual = xp.matmul(data["x"], params["w"]) - data["y"]
    return xp.mean(residual**2)


def _closed_form(x: np.ndarray, w: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 2.0 * x.T @ (x @ w - y) / len(y)


def _problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 16)), rng.normal(size=16), rng.normal(size=64)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_gradient_on_cuda_stays_there_and_matches_the_closed_form(dtype: str) -> None:
    require("torch")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no GPU")
    x, w, y = _problem()
    to_cuda = lambda a: torch.tensor(a, dtype=getattr(torch, dtype), device="cuda")  # noqa: E731
    grads = ug.grad(_squared_error, {"w": to_cuda(w)}, {"x": to_cuda(x), "y": to_cuda(y)})
    assert grads["w"].device.type == "cuda" and grads["w"].dtype == getattr(torch, dtype)
    want = _closed_form(x, w, y)
    got = grads["w"].double().cpu().numpy()
    assert np.max(np.abs(got - want)) <= (1e-5 if dtype == "float32" else 1e-12) * np.max(np.abs(want))


@pytest.mark.gpu
def test_jax_gradient_on_the_gpu_stays_there_and_matches_the_closed_form() -> None:
    require("jax")
    import jax

    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("no GPU")
    x, w, y = _problem()  # float64 (conftest turns on JAX's 64-bit mode): no TF32-class matmul
    params = {"w": jax.device_put(w, gpu)}
    grads = ug.grad(_squared_error, params, {"x": jax.device_put(x, gpu), "y": jax.device_put(y, gpu)})
    assert grads["w"].devices() == {gpu} and grads["w"].dtype == np.float64
    want = _closed_form(x, w, y)
    assert np.max(np.abs(np.asarray(grads["w"]) - want)) <= 1e-12 * np.max(np.abs(want))
