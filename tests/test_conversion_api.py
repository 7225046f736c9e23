"""The public conversion API: ``ug.to_backend`` and ``ug.to_numpy``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import require


def test_import_unigrad_imports_no_framework_and_exports_lazily() -> None:
    code = (
        "import sys, unigrad as ug; assert callable(ug.to_backend) and callable(ug.to_numpy); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert {"to_backend", "to_numpy", "ConversionError"} <= set(ug.__all__)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
def test_round_trip_keeps_values_dtype_and_structure(backend: str, dtype: str) -> None:
    tree = {"w": np.arange(6).reshape(2, 3).astype(dtype), "rest": [np.array(2, dtype), "label", 3.5, None]}
    converted = ug.to_backend(tree, backend)
    adapter = ug.backends.get_adapter(backend)
    assert adapter.is_array(converted["w"]) and adapter.dtype_name(converted["w"]) == dtype
    assert converted["rest"][1:] == ["label", 3.5, None]
    back = ug.to_numpy(converted)
    assert type(back["w"]) is np.ndarray and back["w"].dtype == dtype
    np.testing.assert_array_equal(back["w"], tree["w"])
    np.testing.assert_array_equal(back["rest"][0], tree["rest"][0])


def test_float64_into_jax_without_x64_keeps_float64() -> None:
    require("jax")
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        converted = ug.to_backend({"x": np.array([1.0 + 1e-12]), "n": np.array([2**40])}, "jax")
        assert str(converted["x"].dtype) == "float64" and str(converted["n"].dtype) == "int64"
        assert ug.to_numpy(converted)["x"][0] == 1.0 + 1e-12
        assert jax.config.jax_enable_x64 is False
    finally:
        jax.config.update("jax_enable_x64", before)


def test_numpy_to_torch_and_back_share_memory() -> None:
    require("torch")
    x = np.zeros(4)
    tensor = ug.to_backend(x, "torch")
    tensor[0] = 7.0
    assert x[0] == 7.0
    back = ug.to_numpy(tensor)
    back[1] = 8.0
    assert float(tensor[1]) == 8.0


def test_between_frameworks(backend: str) -> None:
    require("torch")
    import torch

    source = torch.arange(4, dtype=torch.float64)
    converted = ug.to_backend({"t": source}, backend)["t"]
    np.testing.assert_array_equal(ug.to_numpy(converted), np.arange(4.0))
    assert ug.backends.get_adapter(backend).dtype_name(converted) == "float64"


def test_to_numpy_detaches_and_passes_numpy_through() -> None:
    require("torch")
    import torch

    x = np.ones(2)
    out = ug.to_numpy({"p": torch.ones(2, requires_grad=True) * 2, "x": x})
    np.testing.assert_array_equal(out["p"], [2.0, 2.0])
    assert out["x"] is x


def test_evaluate_a_cost_with_numpy_in_and_out(backend: str) -> None:
    # What a framework-agnostic solver does: NumPy point -> the user's framework -> NumPy value.
    def cost(p: dict) -> object:
        xp = ug.namespace(p["x"])
        return xp.sum(p["x"] ** 2)

    point = {"x": np.array([1.0, 2.0], np.float32)}
    value = ug.to_numpy(cost(ug.to_backend(point, backend)))
    assert isinstance(value, np.ndarray) and value.dtype == np.float32 and float(value) == 5.0


def test_errors_name_the_leaf() -> None:
    require("torch")
    with pytest.raises(ug.ConversionError, match=r"tree\['b'\]\[1\] is a numpy ndarray of dtype str.*torch"):
        ug.to_backend({"a": np.ones(1), "b": [np.ones(1), np.array(["text"])]}, "torch")
    with pytest.raises(ug.UnknownBackendError, match="unknown backend 'mxnet'"):
        ug.to_backend(np.ones(1), "mxnet")


def test_to_backend_numpy_is_to_numpy() -> None:
    require("torch")
    import torch

    out = ug.to_backend({"x": torch.ones(3)}, "numpy")["x"]
    assert type(out) is np.ndarray and out.dtype == np.float32
