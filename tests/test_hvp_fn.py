"""``ug.hvp_fn`` (compiled Hessian-vector products), ``has_aux`` on the transforms, and torch's
reverse-over-reverse ``hvp``; every product checked against the closed form of a matrix cost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import count_conversions, require
from tests.frameworks import tolerance

RNG = np.random.default_rng(7)
SYMMETRIC = RNG.normal(size=(6, 6))
SYMMETRIC = SYMMETRIC + SYMMETRIC.T


def cost(params: dict, data: dict) -> Any:
    """-trace(XᵀAX) + sum(b³): Hessian-vector product -2AV and 6 b v in closed form."""
    xp = ug.namespace(params["X"])
    return -xp.sum(params["X"] * (data["A"] @ params["X"])) + xp.sum(params["b"] ** 3)


def cost_with_aux(params: dict, data: dict) -> Any:
    xp = ug.namespace(params["X"])
    return cost(params, data), {"norm": xp.sum(params["X"] ** 2), "label": "X"}


def closed_form(params: dict, vector: dict) -> dict:
    return {"X": -2 * SYMMETRIC @ vector["X"], "b": 6 * params["b"] * vector["b"]}


def inputs(dtype: str = "float64", rows: int = 6) -> tuple[dict, dict, dict]:
    params = {"X": RNG.normal(size=(rows, 3)).astype(dtype), "b": RNG.normal(size=2).astype(dtype)}
    vector = {"X": RNG.normal(size=(rows, 3)).astype(dtype), "b": RNG.normal(size=2).astype(dtype)}
    return params, vector, {"A": SYMMETRIC[:rows, :rows].astype(dtype)}


def assert_close(got: dict, want: dict, dtype: str = "float64") -> None:
    for key, value in want.items():
        assert type(got[key]) is np.ndarray and got[key].dtype == np.dtype(dtype), (key, type(got[key]))
        np.testing.assert_allclose(got[key], value, **tolerance(dtype))


@pytest.mark.parametrize("jit", [False, True])
def test_hvp_fn_numpy_in_numpy_out(backend: str, jit: bool) -> None:
    product = ug.hvp_fn(cost, backend=backend, jit=jit)
    for _ in range(3):
        params, vector, data = inputs()
        assert_close(product(params, vector, data), closed_form(params, vector))
    assert product.cache_size == 1
    params, vector, data = inputs("float32")
    assert_close(product(params, vector, data), closed_form(params, vector), "float32")
    assert product.cache_size == 2
    assert "signatures=2" in repr(product)


def test_hvp_fn_native_tensors_keep_their_framework(backend: str) -> None:
    from tests.frameworks import make, to_numpy

    params, vector, data = inputs("float32")
    native = [{k: make(backend, v, "float32") for k, v in tree.items()} for tree in (params, vector, data)]
    result = ug.hvp_fn(cost, jit=backend != "torch")(*native)  # torch.compile: one case below
    for key, value in closed_form(params, vector).items():
        assert ug.backends.backend_name_of(result[key]) == backend
        np.testing.assert_allclose(to_numpy(result[key]), value, **tolerance("float32"))


def test_hvp_fn_has_aux(backend: str) -> None:
    params, vector, data = inputs()
    product, aux = ug.hvp_fn(cost_with_aux, backend=backend, jit=backend != "torch", has_aux=True)(
        params, vector, data
    )
    assert_close(product, closed_form(params, vector))
    assert aux["label"] == "X"
    np.testing.assert_allclose(aux["norm"], np.sum(params["X"] ** 2), rtol=1e-12)


def test_hvp_fn_torch_compiled() -> None:
    require("torch")
    import torch

    params, vector, data = inputs("float32")
    as_torch = [{k: torch.from_numpy(v) for k, v in tree.items()} for tree in (params, vector, data)]
    product = ug.hvp_fn(cost, jit=True)
    for _ in range(2):
        result = product(*as_torch)
    for key, value in closed_form(params, vector).items():
        np.testing.assert_allclose(result[key].numpy(), value, **tolerance("float32"))
    assert product.cache_size == 1


def test_hvp_fn_jax_traces_once_per_signature() -> None:
    require("jax")
    traces = []

    def counted(params: dict, data: dict) -> Any:
        traces.append(1)
        return cost(params, data)

    product = ug.hvp_fn(counted, backend="jax")
    for _ in range(4):
        product(*inputs())
    assert product.cache_size == 1
    assert len(traces) == 1


def test_hvp_fn_checks_the_vector_once_per_key(backend: str) -> None:
    params, vector, data = inputs()
    with pytest.raises(ug.StructureMismatchError, match=r"vector\['X'\] has shape"):
        ug.hvp_fn(cost, backend=backend, jit=False)(params, {"X": np.ones((2, 3)), "b": vector["b"]}, data)
    with pytest.raises(ug.NotCallableError):
        ug.hvp_fn(3)


@pytest.mark.parametrize("backend_name", ["torch", "tensorflow", "jax", "numpy"])
def test_transforms_has_aux(backend_name: str) -> None:
    if backend_name != "numpy":
        require(backend_name)
    params, vector, data = inputs(rows=3)

    def out_with_aux(p: dict, d: dict) -> Any:
        return {"y": d["A"] @ p["X"]}, {"norm": ug.namespace(p["X"]).sum(p["X"] ** 2), "label": "y"}

    want_norm = np.sum(params["X"] ** 2)
    _, tangent, aux = ug.jvp(out_with_aux, params, vector, data, backend=backend_name, has_aux=True)
    np.testing.assert_allclose(tangent["y"], data["A"] @ vector["X"], rtol=1e-6)
    assert aux["label"] == "y" and np.isclose(aux["norm"], want_norm)
    _, pulled, aux = ug.vjp(
        out_with_aux, params, {"y": np.ones((3, 3))}, data, backend=backend_name, has_aux=True
    )
    np.testing.assert_allclose(pulled["X"], data["A"].T @ np.ones((3, 3)), rtol=1e-6)
    assert np.isclose(aux["norm"], want_norm)
    jac, aux = ug.jacobian(out_with_aux, params, data, backend=backend_name, has_aux=True)
    assert jac["y"]["X"].shape == (3, 3, 3, 3) and np.isclose(aux["norm"], want_norm)
    hess, aux = ug.hessian(cost_with_aux, params, data, backend=backend_name, has_aux=True)
    np.testing.assert_allclose(hess["b"]["b"], np.diag(6 * params["b"]), rtol=1e-6, atol=1e-6)
    assert np.isclose(aux["norm"], want_norm)
    product, aux = ug.hvp(cost_with_aux, params, vector, data, backend=backend_name, has_aux=True)
    np.testing.assert_allclose(product["b"], 6 * params["b"] * vector["b"], rtol=1e-6)
    assert np.isclose(aux["norm"], want_norm) and aux["label"] == "X"


def test_has_aux_without_a_pair_says_so(backend: str) -> None:
    params, vector, data = inputs()
    with pytest.raises(ug.InvalidAuxError, match="has_aux=True"):
        ug.hvp(cost, params, vector, data, backend=backend, has_aux=True)
    with pytest.raises(ug.InvalidAuxError, match="has_aux=True"):
        ug.jvp(lambda p, d: p["X"], params, vector, data, backend=backend, has_aux=True)


def test_torch_hvp_reverse_over_reverse_paths() -> None:
    require("torch")
    import torch

    x, v = torch.tensor([1.0, 2.0]), torch.tensor([1.0, -1.0])
    linear_and_cubic = {"a": x, "b": x.clone()}
    product = ug.hvp(lambda p: (p["a"] ** 3).sum() + p["b"].sum(), linear_and_cubic, {"a": v, "b": v})
    torch.testing.assert_close(product["a"], 6 * x * v)
    torch.testing.assert_close(product["b"], torch.zeros(2))  # a gradient with no graph: zero
    torch.testing.assert_close(ug.hvp(lambda p: p.sum(), x, v), torch.zeros(2))
    with torch.inference_mode():
        torch.testing.assert_close(ug.hvp(lambda p: (p**3).sum(), x, v), 6 * x * v)
    # Inside torch.func.vmap autograd.grad cannot run: the torch.func path takes over.
    batched = torch.func.vmap(lambda u: ug.hvp(lambda p: (p**3).sum(), x, u))(torch.eye(2))
    torch.testing.assert_close(batched, torch.diag(6 * x))
    assert not x.requires_grad and x.grad is None


def test_torch_transforms_raise_no_deprecation_warning_on_first_use() -> None:
    require("torch")
    code = (
        "import torch, unigrad as ug\n"
        "x = torch.ones(3)\n"
        "ug.hvp(lambda p: (p ** 3).sum(), x, x)\n"
        "ug.jvp(lambda p: p ** 2, x, x)\n"
        "ug.hessian(lambda p: (p ** 3).sum(), x)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("jit", [False, True])
def test_hvp_fn_bare_calls_switching_shapes_dtypes_and_kinds(backend: str, jit: bool) -> None:
    # A bare point and direction without data take a remembered route from the second call on: it
    # must follow new shapes and dtypes, NumPy inputs, and still refuse a direction unlike the point.
    from unigrad.backends import get_adapter

    adapter = get_adapter(backend)
    # aot_eager: torch.compile's tracing and guards without inductor's code generation (fast to compile)
    options = {"backend": "aot_eager"} if backend == "torch" else None
    product = ug.hvp_fn(lambda x: ug.namespace(x).sum(x**3), backend=backend, jit=jit, jit_options=options)
    cases = [(3, "float32"), (3, "float32"), (5, "float32"), (3, "float64"), (3, "float32")]
    for size, dtype in cases:
        x, v = RNG.normal(size=size).astype(dtype), RNG.normal(size=size).astype(dtype)
        got = product(adapter.from_numpy(x), adapter.from_numpy(v))
        assert adapter.dtype_name(got) == dtype
        np.testing.assert_allclose(adapter.to_numpy(got), 6 * x * v, **tolerance(dtype))
        got = product(x, v)  # NumPy in, NumPy out, on the same product
        assert type(got) is np.ndarray and got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, 6 * x * v, **tolerance(dtype))
    x = adapter.from_numpy(np.ones(3, "float32"))
    with pytest.raises(ug.StructureMismatchError, match="vector has shape"):
        product(x, adapter.from_numpy(np.ones(4, "float32")))
    with pytest.raises(ug.DtypeMismatchError, match="vector has dtype float64"):
        product(x, adapter.from_numpy(np.ones(3, "float64")))


@pytest.mark.parametrize("jit", [False, True])
def test_hvp_fn_bare_calls_keep_their_aux(backend: str, jit: bool) -> None:
    from unigrad.backends import get_adapter

    adapter = get_adapter(backend)
    options = {"backend": "aot_eager"} if backend == "torch" else None

    def cubic_with_aux(x: Any) -> Any:
        total = ug.namespace(x).sum(x**3)
        return total, {"total": total}

    product = ug.hvp_fn(cubic_with_aux, backend=backend, has_aux=True, jit=jit, jit_options=options)
    x, v = np.array([1.0, 2.0], "float32"), np.array([1.0, -1.0], "float32")
    for _ in range(3):  # the later calls take the remembered bare route
        got, aux = product(adapter.from_numpy(x), adapter.from_numpy(v))
        np.testing.assert_allclose(adapter.to_numpy(got), 6 * x * v, **tolerance("float32"))
        np.testing.assert_allclose(adapter.to_numpy(aux["total"]), 9.0, **tolerance("float32"))


def test_hvp_fn_bare_route_falls_back_when_the_compiler_refuses_a_later_call() -> None:
    """JAX's bare calls go straight to the compiled product; when it raises for a later call (a new
    shape the compiler refuses), that call and the later ones take the keyed path, which compiles
    per signature or runs eagerly, and the product is still right."""
    require("jax")
    import jax.numpy as jnp

    def cubes(p: Any) -> Any:
        return jnp.sum(p**3)

    product = ug.hvp_fn(cubes, jit=True)
    short = jnp.array([1.0, 2.0])
    for _ in range(2):  # the second call takes the bare route
        np.testing.assert_allclose(np.asarray(product(short, short)), [6.0, 24.0])
    (entry,) = product._by_structure.values()

    def refused(*args: Any) -> Any:
        raise RuntimeError("the compiler refuses this shape")

    entry.run = refused
    long = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(product(long, long)), [6.0, 24.0, 54.0])
    assert product._structure_refused and not product._by_structure
    np.testing.assert_allclose(np.asarray(product(short, short)), [6.0, 24.0])  # keyed from now on


def _quadratic_and_cosine(p: Any) -> Any:
    xp = ug.namespace(p)
    return 0.5 * xp.sum(p * p * xp.arange(1.0, p.shape[0] + 1.0, dtype=p.dtype)) + xp.sum(xp.cos(p))


def test_hvp_fn_numpy_float64_goes_to_jax_jit_unconverted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A solver's float64 NumPy point and vector (scipy's trust-ncg ``hessp``): handed to ``jax.jit``
    as they are, inside JAX's 64-bit mode for the call (they were converted per call: 9.5x
    ``jax.jit`` on a 50-element quadratic), with float64 NumPy products."""
    require("jax")

    x, v = np.linspace(-1.0, 1.0, 5), np.linspace(0.5, 1.5, 5)
    product = ug.hvp_fn(_quadratic_and_cosine, backend="jax")
    product(x, v)
    conversions = count_conversions(monkeypatch, "jax")
    for _ in range(2):
        got = product(x * 2, v)
        assert type(got) is np.ndarray and got.dtype == np.float64 and got.flags.writeable
        want = (np.arange(1.0, 6.0) - np.cos(x * 2)) * v  # the Hessian is diagonal here
        np.testing.assert_allclose(got, want, rtol=1e-13)
    assert conversions == [] and product.cache_size == 1


def test_hvp_fn_numpy_of_two_dtypes_traces_each_once() -> None:
    """float64 and float32 NumPy points in turn: each dtype traced once, each product in its dtype
    (the float32 one keyed, outside 64-bit mode, so its arithmetic stays float32)."""
    require("jax")
    traces: list[str] = []

    def loss(p: Any) -> Any:
        traces.append(str(p.dtype))
        return _quadratic_and_cosine(p)

    product = ug.hvp_fn(loss, backend="jax")
    for _ in range(3):
        for dtype in (np.float64, np.float32):
            x = np.linspace(-1.0, 1.0, 4, dtype=dtype)
            got = product(x, np.ones(4, dtype))
            assert got.dtype == dtype
            np.testing.assert_allclose(got, np.arange(1.0, 5.0) - np.cos(x), rtol=1e-5)
    assert traces == ["float64", "float32"]


def test_hvp_fn_numpy_float64_where_64_bit_mode_is_off() -> None:
    """As users run it (64-bit mode off; this test process turns it on): float64 kept, mode off after."""
    require("jax")
    script = """
        import numpy as np, jax, jax.numpy as jnp, unigrad as ug
        product = ug.hvp_fn(lambda p: jnp.sum(jnp.cos(p)), backend="jax")
        x = np.linspace(0.0, 1.0, 3)
        for _ in range(2):
            got = product(x, np.ones(3))
        print(got.dtype, np.allclose(got, -np.cos(x), rtol=1e-14), jax.config.read("jax_enable_x64"))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["float64", "True", "False"]
