"""``ug.namespace`` follows the device: creation functions put new arrays where the params live.

PyTorch's ``meta`` device stands in for a GPU on a CPU machine; JAX and TensorFlow get a second CPU
device in a subprocess of their own (both are configured before their first operation).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import require

import unigrad as ug

# name -> a call of the namespace's creation function that takes no array argument
CREATIONS: dict[str, Callable[[Any], Any]] = {
    "eye": lambda xp: xp.eye(3),
    "eye_rectangular": lambda xp: xp.eye(2, 3, dtype=xp.float64),
    "zeros": lambda xp: xp.zeros((2, 3)),
    "ones": lambda xp: xp.ones(4, dtype=xp.float32),
    "full": lambda xp: xp.full((2,), 1.5),
    "arange": lambda xp: xp.arange(5),
    "asarray_list": lambda xp: xp.asarray([1.0, 2.0]),
    "asarray_numpy": lambda xp: xp.asarray(np.ones((2, 2))),
    "asarray_scalar": lambda xp: xp.asarray(1.5),
}


def _run(script: str, env: dict[str, str]) -> str:
    """Runs ``script`` in a fresh interpreter and returns its stdout; fails with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


# -- PyTorch, with the meta device standing in for CUDA --------------------------------------------


@pytest.mark.parametrize("creation", sorted(CREATIONS))
def test_torch_creation_follows_the_device(creation: str) -> None:
    require("torch")
    import torch

    xp = ug.namespace(torch.zeros(2, device="meta"))
    assert xp.device == torch.device("meta")
    assert CREATIONS[creation](xp).device.type == "meta"


@pytest.mark.parametrize("like", ["zeros_like", "ones_like"])
def test_torch_like_functions_follow_their_argument(like: str) -> None:
    require("torch")
    import torch

    on_meta = ug.namespace({"w": torch.zeros(2, device="meta")})
    assert on_meta.device == torch.device("meta")
    assert getattr(on_meta, like)(torch.ones(2)).device.type == "cpu"
    assert getattr(on_meta, like)(torch.ones(2, device="meta"), dtype=torch.float64).device.type == "meta"


def test_torch_asarray_keeps_an_existing_tensor_where_it_is() -> None:
    require("torch")
    import torch

    xp = ug.namespace(torch.zeros(2, device="meta"))
    on_cpu = torch.ones(2)
    assert xp.asarray(on_cpu) is on_cpu  # Array API: an array keeps its device...
    assert xp.asarray(on_cpu, dtype=torch.float64).device.type == "cpu"
    assert xp.asarray([1.0]).device.type == "meta"  # ...new data goes to the namespace's
    assert xp.asarray(on_cpu, device="meta").device.type == "meta"


def test_torch_explicit_device_wins() -> None:
    require("torch")
    import torch

    xp = ug.namespace(torch.zeros(2, device="meta"))
    assert xp.eye(2, device="cpu").device.type == "cpu"
    assert xp.zeros(2, device=torch.device("cpu")).device.type == "cpu"
    assert xp.asarray([1.0], device="cpu").device.type == "cpu"
    on_cpu = ug.namespace(torch.zeros(2, device="meta"), device="cpu")
    assert on_cpu.device == torch.device("cpu")
    assert on_cpu.eye(2).device.type == "cpu"
    # A namespace asked for the CPU keeps it even inside a default-device block.
    with torch.device("meta"):
        assert on_cpu.zeros(2).device.type == "cpu"


def test_torch_cpu_tensor_keeps_the_framework_default_placement() -> None:
    require("torch")
    import torch

    xp = ug.namespace(torch.ones(2))
    assert xp.device is None and xp is ug.namespace("torch")
    with torch.device("meta"):  # the default device decides, as for torch.zeros
        assert xp.zeros(2).device.type == "meta"


def test_torch_cache_one_namespace_per_device() -> None:
    require("torch")
    import torch

    meta = ug.namespace(torch.zeros(2, device="meta"))
    assert ug.namespace(torch.ones(3, 3, device="meta", dtype=torch.float64)) is meta
    assert ug.namespace({"w": torch.ones(1, device="meta")}) is meta
    assert ug.namespace("torch", device="meta") is meta
    assert ug.namespace(torch.ones(1), device=torch.device("meta")) is meta
    cpu = ug.namespace(torch.ones(2))
    assert cpu is not meta and cpu is ug.namespace(torch.zeros(5, dtype=torch.float64))
    assert ug.namespace(torch.ones(1), device="cpu") not in (cpu, meta)  # pinned to the CPU
    assert "on meta" in repr(meta) and " on " not in repr(cpu)


def test_torch_conformance_case_creates_on_the_params_device() -> None:
    require("torch")
    import torch

    from unigrad.conformance.cases import CASES

    for name in ("linalg_det", "linalg_solve"):
        case = next(case for case in CASES if case.name == name)  # both add n * xp.eye(n) to params
        params, data = case.make_inputs(0)
        params_meta = {key: torch.from_numpy(value).to("meta") for key, value in params.items()}
        assert case.loss(params_meta, data).device.type == "meta", name


def test_torch_device_lookup_compiles_without_graph_break() -> None:
    require("torch")
    import torch

    def loss(params: Any) -> Any:
        xp = ug.namespace(params)
        return xp.sum(params["w"] * xp.ones(3) + xp.eye(3)[0])

    params = {"w": torch.ones(3, device="meta")}
    assert loss(params).device.type == "meta"  # eagerly first: torch.compile sees warm caches
    compiled = torch.compile(loss, backend="eager", fullgraph=True)
    assert compiled(params).device.type == "meta"
    assert float(compiled({"w": torch.ones(3)})) == 4.0


# -- by name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "backend"), [("torch", "torch"), ("tf", "tensorflow"), ("jax", "jax")])
def test_by_name_is_the_default_device_namespace(name: str, backend: str) -> None:
    require(backend)
    xp = ug.namespace(name)
    assert xp.name == backend and xp.device is None
    assert ug.namespace(name.upper()) is xp
    assert xp.zeros(2).shape == (2,)


def test_by_name_numpy_and_mlx() -> None:
    xp = ug.namespace("numpy")
    assert xp is ug.namespace(np.ones(2)) is ug.namespace("np", device="cpu")
    assert ug.namespace(np.ones(2), device="cpu") is xp
    assert xp.eye(2, device="cpu").shape == (2, 2)
    with pytest.raises(ValueError, match="CPU only"):
        ug.namespace("numpy", device="cuda")
    require("mlx")
    import mlx.core as mx

    mlx_xp = ug.namespace("mlx")
    assert mlx_xp is ug.namespace(mx.ones(2)) is ug.namespace(mx.ones(2), device=mx.cpu)
    assert ug.namespace("mlx", device="gpu") is mlx_xp  # one unified memory: nothing to place
    assert mlx_xp.zeros(2, device=mx.cpu).shape == (2,)
    assert mlx_xp.asarray([1.0], device="cpu").shape == (1,)
    with pytest.raises(ValueError, match=r"mx\.cpu"):
        ug.namespace("mlx", device="cuda:0")


def test_by_name_with_a_device() -> None:
    require("torch")
    import torch

    xp = ug.namespace("pytorch", device="meta")
    assert xp.name == "torch" and xp.device == torch.device("meta")
    assert xp.eye(2).device.type == "meta"
    with pytest.raises(ValueError, match="not a PyTorch device"):
        ug.namespace("torch", device="no-such-device")


def test_by_name_unknown_backend() -> None:
    with pytest.raises(ug.UnknownBackendError, match="'torch', 'tensorflow', 'jax', 'mlx', 'numpy'") as info:
        ug.namespace("tensorflw")
    assert isinstance(info.value, ug.InvalidParamsError)  # no array either, as before names were taken


def test_by_name_backend_not_installed() -> None:
    # A fresh interpreter in which the framework cannot be found, whether it is installed or not.
    output = _run(
        """
        import sys
        sys.modules["mlx"] = None  # import mlx fails, and find_spec("mlx.core") finds nothing
        import unigrad as ug
        try:
            ug.namespace("mlx")
        except ug.BackendNotInstalledError as err:
            print("refused:", err)
        """,
        {},
    )
    assert "refused:" in output and "pip install 'unigrad[mlx]'" in output


def test_non_array_still_refused_with_a_hint() -> None:
    with pytest.raises(ug.InvalidParamsError, match="backend's name"):
        ug.namespace(3.0)


# -- JAX and TensorFlow: a second CPU device in a fresh process ---------------------------------


def test_jax_second_device() -> None:
    require("jax")
    _run(
        """
        import jax, jax.numpy as jnp, numpy as np
        import unigrad as ug

        first, second = jax.devices()
        x = jax.device_put(jnp.ones(3), second)
        xp = ug.namespace(x)
        assert xp.device == second, xp.device
        made = {
            "zeros": xp.zeros(2), "ones": xp.ones(2), "eye": xp.eye(3), "arange": xp.arange(4),
            "full": xp.full((2,), 1.5), "asarray list": xp.asarray([1.0, 2.0]),
            "asarray numpy": xp.asarray(np.ones(2)), "zeros_like": xp.zeros_like(x),
        }
        for name, array in made.items():
            assert array.devices() == {second}, (name, array.devices())
        on_first = jax.device_put(jnp.ones(2), first)
        assert xp.asarray(on_first).devices() == {first}  # an existing array keeps its device
        assert xp.zeros(2, device=first).devices() == {first}  # explicit device= wins
        assert ug.namespace(x, device=first).eye(2).devices() == {first}

        # one namespace per device; the default device keeps JAX's own placement rules
        assert ug.namespace(jnp.zeros(5) + 1) is ug.namespace("jax") and ug.namespace("jax").device is None
        assert ug.namespace(jax.device_put(np.zeros(2), second)) is xp
        assert ug.namespace("jax", device=second) is xp
        home = ug.namespace(jnp.ones(1))
        with jax.default_device(second):  # as for jnp.zeros
            assert home.zeros(1).devices() == {second}

        # tracers have no concrete device: JAX places (and the call must not fail)
        def loss(w):
            xp = ug.namespace(w)
            assert xp.device is None
            return xp.sum(w * xp.ones(3) + xp.eye(3)[0])

        assert float(jax.jit(loss)(x)) == 4.0
        assert float(jax.grad(loss)(x).sum()) == 3.0
        assert float(ug.grad(loss, x).sum()) == 3.0
        try:
            ug.namespace(x, device="gpu")
        except TypeError as err:
            assert "jax.Device" in str(err)
        else:
            raise AssertionError("a device string is not a JAX device")
        """,
        {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
    )


def test_tensorflow_second_logical_cpu() -> None:
    require("tensorflow")
    _run(
        """
        import tensorflow as tf, numpy as np
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import unigrad as ug

        with tf.device("/CPU:1"):
            x = tf.constant([1.0, 2.0, 3.0])
            v = tf.Variable([1.0, 2.0])
        assert x.device.endswith("CPU:1"), x.device
        xp = ug.namespace(x)
        assert xp.device == x.device
        made = {
            "zeros": xp.zeros(2), "ones": xp.ones(2), "eye": xp.eye(3), "arange": xp.arange(4),
            "full": xp.full((2,), 1.5), "asarray list": xp.asarray([1.0, 2.0]),
            "asarray numpy": xp.asarray(np.ones(2)), "zeros_like": xp.zeros_like(x),
            "ones_like": ug.namespace("tf").ones_like(x), "asarray cast": xp.asarray(x, dtype=tf.float64),
        }
        for name, tensor in made.items():
            assert tensor.device.endswith("CPU:1"), (name, tensor.device)
        on_first = tf.constant([1.0])
        assert on_first.device.endswith("CPU:0")
        assert xp.asarray(on_first).device.endswith("CPU:0")  # an existing tensor keeps its device
        assert xp.zeros(2, device="/CPU:0").device.endswith("CPU:0")  # explicit device= wins
        assert ug.namespace(x, device="/CPU:0").eye(2).device.endswith("CPU:0")

        assert ug.namespace(v) is xp and ug.namespace({"w": x}) is xp
        import keras  # Keras 3, which TensorFlow installs: its variables wrap a tf.Variable

        with tf.device("/CPU:1"):
            keras_variable = keras.Variable([1.0, 2.0])
        assert ug.namespace(keras_variable) is xp
        assert ug.namespace(on_first) is ug.namespace("tensorflow") and ug.namespace("tf").device is None
        assert ug.namespace(on_first) is not xp

        @tf.function
        def loss(w):
            xp = ug.namespace(w)  # a symbolic tensor: TensorFlow places
            return xp.sum(w * xp.ones(3))

        assert float(loss(x)) == 6.0
        assert float(ug.grad(lambda w: ug.namespace(w).sum(w * ug.namespace(w).eye(3)[0]), x)[0]) == 1.0
        """,
        {"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
