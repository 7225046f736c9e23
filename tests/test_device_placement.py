"""``device=`` on NumPy-in calls: where the arrays unigrad converts are placed.

A library that keeps its state in NumPy (quimb's optimiser) could not honour its own ``device``
option: ``backend="torch"`` always computed on the CPU. No GPU here: torch's ``meta`` device stands
in for CUDA, and JAX / TensorFlow get a second CPU device in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import require


class _Seen(Exception):
    """Raised by a loss to stop a call once it has recorded what it was given (meta tensors have no
    values to hand back as NumPy)."""


def _device_recorder(seen: list[str]):
    def loss(p, d):
        seen.extend(str(leaf.device) for leaf in (p["w"], d["x"]))
        raise _Seen

    return loss


def test_torch_places_numpy_params_and_data_on_the_device_asked_for() -> None:
    require("torch")
    seen: list[str] = []
    params, data = {"w": np.ones(3, np.float32)}, {"x": np.ones(3, np.float32)}
    for _ in range(2):  # the second call takes the remembered plan
        with pytest.raises(_Seen):
            ug.grad(_device_recorder(seen), params, data, backend="torch", device="meta")
    assert seen == ["meta:0"] * 4 or seen == ["meta"] * 4


def test_torch_default_is_torchs_default_device() -> None:
    require("torch")
    import torch

    seen: list[str] = []
    params, data = {"w": np.ones(3, np.float32)}, {"x": np.ones(3, np.float32)}
    previous = torch.get_default_device()
    torch.set_default_device("meta")
    try:
        with pytest.raises(_Seen):
            ug.grad(_device_recorder(seen), params, data, backend="torch")
    finally:
        torch.set_default_device(previous)
    assert {s.partition(":")[0] for s in seen} == {"meta"}
    grads = ug.grad(lambda p, d: (p["w"] * d["x"]).sum(), params, data, backend="torch")
    np.testing.assert_array_equal(grads["w"], np.ones(3, np.float32))  # back on the CPU default


def test_torch_default_device_is_read_as_torch_reads_it() -> None:
    """unigrad's cheap read of torch's default device agrees with torch.get_default_device() in every
    state that changes it: nothing, torch.set_default_device, a ``with torch.device(...)`` block
    (and NumPy params follow it there)."""
    require("torch")
    import torch

    from unigrad.backends._torch_devices import default_device

    assert default_device() == torch.get_default_device() == torch.device("cpu")
    previous = torch.get_default_device()
    torch.set_default_device("meta")
    try:
        assert default_device() == torch.get_default_device() and default_device().type == "meta"
    finally:
        torch.set_default_device(previous)
    assert default_device() == torch.device("cpu")
    seen: list[str] = []
    with torch.device("meta"):
        assert default_device() == torch.get_default_device() and default_device().type == "meta"
        with pytest.raises(_Seen):
            params, data = {"w": np.ones(3, np.float32)}, {"x": np.ones(3, np.float32)}
            ug.grad(_device_recorder(seen), params, data, backend="torch")
    assert {s.partition(":")[0] for s in seen} == {"meta"}
    assert default_device() == torch.device("cpu")
    # torch's default is per thread: one set in another thread is not this one's
    read: dict[str, object] = {}

    def in_other_thread() -> None:
        torch.set_default_device("meta")
        try:
            read["there"] = (default_device(), torch.get_default_device())
        finally:
            torch.set_default_device("cpu")

    worker = threading.Thread(target=in_other_thread)
    worker.start()
    worker.join()
    assert read["there"][0] == read["there"][1] and read["there"][0].type == "meta"
    assert default_device() == torch.get_default_device() == torch.device("cpu")


def test_torch_transforms_and_compiled_steps_take_device() -> None:
    require("torch")
    seen: list[str] = []

    def fn(p):
        seen.append(str(p.device))
        raise _Seen

    x = np.ones(2, np.float32)
    calls = [
        lambda: ug.jvp(fn, x, x, backend="torch", device="meta"),
        lambda: ug.vjp(fn, x, np.float32(1.0), backend="torch", device="meta"),
        lambda: ug.hvp(fn, x, x, backend="torch", device="meta"),
        lambda: ug.value_and_grad_fn(fn, backend="torch", device="meta")(x),
        lambda: ug.hvp_fn(fn, backend="torch", jit=False, device="meta")(x, x),
    ]
    for call in calls:
        with pytest.raises(_Seen):
            call()
    assert [s.partition(":")[0] for s in seen] == ["meta"] * len(calls)


def test_to_backend_places_on_the_device() -> None:
    require("torch")
    tensor = ug.to_backend({"w": np.ones(2, np.float32)}, "torch", device="meta")["w"]
    assert tensor.device.type == "meta" and str(tensor.dtype) == "torch.float32"


def test_device_errors_are_typed_and_say_what_to_do() -> None:
    require("torch")
    params = {"w": np.ones(2, np.float32)}
    with pytest.raises(ug.InvalidDeviceError, match="backend 'torch' has no device 'warp:9'"):
        ug.grad(lambda p: p["w"].sum(), params, backend="torch", device="warp:9")
    import torch

    with pytest.raises(ug.InvalidDeviceError, match="only with backend=: pass backend="):
        ug.grad(lambda p: p.sum(), torch.ones(2), device="meta")
    with pytest.raises(ug.InvalidDeviceError, match="only with backend="):
        ug.value_and_grad_fn(lambda p: p.sum(), device="meta")
    with pytest.raises(ug.InvalidDeviceError, match="only with backend="):
        ug.hvp_fn(lambda p: p.sum(), device="meta")
    with pytest.raises(ug.InvalidDeviceError, match="'numpy' computes on the host only"):
        ug.grad(lambda p: (p["w"] ** 2).sum(), params, backend="numpy", device="gpu")


def _run(script: str, env: dict[str, str]) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_jax_places_on_a_second_device() -> None:
    require("jax")
    out = _run(
        """
        import jax, numpy as np, unigrad as ug
        from unigrad.backends import _jax
        seen = []
        name = lambda dev: f"{dev.platform}:{dev.id}"  # str(dev): 'TFRT_CPU_1' on JAX 0.8
        differentiate = _jax.ADAPTER.value_and_grad
        def recording(fn, leaves, finish):  # the params as the adapter receives them (concrete)
            seen.append(sorted(name(dev) for leaf in leaves for dev in leaf.devices()))
            return differentiate(fn, leaves, finish)
        _jax.ADAPTER.value_and_grad = recording
        def loss(p, d):
            seen.append(sorted(name(dev) for dev in d["x"].devices()))
            return (p["w"] * d["x"]).sum()
        params, data = {"w": np.ones(3, np.float32)}, {"x": np.arange(3.0, dtype=np.float32)}
        grads = ug.grad(loss, params, data, backend="jax", device="cpu:1")
        assert np.allclose(grads["w"], [0, 1, 2]) and isinstance(grads["w"], np.ndarray), grads
        ug.grad(loss, params, data, backend="jax", device=jax.devices()[1])
        seen.append(sorted(name(d) for d in ug.to_backend(np.ones(2), "jax", device="cpu:1").devices()))
        print(seen)
        try:
            ug.grad(loss, params, data, backend="jax", device="cpu:7")
        except ug.InvalidDeviceError as err:
            print("error:", err)
        """,
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
    )
    placed, _, error = out.partition("error:")
    assert placed.count("cpu:1") == 5 and "cpu:0" not in placed, out
    assert "backend 'jax' has no device 'cpu:7' here" in error, out


def test_jax_gradients_stay_on_each_params_device() -> None:
    """JAX params on the second device get gradients there, and then params on the first get theirs
    on the first: the cotangent the adapter caches per kind of loss is keyed by its sharding (a
    GPU's and a CPU's ones are different arrays), and a loss that is a parameter gets a copy."""
    require("jax")
    out = _run(
        """
        import jax, jax.numpy as jnp, numpy as np, unigrad as ug
        name = lambda x: ",".join(sorted(f"{d.platform}:{d.id}" for d in x.devices()))
        loss = lambda p: (p["w"] ** 2).sum()
        for index in (1, 0, 1):
            params = {"w": jax.device_put(jnp.arange(3.0), jax.devices()[index])}
            value, grads = ug.value_and_grad(loss, params)
            assert np.allclose(grads["w"], [0.0, 2.0, 4.0]), grads
            print(name(value), name(grads["w"]))
        mesh = jax.make_mesh((2,), ("a",), axis_types=(jax.sharding.AxisType.Auto,))
        spread = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("a"))
        grads = ug.grad(loss, {"w": jax.device_put(jnp.arange(4.0), spread)})
        assert np.allclose(grads["w"], [0.0, 2.0, 4.0, 6.0]) and grads["w"].sharding == spread
        scalar = {"w": jax.device_put(jnp.asarray(2.0), jax.devices()[1])}
        first = ug.grad(lambda p: p["w"], scalar)["w"]
        first.delete()  # the user's own array: the next call does not depend on it
        print("identity", name(ug.grad(lambda p: p["w"], scalar)["w"]))
        """,
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
    )
    assert out.split("\n")[:4] == ["cpu:1 cpu:1", "cpu:0 cpu:0", "cpu:1 cpu:1", "identity cpu:1"], out


def test_tensorflow_places_on_a_second_logical_cpu() -> None:
    require("tensorflow")
    out = _run(
        """
        import numpy as np, tensorflow as tf, unigrad as ug
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        seen = []
        def loss(p, d):
            seen.append(p["w"].device.rpartition("device:")[2])
            seen.append(d["x"].device.rpartition("device:")[2])
            return tf.reduce_sum(p["w"] * d["x"])
        params, data = {"w": np.ones(3, np.float32)}, {"x": np.arange(3.0, dtype=np.float32)}
        grads = ug.grad(loss, params, data, backend="tensorflow", device="cpu:1")
        assert np.allclose(grads["w"], [0, 1, 2]), grads
        print(seen)
        """,
        {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert "['CPU:1', 'CPU:1']" in out, out


def test_precision_scope_keeps_to_backend_float64_for_the_users_own_jax_code() -> None:
    require("jax")
    out = _run(
        """
        import numpy as np, jax, jax.numpy as jnp, unigrad as ug
        x = ug.to_backend(np.ones(2), "jax")
        with ug.precision_scope("jax"):
            y = jax.lax.complex(x, jnp.asarray(np.zeros(2)))
        print(x.dtype, y.dtype, jax.config.jax_enable_x64)
        """,
        {"JAX_PLATFORMS": "cpu"},
    )
    assert out.split() == ["float64", "complex128", "False"], out
