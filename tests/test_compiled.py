"""value_and_grad_fn: same results as value_and_grad, compiled once per signature, never retraced."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from conftest import require
from frameworks import make, to_numpy, tolerance

import unigrad as ug

# torch.compile's Inductor backend costs seconds per graph on this CPU; tests about caching and
# retracing use the AOT-eager backend (same Dynamo tracing and guards, no C++ code generation), and
# one test compiles with the default Inductor backend.
FAST_TORCH = {"backend": "aot_eager"}


class TraceCounter:
    """Counts traces: a Python side effect in the loss runs only while JAX or TensorFlow trace it.

    Dynamo instead replays Python side effects on every call, so on PyTorch the count is the number
    of graphs Dynamo compiled (``torch._dynamo.utils.counters``).
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.python_traces = 0
        if backend == "torch":
            from torch._dynamo.utils import counters

            self._counters = counters
            self._start = counters["stats"]["unique_graphs"]

    @property
    def count(self) -> int:
        if self.backend == "torch":
            return self._counters["stats"]["unique_graphs"] - self._start
        return self.python_traces

    def loss(self, params: Any, data: Any) -> Any:
        if self.backend != "torch":
            self.python_traces += 1
        xp = ug.namespace(params)
        prediction = xp.tanh(xp.matmul(data["x"], params["w"]) + params["b"])
        return xp.mean((prediction - data["y"]) ** 2)


def _problem(
    backend: str, rng: np.random.Generator, rows: int = 4, dtype: str = "float32"
) -> tuple[dict, dict]:
    params = {"w": make(backend, rng.normal(size=(3, 2)), dtype), "b": make(backend, np.zeros(2), dtype)}
    data = {
        "x": make(backend, rng.normal(size=(rows, 3)), dtype),
        "y": make(backend, rng.normal(size=(rows, 2)), dtype),
    }
    return params, data


def _options(backend: str) -> dict[str, Any]:
    return FAST_TORCH if backend == "torch" else {}


@pytest.fixture
def no_fallback() -> Iterator[None]:
    """Compiling must work here: a fallback to eager would be a failure of these tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ug.CompileFallbackWarning)
        yield


def _assert_same(got: tuple[Any, Any], want: tuple[Any, Any], dtype: str = "float32") -> None:
    np.testing.assert_allclose(to_numpy(got[0]), to_numpy(want[0]), **tolerance(dtype))
    for name in want[1]:
        np.testing.assert_allclose(to_numpy(got[1][name]), to_numpy(want[1][name]), **tolerance(dtype))


@pytest.mark.parametrize("jit", [False, True])
def test_step_matches_value_and_grad(
    backend: str, jit: bool, rng: np.random.Generator, no_fallback: None
) -> None:
    counter = TraceCounter(backend)
    params, data = _problem(backend, rng)
    step = ug.value_and_grad_fn(counter.loss, jit=jit, jit_options=_options(backend))
    got = step(params, data)
    _assert_same(got, ug.value_and_grad(counter.loss, params, data))
    assert type(got[1]["w"]) is type(params["w"]) and got[1]["w"].dtype == params["w"].dtype


def test_no_retrace_in_100_calls_and_one_per_new_signature(
    backend: str, rng: np.random.Generator, no_fallback: None
) -> None:
    counter = TraceCounter(backend)
    step = ug.value_and_grad_fn(counter.loss, jit=True, jit_options=_options(backend))
    params, data = _problem(backend, rng)
    for _ in range(100):
        step(params, data)
    assert (counter.count, step.cache_size) == (1, 1)

    other_params, other_data = _problem(backend, rng)  # new values, same signature: no retrace
    for _ in range(10):
        step(other_params, other_data)
    assert counter.count == 1

    step(params, _problem(backend, rng, rows=7)[1])  # a new shape
    assert (counter.count, step.cache_size) == (2, 2)
    step({**params, "extra": params["b"]}, data)  # a new structure
    assert (counter.count, step.cache_size) == (3, 3)
    step(*_problem(backend, rng, dtype="float64"))  # a new dtype
    assert (counter.count, step.cache_size) == (4, 4)
    for _ in range(20):  # every signature seen before runs without tracing again
        step(params, data)
        step({**params, "extra": params["b"]}, data)
    assert counter.count == 4


def test_torch_compiles_with_inductor_on_this_platform(rng: np.random.Generator, no_fallback: None) -> None:
    require("torch")
    counter = TraceCounter("torch")
    params, data = _problem("torch", rng)
    step = ug.value_and_grad_fn(counter.loss, jit=True)
    for _ in range(5):
        loss, grads = step(params, data)
    _assert_same((loss, grads), ug.value_and_grad(counter.loss, params, data))
    assert counter.count == 1


def test_has_aux_carries_arrays_and_python_values(
    backend: str, rng: np.random.Generator, no_fallback: None
) -> None:
    def loss(params: Any, data: Any) -> Any:
        xp = ug.namespace(params)
        prediction = xp.matmul(data["x"], params["w"])
        return xp.mean(prediction**2), {"prediction": prediction, "note": "text", "count": 3}

    params, data = _problem(backend, rng)
    step = ug.value_and_grad_fn(loss, has_aux=True, jit=True, jit_options=_options(backend))
    for _ in range(2):  # the second call runs the compiled code
        (value, aux), grads = step(params, data)
    (want_value, want_aux), want_grads = ug.value_and_grad(loss, params, data, has_aux=True)
    assert aux["note"] == "text" and aux["count"] == 3
    np.testing.assert_allclose(to_numpy(aux["prediction"]), to_numpy(want_aux["prediction"]), rtol=1e-6)
    _assert_same((value, grads), (want_value, want_grads))


def test_numpy_params_with_backend_come_back_as_numpy(backend: str, rng: np.random.Generator) -> None:
    params = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": np.zeros(2, np.float32)}
    data = {"x": rng.normal(size=(4, 3)).astype(np.float32), "y": np.zeros((4, 2), np.float32)}
    counter = TraceCounter(backend)
    for jit in (False, True):
        step = ug.value_and_grad_fn(counter.loss, backend=backend, jit=jit, jit_options=_options(backend))
        loss, grads = step(params, data)
        assert isinstance(grads["w"], np.ndarray) and grads["w"].dtype == np.float32
        want = ug.value_and_grad(counter.loss, params, data, backend=backend)
        _assert_same((loss, grads), want)


def test_static_data_leaves_are_constants_keyed_by_value(backend: str, rng: np.random.Generator) -> None:
    def loss(params: Any, data: Any) -> Any:
        return ug.namespace(params).sum(params["w"] ** 2) * data["scale"]

    params = {"w": make(backend, rng.normal(size=3))}
    step = ug.value_and_grad_fn(loss, jit=True, jit_options=_options(backend))
    first = to_numpy(step(params, {"scale": 2.0})[1]["w"])
    second = to_numpy(step(params, {"scale": 3.0})[1]["w"])
    np.testing.assert_allclose(second, first * 1.5)
    assert step.cache_size == 2
    step.clear_cache()
    assert step.cache_size == 0


def test_unhashable_static_data_is_a_typed_error(backend: str) -> None:
    step = ug.value_and_grad_fn(lambda p, d: ug.namespace(p).sum(p**2), jit=True)
    with pytest.raises(ug.InvalidDataError, match=r"data\['tags'\] is an unhashable set"):
        step(make(backend, np.ones(2)), {"tags": {"a"}})


def test_bad_loss_raises_the_same_typed_error_under_jit(backend: str) -> None:
    step = ug.value_and_grad_fn(lambda p: p * 2, jit=True, jit_options=_options(backend))
    with pytest.raises(ug.InvalidLossError, match=r"loss of shape \(3,\)"):
        step(make(backend, np.ones(3)))
    with pytest.raises(ug.NotCallableError):
        ug.value_and_grad_fn("loss")  # type: ignore[arg-type]
    with pytest.raises(ug.UnknownBackendError):
        ug.value_and_grad_fn(lambda p: p, backend="mxnet")


def test_compile_failure_falls_back_to_eager_with_one_warning(rng: np.random.Generator) -> None:
    require("torch")

    def broken_compiler(graph: Any, example_inputs: Any) -> Callable[..., Any]:
        raise RuntimeError("no C++ compiler on this machine")

    counter = TraceCounter("torch")
    params, data = _problem("torch", rng)
    step = ug.value_and_grad_fn(counter.loss, jit=True, jit_options={"backend": broken_compiler})
    with pytest.warns(ug.CompileFallbackWarning, match="no C\\+\\+ compiler.*runs eagerly instead"):
        result = step(params, data)
    _assert_same(result, ug.value_and_grad(counter.loss, params, data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ug.CompileFallbackWarning)  # one warning per step, not per call
        step(params, data)
        step(params, _problem("torch", rng, rows=6)[1])


def test_untraceable_python_control_flow_falls_back(backend: str) -> None:
    def loss(p: Any) -> Any:
        total = ug.namespace(p).sum(p**2)
        return total if total > 1 else -total  # a Python branch on a value

    step = ug.value_and_grad_fn(loss, jit=True, jit_options=_options(backend))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, grads = step(make(backend, np.ones(3)))
    np.testing.assert_allclose(to_numpy(grads), 2 * np.ones(3))
    fallbacks = [w for w in caught if issubclass(w.category, ug.CompileFallbackWarning)]
    # jax.jit and tf.function refuse the branch; Dynamo splits the graph around it instead.
    assert len(fallbacks) == (0 if backend == "torch" else 1)


def test_inputs_are_not_mutated(backend: str, rng: np.random.Generator) -> None:
    params, data = _problem(backend, rng)
    before = [to_numpy(x).copy() for x in [*params.values(), *data.values()]]
    for jit in (False, True):
        ug.value_and_grad_fn(TraceCounter(backend).loss, jit=jit, jit_options=_options(backend))(params, data)
    for old, new in zip(before, [to_numpy(x) for x in [*params.values(), *data.values()]], strict=True):
        np.testing.assert_array_equal(old, new)
    if backend == "torch":
        import torch

        leaf = torch.ones(2, requires_grad=True)
        ug.value_and_grad_fn(lambda p: (p**2).sum(), jit=True, jit_options=FAST_TORCH)(leaf)
        assert leaf.grad is None and leaf.requires_grad


def test_tensorflow_compiled_step_reads_variables_at_call_time() -> None:
    require("tensorflow")
    import tensorflow as tf

    step = ug.value_and_grad_fn(lambda p, d: tf.reduce_sum(p["w"] ** 2 * d), jit=True)
    params = {"w": tf.Variable([1.0, 2.0])}
    data = tf.constant([1.0, 3.0])
    loss, grads = step(params, data)
    assert float(loss) == 13.0 and grads["w"].numpy().tolist() == [2.0, 12.0]
    params["w"].assign([2.0, 2.0])  # the compiled step must see the new value, not a traced constant
    loss, grads = step(params, data)
    assert float(loss) == 16.0 and grads["w"].numpy().tolist() == [4.0, 12.0]


# -- JAX: steps keyed by structure, jax.jit keying shapes and dtypes (unigrad._compiled_by_structure) --


def test_jax_step_after_jax_arrays_still_rejects_numpy_params_without_backend(
    rng: np.random.Generator,
) -> None:
    require("jax")
    counter = TraceCounter("jax")
    step = ug.value_and_grad_fn(counter.loss, jit=True)
    params, data = _problem("jax", rng)
    step(params, data)
    numpy_params = {name: np.asarray(value) for name, value in params.items()}
    # jax.jit itself would take NumPy arrays and hand back JAX gradients: the type guard must not.
    with pytest.raises(ug.BackendRequiredError):
        step(numpy_params, data)
    numpy_data = {name: np.asarray(value) for name, value in data.items()}
    loss, grads = step(params, numpy_data)  # NumPy data with JAX params: converted, as on the keyed path
    _assert_same((loss, grads), ug.value_and_grad(counter.loss, params, data))


def test_jax_step_checks_a_new_dtype_while_tracing(rng: np.random.Generator) -> None:
    require("jax")
    import jax.numpy as jnp

    step = ug.value_and_grad_fn(lambda p, d: jnp.sum((d["x"] @ p["w"]) ** 2), jit=True)
    data = {"x": jnp.ones((2, 3))}
    step({"w": jnp.ones((3, 2))}, data)
    with pytest.raises(ug.InvalidParamsError, match=r"params\['w'\].*int32"):
        step({"w": jnp.ones((3, 2), dtype=jnp.int32)}, data)


def test_jax_step_gradients_follow_new_values_shapes_and_structures(rng: np.random.Generator) -> None:
    require("jax")
    counter = TraceCounter("jax")
    step = ug.value_and_grad_fn(counter.loss, jit=True)
    for rows in (4, 4, 7, 4):
        params, data = _problem("jax", rng, rows=rows)
        _assert_same(step(params, data), ug.value_and_grad(counter.loss, params, data))
    params, data = _problem("jax", rng)
    extra = {**params, "unused": params["b"]}
    _, grads = step(extra, data)
    assert sorted(grads) == ["b", "unused", "w"]
    np.testing.assert_array_equal(to_numpy(grads["unused"]), np.zeros(2))
    assert step.cache_size == 3  # two shapes, then a new structure


def test_jax_step_inside_a_users_jit_takes_the_keyed_path(rng: np.random.Generator) -> None:
    require("jax")
    import jax

    counter = TraceCounter("jax")
    step = ug.value_and_grad_fn(counter.loss, jit=True)
    params, data = _problem("jax", rng)
    step(params, data)  # primes the structure-keyed entry with concrete arrays
    outer = jax.jit(lambda p, d: step(p, d))  # tracers are not the entry's leaf types
    _assert_same(outer(params, data), ug.value_and_grad(counter.loss, params, data))


def test_jax_step_with_array_aux_is_traced_once_and_python_aux_still_works(rng: np.random.Generator) -> None:
    require("jax")
    counter = TraceCounter("jax")

    def with_metrics(params: Any, data: Any) -> Any:
        loss = counter.loss(params, data)
        return loss, {"loss_twice": 2 * loss, "w_norm": ug.namespace(params).sum(params["w"] ** 2)}

    step = ug.value_and_grad_fn(with_metrics, has_aux=True, jit=True)
    params, data = _problem("jax", rng)
    for _ in range(20):
        (loss, aux), grads = step(params, data)
    assert (counter.count, step.cache_size) == (1, 1)
    (want_loss, want_aux), want_grads = ug.value_and_grad(with_metrics, params, data, has_aux=True)
    np.testing.assert_allclose(to_numpy(aux["loss_twice"]), to_numpy(want_aux["loss_twice"]), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(aux["w_norm"]), to_numpy(want_aux["w_norm"]), rtol=1e-6)
    _assert_same((loss, grads), (want_loss, want_grads))

    def with_text(params: Any, data: Any) -> Any:  # a str in aux cannot leave a trace: keyed path
        return counter.loss(params, data), {"note": "text"}

    text_step = ug.value_and_grad_fn(with_text, has_aux=True, jit=True)
    for _ in range(3):
        (_, aux), _ = text_step(params, data)
    assert aux == {"note": "text"} and text_step.cache_size == 1
