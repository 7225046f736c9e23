"""NumPy in / NumPy out, and arrays of one framework differentiated by another."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import require
from frameworks import Ops, dtype_name, make, to_numpy, tolerance

import unigrad as ug


def test_numpy_in_numpy_out(backend: str, dtype: str, rng: np.random.Generator) -> None:
    params = {"w": rng.normal(size=(3, 2)).astype(dtype), "b": rng.normal(size=2).astype(dtype)}
    data = {"x": rng.normal(size=(4, 3)).astype(dtype)}
    before = copy.deepcopy((params, data))
    ops = Ops(backend)

    def loss_fn(p, d):
        return ops.sum(ops.tanh(ops.matmul(d["x"], p["w"]) + p["b"]))

    loss, grads = ug.value_and_grad(loss_fn, params, data, backend=backend)
    expected = ug.reference_grad(lambda p, d: np.sum(np.tanh(d["x"] @ p["w"] + p["b"])), params, data)
    for name in params:
        assert type(grads[name]) is np.ndarray
        assert grads[name].dtype == np.dtype(dtype)
        assert grads[name].flags.writeable
        np.testing.assert_allclose(grads[name], expected[name], **tolerance(dtype))
    assert isinstance(loss, np.ndarray) and loss.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(params["w"], before[0]["w"])  # inputs unchanged
    np.testing.assert_array_equal(data["x"], before[1]["x"])


PAIRS = [(a, b) for a in ("torch", "tensorflow", "jax") for b in ("torch", "tensorflow", "jax")]


@pytest.mark.parametrize(("origin", "compute"), PAIRS)
def test_cross_framework_params_come_back_in_their_framework(origin: str, compute: str, dtype: str) -> None:
    require(origin, compute)
    ops = Ops(compute)
    params = {"w": make(origin, [1.0, -2.0], dtype), "v": make(origin, [[3.0]], dtype)}
    data = {"scale": make(origin, [2.0, 2.0], dtype)}

    def loss_fn(p, d):
        return ops.sum(p["w"] ** 2 * d["scale"]) + ops.sum(p["v"] ** 3)

    loss, grads = ug.value_and_grad(loss_fn, params, data, backend=compute)
    for name in params:
        assert type(grads[name]).__module__.split(".")[0] == type(params[name]).__module__.split(".")[0]
        assert dtype_name(grads[name]) == dtype_name(params[name])
    np.testing.assert_allclose(to_numpy(grads["w"]), [4.0, -8.0])
    np.testing.assert_allclose(to_numpy(grads["v"]), [[27.0]])
    assert type(loss).__module__.split(".")[0] == type(params["w"]).__module__.split(".")[0]
    np.testing.assert_allclose(to_numpy(loss), 10.0 + 27.0)


def test_mixed_origins_with_backend_are_each_returned_home() -> None:
    require("torch", "jax")
    import jax.numpy as jnp
    import torch

    params = {"t": torch.tensor([1.0]), "n": np.array([2.0]), "j": jnp.array([3.0], "float32")}
    ops = Ops("jax")
    grads = ug.grad(lambda p: ops.sum(p["t"] ** 2 + p["n"] ** 2 + p["j"] ** 2), params, backend="jax")
    assert isinstance(grads["t"], torch.Tensor) and grads["t"].dtype == torch.float32
    assert isinstance(grads["n"], np.ndarray) and grads["n"].dtype == np.float64
    assert type(grads["j"]).__module__.startswith("jax")
    np.testing.assert_allclose([to_numpy(grads[k])[0] for k in "tnj"], [2.0, 4.0, 6.0])


def test_numpy_reference_accepts_framework_params() -> None:
    require("torch")
    import torch

    grads = ug.grad(lambda p: np.sum(p**3), torch.tensor([1.0, 2.0], dtype=torch.float64), backend="numpy")
    assert isinstance(grads, torch.Tensor) and grads.dtype == torch.float64
    np.testing.assert_allclose(grads.numpy(), [3.0, 12.0], rtol=1e-8)


def test_bfloat16_crosses_frameworks() -> None:
    require("torch", "jax")
    import torch

    x = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    grads = ug.grad(lambda p: Ops("jax").sum(p * p), x, backend="jax")
    assert isinstance(grads, torch.Tensor) and grads.dtype == torch.bfloat16
    np.testing.assert_allclose(grads.float().numpy(), [2.0, 4.0])


def _array_at_offset(size: int, offset: int) -> np.ndarray:
    """float32 values 1..size whose data starts ``offset`` bytes past a 64-byte boundary."""
    raw = np.empty(size * 4 + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    array = raw[start : start + size * 4].view(np.float32)
    array[:] = np.arange(1, size + 1)
    return array


@pytest.mark.parametrize("offset", [0, 16])
def test_tensorflow_imports_aligned_numpy_without_copying_and_others_safely(offset: int) -> None:
    require("tensorflow")
    import tensorflow as tf

    from unigrad.backends import get_adapter

    params = {"w": _array_at_offset(1024, offset)}
    data = {"x": _array_at_offset(1024, offset)}
    before = params["w"].copy(), data["x"].copy()
    converted = get_adapter("tensorflow").from_numpy(params["w"])
    # TF reads DLPack buffers in place: the converted tensor sees a change to the NumPy array exactly
    # when it aliases it. A 16-byte offset must be copied (TF aborts on unaligned buffers).
    params["w"][0] = 100.0
    assert (float(converted[0]) == 100.0) is (offset == 0)
    params["w"][0] = before[0][0]

    grads = ug.grad(
        lambda p, d: tf.reduce_sum(tf.exp(p["w"] / 1024.0) * d["x"] + tf.nn.relu(p["w"])),
        params,
        data,
        backend="tf",
    )
    want = np.exp(before[0] / 1024.0) * before[1] / 1024.0 + 1.0
    np.testing.assert_allclose(grads["w"], want, rtol=1e-5)
    np.testing.assert_array_equal(params["w"], before[0])  # never written through the alias
    np.testing.assert_array_equal(data["x"], before[1])


def test_torch_tensors_numpy_refuses_convert_to_numpy() -> None:
    """Tensor.numpy() refuses a conjugate or negative bit (hfft's gradient, ihfft's tangent) and a
    ZeroTensor (an unused input's tangent): the adapter resolves them."""
    require("torch")
    import torch

    from unigrad.backends import get_adapter

    adapter = get_adapter("torch")
    conjugated = torch.tensor([1 + 2j, 3 - 1j]).conj()
    negated = torch.tensor([1 + 2j]).conj().imag  # a view with the negative bit set
    zeros = torch._efficientzerotensor(3)
    assert conjugated.is_conj() and negated.is_neg()
    np.testing.assert_array_equal(adapter.to_numpy(conjugated), [1 - 2j, 3 + 1j])
    np.testing.assert_array_equal(adapter.to_numpy(negated), [-2.0])
    np.testing.assert_array_equal(adapter.to_numpy(zeros), np.zeros(3, dtype=np.float32))
