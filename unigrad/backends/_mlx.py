"""MLX adapter: ``mx.value_and_grad`` over the flat list of leaves, evaluated before returning.

MLX (Apple's array framework) differentiates functions of array pytrees like JAX does, with a few
differences this adapter absorbs so that MLX behaves like the other backends:

* ``mx.array(float64_numpy)`` silently gives float32 (and ``mx.array(torch_tensor)`` through DLPack
  too): arrays are always made with an explicit dtype, from NumPy;
* float64 runs on MLX's CPU only: a call with float64 leaves runs on the CPU stream when the default
  device is a GPU;
* ``np.asarray(mx_array)`` is a zero-copy *writable* view of MLX's buffer, and bfloat16 has no NumPy
  buffer format: arrays leave MLX as NumPy copies, bfloat16 through float32;
* evaluation is lazy: results are ``mx.eval``-uated before they are returned (except inside the
  user's own ``mx.compile`` or ``mx.vmap``, where evaluating is not allowed and not needed);
* transformations (``mx.value_and_grad``, ``mx.compile``, ``mx.vmap``) carry arrays only: other aux
  leaves (strings, numbers, NumPy arrays) are carried around them.

Integer parameters are refused by the core (``mx.grad`` would return integers instead of raising).

Example:
    >>> import mlx.core as mx
    >>> import unigrad as ug
    >>> grads = ug.grad(lambda p: (p["w"] ** 2).sum(), {"w": mx.array([1.0, 2.0], dtype=mx.float64)})
    >>> grads["w"].dtype, grads["w"].tolist()
    (mlx.core.float64, [2.0, 4.0])
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import mlx.core as mx
import numpy as np

from unigrad._errors import InvalidDeviceError, PrecisionError
from unigrad.backends._base import Adapter, ExampleFn, FlatFn, OutputCheck, StepFn, example_loss, split_arrays
from unigrad.backends._loss_call import loss_parts

#: NumPy dtype name -> MLX dtype, for every dtype MLX has (no complex128, no float128).
DTYPES: dict[str, Any] = {
    name: getattr(mx, name)
    for name in (
        "bool_",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "complex64",
    )
}
DTYPES["bool"] = DTYPES.pop("bool_")


class MlxAdapter(Adapter):
    name = "mlx"
    missing_dtypes = frozenset({"complex128"})

    def is_array(self, x: Any) -> bool:
        return isinstance(x, mx.array)

    def dtype_name(self, x: Any) -> str:
        return str(x.dtype).removeprefix("mlx.core.")

    def device_of(self, x: Any) -> str:
        # MLX arrays live in unified memory and have no device: operations run on a stream's device.
        return "gpu" if mx.default_device() == mx.gpu else "cpu"

    def version(self) -> str:
        return str(mx.__version__)

    # -- moving arrays between frameworks ------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        mx.eval(x)
        if x.dtype == mx.bfloat16:  # no NumPy buffer format for bfloat16
            as_float32 = np.array(x.astype(mx.float32))
            try:
                import ml_dtypes  # shipped with JAX and TensorFlow; NumPy itself has no bfloat16
            except ImportError:
                return as_float32
            return as_float32.astype(ml_dtypes.bfloat16)  # exact: every bfloat16 is a float32
        # np.array copies: np.asarray would be a writable view of MLX's own (immutable) buffer.
        return np.array(x)

    def dlpack_source(self, x: Any) -> Any:
        # A NumPy copy: DLPack straight from MLX would hand out a writable view of its buffer.
        return self.to_numpy(x)

    def from_numpy(self, array: np.ndarray) -> Any:
        array = np.asarray(array)
        name = array.dtype.name
        if name == "bfloat16":  # ml_dtypes' bfloat16: MLX reads no such buffer, float32 holds it exactly
            return mx.array(array.astype(np.float32), dtype=mx.float32).astype(mx.bfloat16)
        dtype = DTYPES.get(name)
        if dtype is None:
            raise PrecisionError(
                f"MLX has no {name} dtype, so an array of {name} would lose precision on backend "
                f"'mlx'; cast it first (complex128 to complex64) or choose another backend"
            )
        # An explicit dtype: mx.array(float64_numpy) alone silently gives float32. Negative strides
        # (x[::-1], np.flip) are refused by MLX's import: those take a contiguous copy.
        if any(stride < 0 for stride in array.strides):
            array = np.ascontiguousarray(array)
        return mx.array(array, dtype=dtype)

    def from_dlpack(self, source: Any) -> Any:
        # mx.array(torch_tensor) reads DLPack but turns float64 into float32: go through NumPy.
        return self.from_numpy(np.from_dlpack(source))

    def from_foreign(self, x: Any, origin: Adapter) -> Any:
        return self.from_numpy(origin.to_numpy(x))

    def match(self, x: Any, like: Any) -> Any:
        return x if x.dtype == like.dtype else x.astype(like.dtype)

    # -- devices (unigrad.conformance.devices) ----------------------------------------------------
    def available_devices(self) -> list[str]:
        return ["cpu", "gpu"] if mx.is_available(mx.gpu) else ["cpu"]

    def placer(self, device: Any) -> Callable[[Any], Any] | None:
        # One memory shared by CPU and GPU: MLX arrays have no device to move to, and the default
        # device (mx.set_default_device) decides where the computation runs. device= is checked only.
        kind = str(getattr(device, "type", device)).rpartition(".")[2].partition(":")[0].lower()
        if device is None or kind in self.available_devices():
            return None
        raise InvalidDeviceError(
            f"backend 'mlx' has no device {device!r} here (its devices: {self.available_devices()}); "
            f"MLX arrays share one memory, so device= only names where MLX may compute"
        )

    def place(self, values: np.ndarray, dtype: str | None, device: str) -> Any:
        if dtype is not None and dtype != "bfloat16":  # in NumPy first: complex128 -> complex64
            values = values.astype(dtype)
        array = self.from_numpy(values)
        if dtype == "bfloat16":
            array = array.astype(mx.bfloat16)
        # MLX arrays have no device: the computation's stream decides where it runs. A worker that
        # is asked for one device runs everything there.
        mx.set_default_device(mx.gpu if device.startswith("gpu") else mx.cpu)
        return array

    # -- differentiation -------------------------------------------------------------------------
    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        if finish.has_aux:
            return self._value_and_grad_with_aux(fn, leaves, finish)
        # The common case: one output, and a loss of shape () travels as it is (no second output).
        shape: list[Any] = []
        stream = _stream_for(leaves) if _HAS_GPU else _NOTHING
        if stream is _NOTHING:  # no context to enter (a no-op one costs two Python calls)
            loss, grads = _VALUE_AND_GRAD_NO_AUX(leaves, (fn, finish, shape))
            _evaluate(loss, grads)
        else:
            with stream:
                loss, grads = _VALUE_AND_GRAD_NO_AUX(leaves, (fn, finish, shape))
                _evaluate(loss, grads)
        return (mx.reshape(loss, shape[0]) if shape else loss), None, grads

    def _value_and_grad_with_aux(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        carried: dict[str, Any] = {}

        def scalar_loss(diff_leaves: list[Any]) -> tuple[Any, Any, list[Any]]:
            loss, aux = finish(fn(diff_leaves))
            arrays: list[Any] = []
            if aux is not None:
                found, carried["rebuild"] = split_arrays(aux, self.is_array)
                carried["positions"] = list(found)
                arrays = list(found.values())
            # MLX differentiates the first output, which must have shape (); the loss as returned
            # (shape (1,) say) travels as an output of its own.
            return _as_scalar(loss), loss, arrays

        with _stream_for(leaves):
            (_, loss, arrays), grads = mx.value_and_grad(scalar_loss)(list(leaves))
            _evaluate(loss, arrays, grads)
        aux = None
        if "rebuild" in carried:
            aux = carried["rebuild"](dict(zip(carried["positions"], arrays, strict=True)))
        return loss, aux, list(grads)

    def jvp(self, fn: FlatFn, leaves: list[Any], tangents: list[Any]) -> tuple[list[Any], list[Any]]:
        with _stream_for(leaves):
            out, out_tangents = mx.jvp(_positional(fn), list(leaves), list(tangents))
            _evaluate(out, out_tangents)
        return list(out), list(out_tangents)

    def vjp(self, fn: FlatFn, leaves: list[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        leaves = list(leaves)
        with _stream_for(leaves):
            out = list(fn(leaves))
            _evaluate(out)

        def pullback(cotangents: list[Any]) -> list[Any]:
            # mx.vjp takes the cotangents with the primals: the forward pass runs again here.
            with _stream_for(leaves):
                _, cotangents_in = mx.vjp(_positional(fn), leaves, list(cotangents))
                _evaluate(cotangents_in)
            return list(cotangents_in)

        return out, pullback

    def jacobian(self, fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
        leaves = list(leaves)
        with _stream_for(leaves):
            rows = _jacobian_rows(fn, leaves)
            _evaluate(rows)
        return rows

    def hessian(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> list[list[Any]]:
        gradient = mx.grad(_scalar(fn, finish))
        leaves = list(leaves)
        with _stream_for(leaves):
            rows = _jacobian_rows(lambda ls: list(gradient(ls)), leaves)
            _evaluate(rows)
        return rows

    def hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        # Forward over reverse: one JVP of the gradient, never the Hessian itself.
        gradient = mx.grad(_scalar(fn, finish))
        with _stream_for(leaves):
            _, products = mx.jvp(lambda *ls: list(gradient(list(ls))), list(leaves), list(vector))
            _evaluate(products)
        return list(products)

    def per_example_grads(
        self, fn: ExampleFn, leaves: list[Any], batch: list[Any], finish: OutputCheck
    ) -> list[Any]:
        loss = example_loss(fn, finish, _as_scalar)
        with _stream_for(leaves):
            grads = mx.vmap(mx.grad(loss), in_axes=(None, 0))(list(leaves), list(batch))
            _evaluate(grads)
        return list(grads)

    def compile(
        self, fn: StepFn, param_leaves: list[Any], data_leaves: list[Any], options: Mapping[str, Any]
    ) -> StepFn:
        # mx.compile takes and returns arrays only: non-array data leaves are fixed for this cache key
        # (they are part of it) and non-array aux leaves are recorded while tracing and put back.
        carried: dict[str, Any] = {}
        data_positions = [i for i, leaf in enumerate(data_leaves) if self.is_array(leaf)]
        # The constants only: holding this call's arrays would keep its batch alive.
        constant_data = [None if self.is_array(leaf) else leaf for leaf in data_leaves]

        def arrays_only(params: list[Any], data_arrays: list[Any]) -> tuple[Any, Any, list[Any]]:
            data = list(constant_data)
            for position, array in zip(data_positions, data_arrays, strict=True):
                data[position] = array
            _tracing.active = True
            try:
                loss, aux, grads = fn(params, data)
            finally:
                _tracing.active = False
            if aux is None:
                return loss, [], grads
            found, carried["rebuild"] = split_arrays(aux, self.is_array)
            carried["positions"] = list(found)
            return loss, list(found.values()), grads

        # The default stream made before the first trace: MLX makes it on first use, and a step first
        # traced before it existed is traced again on its next call (a fresh process's first compiled
        # step traced twice; tests/test_mlx.py).
        mx.default_stream(mx.default_device())
        compiled = mx.compile(arrays_only, **options)

        def run(params: list[Any], data: list[Any]) -> tuple[Any, Any, list[Any]]:
            with _stream_for(params):
                loss, arrays, grads = compiled(list(params), [data[i] for i in data_positions])
                _evaluate(loss, arrays, grads)
            rebuild = carried.get("rebuild")
            if rebuild is None:
                return loss, None, list(grads)
            return loss, rebuild(dict(zip(carried["positions"], arrays, strict=True))), list(grads)

        return run


#: Set while :meth:`MlxAdapter.compile` traces a step: nothing is evaluated inside ``mx.compile``.
class _Tracing(threading.local):
    """Whether this thread is tracing a compiled step (``active``). A class default, so reading it in
    a thread that never traced finds it, instead of raising and catching an AttributeError inside
    ``getattr`` (about 0.9 µs a call)."""

    active = False


_tracing = _Tracing()

#: What MLX says when asked to evaluate inside ``mx.compile`` or ``mx.vmap`` (ValueError for traced
#: values, RuntimeError for a compiled function's placeholder inputs).
_IN_TRANSFORM = ("function transformations", "without a primitive")


def _evaluate(*trees: Any) -> None:
    """``mx.eval`` the arrays, unless inside ``mx.compile`` / ``mx.vmap`` (ours or the user's).

    Evaluating there raises and is not needed: the enclosing transformation evaluates its outputs.
    """
    if _tracing.active:
        return
    try:
        mx.eval(*trees)
    except (ValueError, RuntimeError) as err:
        if not any(phrase in str(err) for phrase in _IN_TRANSFORM):
            raise


_NOTHING = contextlib.nullcontext()
#: Whether MLX has a GPU here (Apple silicon, a CUDA build). Without one the default device is always
#: the CPU and no call needs a stream of its own, so the eager gradient does not ask (_stream_for).
_HAS_GPU = bool(mx.is_available(mx.gpu))


def _stream_for(leaves: list[Any]) -> AbstractContextManager[Any]:
    """The CPU stream around a computation with float64 leaves when the default device is a GPU
    (MLX runs float64 on the CPU only); otherwise nothing (a shared no-op, nothing built per call)."""
    if mx.default_device() == mx.cpu or not any(
        isinstance(leaf, mx.array) and leaf.dtype == mx.float64 for leaf in leaves
    ):
        return _NOTHING
    return mx.stream(mx.cpu)


def _loss_only(leaves: list[Any], context: tuple[Callable[[list[Any]], Any], OutputCheck, list[Any]]) -> Any:
    """``fn``'s loss as a scalar; a loss of shape ``(1,)``... leaves its shape in ``context[2]``."""
    fn, finish, shape = context
    loss_fn, arguments = loss_parts(fn, leaves)  # the loss called from here, as on JAX
    loss, _ = finish(loss_fn(*arguments))
    if loss.ndim:
        shape.append(loss.shape)
        return mx.reshape(loss, ())
    return loss


# Built once, with the function, checker and shape box as an argument it does not differentiate
# (mx.value_and_grad differentiates the first): no call pays for building the transformation.
_VALUE_AND_GRAD_NO_AUX = mx.value_and_grad(_loss_only)


def _as_scalar(loss: Any) -> Any:
    return loss if loss.ndim == 0 else mx.reshape(loss, ())


def _positional(fn: FlatFn) -> Callable[..., list[Any]]:
    """``fn`` taking the leaves as positional arguments, as ``mx.jvp`` and ``mx.vjp`` call it."""
    return lambda *leaves: list(fn(list(leaves)))


def _scalar(fn: Callable[[list[Any]], Any], finish: OutputCheck) -> Callable[[list[Any]], Any]:
    def scalar_loss(leaves: list[Any]) -> Any:
        loss, _ = finish(fn(leaves))
        return _as_scalar(loss)

    return scalar_loss


def _jacobian_rows(fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
    """Reverse mode, one pullback per output element, batched with ``mx.vmap`` (MLX has no jacrev).

    ``rows[i][j]`` has shape ``out_i.shape + leaf_j.shape``.
    """
    outputs = list(fn(leaves))
    rows = []
    for index, out in enumerate(outputs):
        size = max(int(np.prod(out.shape)), 1)

        def pullback(cotangent: Any, index: int = index, out: Any = out) -> list[Any]:
            cotangents = [mx.zeros_like(o) for o in outputs]
            cotangents[index] = mx.reshape(cotangent, out.shape)
            return list(mx.vjp(_positional(fn), leaves, cotangents)[1])

        basis = mx.eye(size, dtype=out.dtype)
        per_element = mx.vmap(pullback)(basis)
        rows.append(
            [mx.reshape(g, (*out.shape, *leaf.shape)) for g, leaf in zip(per_element, leaves, strict=True)]
        )
    return rows


ADAPTER = MlxAdapter()
