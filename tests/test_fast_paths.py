"""The per-call fast paths (remembered plans and loss checks) never skip a check that should fail.

A call whose leaf types, dtypes and loss were seen before skips planning and loss validation
(benchmarks/ measures why). These tests make a good call first, so that the fast path is primed,
then a bad one that differs in exactly one respect, and require the same typed error as a cold call.
"""

from __future__ import annotations

import numpy as np
import optree
import pytest

import unigrad as ug
from tests.conftest import require
from tests.frameworks import Ops, make, to_numpy


def _prime(backend: str, params: object) -> None:
    ops = Ops(backend)
    for _ in range(2):
        ug.grad(lambda p: ops.sum(p["w"] * p["w"]) + ops.sum(p["b"]), params)


def test_primed_tree_still_rejects_an_integer_leaf(backend: str) -> None:
    good = {"w": make(backend, [1.0, 2.0], "float32"), "b": make(backend, [0.5], "float32")}
    _prime(backend, good)
    bad = {**good, "b": make(backend, [1], "int32")}
    with pytest.raises(ug.InvalidParamsError, match=r"params\['b'\].*int32"):
        ug.grad(lambda p: Ops(backend).sum(p["w"]), bad)


def test_primed_bare_array_still_rejects_an_integer_array(backend: str) -> None:
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0], "float32")
    for _ in range(2):
        ug.grad(lambda v: ops.sum(v * v), x)
    with pytest.raises(ug.InvalidParamsError, match="int32"):
        ug.grad(lambda v: ops.sum(v), make(backend, [1, 2], "int32"))


def test_primed_tree_gives_correct_gradients_for_new_values(backend: str) -> None:
    ops = Ops(backend)
    loss = lambda p: ops.sum(p["w"] * p["w"]) + ops.sum(p["b"])  # noqa: E731
    for values in ([1.0, 2.0], [3.0, -4.0], [0.5, 0.25]):
        params = {"w": make(backend, values, "float32"), "b": make(backend, [0.5], "float32")}
        grads = ug.grad(loss, params)
        np.testing.assert_allclose(to_numpy(grads["w"]), 2 * np.asarray(values))
        np.testing.assert_allclose(to_numpy(grads["b"]), [1.0])


def test_primed_loss_check_still_rejects_a_vector_loss(backend: str) -> None:
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0], "float32")
    ug.grad(lambda v: ops.sum(v * v), x)
    with pytest.raises(ug.InvalidLossError, match=r"shape \(2,\)"):
        ug.grad(lambda v: v * v, x)


def test_primed_loss_check_still_rejects_an_integer_loss(backend: str) -> None:
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0], "float32")
    ug.grad(lambda v: ops.sum(v * v), x)
    with pytest.raises(ug.InvalidLossError, match=r"int\d+ loss"):  # sums promote int32 on some
        ug.grad(lambda v: ops.sum(make(backend, [1, 2], "int32")), x)


def test_one_element_loss_keeps_its_shape_after_scalar_calls(backend: str) -> None:
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0], "float32")
    scalar, _ = ug.value_and_grad(lambda v: ops.sum(v * v), x)
    shaped, grads = ug.value_and_grad(lambda v: ops.sum(v * v) + make(backend, [0.0], "float32"), x)
    assert tuple(scalar.shape) == () and tuple(shaped.shape) == (1,)
    np.testing.assert_allclose(to_numpy(grads), [2.0, 4.0])


def test_jax_float64_fast_path_follows_the_x64_flag() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        params = {"w": jnp.asarray([1.0, 2.0], dtype=jnp.float64)}
        for _ in range(2):
            ug.grad(lambda p: jnp.sum(p["w"] ** 2), params)
            ug.grad(lambda w: jnp.sum(w**2), params["w"])
    with jax.enable_x64(False):
        with pytest.raises(ug.PrecisionError, match="jax_enable_x64"):
            ug.grad(lambda p: jnp.sum(p["w"] ** 2), params)
        with pytest.raises(ug.PrecisionError, match="jax_enable_x64"):
            ug.grad(lambda w: jnp.sum(w**2), params["w"])


def test_flat_dicts_flatten_like_optree_whatever_the_insertion_order(backend: str) -> None:
    from unigrad import _tree
    from unigrad._dispatch import _flatten_tree

    ops = Ops(backend)
    loss = lambda p: ops.sum(p["a"] * 1.0 + p["b"] * 2.0 + p["c"] * 3.0)  # noqa: E731
    values = {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [3.0, 3.0]}
    for order in (["c", "a", "b"], ["a", "b", "c"], ["b", "c", "a"]):
        params = {key: make(backend, values[key], "float32") for key in order}
        for _ in range(2):  # the second flatten is the remembered one
            leaves, treedef = _flatten_tree(params)
            want_leaves, want_def = _tree.flatten(params)
            assert treedef == want_def and all(x is y for x, y in zip(leaves, want_leaves, strict=True))
        grads = ug.grad(loss, params)
        assert list(grads) == order  # optree keeps the params' own key order in the result
        for scale, key in enumerate(["a", "b", "c"], start=1):
            np.testing.assert_allclose(to_numpy(grads[key]), [float(scale)] * 2)


def test_flat_dict_with_a_container_or_none_value_is_flattened_in_full(backend: str) -> None:
    ops = Ops(backend)
    params = {"w": make(backend, [1.0], "float32"), "nested": {"v": make(backend, [2.0], "float32")}}
    for _ in range(2):
        grads = ug.grad(lambda p: ops.sum(p["w"] * p["nested"]["v"]), params)
    np.testing.assert_allclose(to_numpy(grads["nested"]["v"]), [1.0])
    with_none = {"w": make(backend, [1.0], "float32"), "frozen": None}
    for _ in range(2):
        grads = ug.grad(lambda p: ops.sum(p["w"] ** 2), with_none)
    assert grads["frozen"] is None


def test_a_remembered_flat_dict_is_not_confused_with_one_holding_a_container(backend: str) -> None:
    # {"a": (x,)} has one key and one leaf, like {"a": x}: only the second may be remembered as flat.
    ops = Ops(backend)
    x = make(backend, [1.0, 2.0], "float32")
    for params in ({"a": (x,)}, {"a": x}, {"a": (x,)}, {"a": x}):
        grads = ug.grad(lambda p: ops.sum(optree.tree_leaves(p, namespace="unigrad")[0] ** 2), params)
        assert optree.tree_structure(grads) == optree.tree_structure(params)
        np.testing.assert_allclose(to_numpy(optree.tree_leaves(grads)[0]), [2.0, 4.0])


def test_remembered_flat_lists_and_tuples_keep_their_type_and_are_not_confused(backend: str) -> None:
    # [x, y] and (x, y) are remembered as flat; [x, (y,)], [x, None] and [x, [y]] have the same
    # length and must be flattened in full (and rebuilt as they are) whatever was seen before.
    ops = Ops(backend)
    x, y = make(backend, [1.0, 2.0], "float32"), make(backend, [3.0], "float32")
    cases = ([x, y], (x, y), [x, (y,)], [x, None], [x, [y]], (x, y), [x, y])
    for _ in range(2):
        for params in cases:
            grads = ug.grad(lambda p: ops.sum(optree.tree_leaves(p, namespace="unigrad")[0] ** 2), params)
            assert optree.tree_structure(grads, namespace="unigrad") == optree.tree_structure(
                params, namespace="unigrad"
            )
            assert type(grads) is type(params)
            np.testing.assert_allclose(to_numpy(grads[0]), [2.0, 4.0])


def test_rebuilder_gives_what_optree_unflatten_gives() -> None:
    from unigrad import _tree

    trees = [
        {"w": 1.0, "b": 2.0},
        {"a": 1.0, "c": 2.0, "b": 3.0},
        {"only": 1.0},
        {},
        [1.0, 2.0],
        (1.0, 2.0, 3.0),
        [],
        [1.0, None],
        {"a": [1.0]},
        1.0,
    ]
    for tree in trees:
        leaves, treedef = _tree.flatten(tree)
        new = [f"leaf{index}" for index in range(len(leaves))]
        got, want = _tree.rebuilder(treedef)(list(new)), treedef.unflatten(list(new))
        assert got == want and type(got) is type(want)
        if isinstance(want, dict):
            assert list(got) == list(want)  # the dict's own key order


def test_the_loss_gets_the_params_object_where_the_leaves_are_used_as_they_are(backend: str) -> None:
    """TensorFlow's tape and torch's parameters requiring grad differentiate the params' own
    tensors: the loss is then called on the params object itself, as in native code (no rebuilt
    copy). Elsewhere it gets a rebuilt structure with the framework's traced or aliased leaves; the
    gradients are the same either way."""
    params = {"w": make(backend, [1.0, 2.0], "float32"), "b": make(backend, [0.5], "float32")}
    if backend == "torch":
        for leaf in params.values():
            leaf.requires_grad_()
    seen = []
    ops = Ops(backend)

    def loss(p):
        seen.append(p)
        return ops.sum(p["w"] * p["w"]) + ops.sum(p["b"])

    for _ in range(2):  # the planned call and the replayed one
        grads = ug.grad(loss, params)
        np.testing.assert_allclose(to_numpy(grads["w"]), [2.0, 4.0])
        np.testing.assert_allclose(to_numpy(grads["b"]), [1.0])
    passed_as_is = backend in ("tensorflow", "torch")
    assert all((p is params) == passed_as_is for p in seen)
    assert all(list(p) == list(params) for p in seen)


def test_torch_leaves_not_requiring_grad_are_aliased_and_the_structure_rebuilt() -> None:
    require("torch")
    import torch

    params = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5], requires_grad=True)}
    seen = []

    def loss(p):
        seen.append(p)
        return (p["w"] ** 2).sum() + p["b"].sum()

    grads = ug.grad(loss, params)
    assert seen[0] is not params and seen[0]["b"] is params["b"] and seen[0]["w"] is not params["w"]
    assert grads["w"].tolist() == [2.0, 4.0] and params["w"].grad is None and params["b"].grad is None


def test_the_loss_runs_few_unigrad_frames_below_the_caller(backend: str) -> None:
    # Eager TensorFlow and JAX record the Python stack at every op: each frame of ours between the
    # caller and the loss costs every op of it (backends/_loss_call.py). value_and_grad and grad
    # call the adapter from their own frame, and TensorFlow, JAX and MLX call the loss from the
    # adapter's (torch calls the LossCall; MLX's no-aux path is a method of its own).
    import sys
    from pathlib import Path

    package = str(Path(ug.__file__).parent)
    ops = Ops(backend)
    depths: list[int] = []

    def ours_above() -> int:
        frame, count = sys._getframe(2), 0
        while frame is not None and frame.f_code.co_name != "_call_under_test":
            count += frame.f_code.co_filename.startswith(package)
            frame = frame.f_back
        return count

    def loss(p: dict[str, object], data: object = None) -> object:
        depths.append(ours_above())
        return ops.sum(p["w"] ** 2)

    def _call_under_test() -> None:
        params = {"w": make(backend, [1.0, 2.0], "float32")}
        ug.value_and_grad(loss, params)
        ug.grad(loss, params)
        ug.value_and_grad(loss, params, make(backend, [1.0], "float32"))

    _call_under_test()
    # value_and_grad (or grad), the adapter, and: nothing (TF); the function JAX differentiates;
    # LossCall.__call__ (torch); the no-aux method and the function MLX differentiates.
    most = {"tensorflow": 2, "jax": 3, "torch": 3, "mlx": 4}[backend]
    assert len(depths) == 3 and max(depths) <= most, depths


def test_flat_containers_seen_before_skip_optree(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # optree's flatten costs ~11 us in a real call (caches cold): a flat dict, list or tuple of
    # arrays seen before is read and rebuilt without it (unigrad._leaves.flatten_params).
    from unigrad import _tree

    ops = Ops(backend)
    x, y = make(backend, [1.0, 2.0], "float32"), make(backend, [3.0], "float32")
    trees = ({"w": x, "b": y}, [x, y], (x, y))
    for params in trees:
        ug.grad(lambda p: ops.sum(optree.tree_leaves(p, namespace="unigrad")[0] ** 2), params)
    flattened: list[object] = []
    flatten = _tree.flatten
    monkeypatch.setattr(_tree, "flatten", lambda tree, *args: flattened.append(tree) or flatten(tree, *args))
    for params in trees:
        grads = ug.grad(lambda p: ops.sum(optree.tree_leaves(p, namespace="unigrad")[0] ** 2), params)
        assert type(grads) is type(params)
    assert flattened == []
