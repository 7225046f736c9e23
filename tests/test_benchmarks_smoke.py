"""Smoke test of the benchmark harness (``benchmarks/``): it runs, and it compares like with like.

Tiny sizes and one or two rounds: no timing is asserted, only that every benchmark runs on the
installed backends, returns well-formed rows, and that unigrad and each native form compute the same
loss and gradients. The full benchmarks run with ``nox -s bench``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

# benchmarks/ is a top-level folder, not part of the installed package: import it from the checkout.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conftest import FRAMEWORK_BACKENDS, require  # noqa: E402

from benchmarks import cold_start, compiled, eager, memory, numpy_jit, peer, report  # noqa: E402
from benchmarks._results import Result  # noqa: E402
from benchmarks._timing import Spread, interleave, ratios  # noqa: E402
from benchmarks.workloads import build, is_installed, to_numpy_tree  # noqa: E402

SMALL = {
    "tiny": {"size": 5},
    "mlp": {"batch": 4, "sizes": (12, 6, 3)},
    "pytree": {"leaves": 7, "size": 3},
    "transformer": {"batch": 2, "seq": 5, "d_model": 8, "heads": 2, "d_ff": 16},
    "big": {"rows": 8, "hidden": 12, "batch": 3},
}


def assert_well_formed(result: Result) -> None:
    assert isinstance(result, Result)
    for text in (result.case, result.backend, result.native, result.unigrad, result.ratio, result.notes):
        assert isinstance(text, str)
    assert result.met in (True, False, None)
    if result.target:
        assert result.native != "pending", result
    for value in result.figures.values():
        assert isinstance(value, float | int) and math.isfinite(value), result


def assert_same(ours: object, theirs: object) -> None:
    ours_np, theirs_np = to_numpy_tree(ours), to_numpy_tree(theirs)
    if isinstance(ours_np, dict):
        assert set(ours_np) == set(theirs_np)
        for key in ours_np:
            np.testing.assert_allclose(ours_np[key], theirs_np[key], rtol=1e-4, atol=1e-6, err_msg=key)
    else:
        np.testing.assert_allclose(ours_np, theirs_np, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("problem", sorted(SMALL))
def test_unigrad_and_every_native_form_agree(backend: str, problem: str) -> None:
    work = build(backend, problem, **SMALL[problem])
    loss, grads = work.unigrad_step()
    assert work.natives
    for name, step in work.natives.items():
        native_loss, native_grads = step()
        np.testing.assert_allclose(to_numpy_tree(loss), to_numpy_tree(native_loss), rtol=1e-5, err_msg=name)
        assert_same(grads, native_grads)


def test_problems_give_the_same_gradients_on_every_installed_backend() -> None:
    installed = [b for b in FRAMEWORK_BACKENDS if is_installed(b)]
    if len(installed) < 2:
        pytest.skip("needs two frameworks installed to compare them")
    for problem in ("mlp", "transformer"):
        grads = [build(b, problem, **SMALL[problem]).unigrad_step()[1] for b in installed]
        for other in grads[1:]:
            ours, theirs = to_numpy_tree(grads[0]), to_numpy_tree(other)
            for key in ours:
                np.testing.assert_allclose(ours[key], theirs[key], rtol=2e-3, atol=1e-5, err_msg=key)


def test_eager_cases_return_one_row_per_backend(backend: str) -> None:
    cases = [
        eager.EagerCase(f"{problem} smoke", problem, SMALL[problem], judge, 1.0, "target")
        for problem, judge in (("tiny", "added_per_call"), ("mlp", "ratio"), ("pytree", "added_per_leaf"))
    ]
    results = eager.run((backend,), rounds=2, inner=1, selected=cases)
    assert [r.case for r in results] == [c.title for c in cases]
    for result in results:
        assert_well_formed(result)
        assert result.backend == backend and isinstance(result.met, bool)
        assert result.notes.startswith("baseline: ")
    assert "added_us_per_leaf" in results[2].figures


def test_compiled_path_matches_native_compiled(backend: str) -> None:
    if backend == "torch":
        pytest.skip("torch.compile takes tens of seconds per function: nox -s bench covers it")
    if not compiled.has_compiled_path():
        pytest.skip("ug.value_and_grad_fn does not exist in this unigrad")
    work = build(backend, "mlp", **SMALL["mlp"])
    natives = compiled.compiled_natives(work)
    loss, grads = compiled.unigrad_compiled(work)()
    for step in natives.values():
        native_loss, native_grads = step()
        np.testing.assert_allclose(to_numpy_tree(loss), to_numpy_tree(native_loss), rtol=1e-5)
        assert_same(grads, native_grads)
    result = compiled.measure(work, "compiled smoke", rounds=2, judged=True)
    assert_well_formed(result)
    assert result.target == compiled.TARGET


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_into_compiled_jax_agrees_with_native(dtype: str) -> None:
    require("jax")
    steps = numpy_jit.contenders(leaves=3, size=4, dtype=dtype)
    (native_loss, native_grads), (loss, grads) = (fn() for fn in steps.values())
    assert loss.dtype == native_loss.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss, native_loss, rtol=1e-6)
    assert type(grads) is list and all(type(g) is np.ndarray and g.dtype == dtype for g in grads)
    for got, want in zip(grads, native_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_hvp_on_numpy_agrees_with_native() -> None:
    require("jax")
    steps = numpy_jit.hvp_contenders(size=6)
    native, ours = (fn() for fn in steps.values())
    assert type(ours) is np.ndarray and ours.dtype == native.dtype == np.float64
    np.testing.assert_allclose(ours, native, rtol=1e-12)


def test_numpy_into_compiled_jax_gives_a_row_per_dtype_and_the_hvp_row() -> None:
    require("jax")
    results = numpy_jit.run(("jax",), rounds=1)
    cases = [numpy_jit.CASE.format(dtype=d) for d in numpy_jit.DTYPES] + [numpy_jit.HVP_CASE]
    assert [r.case for r in results] == cases
    for result in results:
        assert_well_formed(result)
        assert result.backend == "jax" and result.met in (True, False)
    assert numpy_jit.run(("torch",), rounds=1) == []  # not asked for: no row


def test_compiled_rows_say_pending_without_the_compiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "has_compiled_path", lambda: False)
    results = compiled.run(("torch",), rounds=1)
    assert results and all(r.native == "pending" and r.met is None for r in results)


def test_import_time_and_no_framework_imported() -> None:
    timing, own, frameworks = cold_start.import_time(rounds=1)
    assert_well_formed(timing)
    assert_well_formed(own)
    assert 0 < own.figures["own_import_ms"] < timing.figures["unigrad_s"] * 1e3
    assert_well_formed(frameworks)
    assert frameworks.unigrad == "none" and frameworks.met is True


def test_first_call_in_fresh_processes(backend: str) -> None:
    (result,) = cold_start.first_call((backend,), rounds=1)
    assert_well_formed(result)
    assert result.figures["native_s"] > 0 and result.figures["unigrad_s"] > 0


def test_peak_memory_in_fresh_processes(backend: str) -> None:
    (result,) = memory.peak_rss((backend,), repeats=1, rows=64, hidden=96)
    assert_well_formed(result)
    assert result.figures["native_bytes"] > 0 and result.figures["unigrad_bytes"] > 0


def test_zero_copy_rows(backend: str) -> None:
    if backend == "tensorflow":
        require("torch")  # TensorFlow's data pointers are read through torch.from_dlpack
    results = memory.zero_copy((backend,), size=64)
    assert len(results) == 3
    for result in results:
        assert_well_formed(result)
        assert result.unigrad in ("shared", "copied")
    assert results[2].met is True  # native params reach the loss without a copy
    if backend == "torch":
        assert all(r.met for r in results)


def test_peer_eagerpy(backend: str) -> None:
    if not is_installed("eagerpy"):
        pytest.skip("eagerpy is not installed (pip install eagerpy; nox -s bench installs it)")
    work = peer.packed_mlp(backend, batch=4)
    loss, grad = work.unigrad_step()
    ep_loss, ep_grad = peer.eagerpy_step(work)()
    np.testing.assert_allclose(to_numpy_tree(loss), to_numpy_tree(ep_loss), rtol=1e-5)
    assert_same(grad, ep_grad)
    (result,) = peer.run((backend,), rounds=1, batch=4)
    assert_well_formed(result)
    assert "eagerpy_s" in result.figures


def test_interleave_rotates_and_summarises() -> None:
    calls: list[str] = []
    times = interleave(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, inner=1, warmup=0
    )
    assert {name: len(values) for name, values in times.items()} == {"a": 3, "b": 3}
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert Spread.of([1.0, 2.0, 3.0, 4.0, 5.0]) == Spread(3.0, 2.0, 4.0)
    assert ratios([2.0, 4.0], [1.0, 2.0]).median == 2.0


def test_report_renders_every_row() -> None:
    rows = [
        Result("1. case", "torch", "1 µs", "2 µs", "2.0×", "≤ 1.05×", False, "a | b", {"ratio": 2.0}),
        Result("6. case", "-", "-", "none", "-", "none", True),
        Result("8. case", "jax", "pending", "pending", "pending", "", None, "jax not installed"),
    ]
    page = report.render(rows, {"CPU": "test"}, {"numpy": "1"}, {"mode": "quick"}, 60.0, "no GPU")
    assert page.startswith("# Benchmarks")
    assert "| 1. case | torch | 1 µs | 2 µs | 2.0× | ≤ 1.05× | **no** | a \\| b |" in page
    assert "**1 of 2 targets met.**" in page


def test_report_puts_gpu_rows_in_the_gpu_section() -> None:
    cpu_row = Result("2. MLP", "torch", "1 ms", "1 ms", "1.01×", "≤ 1.05×", True)
    gpu_row = Result("GPU: 2. MLP", "torch", "90 µs", "95 µs", "1.05×", "≤ 1.05×", True)
    without = report.render([cpu_row], {}, {}, {}, 1.0, "no GPU here")
    assert "## GPU\n\nno GPU here" in without
    page = report.render([cpu_row, gpu_row], {}, {}, {}, 1.0, "no GPU here")
    cpu_part, gpu_part = page.split("## GPU", 1)
    assert "| 2. MLP |" in cpu_part and "GPU: 2. MLP" not in cpu_part
    assert "| GPU: 2. MLP | torch |" in gpu_part and "no GPU here" not in gpu_part


def test_gpu_group_pipeline_runs_on_the_cpu_where_there_is_no_gpu() -> None:
    require("jax")  # jax.jit compiles in well under a second; torch.compile takes tens of seconds
    from benchmarks import gpu

    assert all(name in ("torch", "jax") for name in gpu.gpu_backends())
    rows = gpu.run(rounds=1, backends=["jax"], device="cpu")
    assert [row.case.split(" ", 2)[1] for row in rows] == ["2.", "4.", "5."]
    for row in rows:
        assert_well_formed(row)
        assert row.case.startswith(gpu.PREFIX) and row.backend == "jax" and row.met is not None


def test_workloads_refuse_a_gpu_tensorflow_run() -> None:
    require("tensorflow")
    with pytest.raises(ValueError, match="CPU only"):
        build("tensorflow", "tiny", device="gpu", size=3)
