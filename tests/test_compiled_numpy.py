"""NumPy params into a compiled JAX step go to ``jax.jit`` as they are (no conversion per leaf in
Python): a 10-leaf NumPy client ran at 3.2x ``jax.jit(jax.value_and_grad(f))`` on the same list."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unigrad as ug
from tests.conftest import count_conversions, require


def _chain(params):
    import jax.numpy as jnp

    x = params[0]
    for p in params[1:]:
        x = jnp.tanh(x @ p)
    return jnp.sum(x**2)


@pytest.fixture
def numpy_params() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((4, 4)).astype(np.float32) for _ in range(5)]


def test_numpy_leaves_are_not_converted_one_by_one(
    numpy_params: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    require("jax")
    import jax

    step = ug.value_and_grad_fn(_chain, backend="jax", jit=True)
    loss, _ = step(numpy_params)
    conversions = count_conversions(monkeypatch, "jax")
    again_loss, again = step([p + 1 for p in numpy_params])
    assert conversions == [] and step.cache_size == 1

    want_loss, want = jax.value_and_grad(_chain)([p + 1 for p in numpy_params])
    np.testing.assert_allclose(again_loss, want_loss, rtol=1e-5)
    for got, expected in zip(again, want, strict=True):
        assert type(got) is np.ndarray and got.dtype == np.float32 and got.flags.writeable
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert type(loss) is np.ndarray and loss.shape == ()


def test_on_a_gpu_numpy_leaves_run_unconverted_at_full_float32(
    numpy_params: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU, NumPy float32 into JAX needs the 'highest' matmul precision (JAX's default there is
    TF32-class): the structure path enters that scope around each run instead of converting each
    leaf (on the H200 the scope sent every NumPy leaf through from_numpy again)."""
    require("jax")
    import jax

    from unigrad.backends import _jax

    monkeypatch.setattr(_jax, "_on_accelerator", lambda: True)
    seen: list[object] = []

    def recording_chain(params):
        seen.append(jax.config.jax_default_matmul_precision)  # runs while jax.jit traces
        return _chain(params)

    step = ug.value_and_grad_fn(recording_chain, backend="jax", jit=True)
    step(numpy_params)
    conversions = count_conversions(monkeypatch, "jax")
    loss, grads = step([p + 1 for p in numpy_params])
    assert conversions == [] and step.cache_size == 1 and seen == ["highest"]
    with jax.default_matmul_precision("highest"):
        want_loss, want = jax.value_and_grad(_chain)([p + 1 for p in numpy_params])
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for got, expected in zip(grads, want, strict=True):
        assert type(got) is np.ndarray and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_a_new_numpy_dtype_is_planned_and_checked(numpy_params: list[np.ndarray]) -> None:
    require("jax")
    step = ug.value_and_grad_fn(_chain, backend="jax", jit=True)
    step(numpy_params)
    with pytest.raises(ug.InvalidParamsError, match=r"params\[0\] is a numpy ndarray of dtype int32"):
        step([p.astype(np.int32) for p in numpy_params])


def test_float64_numpy_keeps_float64_with_x64_off() -> None:
    require("jax")
    script = """
        import numpy as np, jax.numpy as jnp, unigrad as ug
        def chain(ps):
            return jnp.sum(jnp.tanh(ps[0] @ ps[1]) ** 2)
        step = ug.value_and_grad_fn(chain, backend="jax", jit=True)
        float32 = [np.eye(3, dtype=np.float32)] * 2
        float64 = [np.eye(3)] * 2
        print(step(float32)[1][0].dtype, step(float64)[1][0].dtype, step(float32)[1][0].dtype)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["float32", "float64", "float32"]


def test_a_flat_list_seen_before_is_found_without_flattening(numpy_params: list[np.ndarray]) -> None:
    """A flat list (or tuple) of arrays and no data is found by its type and length; anything else
    of that length (a nested item, None, a tuple, new dtypes) still takes the full path."""
    require("jax")
    import jax

    def chain_of_leaves(params):
        return _chain(jax.tree_util.tree_leaves(params))

    step = ug.value_and_grad_fn(chain_of_leaves, backend="jax", jit=True)
    step(numpy_params)
    flattened: list[object] = []
    compiler_flatten = step._compiler_flatten
    step._compiler_flatten = lambda tree: flattened.append(tree) or compiler_flatten(tree)
    loss, grads = step([p + 1 for p in numpy_params])
    assert flattened == [] and step.cache_size == 1
    want_loss, want = jax.value_and_grad(_chain)([p + 1 for p in numpy_params])
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    assert type(grads) is list and len(grads) == len(numpy_params)
    for got, expected in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)

    # The same length, another structure: flattened, and answered with its own structure.
    nested = [numpy_params[0], [numpy_params[1]], *numpy_params[2:]]
    _, nested_grads = step(nested)
    assert len(flattened) == 1 and isinstance(nested_grads[1], list)
    _, tuple_grads = step(tuple(numpy_params))
    assert type(tuple_grads) is tuple
    # A JAX array among them is not this entry's (NumPy's dtype getter refuses it): its gradient
    # comes back in JAX, the others' in NumPy, as on the full path.
    _, mixed_grads = step([jax.numpy.asarray(numpy_params[0]), *numpy_params[1:]])
    assert isinstance(mixed_grads[0], jax.Array) and type(mixed_grads[1]) is np.ndarray
    # New dtypes of the same flat list are planned and checked, as on the flattened path.
    with pytest.raises(ug.InvalidParamsError, match=r"params\[0\] is a numpy ndarray of dtype int32"):
        step([p.astype(np.int32) for p in numpy_params])
    step.clear_cache()
    assert step.cache_size == 0 and step._flat_structures is None


def _sum_of_squares(params):
    import jax

    return sum((leaf.real**2).sum() + (leaf.imag**2).sum() for leaf in jax.tree_util.tree_leaves(params))


def _expected_sum_of_squares_grads(params):
    return [2 * np.asarray(leaf) for leaf in params]


def test_small_gradients_of_one_dtype_come_back_as_views_of_one_host_copy() -> None:
    """A flat list of small leaves of one dtype comes out of the compiled step as one buffer (each
    output array costs ~2 us a call): each gradient is a writable view of one host copy, shaped
    like its param (a scalar and an empty leaf too), and changing one changes no other."""
    require("jax")
    params = [
        np.full((2, 3), 1.5, np.float32),
        np.float32(-2.0) * np.ones((), np.float32),
        np.zeros((0, 4), np.float32),
        np.arange(5, dtype=np.float32),
    ]
    step = ug.value_and_grad_fn(_sum_of_squares, backend="jax", jit=True)
    for _ in range(2):  # the first call plans and traces, the second runs the entry
        loss, grads = step(params)
        assert type(grads) is list and [g.shape for g in grads] == [p.shape for p in params]
        base = grads[0].base
        assert base is not None and all(g.base is base for g in grads)
        for got, want in zip(grads, _expected_sum_of_squares_grads(params), strict=True):
            assert got.dtype == np.float32 and got.flags.writeable
            np.testing.assert_allclose(got, want)
        np.testing.assert_allclose(loss, sum(float((p**2).sum()) for p in params))
    grads[0][:] = 7.0
    np.testing.assert_allclose(grads[3], 2 * params[3])
    assert float(params[0][0, 0]) == 1.5  # the params are never written


def test_packing_follows_each_trace_shapes_and_skips_mixed_large_and_nested_params() -> None:
    """Whether a trace packs is read from its output, so a step traced for several shapes cuts each
    result by that call's params; mixed dtypes, leaves over the size limit and non-flat params come
    back one array per leaf, as before."""
    require("jax")
    step = ug.value_and_grad_fn(_sum_of_squares, backend="jax", jit=True)
    small = [np.ones((2, 2), np.float32), np.ones(3, np.float32)]
    other = [np.ones(5, np.float32), np.ones((1, 2), np.float32)]
    for params in (small, other, small):
        _, grads = step(params)
        assert grads[0].base is grads[1].base is not None
        for got, want in zip(grads, _expected_sum_of_squares_grads(params), strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want)

    mixed = [np.ones(3, np.float32), np.ones(2, np.complex64)]
    large = [np.ones(64 * 1024, np.float32), np.ones(3, np.float32)]  # 256 KiB + 12 bytes
    for params in (mixed, large):
        _, grads = step(params)
        assert all(g.base is None for g in grads)
        for got, want in zip(grads, _expected_sum_of_squares_grads(params), strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want)

    _, grads = step({"a": np.ones(2, np.float32), "b": np.ones(3, np.float32)})
    assert grads["a"].base is None and grads["b"].base is None
    np.testing.assert_allclose(grads["b"], 2 * np.ones(3))


def test_a_list_with_a_nested_item_is_not_packed_and_keeps_its_structure_entry() -> None:
    """``[a, [b], c]`` has as many items as leaves but is not flat: its gradients come back one
    array each, in its own structure, and later calls still run on its structure entry."""
    require("jax")
    step = ug.value_and_grad_fn(_sum_of_squares, backend="jax", jit=True)
    params = [np.ones(2, np.float32), [np.ones(3, np.float32)], np.ones(1, np.float32)]
    for _ in range(3):
        _, grads = step(params)
        assert isinstance(grads[1], list) and grads[1][0].shape == (3,)
        np.testing.assert_allclose(grads[1][0], 2 * np.ones(3))
        np.testing.assert_allclose(grads[2], [2.0])
    assert not step._structure_refused and step.cache_size == 1


def test_packed_gradients_with_aux() -> None:
    require("jax")

    def loss_and_aux(params):
        return _sum_of_squares(params), {"first": params[0] * 3}

    step = ug.value_and_grad_fn(loss_and_aux, backend="jax", jit=True, has_aux=True)
    params = (np.ones(2, np.float32), np.full((2, 2), 2.0, np.float32))
    for _ in range(2):
        (loss, aux), grads = step(params)
        assert type(grads) is tuple and grads[0].base is grads[1].base is not None
        np.testing.assert_allclose(grads[1], np.full((2, 2), 4.0))
        np.testing.assert_allclose(aux["first"], [3.0, 3.0])
        assert float(loss) == 18.0


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_64_bit_numpy_leaves_go_to_jax_jit_unconverted_in_its_64_bit_scope(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NumPy's default dtypes into a compiled JAX step: handed to ``jax.jit`` as they are, inside
    JAX's 64-bit mode for the call only (they were converted one leaf at a time: 3.7x ``jax.jit``
    on ten 8x8 float64 leaves), with 64-bit results."""
    require("jax")
    import jax

    rng = np.random.default_rng(1)
    params = [(rng.standard_normal((3, 3)) * 0.4).astype(dtype) for _ in range(4)]
    step = ug.value_and_grad_fn(_sum_of_squares_chain, backend="jax", jit=True)
    step(params)
    conversions = count_conversions(monkeypatch, "jax")
    x64_before = jax.config.read("jax_enable_x64")
    loss, grads = step([p * 2 for p in params])
    assert conversions == [] and step.cache_size == 1
    assert jax.config.read("jax_enable_x64") == x64_before
    with jax.enable_x64(True):
        want_loss, want = jax.value_and_grad(_sum_of_squares_chain)([p * 2 for p in params])
        want = [np.asarray(g) for g in want]
    assert loss.dtype == np.float64
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    for got, expected in zip(grads, want, strict=True):
        assert got.dtype == dtype and got.flags.writeable
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def _sum_of_squares_chain(params):
    import jax.numpy as jnp

    x = params[0]
    for p in params[1:]:
        x = jnp.tanh(x @ p)
    return jnp.sum(jnp.abs(x) ** 2)


def test_switching_between_kinds_of_leaves_on_one_structure_traces_each_once() -> None:
    """One list structure called with float32 NumPy, float16 NumPy, float64 NumPy and JAX arrays in
    turn: each kind is traced once and kept (an entry made for a new kind replaced the previous one,
    so every switch traced again); a fifth kind takes the keyed path, compiled once for its key."""
    require("jax")
    import jax.numpy as jnp

    traces: list[str] = []

    def loss(params):
        traces.append(str(params[0].dtype))
        return sum(jnp.sum(jnp.abs(p).astype(jnp.float32) ** 2) for p in params)

    step = ug.value_and_grad_fn(loss, backend="jax", jit=True)
    kinds = [
        [np.ones(3, np.float32), np.ones(2, np.float32)],
        [np.ones(3, np.float16), np.ones(2, np.float16)],
        [np.ones(3, np.float64), np.ones(2, np.float64)],
        [jnp.ones(3, jnp.float32), jnp.ones(2, jnp.float32)],
    ]
    for _ in range(3):
        for params in kinds:
            _, grads = step(params)
            assert grads[0].dtype == params[0].dtype
            np.testing.assert_allclose(np.asarray(grads[1], np.float64), [2.0, 2.0])
    assert sorted(traces) == ["float16", "float32", "float32", "float64"]
    assert step.cache_size == 4
    fifth = [np.ones(3, np.complex64), np.ones(2, np.complex64)]
    for _ in range(2):
        _, grads = step(fifth)
        assert grads[0].dtype == np.complex64
    assert len(traces) == 5 and step.cache_size == 5 and len(step._entries) == 1


def test_64_bit_numpy_runs_unconverted_where_64_bit_mode_is_off() -> None:
    """As users run it (JAX's 64-bit mode off; this test process turns it on): float64 NumPy leaves
    go to ``jax.jit`` unconverted inside the call's own 64-bit scope, which ends with the call."""
    require("jax")
    script = """
        import numpy as np, jax, jax.numpy as jnp, unigrad as ug
        from unigrad.backends import get_adapter
        def chain(ps):
            return jnp.sum(jnp.tanh(ps[0] @ ps[1]) ** 2)
        step = ug.value_and_grad_fn(chain, backend="jax", jit=True)
        params = [np.eye(3) * 0.5, np.full((3, 3), 0.25)]
        step(params)
        adapter = type(get_adapter("jax"))
        calls = []
        original = adapter.from_numpy
        adapter.from_numpy = lambda self, a: calls.append(1) or original(self, a)
        loss, grads = step(params)
        with jax.enable_x64(True):
            want = jax.grad(chain)([jnp.asarray(p) for p in params])
        ok = all(np.allclose(g, w, rtol=1e-12) for g, w in zip(grads, want))
        print(len(calls), loss.dtype, grads[0].dtype, ok, jax.config.read("jax_enable_x64"))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["0", "float64", "float64", "True", "False"]


def test_an_entry_the_compiler_refuses_leaves_the_others_of_its_structure() -> None:
    """When one kind's entry fails to run (a shape the compiler refuses, say), that entry is dropped
    and its kind takes the keyed path; the structure's other entries stay and are not retraced."""
    require("jax")
    import jax.numpy as jnp

    traces: list[str] = []

    def loss(params):
        traces.append(str(params[0].dtype))
        return sum(jnp.sum(p.astype(jnp.float32) ** 2) for p in params)

    step = ug.value_and_grad_fn(loss, backend="jax", jit=True)
    single = [np.ones(2, np.float32), np.ones(2, np.float32)]
    half = [np.ones(2, np.float16), np.ones(2, np.float16)]
    step(single)
    step(half)
    (head,) = step._by_structure.values()
    assert head.numpy_dtypes == {np.dtype(np.float16)} and head.other is not None

    def refuse(params, data):
        raise RuntimeError("refused by the compiler")

    head.run = refuse
    _, grads = step(half)  # the keyed path answers
    np.testing.assert_allclose(np.asarray(grads[0], np.float64), [2.0, 2.0])
    (left,) = step._by_structure.values()
    assert left.numpy_dtypes == {np.dtype(np.float32)} and left.other is None
    before = len(traces)
    _, grads = step(single)
    assert len(traces) == before and grads[0].dtype == np.float32
