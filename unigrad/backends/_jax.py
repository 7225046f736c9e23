"""JAX adapter: ``jax.vjp`` over the flat list of leaves, pulled back from a cached ones array.

Auxiliary outputs that JAX cannot trace (strings, arbitrary objects) are carried around the
transformation so ``has_aux`` accepts the same things on JAX as on PyTorch and TensorFlow.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from unigrad._errors import InvalidDeviceError
from unigrad.backends._base import (
    COMPLEX_DTYPES,
    Adapter,
    ExampleFn,
    FlatFn,
    OutputCheck,
    StepFn,
    example_loss,
    split_arrays,
)
from unigrad.backends._loss_call import loss_parts


class JaxAdapter(Adapter):
    name = "jax"
    mode_dependent_dtypes = frozenset({"float64", "complex128"})  # an error while x64 is off
    # What JAX would silently narrow to 32 bits while x64 is off: kept under precision_scope.
    scoped_dtypes = frozenset({"float64", "int64", "uint64", "complex128"})
    compiler_keys_shapes = True  # jax.jit retraces by itself on a new shape, dtype or sharding

    def is_array(self, x: Any) -> bool:
        return isinstance(x, jax.Array)

    def dtype_name(self, x: Any) -> str:
        return str(x.dtype)

    def device_of(self, x: Any) -> str:
        devices = x.devices()
        return ",".join(sorted(f"{d.platform}:{d.id}" for d in devices))

    def version(self) -> str:
        return str(jax.__version__)

    def param_problem(self, dtype_name: str) -> str | None:
        global _complex_planned
        if dtype_name in COMPLEX_DTYPES:
            _complex_planned = True  # from now on, results are checked for complex leaves
        if dtype_name in ("float64", "complex128") and not jax.config.jax_enable_x64:
            narrow = "float32" if dtype_name == "float64" else "complex64"
            return (
                f"JAX's 64-bit mode is off, so JAX would silently compute it in {narrow}; enable it "
                "with jax.config.update('jax_enable_x64', True) before creating arrays, or cast the "
                f"parameter to {narrow}"
            )
        return None

    def precision_scope(self) -> AbstractContextManager[Any]:
        # jax.enable_x64 is thread-local config (a swap of this thread's value, restored on exit),
        # and part of jax.jit's cache key: one trace per scoped signature, none for the others.
        return jax.enable_x64(True)

    def placer(self, device: Any) -> Callable[[Any], Any] | None:
        if device is None:
            return None  # jnp.asarray places on JAX's default device
        target = _jax_device(device)
        place = _placers.get(target)
        if place is None:
            place = _placers.setdefault(target, functools.partial(jax.device_put, device=target))
        return place

    def on_accelerator(self) -> bool:
        return _on_accelerator()

    def float32_matmul_precision(self) -> str:
        # None / "default" / "high" / "tensorfloat32": XLA's default on a GPU rounds to TF32.
        setting = jax.config.jax_default_matmul_precision
        return _LEVEL_OF_SETTING.get(str(setting).lower(), "high")

    def matmul_precision_scope(self, level: str) -> Callable[[], AbstractContextManager[Any]]:
        # jax.default_matmul_precision is thread-local config and part of jax.jit's cache key.
        setting = _SETTING_OF_LEVEL[level]
        return lambda: jax.default_matmul_precision(setting)

    def precision_hint(self) -> str:
        return "jax.config.update('jax_default_matmul_precision', 'highest')"

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def from_numpy(self, array: np.ndarray) -> Any:
        return jnp.asarray(array)

    def buffer_address(self, x: Any) -> int | None:
        try:
            return int(x.unsafe_buffer_pointer())
        except Exception:  # noqa: BLE001 - sharded over several devices, deleted, or a tracer
            return None

    def from_dlpack(self, source: Any) -> Any:
        return jax.dlpack.from_dlpack(source)

    def match(self, x: Any, like: Any) -> Any:
        return jax.device_put(x.astype(like.dtype), like.sharding)

    def signature(self, x: Any) -> Hashable:
        # weak_type is part of what jax.jit specialises on, so it is part of the key too. Tracers
        # (a step called inside the user's own jax.jit or vmap) have no sharding to read.
        return (type(x), x.shape, x.dtype, x.weak_type, getattr(x, "sharding", None))

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        # jax.vjp and a cotangent of ones, as jax.value_and_grad does, without what it adds per call
        # and unigrad has already done: argument and output dtype checks (the plan validated the
        # params, ``finish`` the loss) and a fresh ``ones`` array each call (an eager op: ~80 us on a
        # CPU, a kernel launch on a GPU). The loss keeps its shape (``(1,)`` is fine for a VJP).
        rebuild: list[Callable[[Any], Any]] = []

        def loss_of(leaves: list[Any]) -> Any:
            loss_fn, arguments = loss_parts(fn, leaves)  # the user's loss called from this frame
            loss, aux = finish(loss_fn(*arguments))
            if not finish.has_aux:
                return loss
            if aux is not None:
                aux, carry = split_arrays(aux, ADAPTER.is_array)
                rebuild.append(carry)
            return loss, aux

        # jax.vjp reads the function's signature for its debug names (inspect.signature: ~10 us).
        loss_of.__signature__ = _LOSS_OF_SIGNATURE  # type: ignore[attr-defined]
        if finish.has_aux:
            loss, pullback, aux = jax.vjp(loss_of, leaves, has_aux=True)
            if rebuild:
                aux = rebuild[0](aux)
        else:
            loss, pullback = jax.vjp(loss_of, leaves)
            aux = None
        ones = _ones_like(loss)
        grads = pullback(ones)[0]
        for grad in grads:  # an identity loss hands the cotangent itself back: never share it
            if grad is ones:
                grads = [jnp.copy(g) if g is ones else g for g in grads]
                break
        return loss, aux, _conjugated(grads)

    def jvp(self, fn: FlatFn, leaves: list[Any], tangents: list[Any]) -> tuple[list[Any], list[Any]]:
        out, out_tangents = jax.jvp(fn, (leaves,), (tangents,))
        return list(out), list(out_tangents)

    def vjp(self, fn: FlatFn, leaves: list[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        out, pullback = jax.vjp(fn, leaves)
        return list(out), lambda cotangents: _conjugated(list(pullback(list(cotangents))[0]))

    def jacobian(self, fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
        return [_conjugated(list(row)) for row in jax.jacrev(fn)(leaves)]

    def hessian(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> list[list[Any]]:
        return [list(row) for row in jax.hessian(_scalar(fn, finish))(leaves)]

    def hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        # Forward over reverse: one JVP of the gradient, never the Hessian itself.
        return _conjugated(list(jax.jvp(jax.grad(_scalar(fn, finish)), (leaves,), (vector,))[1]))

    def per_example_grads(
        self, fn: ExampleFn, leaves: list[Any], batch: list[Any], finish: OutputCheck
    ) -> list[Any]:
        loss = example_loss(fn, finish, _as_scalar)
        return _conjugated(list(jax.vmap(jax.grad(loss), in_axes=(None, 0))(leaves, batch)))

    def compile(
        self, fn: StepFn, param_leaves: list[Any], data_leaves: list[Any], options: Mapping[str, Any]
    ) -> StepFn:
        # jax.jit returns arrays only: non-array aux leaves are recorded while tracing and put back.
        carried: dict[str, Any] = {}

        def arrays_only(params: list[Any], data: list[Any]) -> tuple[Any, Any, list[Any]]:
            loss, aux, grads = fn(params, data)
            if aux is None:
                return loss, None, grads
            arrays, carried["rebuild"] = split_arrays(aux, self.is_array)
            return loss, arrays, grads

        jitted = jax.jit(arrays_only, **options)

        def run(params: list[Any], data: list[Any]) -> tuple[Any, Any, list[Any]]:
            loss, arrays, grads = jitted(params, data)
            rebuild = carried.get("rebuild")
            return loss, (arrays if rebuild is None else rebuild(arrays)), grads

        return run

    def compile_trees(
        self, fn: Callable[[Any, Any], tuple[Any, Any]], options: Mapping[str, Any]
    ) -> Callable[[Any, Any], tuple[Any, Any]]:
        return jax.jit(fn, **options)

    def compiler_flatten(self, tree: Any) -> tuple[list[Any], Hashable]:
        # jax.tree_util's C++ flatten: about 2 us for the MLP's params and data against 7 us for
        # optree's, in a real call (measured by benchmarks/, caches cold after XLA ran).
        return jax.tree_util.tree_flatten(tree)

    def concat_flat(self, arrays: list[Any]) -> Any:
        return jnp.concatenate([jnp.ravel(array) for array in arrays])


_LEVEL_OF_SETTING = {"highest": "highest", "float32": "highest", "bfloat16": "medium", "fastest": "medium"}
_SETTING_OF_LEVEL = {"highest": "highest", "high": "tensorfloat32", "medium": "bfloat16"}


# jax.Device -> the function putting an array there (one per device: it keys unigrad's caches).
_placers: dict[Any, Callable[[Any], Any]] = {}


def _jax_device(device: Any) -> Any:
    """``device`` as a ``jax.Device``: one already, or ``'cpu'``, ``'gpu'``, ``'cuda:1'``, ``'tpu:0'``
    (a platform and an index among its devices)."""
    if isinstance(device, jax.Device):
        return device
    platform, _, index = str(device).partition(":")
    try:
        return jax.devices(platform)[int(index or 0)]
    except (RuntimeError, ValueError, IndexError):
        known = ", ".join(f"'{d.platform}:{d.id}'" for d in jax.devices())
        raise InvalidDeviceError(
            f"backend 'jax' has no device {device!r} here (its devices: {known}): pass a jax.Device "
            f"or 'platform:index'"
        ) from None


@functools.cache
def _on_accelerator() -> bool:
    """Whether JAX's default backend is not the CPU (where every float32 matmul is full)."""
    return jax.default_backend() != "cpu"


# What jax.vjp's debug names read of ``loss_of`` (every one has this signature).
_LOSS_OF_SIGNATURE = inspect.signature(lambda leaves: None)

# (aval, sharding, committed) of a loss -> a ones array like it: the cotangent a gradient starts
# from. JAX arrays are immutable, so one per kind of loss serves every call; bounded like any cache.
_ONES: dict[tuple[Any, Any, bool], Any] = {}
_ONES_LIMIT = 64


def _ones_like(loss: Any) -> Any:
    """A ones array like ``loss`` (its dtype, shape, weak type and placement), made once per kind.

    Inside the caller's own trace (``jax.jit``, ``vmap``, ``grad`` around unigrad) ``loss`` is a
    tracer without a sharding, and the ones are part of that trace, as in ``jax.value_and_grad``.
    """
    try:
        key = (loss.aval, loss.sharding, loss.committed)
    except AttributeError:  # a tracer
        return jax.lax.full_like(loss, 1)
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) >= _ONES_LIMIT:
            _ONES.clear()
        ones = jax.lax.full_like(loss, 1)  # keeps the weak type; a shape () one on the default device
        if key[2]:  # a loss placed on purpose: its ones (an identity loss's gradient) stay there
            ones = jax.device_put(ones, key[1])
        ones = _ONES.setdefault(key, ones)
    return ones


# Whether a complex parameter has been planned for JAX in this process (see _conjugated).
_complex_planned = False


def _conjugated(grads: list[Any]) -> list[Any]:
    """``grads`` with every complex entry conjugated (the others untouched, the list itself when none is).

    For a real loss of a complex parameter ``z = x + iy``, JAX returns ``∂L/∂x - i·∂L/∂y`` (its
    documented convention); unigrad returns ``∂L/∂x + i·∂L/∂y`` on every backend, as PyTorch and
    TensorFlow do, so that ``z - lr * g`` descends (docs/complex.md). Inside a trace (compiled steps)
    the dtype is known, so the conjugate is part of the compiled computation.

    Reading a JAX array's dtype costs about 0.5 us (measured: 3 us for four leaves), so the check
    only runs once a complex parameter has been planned for JAX: every call validates its params'
    dtypes through :meth:`JaxAdapter.param_problem` before reaching the adapter (or passed that
    check in an earlier call whose dtypes it remembers).
    """
    if not _complex_planned:
        return grads
    for grad in grads:
        if grad.dtype.kind == "c":
            return [jnp.conj(g) if g.dtype.kind == "c" else g for g in grads]
    return grads


def _as_scalar(loss: Any) -> Any:
    """``loss`` with shape ``()``; reshaping only when needed, since in eager JAX every extra
    primitive is a dispatch of its own (about 250 us on a small CPU loss)."""
    return loss if loss.ndim == 0 else jnp.reshape(loss, ())


def _scalar(fn: Callable[[list[Any]], Any], finish: OutputCheck) -> Callable[[list[Any]], Any]:
    def scalar_loss(leaves: list[Any]) -> Any:
        loss, _ = finish(fn(leaves))
        return _as_scalar(loss)

    return scalar_loss


ADAPTER = JaxAdapter()
