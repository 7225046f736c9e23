"""What must hold on a real GPU (marked ``gpu``; each test skips with the reason where no GPU is seen).

Every defect found on the first GPU run also has a CPU-side test (the ``meta`` device, a second JAX
CPU device, monkeypatched accelerator checks): ``tests/test_device_placement.py``,
``tests/test_namespace_device.py``, ``tests/test_precision_routing.py``, ``tests/test_gpu_memory.py``.
These run the same properties on the GPU itself; ``python ci/gpu_check.py`` runs them there.
"""

from __future__ import annotations

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import is_installed

pytestmark = pytest.mark.gpu


def _torch_cuda() -> object:
    if not is_installed("torch"):
        pytest.skip("torch is not installed (pip install 'unigrad[torch]')")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no GPU: torch sees no CUDA device")
    return torch


def _jax_gpu() -> object:
    if not is_installed("jax"):
        pytest.skip("jax is not installed (pip install 'unigrad[jax]')")
    import jax

    try:
        if jax.devices("gpu"):
            return jax
    except RuntimeError:
        pass
    pytest.skip("no GPU: JAX sees no GPU device")


def _mlp(params: dict, data: dict):
    xp = ug.namespace(params)
    hidden = xp.tanh(xp.matmul(data["x"], params["w1"]) + params["b1"])
    return xp.mean((xp.matmul(hidden, params["w2"]) - data["y"]) ** 2)


def _mlp_problem(rng: np.random.Generator) -> tuple[dict, dict]:
    params = {
        "w1": rng.standard_normal((256, 128)) / 16,
        "b1": np.zeros(128),
        "w2": rng.standard_normal((128, 10)) / 11,
    }
    data = {"x": rng.standard_normal((64, 256)), "y": rng.standard_normal((64, 10))}
    return params, data


def _max_rel_err(grads: dict, reference: dict) -> float:
    return max(
        float(np.max(np.abs(np.asarray(grads[k], np.float64) - reference[k])) / np.max(np.abs(reference[k])))
        for k in reference
    )


def test_torch_grads_stay_on_the_gpu_with_their_dtype() -> None:
    torch = _torch_cuda()
    params = {"w": torch.ones(3, device="cuda", dtype=torch.float64)}
    grads = ug.grad(lambda p: (p["w"] ** 2).sum(), params)
    assert grads["w"].device.type == "cuda" and grads["w"].dtype == torch.float64


def test_the_namespace_creates_arrays_on_the_gpu() -> None:
    torch = _torch_cuda()
    x = torch.ones(2, 2, device="cuda")
    xp = ug.namespace(x)
    assert xp.eye(2, dtype=x.dtype).device.type == "cuda"
    assert (xp.zeros(2).device.type, xp.asarray([1.0]).device.type) == ("cuda", "cuda")
    grads = ug.grad(lambda a: xp.sum(xp.linalg.solve(a + xp.eye(2, dtype=a.dtype), a)), x)
    assert grads.device.type == "cuda"


def test_numpy_in_with_device_computes_on_the_gpu() -> None:
    _torch_cuda()
    seen: list[str] = []

    def loss(p):
        seen.append(p.device.type)
        return (p**2).sum()

    grads = ug.grad(loss, np.arange(3.0, dtype=np.float32), backend="torch", device="cuda")
    assert seen == ["cuda"] and isinstance(grads, np.ndarray)
    np.testing.assert_allclose(grads, [0.0, 2.0, 4.0])


def test_torch_float32_cuda_params_through_jax_keep_float32_precision() -> None:
    torch = _torch_cuda()
    _jax_gpu()
    params64, data64 = _mlp_problem(np.random.default_rng(0))
    reference = ug.grad(_mlp, params64, data64, backend="torch")  # float64 on the GPU's host side
    params = {k: torch.tensor(v, dtype=torch.float32, device="cuda") for k, v in params64.items()}
    data = {k: torch.tensor(v, dtype=torch.float32, device="cuda") for k, v in data64.items()}
    grads = ug.grad(_mlp, params, data, backend="jax")
    assert grads["w1"].device.type == "cuda"
    error = _max_rel_err({k: g.cpu().numpy() for k, g in grads.items()}, reference)
    assert error < 1e-5, f"max relative error {error:.1e} (TF32-class products give ~5e-2)"


def test_jax_numpy_in_with_device_gpu() -> None:
    jax = _jax_gpu()
    seen: list[str] = []

    def loss(p, d):
        seen.append(sorted(dev.platform for dev in d["x"].devices())[0])
        return (p * d["x"]).sum()

    grads = ug.grad(
        loss, np.ones(3, np.float32), {"x": np.arange(3.0, dtype=np.float32)}, backend="jax", device="gpu"
    )
    assert seen == [jax.devices("gpu")[0].platform]
    np.testing.assert_allclose(grads, [0.0, 1.0, 2.0])


def test_numpy_leaves_into_a_compiled_jax_step_on_the_gpu_come_back_packed_at_float32() -> None:
    """NumPy float32 leaves into ``value_and_grad_fn(jit=True, backend="jax")`` where JAX's default
    device is a GPU: computed at full float32 (not TF32-class), and the small gradients come back as
    writable views of one host copy (one device-to-host transfer, not one per leaf)."""
    _jax_gpu()
    params64 = [np.random.default_rng(seed).standard_normal((16, 16)) / 4 for seed in range(6)]

    def chain(params):
        xp = ug.namespace(params[0])
        x = params[0]
        for w in params[1:]:
            x = xp.tanh(xp.matmul(x, w))
        return xp.sum(x**2)

    reference = ug.grad(chain, params64, backend="numpy")
    step = ug.value_and_grad_fn(chain, backend="jax", jit=True)
    params = [p.astype(np.float32) for p in params64]
    for _ in range(2):  # planned and traced, then run from the entry
        _, grads = step(params)
    assert all(type(g) is np.ndarray and g.flags.writeable for g in grads)
    assert all(g.base is grads[0].base is not None for g in grads)
    error = _max_rel_err(dict(enumerate(grads)), dict(enumerate(reference)))
    assert error < 1e-4, f"max relative error {error:.1e} (TF32-class products give ~1e-2)"
