"""Float32 matmul precision in cross-framework calls (unigrad._precision).

On a GPU, JAX's default float32 matmul is TF32-class, so torch float32 CUDA params computed with
``backend="jax"`` lost precision silently (5.2e-2 relative error on an H200, torch alone 4.5e-7).
These tests run on the CPU: the adapters' accelerator check is monkeypatched to say "GPU", and the
loss records the precision setting it runs under.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import require
from unigrad import _precision


def _recording_loss(seen: list[object]):
    def loss(p):
        import jax

        seen.append(jax.config.jax_default_matmul_precision)
        xp = ug.namespace(p)
        return xp.sum(xp.matmul(p, p))

    return loss


@pytest.fixture
def torch_tf32() -> Iterator[None]:
    """PyTorch's float32 matmuls set to TF32 (``'high'``) for the test, restored afterwards."""
    require("torch")
    import torch

    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@pytest.fixture
def jax_on_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    require("jax")
    from unigrad.backends import _jax

    monkeypatch.setattr(_jax, "_on_accelerator", lambda: True)


def test_numpy_params_on_a_jax_gpu_compute_at_full_float32(jax_on_gpu: None) -> None:
    seen: list[object] = []
    params = np.eye(3, dtype=np.float32)
    for _ in range(2):  # the second call takes the remembered plan: it must keep the scope
        ug.grad(_recording_loss(seen), params, backend="jax")
    assert seen == ["highest", "highest"]


def test_torch_params_on_a_jax_gpu_compute_at_torchs_full_float32(jax_on_gpu: None) -> None:
    require("torch")
    import torch

    seen: list[object] = []
    ug.grad(_recording_loss(seen), torch.eye(3), backend="jax")
    assert seen == ["highest"]


def test_torch_params_with_tf32_on_leave_jaxs_tf32_default(jax_on_gpu: None, torch_tf32: None) -> None:
    import jax
    import torch

    seen: list[object] = []
    ug.grad(_recording_loss(seen), torch.eye(3), backend="jax")  # JAX's default is as strict
    with jax.default_matmul_precision("bfloat16"):  # a lower JAX setting is raised to torch's TF32
        ug.grad(_recording_loss(seen), torch.eye(3), backend="jax")
    assert seen == [None, "tensorfloat32"]


def test_native_jax_calls_and_cpu_calls_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    require("jax")
    import jax.numpy as jnp

    from unigrad.backends import _jax

    seen: list[object] = []
    monkeypatch.setattr(_jax, "_on_accelerator", lambda: False)  # also on a GPU machine
    ug.grad(_recording_loss(seen), np.eye(3, dtype=np.float32), backend="jax")  # a CPU: nothing to do
    monkeypatch.setattr(_jax, "_on_accelerator", lambda: True)
    ug.grad(_recording_loss(seen), jnp.eye(3))  # JAX's own params: JAX's own setting
    assert seen == [None, None]


def test_an_explicit_jax_setting_as_strict_is_kept(jax_on_gpu: None) -> None:
    import jax

    seen: list[object] = []
    with jax.default_matmul_precision("float32"):
        ug.grad(_recording_loss(seen), np.eye(3, dtype=np.float32), backend="jax")
    assert seen == ["float32"]


def test_a_global_setting_that_loses_precision_warns_once(
    monkeypatch: pytest.MonkeyPatch, torch_tf32: None
) -> None:
    from unigrad.backends import _torch

    monkeypatch.setattr(_torch, "on_accelerator", lambda: True)
    monkeypatch.setattr(_precision, "_warned", set())
    params = np.eye(3, dtype=np.float32)
    with pytest.warns(ug.PrecisionWarning, match=r"'torch'.*'high'.*numpy.*set_float32_matmul_precision"):
        ug.grad(lambda p: (p @ p).sum(), params, backend="torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ug.grad(lambda p: (p @ p).sum(), params, backend="torch")  # once per pair of frameworks


def test_precision_levels_order() -> None:
    assert _precision.LEVELS == ("medium", "high", "highest")
    assert _precision.stricter("highest", "medium") == "highest"


def test_assert_grad_matches_reference_computes_at_full_float32() -> None:
    require("jax")
    from unigrad.testing import assert_grad_matches_reference

    seen: list[object] = []
    assert_grad_matches_reference(_recording_loss(seen), np.eye(2, dtype=np.float32), backend="jax")
    assert seen[0] == "highest"  # the JAX call; the finite differences that follow run on NumPy
