"""What each framework's users rely on: no mutation, Variables, Parameters, dense slices."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import require

import unigrad as ug


def test_torch_inputs_are_not_mutated() -> None:
    require("torch")
    import torch

    param = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    plain = torch.tensor([3.0])
    before = (param.detach().clone(), plain.clone())
    grads = ug.grad(lambda p: (p["a"] ** 2).sum() + (p["b"] ** 2).sum(), {"a": param, "b": plain})
    assert param.grad is None and plain.grad is None
    assert param.requires_grad is True and plain.requires_grad is False
    assert torch.equal(param.detach(), before[0]) and torch.equal(plain, before[1])
    assert not grads["a"].requires_grad and grads["a"].grad_fn is None
    np.testing.assert_array_equal(grads["a"].numpy(), [2.0, 4.0])


def test_torch_parameters_differentiated_as_they_are_each_occurrence_its_own() -> None:
    """Parameters (leaves requiring grad) are differentiated without an alias per leaf; a tensor
    that appears twice still gets one gradient per occurrence, and a non-leaf tensor that requires
    grad is cut from the graph that made it."""
    require("torch")
    import torch

    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    seen = []

    def loss(p):
        seen.append(p["a"] is w)
        return (p["a"] * 2.0 + p["b"] * 3.0).sum()

    shared = ug.grad(loss, {"a": w, "b": w})
    np.testing.assert_array_equal(shared["a"].numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(shared["b"].numpy(), [3.0, 3.0])
    own = ug.grad(loss, {"a": w, "b": torch.nn.Parameter(torch.ones(2))})
    np.testing.assert_array_equal(own["a"].numpy(), [2.0, 2.0])
    assert seen == [False, True] and w.grad is None
    upstream = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    made = upstream * 5.0  # requires grad, not a leaf
    grads = ug.grad(lambda p: (p**2).sum(), made)
    np.testing.assert_array_equal(grads.numpy(), [10.0, -10.0])
    assert upstream.grad is None and made.grad_fn is not None


def test_torch_gradients_can_be_updated_in_place() -> None:
    # autograd.grad hands back the gradient of a sum expanded (stride 0), on which g.mul_ fails;
    # unigrad's are dense, like what loss.backward() leaves in .grad.
    require("torch")
    import torch

    params = {"w": torch.ones(3), "t": torch.ones(4, 3).T}
    grads = ug.grad(lambda p: p["w"].sum() + (p["t"] * 2).sum(), params)
    grads["w"].mul_(2)
    torch.testing.assert_close(grads["w"], torch.full((3,), 2.0))
    grads["t"].clamp_(max=1.0)
    torch.testing.assert_close(grads["t"], torch.ones(3, 4))


def test_torch_works_under_no_grad() -> None:
    require("torch")
    import torch

    with torch.no_grad():
        grads = ug.grad(lambda x: (x**2).sum(), torch.tensor([1.0, 3.0]))
    np.testing.assert_array_equal(grads.numpy(), [2.0, 6.0])


def test_torch_module_recipe_with_functional_call() -> None:
    require("torch")
    import torch
    from torch.func import functional_call

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])

    def loss_fn(params, data):
        logits = functional_call(model, params, (data["x"],))
        return torch.nn.functional.cross_entropy(logits, data["y"])

    params = dict(model.named_parameters())
    grads = ug.grad(loss_fn, params, {"x": x, "y": y})
    torch.nn.functional.cross_entropy(model(x), y).backward()  # the native answer
    assert list(grads) == list(params)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad)


def test_tensorflow_variables_and_tensors() -> None:
    require("tensorflow")
    import tensorflow as tf

    params = {"v": tf.Variable([1.0, 2.0]), "t": tf.constant([[3.0]])}
    grads = ug.grad(lambda p: tf.reduce_sum(p["v"] ** 2) + tf.reduce_sum(p["t"] ** 2), params)
    np.testing.assert_array_equal(grads["v"].numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(grads["t"].numpy(), [[6.0]])
    assert isinstance(grads["v"], tf.Tensor)
    np.testing.assert_array_equal(params["v"].numpy(), [1.0, 2.0])


def test_tensorflow_indexed_slices_come_back_dense() -> None:
    require("tensorflow")
    import tensorflow as tf

    table = tf.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    grads = ug.grad(lambda p: tf.reduce_sum(tf.gather(p, [0, 2, 0])), table)
    assert not isinstance(grads, tf.IndexedSlices)
    np.testing.assert_array_equal(grads.numpy(), [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])


def test_tensorflow_ignores_variables_outside_params() -> None:
    require("tensorflow")
    import tensorflow as tf

    captured = tf.Variable(10.0)
    grads = ug.grad(lambda p: p * captured, tf.constant(2.0))
    assert float(grads) == 10.0


def test_jax_grads_are_jax_arrays_on_the_param_device() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    x = jnp.array([1.0, 2.0], dtype=jnp.float32)
    grads = ug.grad(lambda p: jnp.sum(jnp.sin(p)), x)
    assert isinstance(grads, jax.Array) and grads.devices() == x.devices()
    np.testing.assert_allclose(np.asarray(grads), np.cos([1.0, 2.0]), rtol=1e-6)


def _fresh_process_output(code: str) -> str:
    """What ``code`` prints in a new Python process (imports, caches and warnings start empty)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_unigrad_imports_no_framework() -> None:
    code = (
        "import sys, unigrad, numpy as np\n"
        "unigrad.grad(lambda p: np.sum(p ** 2), np.ones(2), backend='numpy')\n"
        "unigrad.installed_backends()\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))\n"
    )
    out = _fresh_process_output(code)
    assert out.strip() == "[]"


def test_compiled_steps_transforms_and_namespace_load_on_first_use() -> None:
    code = (
        "import sys, unigrad\n"
        "lazy = ('unigrad._compiled', 'unigrad._transforms', 'unigrad._namespace')\n"
        "print(sorted(m for m in lazy if m in sys.modules))\n"
        "from unigrad import jvp, namespace, value_and_grad_fn, ValueAndGradFn\n"
        "assert unigrad.hvp.__module__ == 'unigrad._transforms' and 'hvp' in dir(unigrad)\n"
        "assert set(unigrad.__all__) <= set(dir(unigrad))\n"
        "try:\n"
        "    unigrad.no_such_thing\n"
        "except AttributeError as err:\n"
        "    print(err)\n"
    )
    out = _fresh_process_output(code)
    assert out.splitlines() == ["[]", "module 'unigrad' has no attribute 'no_such_thing'"]


def test_torch_forward_mode_shows_no_torch_jit_warning() -> None:
    """torch's forward-mode AD scripts decompositions on first use, which warns that torch.jit.script
    is deprecated (a DeprecationWarning up to torch 2.14, a FutureWarning every user sees from
    2.15): unigrad's first jvp, hvp or hessian in a process shows neither."""
    require("torch")
    code = (
        "import warnings, torch, unigrad\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    unigrad.jvp(lambda x: x ** 3, torch.tensor([1.0, 2.0]), torch.ones(2))\n"
        "    unigrad.hvp(lambda x: (x ** 3).sum(), torch.tensor([1.0, 2.0]), torch.ones(2))\n"
        "print([str(w.message) for w in caught if 'jit.script' in str(w.message)])\n"
    )
    out = _fresh_process_output(code)
    assert out.strip() == "[]"


def test_using_one_backend_imports_only_that_one() -> None:
    require("torch")
    code = (
        "import sys, torch, unigrad\n"
        "unigrad.grad(lambda x: (x ** 2).sum(), torch.ones(2))\n"
        "print(sorted(m for m in ('tensorflow', 'jax') if m in sys.modules))\n"
    )
    out = _fresh_process_output(code)
    assert out.strip() == "[]"


def test_jax_grad_inside_jit_and_under_jax_transformations() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    def loss_fn(p):
        return jnp.sum(jnp.sin(p["w"]) * p["w"])

    params = {"w": jnp.array([0.5, 1.0, 2.0], dtype=jnp.float32)}
    jitted = jax.jit(lambda p: ug.grad(loss_fn, p))(params)
    eager = ug.grad(loss_fn, params)
    np.testing.assert_allclose(np.asarray(jitted["w"]), np.asarray(eager["w"]), rtol=1e-6)
    # second derivative through unigrad: d/dw of (d/dw loss) summed
    second = jax.grad(lambda p: jnp.sum(ug.grad(loss_fn, p)["w"]))(params)
    w = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(np.asarray(second["w"]), 2 * np.cos(w) - w * np.sin(w), rtol=1e-5)


def _keras_model() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)]
    )


def test_keras_variables_are_tensorflow_params_eager_and_compiled() -> None:
    require("tensorflow")
    import tensorflow as tf

    model = _keras_model()
    x = tf.constant(np.linspace(-1.0, 1.0, 15, dtype=np.float32).reshape(5, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x))
    want = tape.gradient(loss, model.trainable_variables)

    def stateless(p: Any, data: Any) -> Any:
        return tf.reduce_sum(model.stateless_call(p, model.non_trainable_variables, data)[0])

    calling = ug.grad(lambda p, data: tf.reduce_sum(model(data)), model.trainable_variables, x)
    pure = ug.grad(stateless, model.trainable_variables, x)
    step = ug.value_and_grad_fn(stateless, jit=True)
    compiled = [step(model.trainable_variables, x)[1] for _ in range(2)][-1]
    for got in (calling, pure, compiled):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)
    named = ug.grad(
        lambda p, data: tf.reduce_sum(model(data)), {v.path: v for v in model.trainable_variables}, x
    )
    assert sorted(named) == sorted(v.path for v in model.trainable_variables)


def test_passing_a_model_object_says_how_to_pass_its_parameters() -> None:
    require("torch", "tensorflow")
    import tensorflow as tf
    import torch

    with pytest.raises(ug.InvalidParamsError, match=r"dict\(model.named_parameters\(\)\).*functional_call"):
        ug.grad(lambda p, x: p(x).sum(), torch.nn.Linear(3, 2), torch.ones(3))
    with pytest.raises(ug.InvalidParamsError, match=r"model.trainable_variables.*stateless_call"):
        ug.grad(lambda p, x: tf.reduce_sum(p(x)), _keras_model(), tf.ones((1, 3)))


def test_keras_variables_in_transforms_match_plain_tensors() -> None:
    require("tensorflow")
    import tensorflow as tf

    model = _keras_model()
    x = tf.constant(np.linspace(-1.0, 1.0, 15, dtype=np.float32).reshape(5, 3))

    def forward(p: Any, data: Any) -> Any:
        return model.stateless_call(p, model.non_trainable_variables, data)[0]

    def loss(p: Any, data: Any) -> Any:
        return tf.reduce_sum(forward(p, data) ** 2)

    variables = model.trainable_variables
    tensors = [tf.constant(v.numpy()) for v in variables]
    ones = [tf.ones(v.shape) for v in variables]
    pairs = [
        (ug.hvp(loss, variables, ones, x), ug.hvp(loss, tensors, ones, x)),
        (ug.vjp(forward, variables, tf.ones((5, 1)), x)[1], ug.vjp(forward, tensors, tf.ones((5, 1)), x)[1]),
        ([ug.jvp(forward, variables, ones, x)[1]], [ug.jvp(forward, tensors, ones, x)[1]]),
        (ug.jacobian(forward, variables, x), ug.jacobian(forward, tensors, x)),
    ]
    for got, want in pairs:
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)


def test_tensorflow_hvp_through_a_gather_is_dense() -> None:
    """The tangent of a gradient that went through ``tf.gather`` is ``IndexedSlices``: ``ug.hvp``
    hands back a dense tensor (NumPy in: it raised ``'IndexedSlices' object has no attribute
    'numpy'``)."""
    require("tensorflow")
    import tensorflow as tf

    def loss(p):
        xp = ug.namespace(p)
        return xp.sum(xp.take(p, xp.asarray([0, 2, 2]), axis=0) ** 3)

    x, v = np.arange(6.0).reshape(3, 2), np.ones((3, 2))
    want = [[0.0, 6.0], [0.0, 0.0], [48.0, 60.0]]  # 3 x^2 per use, differentiated: 6 x * uses
    np.testing.assert_allclose(ug.hvp(loss, x, v, backend="tensorflow"), want)
    native = ug.hvp(loss, tf.constant(x), tf.constant(v))
    assert isinstance(native, tf.Tensor)
    np.testing.assert_allclose(native.numpy(), want)
