"""Regression tests for inputs an input probe found mishandled: each once gave wrong gradients, a raw
framework error, an untyped ``RecursionError`` or a process abort.

- PyTorch's ``inference_mode`` (gradients were silently zero) and inference tensors as params;
- torch tensors (and JAX arrays) not 64-byte aligned, going to TensorFlow (the process aborted);
- NumPy arrays with negative strides going to PyTorch;
- params and data that contain themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import require
from frameworks import Ops, make, to_numpy

import unigrad as ug

# torch.compile's AOT-eager backend: Dynamo's tracing without Inductor's seconds of C++ generation.
FAST_TORCH = {"backend": "aot_eager"}


def _weighted_square(params, data):
    """sum((w * d) ** 2): its gradient is 2 * w * d ** 2, its Hessian diag(2 * d ** 2)."""
    return ((params["w"] * data) ** 2).sum()


# -- 1. torch.inference_mode ----------------------------------------------------------------------


def test_gradients_under_torch_inference_mode_are_right_not_zero() -> None:
    require("torch")
    import torch

    weights = torch.tensor([1.0, 2.0, 3.0])
    expected_grad = np.array([0.0, 4.0, 24.0])  # 2 * w * d ** 2 with d = [0, 1, 2]
    with torch.inference_mode():
        data = torch.arange(3.0)  # an inference tensor, as data in an evaluation loop would be
        loss, grads = ug.value_and_grad(_weighted_square, {"w": weights}, data)
        np.testing.assert_allclose(float(loss), 40.0)
        np.testing.assert_allclose(to_numpy(grads["w"]), expected_grad)
        np.testing.assert_allclose(
            to_numpy(ug.grad(_weighted_square, {"w": weights}, data)["w"]), expected_grad
        )
        hvp = ug.hvp(_weighted_square, {"w": weights}, {"w": torch.ones(3)}, data)
        np.testing.assert_allclose(to_numpy(hvp["w"]), [0.0, 2.0, 8.0])
        for step in (
            ug.value_and_grad_fn(_weighted_square),
            ug.value_and_grad_fn(_weighted_square, jit=True, jit_options=FAST_TORCH),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ug.CompileFallbackWarning)
                for _ in range(2):  # the first call plans (and compiles), the second reuses
                    np.testing.assert_allclose(to_numpy(step({"w": weights}, data)[1]["w"]), expected_grad)
        # NumPy params on backend='torch': converted under inference mode, still differentiated.
        numpy_grads = ug.grad(
            _weighted_square, {"w": np.array([1.0, 2.0, 3.0])}, np.arange(3.0), backend="torch"
        )
        np.testing.assert_allclose(numpy_grads["w"], expected_grad)
        assert torch.is_inference_mode_enabled()  # the call left the mode as it found it


# -- 2. inference tensors as params ---------------------------------------------------------------


def test_inference_tensors_as_params_are_differentiated_through_a_copy() -> None:
    require("torch")
    import torch

    with torch.inference_mode():
        weights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        inference_data = torch.arange(3.0, dtype=torch.float64)
    data = torch.arange(3.0, dtype=torch.float64)
    expected_grad = np.array([0.0, 4.0, 24.0])

    grads = ug.grad(_weighted_square, {"w": weights}, data)
    assert grads["w"].dtype == weights.dtype and grads["w"].device == weights.device
    np.testing.assert_allclose(to_numpy(grads["w"]), expected_grad)
    # Inference data as well, once backend= has the data converted (and copied) anyway.
    grads = ug.grad(_weighted_square, {"w": weights}, inference_data, backend="torch")
    np.testing.assert_allclose(to_numpy(grads["w"]), expected_grad)
    hvp = ug.hvp(_weighted_square, {"w": weights}, {"w": torch.ones(3, dtype=torch.float64)}, data)
    np.testing.assert_allclose(to_numpy(hvp["w"]), [0.0, 2.0, 8.0])
    step = ug.value_and_grad_fn(_weighted_square)
    np.testing.assert_allclose(to_numpy(step({"w": weights}, data)[1]["w"]), expected_grad)
    # The user's tensor is untouched: still an inference tensor, no requires_grad, no .grad.
    assert weights.is_inference() and not weights.requires_grad and weights.grad is None
    np.testing.assert_array_equal(weights.numpy(), [1.0, 2.0, 3.0])


# -- 3. unaligned buffers going to TensorFlow -----------------------------------------------------

_UNALIGNED_TO_TENSORFLOW = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    import torch
    import unigrad as ug

    def loss(params, data):
        return tf.reduce_sum(params["w"] ** 2 * data)

    def grad_of(params, data):
        return np.asarray(ug.grad(loss, {"w": params}, data, backend="tensorflow")["w"]).tolist()

    ones = np.ones(3)
    f64 = torch.float64
    sliced = torch.arange(10.0, dtype=f64)[1:4]  # 8 bytes past an aligned start
    results = {
        "params": grad_of(sliced, torch.from_numpy(ones)),
        "from_numpy": grad_of(torch.from_numpy(np.arange(10.0)[1:4]), torch.from_numpy(ones)),
        "data": grad_of(torch.from_numpy(ones.copy()), sliced),
        # Non-contiguous and offset: every other column of rows 1-3.
        "strided": grad_of(torch.arange(24.0, dtype=f64).reshape(4, 6)[1:, ::2], torch.ones(3, 3, dtype=f64)),
        "transposed": grad_of(torch.arange(6.0, dtype=f64).reshape(2, 3).T, torch.ones(3, 2, dtype=f64)),
        "step": np.asarray(
            ug.value_and_grad_fn(loss, backend="tensorflow")({"w": sliced}, sliced)[1]["w"]
        ).tolist(),
    }
    print("RESULTS" + json.dumps(results))
    """
)


def test_unaligned_torch_tensors_go_to_tensorflow_without_aborting() -> None:
    require("torch", "tensorflow")
    # TF aborted the whole interpreter here ("Check failed: IsAligned()"): run it in a child process.
    result = subprocess.run(
        [sys.executable, "-c", _UNALIGNED_TO_TENSORFLOW], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (
        f"the child process died (code {result.returncode}):\n{result.stderr[-3000:]}"
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULTS"))
    results = json.loads(line.removeprefix("RESULTS"))
    np.testing.assert_allclose(results["params"], [2.0, 4.0, 6.0])  # 2 * w * d
    np.testing.assert_allclose(results["from_numpy"], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(results["data"], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(results["strided"], 2 * np.arange(24.0).reshape(4, 6)[1:, ::2])
    np.testing.assert_allclose(results["transposed"], 2 * np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_allclose(results["step"], [2.0, 8.0, 18.0])  # 2 * w * d with d = w


def test_jax_arrays_whose_address_is_unaligned_are_copied_for_tensorflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require("jax", "tensorflow")
    import jax.numpy as jnp
    import tensorflow as tf

    from unigrad.backends import get_adapter

    # JAX allocates 64-byte aligned buffers itself, so the rule is checked by making JAX report an
    # unaligned address: the array must then take the copying route (never DLPack), with the same
    # result. (A truly unaligned buffer through DLPack would abort this process.)
    jax_adapter = get_adapter("jax")
    shared = []
    monkeypatch.setattr(type(jax_adapter), "buffer_address", lambda self, x: 8)
    monkeypatch.setattr(type(jax_adapter), "dlpack_source", lambda self, x: shared.append(x) or x)
    params = {"w": jnp.array([1.0, 2.0, 3.0], dtype=jnp.float32)}
    data = jnp.array([1.0, 1.0, 2.0], dtype=jnp.float32)
    grads = ug.grad(lambda p, d: tf.reduce_sum(p["w"] ** 2 * d), params, data, backend="tensorflow")
    np.testing.assert_allclose(np.asarray(grads["w"]), [2.0, 4.0, 12.0])
    assert shared == []


# -- 4. negative strides --------------------------------------------------------------------------


def test_negative_stride_numpy_params_and_data(backend: str) -> None:
    ops = Ops(backend)
    reversed_params = np.arange(1.0, 5.0)[::-1]  # [4, 3, 2, 1], stride -8
    flipped = np.flip(np.arange(6.0).reshape(2, 3))  # [[5, 4, 3], [2, 1, 0]], both strides negative

    def loss(params, data):
        return (
            ops.sum(params["v"] ** 2)
            + ops.sum(params["m"] ** 2 * data["m"])
            + ops.sum(params["v"] * data["v"])
        )

    params = {"v": reversed_params, "m": flipped}
    data = {"v": np.arange(4.0)[::-1], "m": np.flip(np.ones((2, 3)))}
    grads = ug.grad(loss, params, data, backend=backend)
    assert isinstance(grads["v"], np.ndarray) and grads["v"].dtype == np.float64
    np.testing.assert_allclose(grads["v"], 2 * reversed_params + np.arange(4.0)[::-1])
    np.testing.assert_allclose(grads["m"], 2 * flipped)
    # Transforms convert their extra arguments the same way.
    vector = {"v": np.ones(4)[::-1], "m": np.flip(np.ones((2, 3)))}
    hvp = ug.hvp(loss, params, vector, data, backend=backend)
    np.testing.assert_allclose(hvp["v"], 2 * np.ones(4))
    # The inputs are not modified.
    np.testing.assert_array_equal(reversed_params, [4.0, 3.0, 2.0, 1.0])


def test_ordinary_numpy_arrays_still_reach_torch_without_a_copy() -> None:
    require("torch")
    from unigrad.backends import get_adapter

    array = np.arange(4.0)
    assert get_adapter("torch").from_numpy(array).data_ptr() == array.ctypes.data
    assert get_adapter("torch").from_numpy(array[::2]).data_ptr() == array.ctypes.data  # positive strides


# -- 5. containers that contain themselves ----------------------------------------------------------


def test_params_that_contain_themselves_raise_a_typed_error() -> None:
    params = [np.ones(2)]
    params.append(params)
    with pytest.raises(
        ug.InvalidParamsError, match=r"params\[1\] is params itself.*contains itself.*without cycles"
    ):
        ug.grad(lambda p: np.sum(p[0] ** 2), params, backend="numpy")

    nested = {"w": np.ones(2), "layers": [{"b": np.ones(2)}]}
    nested["layers"][0]["parent"] = nested
    with pytest.raises(ug.InvalidParamsError, match=r"params\['layers'\]\[0\]\['parent'\]"):
        ug.value_and_grad(lambda p: np.sum(p["w"] ** 2), nested, backend="numpy")
    with pytest.raises(ug.InvalidParamsError, match=r"params\[1\]"):
        ug.value_and_grad_fn(lambda p: np.sum(p[0] ** 2), backend="numpy")(params)


def test_data_that_contains_itself_raises_a_typed_error_when_unigrad_reads_it() -> None:
    data = {"x": np.ones(2)}
    data["again"] = data
    # backend= converts data leaves, so data is flattened: a cycle there is named.
    with pytest.raises(ug.InvalidDataError, match=r"data\['again'\] is data itself.*contains itself"):
        ug.grad(lambda p, d: np.sum(p**2 * d["x"]), np.ones(2), data, backend="numpy")


def test_cycles_in_compiled_steps_are_named(backend: str) -> None:
    ops = Ops(backend)
    step = ug.value_and_grad_fn(
        lambda p, d: ops.sum(p[0] ** 2) * d[0], jit=True, jit_options=_options(backend)
    )
    scale = make(backend, 2.0)
    params = [make(backend, [1.0, 2.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ug.CompileFallbackWarning)
        np.testing.assert_allclose(to_numpy(step(params, [scale])[1][0]), [4.0, 8.0])  # a structure compiled
    cyclic = [make(backend, [1.0, 2.0])]
    cyclic.append(cyclic)
    with pytest.raises(ug.InvalidParamsError, match=r"params\[1\] is params itself"):
        step(cyclic, [scale])
    # Lists, not dicts: JAX's own flatten, which a compiled JAX step runs first, corrupts the
    # interpreter's recursion depth on a cycle through a dict (a JAX bug, not unigrad's to fix).
    data = [scale]
    data.append(data)
    with pytest.raises(ug.InvalidDataError, match=r"data\[1\] is data itself"):
        step(params, data)


def _options(backend: str) -> dict:
    return FAST_TORCH if backend == "torch" else {}
