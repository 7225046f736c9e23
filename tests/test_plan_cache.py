"""The one cache of a call's plan (``unigrad._dispatch``): a route per input signature, replayed by
every later call with that signature; a new signature is planned (and validated) in full."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import require
from unigrad import _dispatch


@pytest.fixture
def fresh_routes(monkeypatch: pytest.MonkeyPatch) -> dict:
    """An empty cache of routes (returned), and of flat containers' signatures (their index)."""
    routes: dict = {}
    monkeypatch.setattr(_dispatch, "_routes", routes)
    monkeypatch.setattr(_dispatch, "_flat_routes", {})
    return routes


def _loss(p):
    return (p["w"] ** 2).sum()


def test_a_repeated_signature_is_planned_once(fresh_routes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    require("torch")
    import torch

    planned = []
    route_for = _dispatch._route_for
    monkeypatch.setattr(_dispatch, "_route_for", lambda *a: planned.append(1) or route_for(*a))
    for value in (1.0, 2.0, 3.0):
        ug.grad(_loss, {"w": torch.full((3,), value)})
    assert len(planned) == 1 and len(fresh_routes) == 1


def test_a_new_signature_is_planned_and_validated_again(fresh_routes: dict) -> None:
    require("torch")
    import torch

    ug.grad(_loss, {"w": torch.ones(3)})
    ug.grad(_loss, {"w": torch.ones(3, dtype=torch.float64)})  # a new dtype: a new route
    assert len(fresh_routes) == 2
    with pytest.raises(ug.InvalidParamsError, match=r"params\['w'\] is a torch Tensor of dtype int64"):
        ug.grad(_loss, {"w": torch.ones(3, dtype=torch.int64)})  # never replays a float route
    with pytest.raises(ug.InvalidParamsError, match=r"params\['b'\] is a str value"):
        ug.grad(_loss, {"w": torch.ones(3), "b": "text"})
    grads = ug.grad(_loss, {"w": np.ones(3, np.float32)}, backend="torch")  # backend= is part of it
    assert isinstance(grads["w"], np.ndarray)


def test_the_cache_is_bounded(fresh_routes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    require("torch")
    import torch

    monkeypatch.setattr(_dispatch, "ROUTES_LIMIT", 4)
    for size in range(1, 12):  # a new structure each time: every call a new signature
        ug.grad(lambda p: sum(v.sum() for v in p.values()), {f"k{i}": torch.ones(2) for i in range(size)})
        assert len(fresh_routes) <= 4


def test_threads_share_the_cache_safely(fresh_routes: dict) -> None:
    require("torch")
    import torch

    dtypes = [torch.float32, torch.float64]
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for step in range(50):
                dtype = dtypes[(seed + step) % 2]
                w = torch.full((3,), float(step), dtype=dtype)
                params = {"w": w} if step % 3 else w
                grads = ug.grad(lambda p: ((p["w"] if isinstance(p, dict) else p) ** 2).sum(), params)
                got = grads["w"] if isinstance(grads, dict) else grads
                assert got.dtype == dtype and torch.equal(got, 2 * w)
                numpy_grads = ug.grad(_loss, {"w": np.full(3, float(step))}, backend="torch")
                np.testing.assert_array_equal(numpy_grads["w"], np.full(3, 2.0 * step))
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert 1 <= len(fresh_routes) <= 6


def test_mode_dependent_signatures_are_planned_at_every_call(fresh_routes: dict) -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        params = {"w": jnp.ones(2, dtype=jnp.float64)}
        ug.grad(_loss, params)
    assert not fresh_routes  # whether float64 is allowed depends on JAX's x64 flag at each call


def test_a_route_is_keyed_as_later_calls_key_it(fresh_routes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first call of a backend imports its adapter, which may register a cheaper dtype key while
    the call is planned: the route is remembered under that key, not the one made before it (a
    TensorFlow DType compares equal to its enum, so the old key was found, at one slow comparison
    per leaf and call)."""
    require("tensorflow")
    import tensorflow as tf

    from unigrad import backends

    backends.get_adapter("tensorflow")  # imported: its dtype key is registered
    params = {"a": tf.ones(2), "b": tf.ones(3)}
    kind = type(params["a"])
    registered = backends.DTYPE_KEYS.pop(kind)  # as before the adapter's first import
    route_for = _dispatch._route_for

    def importing_route_for(*args):
        backends.DTYPE_KEYS[kind] = registered  # what importing the adapter does
        return route_for(*args)

    monkeypatch.setattr(_dispatch, "_route_for", importing_route_for)
    try:
        ug.grad(lambda p: tf.reduce_sum(p["a"]) + tf.reduce_sum(p["b"]), params)
    finally:
        backends.DTYPE_KEYS[kind] = registered
    ((_, _, dtype_keys),) = fresh_routes
    assert dtype_keys == (registered(params["a"]), registered(params["b"]))
    assert all(type(key) is int for key in dtype_keys)  # the enums, not DTypes


def test_a_flat_container_is_found_by_one_lookup(fresh_routes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flat dict, list or tuple of arrays seen before skips the flatten and the tree's key: its
    keys (or type) and its values' types and dtypes, in its own order, find route and structure."""
    require("torch")
    import torch

    from unigrad import _leaves

    # keys out of optree's (sorted) order: the gradients must still land under their own keys
    trees = [
        {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0])},
        [torch.tensor([1.0, 2.0]), torch.tensor([3.0])],
        (torch.tensor([1.0, 2.0]), torch.tensor([3.0])),
    ]

    def loss(p):
        values = list(p.values()) if isinstance(p, dict) else list(p)
        return (values[0] ** 2).sum() + 3.0 * values[1].sum()

    for tree in trees:
        ug.grad(loss, tree)  # planned in full
    flattened = []
    flatten_params = _leaves.flatten_params
    monkeypatch.setattr(_dispatch, "flatten_params", lambda *a: flattened.append(1) or flatten_params(*a))
    for tree in trees:
        grads = ug.grad(loss, tree)
        values = list(grads.values()) if isinstance(grads, dict) else list(grads)
        assert type(grads) is type(tree) and [v.tolist() for v in values] == [[2.0, 4.0], [3.0]]
        if isinstance(grads, dict):
            assert list(grads) == ["w", "b"]
    assert not flattened
    assert len(fresh_routes) == 1  # the three share one route: same types and dtypes


def test_a_flat_container_that_changed_is_planned_again(fresh_routes: dict) -> None:
    """Another key, another dtype, or a value that is no longer an array: not the remembered
    signature, so the call is flattened and validated as a first call is."""
    require("torch")
    import torch

    loss = lambda p: sum((v**2).sum() for v in p.values())  # noqa: E731
    ug.grad(loss, {"a": torch.ones(2), "b": torch.ones(1)})
    renamed = ug.grad(loss, {"a": torch.ones(2), "c": torch.full((1,), 2.0)})
    assert list(renamed) == ["a", "c"] and renamed["c"].tolist() == [4.0]
    wider = ug.grad(loss, {"a": torch.ones(2), "b": torch.ones(1, dtype=torch.float64)})
    assert wider["b"].dtype == torch.float64
    nested = ug.grad(
        lambda p: (p["a"] ** 2).sum() + (p["b"]["c"] ** 2).sum(),
        {"a": torch.ones(2), "b": {"c": torch.ones(1)}},
    )
    assert nested["b"]["c"].tolist() == [2.0]
    with pytest.raises(ug.InvalidParamsError, match=r"params\['b'\].*int64"):
        ug.grad(loss, {"a": torch.ones(2), "b": torch.ones(1, dtype=torch.int64)})


def test_flat_signatures_are_bounded_with_the_routes(
    monkeypatch: pytest.MonkeyPatch, fresh_routes: dict
) -> None:
    require("torch")
    import torch

    flat: dict = {}
    monkeypatch.setattr(_dispatch, "_flat_routes", flat)
    monkeypatch.setattr(_dispatch, "ROUTES_LIMIT", 4)
    for size in range(1, 12):  # new keys each time: a new flat signature (and route) per call
        ug.grad(lambda p: sum(v.sum() for v in p.values()), {f"k{i}": torch.ones(2) for i in range(size)})
        assert len(flat) <= 4
