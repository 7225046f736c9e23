"""float64 NumPy on JAX without the global flag: unigrad scopes JAX's x64 mode to the call and thread.

conftest.py turns ``jax_enable_x64`` on for the whole test process; every test here turns it off
first (``x64_off``) and checks that it is still off afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import require

EXACT = 1e-12  # float64 results against a closed form: only rounding differs


@pytest.fixture
def x64_off() -> Iterator[None]:
    require("jax")
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
        assert jax.config.jax_enable_x64 is False, "a unigrad call left JAX's x64 mode changed"
    finally:
        jax.config.update("jax_enable_x64", before)


def loss_fn(params: dict, data: np.ndarray) -> object:
    xp = ug.namespace(params["w"])
    return xp.sum(xp.sin(params["w"]) * data) ** 2 + xp.sum(params["b"] ** 3)


def closed_form(params: dict, data: np.ndarray) -> dict:
    inner = np.sum(np.sin(params["w"]) * data)
    return {"w": 2 * inner * np.cos(params["w"]) * data, "b": 3 * params["b"] ** 2}


def make_inputs(seed: int = 0) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Values that float32 cannot hold: a float32 computation would be off by ~1e-8.
    params = {"w": rng.normal(size=5) + 1e-9, "b": rng.normal(size=3)}
    return params, rng.normal(size=5)


def assert_float64_close(got: dict, want: dict) -> None:
    for key, value in want.items():
        assert isinstance(got[key], np.ndarray) and got[key].dtype == np.float64, (key, type(got[key]))
        np.testing.assert_allclose(got[key], value, rtol=EXACT, atol=EXACT)


def test_grad_float64_numpy_on_jax_keeps_float64(x64_off: None) -> None:
    params, data = make_inputs()
    loss, grads = ug.value_and_grad(loss_fn, params, data, backend="jax")
    assert_float64_close(grads, closed_form(params, data))
    assert np.asarray(loss).dtype == np.float64


def test_float64_data_and_integer_data_keep_their_dtypes(x64_off: None) -> None:
    seen = {}

    def loss(p: object, d: dict) -> object:
        seen["x"], seen["labels"] = str(d["x"].dtype), str(d["labels"].dtype)
        return (p * d["x"]).sum() * d["labels"].sum()

    data = {"x": np.arange(3.0), "labels": np.arange(3, dtype=np.int64)}
    ug.grad(loss, np.ones(3), data, backend="jax")
    assert seen == {"x": "float64", "labels": "int64"}


def test_from_eight_threads_at_once(x64_off: None) -> None:
    import jax
    import jax.numpy as jnp

    results: dict[int, object] = {}
    start = threading.Barrier(9)

    def scoped_worker(seed: int) -> None:
        params, data = make_inputs(seed)
        start.wait()
        for _ in range(5):
            grads = ug.grad(loss_fn, params, data, backend="jax")
        results[seed] = (grads, closed_form(params, data))

    def native_worker() -> None:  # a thread of its own: JAX float32 arrays, x64 never on here
        params = {"w": jnp.ones(5), "b": jnp.ones(3)}
        start.wait()
        for _ in range(5):
            grads = ug.grad(loss_fn, params, jnp.ones(5))
            assert not jax.config.jax_enable_x64
        results[-1] = grads

    threads = [threading.Thread(target=scoped_worker, args=(seed,)) for seed in range(8)]
    threads.append(threading.Thread(target=native_worker))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 9
    for seed in range(8):
        grads, want = results[seed]
        assert_float64_close(grads, want)
    assert all(leaf.dtype == jnp.float32 for leaf in results[-1].values())


def test_transforms_keep_float64(x64_off: None) -> None:
    x, v = np.array([0.3, -1.2, 2.0]) + 1e-9, np.array([1.0, 0.5, -2.0])

    def cubic(p: object) -> object:
        return ug.namespace(p).sum(p**3)

    def square(p: object) -> object:
        return p**2

    out, tangent = ug.jvp(square, x, v, backend="jax")
    np.testing.assert_allclose(tangent, 2 * x * v, rtol=EXACT)
    out, pulled = ug.vjp(square, x, v, backend="jax")
    np.testing.assert_allclose(pulled, 2 * x * v, rtol=EXACT)
    np.testing.assert_allclose(ug.jacobian(square, x, backend="jax"), np.diag(2 * x), rtol=EXACT)
    np.testing.assert_allclose(ug.hessian(cubic, x, backend="jax"), np.diag(6 * x), rtol=EXACT)
    np.testing.assert_allclose(ug.hvp(cubic, x, v, backend="jax"), 6 * x * v, rtol=EXACT)
    batch = np.stack([x, 2 * x])
    per_example = ug.per_example_grads(lambda p, e: ug.namespace(p).sum(p * e) ** 2, x, batch, backend="jax")
    np.testing.assert_allclose(per_example, [2 * (x @ e) * e for e in batch], rtol=EXACT)
    for result in (out, tangent, pulled, per_example):
        assert result.dtype == np.float64


def test_compiled_step_traces_once(x64_off: None) -> None:
    traces = []

    def counted(p: dict, d: np.ndarray) -> object:
        traces.append(1)
        return loss_fn(p, d)

    step = ug.value_and_grad_fn(counted, backend="jax", jit=True)
    for seed in range(4):
        params, data = make_inputs(seed)
        _, grads = step(params, data)
        assert_float64_close(grads, closed_form(params, data))
    assert step.cache_size == 1
    assert len(traces) == 1, f"traced {len(traces)} times for one signature"


def test_torch_float64_leaves_on_jax(x64_off: None) -> None:
    require("torch")
    import torch

    params, data = make_inputs()
    torch_params = {k: torch.from_numpy(v) for k, v in params.items()}
    grads = ug.grad(loss_fn, torch_params, data, backend="jax")
    for key, value in closed_form(params, data).items():
        assert grads[key].dtype == torch.float64
        np.testing.assert_allclose(grads[key].numpy(), value, rtol=EXACT, atol=EXACT)


def test_native_jax_float32_unchanged(x64_off: None) -> None:
    import jax.numpy as jnp

    grads = ug.grad(lambda p: jnp.sum(p * jnp.asarray(np.arange(3.0))), jnp.ones(3))
    assert grads.dtype == jnp.float32  # the loss's float64 NumPy constant is float32 here, as in JAX


def test_native_jax_float64_without_x64_still_raises(x64_off: None) -> None:
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        made_in_a_scope = jnp.ones(2, dtype=jnp.float64)
    with pytest.raises(ug.PrecisionError, match="64-bit mode is off"):
        ug.grad(lambda p: (p**2).sum(), made_in_a_scope)


def test_float64_that_cannot_be_kept_raises(x64_off: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A device without 64-bit support narrows what it is given even in x64 mode: simulated here.
    from unigrad.backends import get_adapter

    adapter = get_adapter("jax")
    narrowing = type(adapter).from_numpy
    monkeypatch.setattr(type(adapter), "from_numpy", lambda self, a: narrowing(self, a.astype(np.float32)))
    with pytest.raises(ug.PrecisionError, match=r"params\['b'\] .*float64.*made a float32"):
        ug.grad(loss_fn, make_inputs()[0], np.ones(5), backend="jax")


def test_compiled_hvp_keeps_float64_and_traces_once(x64_off: None) -> None:
    traces = []

    def counted(p: dict, d: np.ndarray) -> object:
        traces.append(1)
        return loss_fn(p, d)

    product = ug.hvp_fn(counted, backend="jax")
    x, v = np.array([0.3, -1.2, 2.0]) + 1e-9, np.array([1.0, 0.5, -2.0])
    for _ in range(3):
        result = product({"w": np.zeros(5), "b": x}, {"w": np.zeros(5), "b": v}, np.ones(5))
        assert result["b"].dtype == np.float64
        np.testing.assert_allclose(result["b"], 6 * x * v, rtol=EXACT)
    assert len(traces) == 1 and product.cache_size == 1
