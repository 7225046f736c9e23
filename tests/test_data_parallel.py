"""The data-parallel step in one process, and on several devices of one worker process (fast forms).

Multi-process runs are in tests/test_data_parallel_distributed.py (marked ``distributed`` and ``slow``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import require
from data_parallel_losses import logistic_losses, logistic_problem, mean_loss, mlp_losses, mlp_problem

import unigrad as ug
from unigrad.backends import backend_name_of, get_adapter
from unigrad.distributed._batch import uneven_sizes
from unigrad.distributed._launch import importable_name
from unigrad.testing import assert_data_parallel_matches

FAST_TORCH = {"backend": "aot_eager"}  # torch.compile without Inductor's C++ build (as test_compiled)
RTOL = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture(params=["torch", "tensorflow", "jax"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backends with a distributed engine (conftest's fixture also yields ones without)."""
    require(request.param)
    return request.param


def _options(backend: str) -> dict:
    return FAST_TORCH if backend == "torch" else {}


def _half(backend: str, values: np.ndarray, dtype: str) -> object:
    """float32 ``values`` as a 16-bit array of ``backend`` (NumPy has no bfloat16 of its own)."""
    if backend == "torch":
        import torch

        return torch.from_numpy(np.asarray(values)).to(getattr(torch, dtype))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.cast(tf.constant(values), dtype)
    import jax.numpy as jnp

    return jnp.asarray(values, dtype=dtype)


def _max_rel_error(got: dict, want: dict) -> float:
    errors = []
    for key in want:
        g, w = np.asarray(got[key], np.float64), np.asarray(want[key], np.float64)
        errors.append(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-300))
    return float(max(errors))


def _reference(params: dict, batch: dict, backend: str) -> tuple[float, dict]:
    def mean(p: dict, b: dict):
        losses = mlp_losses(p, b)
        return ug.namespace(losses).mean(losses)

    loss, grads = ug.value_and_grad(mean, params, batch, backend=backend)
    return float(loss), grads


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_one_process_equals_full_batch_mean(backend: str, dtype: str, jit: bool) -> None:
    """Without a distributed setup the step is the single-process mean (PyTorch: no process group;
    JAX: the test process's one device; TensorFlow: MirroredStrategy over its CPU)."""
    params, batch = mlp_problem(dtype)
    step = ug.data_parallel_value_and_grad_fn(
        mlp_losses, backend=backend, jit=jit, jit_options=_options(backend)
    )
    loss, grads = step(params, batch)
    loss, grads = step(params, batch)
    ref_loss, ref_grads = _reference(params, batch, backend)
    assert abs(float(loss) - ref_loss) <= RTOL[dtype] * abs(ref_loss)
    assert _max_rel_error(grads, ref_grads) <= RTOL[dtype]
    assert {k: np.asarray(v).dtype for k, v in grads.items()} == {k: v.dtype for k, v in params.items()}
    if jit:
        assert step.cache_size == 1  # the second call reused the compiled step


def test_native_params_get_native_grads(backend: str) -> None:
    require(backend)
    params, batch = logistic_problem()
    adapter = get_adapter(backend)
    native = {k: adapter.from_numpy(v) for k, v in params.items()}
    loss, grads = ug.data_parallel_value_and_grad_fn(logistic_losses)(native, batch)
    assert backend_name_of(grads["w"]) == backend and backend_name_of(loss) == backend


def test_a_mean_loss_is_refused_with_a_typed_error(backend: str) -> None:
    params, batch = mlp_problem()
    step = ug.data_parallel_value_and_grad_fn(mean_loss, backend=backend)
    with pytest.raises(ug.PerExampleLossError, match=r"shape \(7,\)") as info:
        step(params, batch)
    assert isinstance(info.value, ug.InvalidLossError) and backend in str(info.value)


def test_a_bad_loss_is_refused_after_good_steps_of_the_same_dtype(backend: str) -> None:
    """The per-example check remembers what passed; a later loss of the same type and dtype but the
    wrong shape is still refused (eager: the check runs on every call)."""
    params, batch = mlp_problem()
    good = ug.data_parallel_value_and_grad_fn(mlp_losses, backend=backend)
    good(params, batch)
    good(params, batch)
    bad = ug.data_parallel_value_and_grad_fn(mean_loss, backend=backend)
    with pytest.raises(ug.PerExampleLossError, match=r"shape \(7,\)"):
        bad(params, batch)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("jit", [False, True])
def test_16_bit_losses_over_more_examples_than_float16_can_count(backend: str, dtype: str, jit: bool) -> None:
    """70,000 examples: float16 holds no such count (it ends at 65,504), so the mean is taken in
    float32, as jnp.mean does; dividing in float16 gave a loss and gradient of 0 (JAX, TensorFlow),
    and the sum of 70,000 per-example gradients was inf before its division (torch)."""
    x = np.random.default_rng(0).normal(size=70_000).astype("float32")
    w, b = _half(backend, np.float32(0.5), dtype), _half(backend, x, dtype)
    step = ug.data_parallel_value_and_grad_fn(
        lambda w, b: (b * w) ** 2, jit=jit, jit_options=_options(backend)
    )
    loss, grad = step(w, b)
    np.testing.assert_allclose(float(loss), np.mean((0.5 * x) ** 2), rtol=1e-2)
    np.testing.assert_allclose(float(grad), np.mean(x * x), rtol=1e-2)


def test_batch_leaves_must_agree_on_the_number_of_examples() -> None:
    require("torch")
    params, batch = mlp_problem()
    batch["y"] = batch["y"][:5]
    with pytest.raises(ug.StructureMismatchError, match=r"batch\['y'\] has 5"):
        ug.data_parallel_value_and_grad_fn(mlp_losses, backend="torch")(params, batch)


def test_has_aux_returns_this_process_aux() -> None:
    require("torch")
    params, batch = mlp_problem()

    def with_aux(p: dict, b: dict):
        losses = mlp_losses(p, b)
        return losses, {"first": losses[0]}

    (loss, aux), _ = ug.data_parallel_value_and_grad_fn(with_aux, backend="torch", has_aux=True)(
        params, batch
    )
    assert float(aux["first"]) == pytest.approx(float(mlp_losses(params, batch)[0]))
    assert float(loss) == pytest.approx(float(np.mean(mlp_losses(params, batch))))


def test_uneven_sizes_are_uneven() -> None:
    assert uneven_sizes(7, 2) == [4, 3]
    assert uneven_sizes(8, 2) == [5, 3]
    assert sum(uneven_sizes(10, 4)) == 10
    with pytest.raises(ug.StructureMismatchError, match="at least 3"):
        uneven_sizes(2, 2)


def test_lambdas_closures_and_main_cannot_be_sent_to_workers() -> None:
    def closure(p: dict, b: dict):
        return mlp_losses(p, b)

    for fn in (lambda p, b: mlp_losses(p, b), closure):
        with pytest.raises(ug.NotImportableError, match="top level of an importable module"):
            importable_name(fn)
    assert importable_name(mlp_losses) == "data_parallel_losses:mlp_losses"
    with pytest.raises(ug.NotImportableError, match="cannot import"):
        importable_name("data_parallel_losses:no_such_loss")


# -- several devices of one worker process (the single-process multi-device forms) -------------------
@pytest.mark.parametrize(
    ("backend", "dtype", "jit", "world_size"),
    [
        ("jax", "float64", False, 4),  # 4 devices: a gradient N times too large would show here
        ("jax", "float32", True, 2),
        ("tensorflow", "float64", True, 2),
        ("tensorflow", "float32", False, 3),
    ],
)
def test_devices_of_one_process_equal_one_device(
    backend: str, dtype: str, jit: bool, world_size: int
) -> None:
    require(backend)
    params, batch = mlp_problem(dtype, examples=7)  # 7 examples: no device count divides them
    start = time.perf_counter()
    results = assert_data_parallel_matches(
        "data_parallel_losses:mlp_losses", params, batch, backend=backend, world_size=world_size,
        launches=["devices"], jit=jit,
    )  # fmt: skip
    print(f"{backend} devices={world_size} {dtype} jit={jit}: max rel error "
          f"{max(r.max_rel_error for r in results):.2e} in {time.perf_counter() - start:.1f} s")  # fmt: skip
    assert results[0].examples == 7


def test_a_wrong_gradient_names_the_worker_and_the_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The assertion's message, from a result made wrong after the run."""
    from unigrad.distributed import _launch

    real_compare = _launch._compare

    def doubled(results, params, launch):
        results[-1]["grads"]["w2"] = results[-1]["grads"]["w2"] * 2
        return real_compare(results, params, launch)

    monkeypatch.setattr(_launch, "_compare", doubled)
    require("jax")
    params, batch = mlp_problem()
    with pytest.raises(
        AssertionError, match=r"worker 0 \(7 examples\) of launch 'devices': grads of params\['w2'\]"
    ):
        assert_data_parallel_matches(mlp_losses, params, batch, backend="jax", launches=["devices"])


def test_unigrad_check_world_size_runs_the_data_parallel_cases(capsys: pytest.CaptureFixture[str]) -> None:
    require("torch")
    from unigrad.cli import main

    code = main(
        ["check", "--world-size", "2", "--backends", "torch", "--cases", "dp_mlp", "--dtypes", "float64"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dp_mlp                   float64  shards 4/3" in out and "1 of 1 agree with one process" in out


def test_a_compiled_step_reads_each_new_batch(backend: str) -> None:
    """Same shapes, new values: the compiled step must not have kept the first batch as a constant."""
    params, first = mlp_problem("float64", seed=0)
    _, second = mlp_problem("float64", seed=1)
    step = ug.data_parallel_value_and_grad_fn(
        mlp_losses, backend=backend, jit=True, jit_options=_options(backend)
    )
    step(params, first)
    loss, grads = step(params, second)
    ref_loss, ref_grads = _reference(params, second, backend)
    assert abs(float(loss) - ref_loss) <= 1e-12 * abs(ref_loss)
    assert _max_rel_error(grads, ref_grads) <= 1e-12
    assert step.cache_size == 1


def test_torch_buckets_split_and_restore_every_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a real (one-process) gloo group, with buckets of 16 bytes: many all-reduce calls per
    dtype, and every leaf comes back with its shape, dtype and values."""
    require("torch")
    import torch
    import torch.distributed as dist

    from unigrad.distributed import _torch

    monkeypatch.setattr(_torch, "BUCKET_BYTES", 16)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        leaves = [torch.arange(6.0).reshape(2, 3), torch.ones(5, dtype=torch.float64), torch.tensor(2.5)]
        calls = []
        real = dist.all_reduce
        monkeypatch.setattr(dist, "all_reduce", lambda t, **kw: calls.append(t.numel()) or real(t, **kw))
        buffers, reduced = _torch.flat_buffers(leaves)
        _torch.all_reduce_buffers(buffers, group=None)
    finally:
        dist.destroy_process_group()
    assert [(r.shape, r.dtype) for r in reduced] == [(x.shape, x.dtype) for x in leaves]
    assert all(torch.equal(r, x) for r, x in zip(reduced, leaves, strict=True))
    assert calls == [4, 3, 2, 2, 1]  # float32: 7 elements in 4s; float64: 5 in 2s


def test_torch_division_by_the_count_keeps_16_bit_gradients_exact() -> None:
    """The count is divided out in float32 for a bfloat16 buffer: bfloat16 itself rounds 100,000
    to 99,840, which would scale every gradient by 1.0016."""
    require("torch")
    import torch

    from unigrad.distributed import _torch

    count = torch.tensor(100_000.0, dtype=torch.float64)
    for dtype in (torch.bfloat16, torch.float16, torch.float32, torch.float64):
        flat = torch.arange(1.0, 200.0).to(dtype)
        expected = (flat.double() / 100_000).to(dtype)
        _torch._divide(flat, count)
        assert flat.dtype == dtype and torch.equal(flat, expected), dtype
    # what dividing in bfloat16 would give: a third of these values differ
    values = torch.arange(1.0, 200.0).to(torch.bfloat16)
    assert not torch.equal(values / count.to(torch.bfloat16), (values.double() / 100_000).to(torch.bfloat16))


def test_torch_flat_buffer_views_see_the_reduction_in_place() -> None:
    """The views handed back are the buffer's: what the all-reduce writes there is what they hold."""
    require("torch")
    import torch

    from unigrad.distributed import _torch

    leaves = [torch.ones(2, 3), torch.arange(4.0, dtype=torch.float64), torch.tensor([7.0])]
    buffers, views = _torch.flat_buffers(leaves)
    assert [b.dtype for b in buffers] == [torch.float32, torch.float64]
    for flat in buffers:
        flat.mul_(2)  # what a SUM over two identical processes does
    assert [(v.shape, v.dtype) for v in views] == [(x.shape, x.dtype) for x in leaves]
    assert all(torch.equal(v, 2 * x) for v, x in zip(views, leaves, strict=True))
    # the inputs are untouched, the float64 one alone in its buffer included
    assert torch.equal(leaves[0], torch.ones(2, 3)) and torch.equal(leaves[1], torch.arange(4.0).double())


def test_torch_collective_path_in_one_process_equals_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole collective path (flat buffer, count at its head, one division) through a real gloo
    group of one process: the mean loss and its gradient, and a loss that owns its memory."""
    require("torch")
    import torch
    import torch.distributed as dist

    from unigrad.distributed import _torch

    params_np, batch_np = mlp_problem("float64")
    params = {k: torch.from_numpy(v) for k, v in params_np.items()}
    batch = {k: torch.from_numpy(v) for k, v in batch_np.items()}
    expected_loss, expected = ug.value_and_grad(lambda p, b: mlp_losses(p, b).mean(), params, batch)
    monkeypatch.setattr(_torch, "_world", lambda group: 2)  # take the collective path in a world of one
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        loss, grads = ug.data_parallel_value_and_grad_fn(mlp_losses)(params, batch)
    finally:
        dist.destroy_process_group()
    assert torch.allclose(loss, expected_loss, rtol=1e-13, atol=0)
    for name, grad in grads.items():
        assert grad.dtype == torch.float64 and torch.allclose(grad, expected[name], rtol=1e-12, atol=0)
        assert loss.untyped_storage().data_ptr() != grad.untyped_storage().data_ptr(), name


def test_torch_float16_collective_path_differentiates_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    """float16 params through a real gloo group of one (the collective path): the count is summed
    first and the mean differentiated, so 70,000 examples give finite, right gradients."""
    require("torch")
    import torch
    import torch.distributed as dist

    from unigrad.distributed import _torch

    x = np.random.default_rng(0).normal(size=70_000).astype("float32")
    w, b = torch.tensor(0.5, dtype=torch.float16), torch.from_numpy(x).half()
    monkeypatch.setattr(_torch, "_world", lambda group: 2)  # take the collective path in a world of one
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        loss, grad = ug.data_parallel_value_and_grad_fn(lambda w, b: (b * w) ** 2)(w, b)
    finally:
        dist.destroy_process_group()
    assert loss.dtype == grad.dtype == torch.float16
    np.testing.assert_allclose(float(loss), np.mean((0.5 * x) ** 2), rtol=1e-2)
    np.testing.assert_allclose(float(grad), np.mean(x * x), rtol=1e-2)


def test_benchmark_section_is_replaced_in_place_and_kept_by_the_main_benchmark(tmp_path) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
    from benchmarks.__main__ import _keep_data_parallel_section
    from benchmarks.data_parallel import replace_section

    page = replace_section("# page\n\ntext\n", "## old\n")
    page = replace_section(page, "## new\n")
    assert page.count("data-parallel:begin") == 1 and "## new" in page and "## old" not in page
    path = tmp_path / "benchmarks.md"
    path.write_text(page)
    regenerated = _keep_data_parallel_section(path, "# regenerated\n")
    assert regenerated.startswith("# regenerated\n") and "## new\n<!-- data-parallel:end -->" in regenerated


def test_benchmark_rows_give_the_median_ratio_with_its_confidence_interval() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
    from benchmarks.data_parallel import render

    ratios = [1.0 + 0.001 * i for i in range(101)]  # median 1.05; its 95% interval 1.040-1.061
    times = {"unigrad": [r * 1e-3 for r in ratios], "native": [1e-3] * 101}
    page = render({"torch": {"times": times, "max_abs_diff": 0.0}}, rounds=101, inner=1, note="a note")
    row = next(line for line in page.splitlines() if line.startswith("| PyTorch"))
    assert "| 1.050× | 1.040–1.061 | 1.025–1.075 |" in row
    assert "a note" in page


def test_float64_numpy_on_jax_stays_float64_without_global_x64() -> None:
    """Regression: with jax_enable_x64 off, the step computed in float32 and returned float64 arrays
    (the params were converted in unigrad's float64 scope, the step ran outside it)."""
    require("jax")
    import jax

    params, batch = mlp_problem("float64")
    with jax.enable_x64(True):  # the reference: one process, 64-bit mode explicitly on (JAX alone)
        ref_loss, ref_grads = _reference(params, batch, "jax")
    enabled = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    try:
        for jit in (False, True):
            loss, grads = ug.data_parallel_value_and_grad_fn(mlp_losses, backend="jax", jit=jit)(
                params, batch
            )
            assert grads["w1"].dtype == np.float64
            assert abs(float(loss) - ref_loss) <= 1e-12 * abs(ref_loss)
            assert _max_rel_error(grads, ref_grads) <= 1e-12
    finally:
        jax.config.update("jax_enable_x64", enabled)
