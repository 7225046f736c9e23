"""Bad input gets a typed UnigradError naming the leaf, the backend and the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import require
from frameworks import Ops, make

import unigrad as ug


def _square_sum(backend: str):
    ops = Ops(backend)
    return lambda p: ops.sum(p["w"] ** 2)


def test_numpy_params_without_backend() -> None:
    with pytest.raises(ug.BackendRequiredError, match="backend='torch', 'tensorflow', 'jax' or 'mlx'"):
        ug.grad(lambda p: np.sum(p**2), {"w": np.ones(3)})


def test_unknown_backend_name() -> None:
    with pytest.raises(ug.UnknownBackendError, match=r"unknown backend 'mxnet'.*'torch'"):
        ug.grad(lambda p: np.sum(p**2), np.ones(3), backend="mxnet")
    with pytest.raises(ValueError):  # also a ValueError, as users would catch it
        ug.grad(lambda p: np.sum(p**2), np.ones(3), backend="mxnet")


def test_backend_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from unigrad import _dispatch, backends

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(backends, "_adapters", {})
    monkeypatch.setattr(_dispatch, "_routes", {})  # an earlier call's route holds the adapter
    monkeypatch.setattr(_dispatch, "_flat_routes", {})
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "jax" else real_find_spec(name, *a),
    )
    with pytest.raises(ug.BackendNotInstalledError, match=re.escape("pip install 'unigrad[jax]'")):
        ug.grad(lambda p: np.sum(p**2), np.ones(3, dtype=np.float32), backend="jax")
    assert "jax" not in ug.installed_backends()


def test_mixed_backends_name_both_leaves() -> None:
    require("torch", "jax")
    import jax.numpy as jnp
    import torch

    params = {"a": torch.ones(2), "b": [jnp.ones(2)]}
    with pytest.raises(ug.MixedBackendsError) as info:
        ug.grad(lambda p: p["a"].sum(), params)
    message = str(info.value)
    assert "params['a']" in message and "torch" in message
    assert "params['b'][0]" in message and "jax" in message
    assert "backend=" in message


@pytest.mark.parametrize(
    ("value", "dtype_text"),
    [([1, 2], "int"), ([True, False], "bool")],
)
def test_integer_and_bool_params(backend: str, value: list, dtype_text: str) -> None:
    params = {"dense": {"w": make(backend, [1.0]), "steps": make(backend, value)}}
    with pytest.raises(ug.InvalidParamsError) as info:
        ug.grad(lambda p: p["dense"]["w"], params)
    message = str(info.value)
    assert "params['dense']['steps']" in message
    assert dtype_text in message and backend in message
    assert "cast it to a float dtype" in message


def test_string_and_number_params_are_not_arrays(backend: str) -> None:
    for bad in ("abc", 3.0):
        with pytest.raises(ug.InvalidParamsError, match=r"params\['name'\] is a (str|float)"):
            ug.grad(lambda p: p["w"], {"w": make(backend, 1.0), "name": bad})


def test_integer_params_rejected_naming_the_dtypes_allowed() -> None:
    # Complex params are differentiated since issue 12 (tests/test_complex.py); integers still are not.
    with pytest.raises(ug.InvalidParamsError, match=r"params\['k'\].*int64.*complex64, complex128"):
        ug.grad(lambda p: np.abs(p["k"]).sum(), {"k": np.ones(2, dtype=np.int64)}, backend="numpy")


def test_loss_not_scalar(backend: str) -> None:
    with pytest.raises(ug.InvalidLossError, match=r"shape \(3,\).*reduce it"):
        ug.grad(lambda p: p["w"] * 2.0, {"w": make(backend, [1.0, 2.0, 3.0])})


def test_loss_not_an_array(backend: str) -> None:
    with pytest.raises(ug.InvalidLossError, match=f"on backend '{backend}'.*not a Python number"):
        ug.grad(lambda p: 1.5, {"w": make(backend, [1.0])})


def test_loss_complex(backend: str) -> None:
    z = make(backend, 1.0 + 2.0j)
    with pytest.raises(ug.InvalidLossError, match=r"complex(128|64) loss.*real part"):  # MLX: 64 only
        ug.grad(lambda p: z, {"w": make(backend, [1.0])})


def test_loss_integer(backend: str) -> None:
    k = make(backend, 3)
    with pytest.raises(ug.InvalidLossError, match=r"int.*floating"):
        ug.grad(lambda p: k, {"w": make(backend, [1.0])})


def test_has_aux_without_pair(backend: str) -> None:
    with pytest.raises(ug.InvalidAuxError, match=f"has_aux=True.*backend '{backend}'.*pair"):
        ug.grad(_square_sum(backend), {"w": make(backend, [1.0])}, has_aux=True)


def test_pair_without_has_aux_suggests_it(backend: str) -> None:
    ops = Ops(backend)
    with pytest.raises(ug.InvalidLossError, match="has_aux=True"):
        ug.grad(lambda p: (ops.sum(p["w"]), "aux"), {"w": make(backend, [1.0])})


def test_loss_fn_not_callable() -> None:
    with pytest.raises(ug.NotCallableError, match="loss_fn must be callable"):
        ug.grad("not a function", {"w": np.ones(1)}, backend="numpy")  # type: ignore[arg-type]


@pytest.mark.parametrize("empty", [{}, [], (), {"a": None}, {"a": [None, {}]}])
def test_empty_params(empty) -> None:
    for _ in range(2):  # the second call meets what the first remembered (an empty flat dict)
        with pytest.raises(ug.EmptyParamsError, match="no array leaves"):
            ug.grad(lambda p: np.zeros(()), empty, backend="numpy")


def test_errors_share_one_base_class() -> None:
    for name in ug.__all__:
        obj = getattr(ug, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ug.UnigradError)


def test_jax_float64_numpy_without_x64_keeps_float64() -> None:
    require("jax")
    import jax

    # The verdict follows the mode at call time, not a cached earlier answer; with x64 off, unigrad
    # creates the JAX arrays under a scoped x64 (issue 12) and leaves the mode as it found it.
    with jax.enable_x64(True):
        ug.grad(lambda p: (p["w"] ** 2).sum(), {"w": np.ones(2)}, backend="jax")
    with jax.enable_x64(False):
        g = ug.grad(lambda p: (p["w"] ** 2).sum(), {"w": np.ones(2)}, backend="jax")
        assert g["w"].dtype == np.float64 and np.array_equal(g["w"], [2.0, 2.0])
        assert not jax.config.jax_enable_x64
        g = ug.grad(lambda p: (p["w"] ** 2).sum(), {"w": np.ones(2, np.float32)}, backend="jax")
        assert g["w"].dtype == np.float32


def test_user_exception_propagates_unchanged(backend: str) -> None:
    def broken(p):
        raise KeyError("missing feature")

    with pytest.raises(KeyError, match="missing feature"):
        ug.grad(broken, {"w": make(backend, [1.0])})


def test_reference_grad_rejects_integer_params_as_grad_does() -> None:
    # The float64 conversion keeps integer leaves integer, so the oracle refuses what backends refuse.
    with pytest.raises(ug.InvalidParamsError, match=r"params\['n'\].*int64"):
        ug.reference_grad(lambda p: np.sum(p["n"] * 1.0), {"n": np.array([1, 2], dtype=np.int64)})
