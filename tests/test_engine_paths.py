"""The private fast paths under the public differentiation calls give what the public calls give.

TensorFlow's C tape functions (``unigrad.backends._tensorflow_tape``) and torch's autograd engine
(``unigrad.backends._torch_autograd``) are used where a check on a small graph passed; each test
runs the same calls with the fast path in place and with the public call forced, and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import optree
import pytest
from conftest import require

import unigrad as ug


@pytest.fixture
def tensorflow_tape() -> Iterator[Any]:
    """The TensorFlow tape module, restored after a test that forces its public fallback."""
    require("tensorflow")
    from unigrad.backends import _tensorflow_tape

    before = dict(_tensorflow_tape._checked)
    yield _tensorflow_tape
    _tensorflow_tape._checked.clear()
    _tensorflow_tape._checked.update(before)


def _both_ways(tape_module: Any, call: Callable[[], Any]) -> tuple[Any, Any]:
    """``call()`` with the C tape functions, then with ``tf.GradientTape`` forced."""
    assert tape_module.engine(tape_module.SOURCE_TYPES), "the tape functions failed their check on this TF"
    fast = call()
    tape_module._checked.update({False: False, True: False})  # as where the check failed
    public = call()
    return fast, public


def _as_numpy(tree: Any) -> Any:
    import tensorflow as tf

    return optree.tree_map(lambda x: x.numpy() if isinstance(x, (tf.Tensor, tf.Variable)) else x, tree)


def _assert_same(fast: Any, public: Any) -> None:
    fast_leaves, public_leaves = optree.tree_leaves(_as_numpy(fast)), optree.tree_leaves(_as_numpy(public))
    assert len(fast_leaves) == len(public_leaves)
    for a, b in zip(fast_leaves, public_leaves, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and a.shape == b.shape


def test_tensorflow_c_tape_gives_what_gradient_tape_gives(tensorflow_tape: Any) -> None:
    import tensorflow as tf

    x = tf.constant([[1.0, -2.0], [0.5, 3.0]], dtype=tf.float64)
    table = tf.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    params = {
        "x": x,
        "same_x": x,
        "table": table,
        "unused": tf.constant([7.0]),
        "unused_v": tf.Variable([1.0]),
    }

    def loss(p: Any, data: Any) -> Any:
        gathered = tf.gather(p["table"], data)  # its gradient is IndexedSlices
        value = tf.reduce_sum(p["x"] ** 3) + 2.0 * tf.reduce_sum(p["same_x"])
        return tf.cast(value, tf.float32) + tf.reduce_sum(gathered**2), {"rows": gathered}

    fast, public = _both_ways(
        tensorflow_tape, lambda: ug.value_and_grad(loss, params, tf.constant([0, 2, 0]), has_aux=True)
    )
    _assert_same(fast, public)
    (_, _), grads = fast
    assert all(type(g) is type(x) for g in grads.values())  # dense eager tensors, no IndexedSlices
    np.testing.assert_array_equal(grads["unused"].numpy(), [0.0])
    np.testing.assert_array_equal(grads["unused_v"].numpy(), [0.0])
    np.testing.assert_array_equal(grads["table"].numpy(), [[4.0, 8.0], [0.0, 0.0], [10.0, 12.0]])
    np.testing.assert_allclose(grads["x"].numpy(), 3 * x.numpy() ** 2)  # each occurrence its own part
    np.testing.assert_array_equal(grads["same_x"].numpy(), np.full((2, 2), 2.0))


def test_tensorflow_c_tape_stops_recording_when_the_loss_raises(tensorflow_tape: Any) -> None:
    import tensorflow as tf
    from tensorflow.python import pywrap_tfe

    def broken(p: Any) -> Any:
        tf.reduce_sum(p * 2.0)
        raise ValueError("the loss failed")

    with pytest.raises(ValueError, match="the loss failed"):
        ug.grad(broken, tf.constant([1.0]))
    assert pywrap_tfe.TFE_Py_TapeSetIsEmpty()  # no tape left recording on this thread
    np.testing.assert_array_equal(ug.grad(lambda p: tf.reduce_sum(p**2), tf.constant([3.0])).numpy(), [6.0])


def test_tensorflow_c_tape_is_seen_by_an_outer_tape(tensorflow_tape: Any) -> None:
    """Second order through unigrad: a user's tape around the call records the gradient's ops."""
    import tensorflow as tf

    x = tf.constant([1.0, 2.0])

    def second_order() -> Any:
        with tf.GradientTape() as outer:
            outer.watch(x)
            grads = ug.grad(lambda p: tf.reduce_sum(p**3), x)  # 3 x^2
            total = tf.reduce_sum(grads)
        return outer.gradient(total, x)  # 6 x

    fast, public = _both_ways(tensorflow_tape, second_order)
    np.testing.assert_array_equal(fast.numpy(), [6.0, 12.0])
    _assert_same(fast, public)


def test_tensorflow_c_tape_takes_variables_and_leaves_other_sources_to_gradient_tape(
    tensorflow_tape: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eager tensors and plain variables take the C path; a distributed variable (whose watching a
    strategy redirects to its components) goes through tf.GradientTape, with the same gradients."""
    import tensorflow as tf

    recorded: list[list[str]] = []
    real_record = tensorflow_tape.record

    def spy(sources: list[Any]) -> Any:
        recorded.append([type(source).__name__ for source in sources])
        return real_record(sources)

    monkeypatch.setattr("unigrad.backends._tensorflow.record", spy)

    def loss(p: Any) -> Any:
        return tf.reduce_sum(p["v"] * p["t"]) + p["v"][0] ** 2

    plain = {"v": tf.Variable([1.0, 2.0]), "t": tf.constant([3.0, 4.0])}
    grads = ug.grad(loss, plain)
    np.testing.assert_array_equal(grads["v"].numpy(), [5.0, 4.0])
    np.testing.assert_array_equal(grads["t"].numpy(), [1.0, 2.0])
    assert recorded == [["EagerTensor", "ResourceVariable"]]  # optree's key order: t, v

    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = {"v": tf.Variable([1.0, 2.0]), "t": tf.constant([3.0, 4.0])}
    assert type(mirrored["v"]) not in tensorflow_tape.SOURCE_TYPES
    grads = ug.grad(loss, mirrored)
    np.testing.assert_array_equal(grads["v"].numpy(), [5.0, 4.0])
    assert len(recorded) == 1  # not recorded by the C path


def test_tensorflow_c_tape_check_fails_closed(tensorflow_tape: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TensorFlow whose C tape functions are missing or changed gets tf.GradientTape."""
    import tensorflow as tf

    monkeypatch.setattr(tensorflow_tape, "_tape_lib", object())  # none of the functions
    tensorflow_tape._checked.clear()
    assert tensorflow_tape.engine({tensorflow_tape.EagerTensor}) is False
    np.testing.assert_array_equal(ug.grad(lambda p: tf.reduce_sum(p**2), tf.constant([2.0])).numpy(), [4.0])


@pytest.fixture
def torch_autograd(monkeypatch: pytest.MonkeyPatch) -> Any:
    """unigrad's torch engine module; the engine it resolved is put back after the test."""
    require("torch")
    from unigrad.backends import _torch_autograd

    monkeypatch.setattr(_torch_autograd, "_engine_backward", _torch_autograd._engine_backward)
    return _torch_autograd


def test_torch_engine_gives_what_autograd_grad_gives(torch_autograd: Any) -> None:
    """The engine called as torch's wrapper calls it, the wrapper itself and the public call agree."""
    import torch

    weight = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64))
    plain = torch.tensor([2.0, 1.0])
    params = {"w": weight, "plain": plain, "unused": torch.ones(3)}

    def loss(p: Any) -> Any:
        return (p["w"] ** 3).sum() + (p["plain"] ** 2).sum().double()

    results = []
    for run in (torch_autograd._run_engine, torch_autograd._through_wrapper, None):
        torch_autograd._engine_backward = run
        results.append(ug.value_and_grad(loss, params))
    for other in results[1:]:
        for a, b in zip(optree.tree_leaves(results[0]), optree.tree_leaves(other), strict=True):
            assert torch.equal(a, b) and a.dtype == b.dtype
    assert weight.grad is None  # no path writes .grad


def test_torch_engine_is_resolved_from_the_wrapper_it_knows(
    torch_autograd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """unigrad repeats the steps of torch's wrapper only where the wrapper reads the names it is
    known by (torch 2.13 to 2.15); any other wrapper is called as it is."""
    import torch

    torch_autograd._engine_backward = torch_autograd._UNRESOLVED
    ug.grad(lambda x: (x**2).sum(), torch.ones(2, requires_grad=True))
    assert torch_autograd._engine_backward is torch_autograd._run_engine, "torch's wrapper changed"
    monkeypatch.setattr(torch_autograd, "_WRAPPER_NAMES", frozenset({"something", "else"}))
    torch_autograd._engine_backward = torch_autograd._UNRESOLVED
    grads = ug.grad(lambda x: (x**2).sum(), torch.ones(2, requires_grad=True))
    assert torch_autograd._engine_backward is torch_autograd._through_wrapper
    assert grads.tolist() == [2.0, 2.0]


def test_torch_autograd_logging_goes_through_the_wrapper(
    torch_autograd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TORCH_LOGS=autograd (the autograd logger at DEBUG), torch's wrapper runs: it attaches
    its logging hooks to the graph."""
    import logging

    import torch

    calls: list[int] = []
    wrapper = torch_autograd._WRAPPER

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return wrapper(*args, **kwargs)

    monkeypatch.setattr(torch_autograd, "_WRAPPER", spy)
    torch_autograd._engine_backward = torch_autograd._run_engine
    x = torch.ones(2, requires_grad=True)
    ug.grad(lambda v: (v**2).sum(), x)
    assert calls == []
    log = torch.autograd.graph.log
    level = log.level
    log.setLevel(logging.DEBUG)
    try:
        assert ug.grad(lambda v: (v**3).sum(), x).tolist() == [3.0, 3.0]
    finally:
        log.setLevel(level)
    assert calls == [1]


def test_torch_engine_hands_the_callers_context_to_its_threads(torch_autograd: Any) -> None:
    """On a GPU the backward pass runs in the engine's device threads, which read the caller's
    context (torch.compile's configuration) from where torch's wrapper stashes it; unigrad's engine
    call stashes it too, and removes it after (CPU-side stand-in: the stash seen from a backward)."""
    import contextvars

    import torch

    marker: contextvars.ContextVar[str | None] = contextvars.ContextVar("unigrad_test_marker", default=None)
    seen: list[Any] = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            stashed = torch._C._is_key_in_tls("context")
            seen.append(torch._C._get_obj_in_tls("context").get(marker) if stashed else "nothing stashed")
            return grad * 2

    torch_autograd._engine_backward = torch_autograd._run_engine
    token = marker.set("the caller's")
    try:
        grads = ug.grad(lambda x: Probe.apply(x).sum(), torch.ones(2, requires_grad=True))
    finally:
        marker.reset(token)
    assert grads.tolist() == [2.0, 2.0]
    assert seen == ["the caller's"]
    assert not torch._C._is_key_in_tls("context")  # removed after the call, as torch does


# --- JAX: jax.vjp with a cached cotangent of ones, where jax.value_and_grad makes one per call ---


def _jax_native(loss_fn: Callable[..., Any], params: Any, *args: Any) -> tuple[Any, Any]:
    """``jax.value_and_grad`` on ``loss_fn``, its loss reshaped to ``()`` as JAX requires."""
    import jax

    shape: list[Any] = []

    def scalar(p: Any) -> Any:
        loss = loss_fn(p, *args)
        shape.append(loss.shape)
        return loss.reshape(())

    loss, grads = jax.value_and_grad(scalar)(params)
    return loss.reshape(shape[0]), grads


def _assert_same_jax(ours: Any, native: Any) -> None:
    ours_leaves, native_leaves = optree.tree_leaves(ours), optree.tree_leaves(native)
    assert len(ours_leaves) == len(native_leaves)
    for a, b in zip(ours_leaves, native_leaves, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert (a.dtype, a.shape, a.weak_type, a.sharding) == (b.dtype, b.shape, b.weak_type, b.sharding)


@pytest.mark.parametrize(
    "case",
    ["weak-typed param", "loss of shape (1,)", "bfloat16", "two leaves", "loss is the param itself"],
)
def test_jax_value_and_grad_gives_what_jax_value_and_grad_gives(case: str) -> None:
    require("jax")
    import jax.numpy as jnp

    params, loss_fn = {
        "weak-typed param": ({"w": jnp.asarray(1.5)}, lambda p: p["w"] * p["w"]),
        "loss of shape (1,)": ({"w": jnp.arange(3.0)}, lambda p: (p["w"] ** 2).sum(keepdims=True)),
        "bfloat16": ({"w": jnp.ones(3, jnp.bfloat16)}, lambda p: (p["w"] ** 3).sum()),
        "two leaves": ({"a": jnp.arange(2.0), "b": jnp.ones((2, 2))}, lambda p: (p["b"] @ p["a"]).sum()),
        "loss is the param itself": ({"w": jnp.asarray(2.0)}, lambda p: p["w"]),
    }[case]
    for _ in range(2):  # the second call uses the cotangent the first one cached
        _assert_same_jax(ug.value_and_grad(loss_fn, params), _jax_native(loss_fn, params))


def test_jax_gradient_never_hands_out_the_cached_cotangent() -> None:
    """A loss that is a parameter itself gets the cotangent back as its gradient: the user gets a
    copy, so deleting (or donating) it leaves later calls working."""
    require("jax")
    import jax.numpy as jnp

    from unigrad.backends import _jax

    params = {"w": jnp.asarray(2.0)}
    first = ug.grad(lambda p: p["w"], params)["w"]
    assert all(first is not ones for ones in _jax._ONES.values())
    first.delete()
    assert float(ug.grad(lambda p: p["w"], params)["w"]) == 1.0


def test_jax_cotangent_cache_is_bounded() -> None:
    require("jax")
    import jax.numpy as jnp

    from unigrad.backends import _jax

    def loss_of_rank(rank: int) -> Callable[[Any], Any]:
        return lambda p: (p["w"] ** 2).sum().reshape((1,) * rank)  # a new loss shape per rank

    for rank in range(1, _jax._ONES_LIMIT + 10):
        ug.grad(loss_of_rank(rank), {"w": jnp.ones(2)})
    assert 0 < len(_jax._ONES) <= _jax._ONES_LIMIT


def test_jax_value_and_grad_inside_the_callers_jit_and_vmap() -> None:
    """Under the caller's own transformation the loss is a tracer: the ones are part of the trace."""
    require("jax")
    import jax
    import jax.numpy as jnp

    def loss_fn(p: Any, x: Any) -> Any:
        return (jnp.tanh(p["w"] * x) ** 2).sum()

    params, x = {"w": jnp.arange(3.0)}, jnp.linspace(0.0, 1.0, 3)
    _assert_same_jax(
        jax.jit(lambda p: ug.value_and_grad(loss_fn, p, x))(params),
        jax.jit(lambda p: _jax_native(loss_fn, p, x))(params),
    )
    batch = jnp.stack([x, 2 * x])
    ours = jax.vmap(lambda b: ug.grad(loss_fn, params, b))(batch)
    native = jax.vmap(lambda b: jax.grad(loss_fn)(params, b))(batch)
    _assert_same_jax(ours, native)


def test_jax_value_and_grad_with_aux_that_jax_cannot_trace() -> None:
    require("jax")
    import jax.numpy as jnp

    def loss_fn(p: Any) -> Any:
        loss = (p["w"] ** 2).sum()
        return loss, {"label": "step", "twice": 2 * loss, "count": 3}

    (loss, aux), grads = ug.value_and_grad(loss_fn, {"w": jnp.arange(3.0)}, has_aux=True)
    assert (float(loss), aux["label"], float(aux["twice"]), aux["count"]) == (5.0, "step", 10.0, 3)
    np.testing.assert_array_equal(np.asarray(grads["w"]), [0.0, 2.0, 4.0])
