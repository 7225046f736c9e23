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
