"""What MLX users rely on, and the MLX quirks the adapter absorbs (see unigrad/backends/_mlx.py)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import is_installed, require, skip_reason

import unigrad as ug
from unigrad import InvalidParamsError
from unigrad.backends import get_adapter

pytestmark = pytest.mark.skipif(not is_installed("mlx"), reason=skip_reason("mlx"))


@pytest.fixture
def mx():  # the mlx.core module
    import mlx.core

    return mlx.core


def test_detection_never_imports_mlx() -> None:
    code = (
        "import sys, numpy as np, unigrad as ug\n"
        "ug.grad(lambda p: (p ** 2).sum(), np.ones(2), backend='numpy')\n"
        "print('mlx.core' in sys.modules, 'mlx' in ug.installed_backends())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_float64_params_keep_float64(mx) -> None:
    # mx.array(float64 NumPy) alone gives float32: NumPy params with backend='mlx' must not.
    x = np.array([1.0, 1e-9 + 1.0])
    grads = ug.grad(lambda p: (p["x"] * p["x"]).sum(), {"x": x}, backend="mlx")
    assert grads["x"].dtype == np.float64
    np.testing.assert_array_equal(grads["x"], 2 * x)
    native = ug.grad(lambda p: (p * p).sum(), mx.array(x, dtype=mx.float64))
    assert native.dtype == mx.float64
    np.testing.assert_array_equal(np.array(native), 2 * x)


def test_float64_from_torch_keeps_float64() -> None:
    require("mlx", "torch")
    import torch

    x = torch.tensor([1.0, 1.0 + 1e-12], dtype=torch.float64)
    grads = ug.grad(lambda p: (p * p).sum(), x, backend="mlx")  # mx.array(tensor) would be float32
    assert isinstance(grads, torch.Tensor) and grads.dtype == torch.float64
    assert torch.equal(grads, 2 * x)


def test_numpy_gradients_are_copies_not_views(mx) -> None:
    # np.asarray(mx_array) is a writable view of MLX's buffer: writing to a gradient handed to the
    # user must not change anything MLX holds.
    params = {"x": np.array([1.0, 2.0], np.float32)}
    first = ug.grad(lambda p: (p["x"] * 3.0).sum(), params, backend="mlx")
    assert first["x"].flags.writeable
    first["x"][:] = -100.0
    second = ug.grad(lambda p: (p["x"] * 3.0).sum(), params, backend="mlx")
    np.testing.assert_array_equal(second["x"], [3.0, 3.0])
    assert get_adapter("mlx").to_numpy(mx.array([1.0])).base is None


def test_inputs_are_not_changed(mx) -> None:
    w = mx.array([1.0, -2.0])
    before = np.array(w)
    ug.grad(lambda p: (p["w"] ** 2).sum(), {"w": w})
    np.testing.assert_array_equal(np.array(w), before)


def test_integer_params_are_refused(mx) -> None:
    # mx.grad with respect to an integer array returns integers instead of raising.
    with pytest.raises(InvalidParamsError, match=r"params\['n'\].*int32.*cast it to a float dtype"):
        ug.grad(lambda p: (p["n"] * p["n"]).sum(), {"n": mx.array([1, 2])})


def test_bfloat16_params(mx) -> None:
    w = mx.array([1.5, -2.0], dtype=mx.bfloat16)
    grads = ug.grad(lambda p: (p * p).sum(), w)
    assert grads.dtype == mx.bfloat16
    host = get_adapter("mlx").to_numpy(grads)  # no NumPy buffer format: through float32
    np.testing.assert_array_equal(host.astype(np.float32), [3.0, -4.0])


def test_results_are_evaluated(mx) -> None:
    loss, grads = ug.value_and_grad(lambda p: mx.sum(mx.exp(p)), mx.array([0.0, 1.0]))
    # An evaluated array has no pending computation: its graph has been cut off.
    for result in (loss, grads):
        assert result.item() if result.ndim == 0 else result.tolist()
    np.testing.assert_allclose(np.array(grads), np.exp([0.0, 1.0]), rtol=1e-6)


def test_inside_user_compile_and_vmap(mx) -> None:
    compiled = mx.compile(lambda w: ug.grad(lambda q: (q**2).sum(), w))
    np.testing.assert_array_equal(np.array(compiled(mx.array([1.0, 3.0]))), [2.0, 6.0])
    batched = mx.vmap(lambda w: ug.grad(lambda q: (q**3).sum(), w))(mx.array([[1.0], [2.0]]))
    np.testing.assert_array_equal(np.array(batched), [[3.0], [12.0]])


def test_has_aux_carries_non_arrays(mx) -> None:
    def loss_fn(p):
        loss = (p["w"] ** 2).sum()
        return loss, {"name": "mse", "scaled": loss * 2, "step": 3}

    (loss, aux), grads = ug.value_and_grad(loss_fn, {"w": mx.array([1.0, 2.0])}, has_aux=True)
    assert aux["name"] == "mse" and aux["step"] == 3
    assert aux["scaled"].item() == 10.0 and loss.item() == 5.0
    np.testing.assert_array_equal(np.array(grads["w"]), [2.0, 4.0])


def test_compiled_step_matches_eager(mx) -> None:
    def loss_fn(p, d):
        return mx.mean((d["x"] @ p["w"] - d["y"]) ** 2)

    rng = np.random.default_rng(0)
    params = {"w": mx.array(rng.normal(size=3).astype(np.float32))}
    data = {"x": mx.array(rng.normal(size=(8, 3)).astype(np.float32)), "y": mx.zeros(8)}
    step = ug.value_and_grad_fn(loss_fn, jit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ug.CompileFallbackWarning)  # mx.compile must not fall back
        loss, grads = step(params, data)
    eager_loss, eager_grads = ug.value_and_grad(loss_fn, params, data)
    np.testing.assert_allclose(loss.item(), eager_loss.item(), rtol=1e-6)
    np.testing.assert_allclose(np.array(grads["w"]), np.array(eager_grads["w"]), rtol=1e-5)


def test_transforms(mx) -> None:
    x = mx.array([1.0, 2.0])
    _, tangent = ug.jvp(mx.sin, x, mx.array([1.0, 0.0]))
    np.testing.assert_allclose(np.array(tangent), [np.cos(1.0), 0.0], rtol=1e-6)
    _, cotangent = ug.vjp(mx.sin, x, mx.array([1.0, 1.0]))
    np.testing.assert_allclose(np.array(cotangent), np.cos([1.0, 2.0]), rtol=1e-6)
    jac = ug.jacobian(lambda p: mx.sin(p) * p[0], x)
    np.testing.assert_allclose(
        np.array(jac), [[np.cos(1) + np.sin(1), 0.0], [np.sin(2), np.cos(2)]], rtol=1e-6
    )
    np.testing.assert_array_equal(np.array(ug.hessian(lambda p: (p**3).sum(), x)), [[6.0, 0.0], [0.0, 12.0]])
    product = ug.hvp(lambda p: (p**3).sum(), x, mx.array([1.0, 1.0]))
    np.testing.assert_array_equal(np.array(product), [6.0, 12.0])
    batch = mx.array([[1.0, 2.0], [3.0, 4.0]])
    per_example = ug.per_example_grads(lambda p, e: (p * e).sum(), x, batch)
    np.testing.assert_array_equal(np.array(per_example), np.array(batch))


def test_namespace_keeps_float64_and_differentiates(mx) -> None:
    xp = ug.namespace(mx.array([1.0]))
    assert xp.name == "mlx"
    assert xp.asarray(np.array([1.0, 2.0])).dtype == mx.float64
    assert xp.var(xp.asarray([1.0, 2.0, 3.0]), correction=1).item() == 1.0
    grads = ug.grad(lambda p: ug.namespace(p).linalg.vector_norm(p), mx.array([3.0, 4.0]))
    np.testing.assert_allclose(np.array(grads), [0.6, 0.8], rtol=1e-6)


def test_complex128_is_refused_not_narrowed() -> None:
    require("mlx")
    with pytest.raises(ug.PrecisionError, match="MLX has no complex128"):
        get_adapter("mlx").from_numpy(np.ones(2, np.complex128))


def test_first_compiled_step_of_a_process_is_traced_once(mx) -> None:
    """MLX makes its default stream on first use; a step traced before that was traced again on its
    next call. A fresh process (where nothing has used MLX yet) compiles its first step once."""
    code = """
import numpy as np, mlx.core as mx, unigrad as ug
traces = []
def loss(p, d):
    traces.append(1)
    return mx.mean((d["x"] @ p["w"] - d["y"]) ** 2)
rng = np.random.default_rng(0)
as_mx = lambda shape: mx.array(rng.normal(size=shape).astype(np.float32))
params, data = {"w": as_mx((3, 2))}, {"x": as_mx((4, 3)), "y": as_mx((4, 2))}
step = ug.value_and_grad_fn(loss, jit=True)
for _ in range(5):
    step(params, data)
print(len(traces))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "1"
