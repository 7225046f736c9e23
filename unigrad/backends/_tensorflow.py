"""TensorFlow adapter: one non-persistent gradient tape per call, watching exactly the params.

Eager tensors and plain ``tf.Variable``s are recorded with the functions ``tf.GradientTape`` is made
of, without its per-call and per-source Python (:mod:`unigrad.backends._tensorflow_tape`); other
sources (distributed variables, symbolic tensors inside ``tf.function``) with ``tf.GradientTape``.
``watch_accessed_variables=False`` keeps variables the loss reads from elsewhere (a Keras layer
captured by closure) out of the gradient, so the result matches the other backends: gradients with
respect to ``params`` only. Unconnected leaves get zeros and ``IndexedSlices`` come back dense.

Beyond the gradient: ``tf.autodiff.ForwardAccumulator`` for forward mode (``jvp``, and ``hvp`` as
forward over reverse), nested tapes for the Hessian, ``tape.jacobian`` (vectorised with pfor, a
while loop if pfor refuses an op) and ``tf.vectorized_map`` for per-example gradients, with a Python
loop over the examples when ``vectorized_map`` cannot convert the loss.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad._errors import InvalidDeviceError, UnigradError
from unigrad.backends import DTYPE_KEYS, LOSS_KEYS, keras_tensorflow_variable_types
from unigrad.backends._base import Adapter, ExampleFn, FlatFn, OutputCheck, StepFn, split_arrays
from unigrad.backends._loss_call import loss_parts
from unigrad.backends._tensorflow_tape import SOURCE_TYPES, dense, gradient, record, stop, watchable
from unigrad.backends._tensorflow_tape import EagerTensor as _EagerTensor
from unigrad.backends._tensorflow_tape import engine as tape_engine

_ZERO = tf.UnconnectedGradients.ZERO
# An eager tensor's dtype as a C call (its .dtype property goes through Python): route keys only.
# The method descriptor itself, mapped over the leaves: 45 ns a leaf here against 233 ns through
# operator.methodcaller (which looks the method up on every tensor) and 477 ns for .dtype.
DTYPE_KEYS[_EagerTensor] = _EagerTensor._datatype_enum
# An eager loss's dtype and shape for the cache of valid losses, as C calls.
LOSS_KEYS[_EagerTensor] = lambda loss: (loss._datatype_enum(), loss._shape_tuple())
# Eigen's largest alignment requirement (EIGEN_MAX_ALIGN_BYTES with AVX-512), which TF's kernels check.
_ALIGNMENT = 64


class TensorFlowAdapter(Adapter):
    name = "tensorflow"
    calls_loss_on_given_leaves = True  # the tape watches the leaves themselves

    def is_array(self, x: Any) -> bool:
        return isinstance(x, (tf.Tensor, tf.Variable, *keras_tensorflow_variable_types()))

    def dtype_name(self, x: Any) -> str:
        dtype = x.dtype
        return dtype if isinstance(dtype, str) else dtype.name  # Keras variables give "float32"

    def device_of(self, x: Any) -> str:
        device = _device(x) or "cpu"
        return tf.DeviceSpec.from_string(device).device_type.lower() if ":" in device else device

    def version(self) -> str:
        return str(tf.__version__)

    def placer(self, device: Any) -> Callable[[Any], Any] | None:
        if device is None:
            return None  # TensorFlow places every op itself (a GPU first, where it has one)
        name = _tf_device(device)
        place = _placers.get(name)
        if place is None:
            place = _placers.setdefault(name, functools.partial(_copy_to, name))
        return place

    def on_accelerator(self) -> bool:
        return _on_accelerator()

    def float32_matmul_precision(self) -> str:
        return "high" if tf.config.experimental.tensor_float_32_execution_enabled() else "highest"

    def precision_hint(self) -> str:
        return "tf.config.experimental.enable_tensor_float_32_execution(False)"

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.numpy()

    def dlpack_source(self, x: Any) -> Any:
        return tf.experimental.dlpack.to_dlpack(tf.convert_to_tensor(x))

    def from_numpy(self, array: np.ndarray) -> Any:
        # Zero-copy through DLPack where TF can use the buffer as it is: C-contiguous, writable (NumPy
        # exports no read-only arrays) and 64-byte aligned. TF's kernels abort the process ("Check
        # failed: IsAligned()") on a less aligned buffer, and NumPy's allocator only promises 16
        # bytes, so most arrays are copied by tf.convert_to_tensor, which aligns them.
        if array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % _ALIGNMENT == 0:
            try:
                return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
            except Exception:  # noqa: BLE001 - any DLPack refusal: copy
                pass
        return tf.convert_to_tensor(array)

    def from_dlpack(self, source: Any) -> Any:
        capsule = source.__dlpack__() if hasattr(source, "__dlpack__") else source
        return tf.experimental.dlpack.from_dlpack(capsule)

    def from_foreign(self, x: Any, origin: Adapter) -> Any:
        # DLPack shares the buffer as it is, and TF aborts the process on one that is not 64-byte
        # aligned (a slice such as torch.arange(10.)[1:4]): the same rule as from_numpy, which copies
        # such a buffer. An address the origin cannot tell is copied too.
        if origin.name != "numpy":
            address = origin.buffer_address(x)
            if address is None or address % _ALIGNMENT:
                return self.from_numpy(origin.to_numpy(x))
        return super().from_foreign(x, origin)

    def match(self, x: Any, like: Any) -> Any:
        with tf.device(_device(like) or "/cpu:0"):
            return tf.identity(tf.cast(x, like.dtype))

    def signature(self, x: Any) -> Hashable:
        return (type(x), tuple(x.shape), x.dtype, _device(x))

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        leaves = _unaliased(leaves)
        loss_fn, arguments = loss_parts(fn, leaves)  # called from here: one frame less under each op
        kinds = {*map(type, leaves)}
        watched = leaves  # what the tape watches: a Keras variable's own tf.Variable for it
        if not kinds <= SOURCE_TYPES:
            watched = watchable(leaves)
            kinds = {*map(type, watched)}
        if kinds <= SOURCE_TYPES and tape_engine(kinds):
            # Eager tensors and variables: the functions under tf.GradientTape, without its per-call
            # and per-source Python (a quarter of a small call; unigrad.backends._tensorflow_tape).
            tape = record(watched)
            try:
                loss, aux = finish(loss_fn(*arguments))
            finally:
                stop(tape)
            grads = gradient(tape, loss, watched)
        else:
            # One source is passed bare, not in a list: TF's nest packing of a list result runs
            # isinstance checks against a typing Protocol, which cost more than the rest of a call.
            sources = watched[0] if len(leaves) == 1 else watched
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(sources)
                loss, aux = finish(loss_fn(*arguments))
            grads = tape.gradient(loss, sources, unconnected_gradients=_ZERO)
            grads = [grads] if len(leaves) == 1 else grads
        del tape  # release the recorded graph now rather than at the next garbage collection
        grads = dense(grads)
        if _has_several_devices():
            grads = [_on_device_of(grad, leaf) for grad, leaf in zip(grads, leaves, strict=True)]
        return loss, aux, grads

    def jvp(self, fn: FlatFn, leaves: list[Any], tangents: list[Any]) -> tuple[list[Any], list[Any]]:
        leaves = _unaliased(leaves)
        with tf.autodiff.ForwardAccumulator(watchable(leaves), tangents) as accumulator:
            out = fn(leaves)
        return out, [accumulator.jvp(o, unconnected_gradients=_ZERO) for o in out]

    def vjp(self, fn: FlatFn, leaves: list[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        leaves = _unaliased(leaves)
        tape = tf.GradientTape(watch_accessed_variables=False, persistent=True)
        watched = watchable(leaves)
        with tape:
            tape.watch(watched)
            out = fn(leaves)

        def pullback(cotangents: list[Any]) -> list[Any]:
            grads = tape.gradient(out, watched, output_gradients=cotangents, unconnected_gradients=_ZERO)
            return dense(grads)

        return out, pullback

    def jacobian(self, fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
        leaves = _unaliased(leaves)
        watched = watchable(leaves)
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
            tape.watch(watched)
            out = fn(leaves)
        return [_tape_jacobian(tape, o, watched) for o in out]

    def hessian(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> list[list[Any]]:
        leaves = _unaliased(leaves)
        watched = watchable(leaves)
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as outer:
            outer.watch(watched)
            grads = self._gradient(fn, leaves, finish)
        return [_tape_jacobian(outer, g, watched) for g in grads]

    def hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        leaves = _unaliased(leaves)
        # Forward over reverse: the accumulator outside the tape pushes `vector` through the gradient.
        with tf.autodiff.ForwardAccumulator(watchable(leaves), vector) as accumulator:
            grads = self._gradient(fn, leaves, finish)
        # The tangent of a gradient that went through a gather (take) is IndexedSlices too.
        return dense([accumulator.jvp(g, unconnected_gradients=_ZERO) for g in grads])

    def per_example_grads(
        self, fn: ExampleFn, leaves: list[Any], batch: list[Any], finish: OutputCheck
    ) -> list[Any]:
        leaves = _unaliased(leaves)  # once, not once per example
        raised: list[UnigradError] = []

        def example_grads(example: list[Any]) -> list[Any]:
            try:
                return self._gradient(lambda params: fn(params, list(example)), leaves, finish)
            except UnigradError as err:  # tf.function re-raises it wrapped: keep the original
                raised.append(err)
                raise

        try:
            return list(tf.vectorized_map(example_grads, list(batch)))
        except Exception as err:  # noqa: BLE001 - any pfor refusal: fall back to one example at a time
            if raised:
                raise raised[0] from None
            _warn_loop_fallback(err)
        size = int(batch[0].shape[0])
        rows = [example_grads([b[index] for b in batch]) for index in range(size)]
        return [tf.stack(column) for column in zip(*rows, strict=True)]

    def compile(
        self, fn: StepFn, param_leaves: list[Any], data_leaves: list[Any], options: Mapping[str, Any]
    ) -> StepFn:
        # One tf.function per cache key, traced for exactly this key's shapes and dtypes: the input
        # signature means it can never retrace, and no relaxed (shape-generic) trace is ever made.
        signature = [[_spec(x) for x in param_leaves], [_spec(x) for x in data_leaves]]
        carried: dict[str, Any] = {}

        def arrays_only(params: list[Any], data: list[Any]) -> tuple[Any, Any, list[Any]]:
            loss, aux, grads = fn(params, data)
            arrays, carried["rebuild"] = split_arrays(aux, self.is_array)
            return loss, arrays, grads

        traced = tf.function(arrays_only, **{"input_signature": signature, "autograph": False, **options})
        # The cache key already fixes the signature: calling the concrete function skips
        # tf.function's per-call argument binding and trace lookup (about 120 us on a CPU MLP step).
        concrete = traced.get_concrete_function()

        def run(params: list[Any], data: list[Any]) -> tuple[Any, Any, list[Any]]:
            loss, arrays, grads = concrete(params, data)
            return loss, carried["rebuild"](arrays), grads

        return run

    def _gradient(self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck) -> list[Any]:
        # (``leaves`` come unaliased from hessian, hvp and per_example_grads, which watch them too.)
        watched = watchable(leaves)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            loss, _ = finish(fn(leaves))
        return dense(tape.gradient(loss, watched, unconnected_gradients=_ZERO))


# device name -> the function copying a tensor there (one per device: it keys unigrad's caches).
_placers: dict[str, Callable[[Any], Any]] = {}


def _tf_device(device: Any) -> str:
    """``device`` (``'gpu'``, ``'gpu:1'``, ``'/CPU:1'``, a full device name) as a logical device of
    this process, in TensorFlow's full spelling."""
    text = str(device).strip("/")
    kind, _, index = text.rpartition("device:")[2].partition(":")
    wanted = f"{kind.upper()}:{index or 0}"
    for logical in tf.config.list_logical_devices():
        if logical.name.endswith("device:" + wanted):
            return str(logical.name)
    known = ", ".join(f"'{d.name.rpartition('device:')[2]}'" for d in tf.config.list_logical_devices())
    raise InvalidDeviceError(
        f"backend 'tensorflow' has no device {device!r} here (its devices: {known}): pass 'cpu', "
        f"'gpu:1' or a TensorFlow device name"
    )


def _copy_to(name: str, x: Any) -> Any:
    with tf.device(name):
        return tf.identity(x)


@functools.cache
def _on_accelerator() -> bool:
    """Whether TensorFlow sees a GPU (float32 matmuls use TF32 there unless turned off)."""
    return bool(tf.config.list_logical_devices("GPU"))


def _unaliased(leaves: list[Any]) -> list[Any]:
    """``leaves`` with every repeat of an object already among them replaced by ``tf.identity`` of it.

    A tape tells its sources apart by object: given one tensor at two places in params (``{"a": x,
    "b": x}``), it would hand both places the gradient of both uses. Each place gets its own tensor,
    hence its own part, as ``jax.grad`` and ``torch.func.grad`` give.
    """
    if len(leaves) < 2 or len(set(map(id, leaves))) == len(leaves):
        return leaves
    seen: set[int] = set()
    result = []
    for leaf in leaves:
        result.append(tf.identity(leaf) if id(leaf) in seen else leaf)
        seen.add(id(leaf))
    return result


def _device(x: Any) -> str:
    """The TF device string of a tensor, ``tf.Variable`` or Keras variable ('' when unplaced)."""
    device = getattr(x, "device", None)
    if device is None:  # a Keras variable: its tf.Variable knows
        device = x.value.device
    return device or ""


@functools.cache
def _has_several_devices() -> bool:
    """Whether TF has more than one logical device (fixed once TF has started, as it has by now)."""
    return len(tf.config.list_logical_devices()) > 1


def _on_device_of(grad: Any, leaf: Any) -> Any:
    """``grad`` on ``leaf``'s device. Eager TF runs ops on its default device, not on their inputs'
    (params on ``/CPU:1`` or ``/GPU:1`` get gradients on device 0 from a plain tape), and unigrad
    hands gradients back on their parameter's device, as on PyTorch and JAX."""
    device = _device(leaf)
    if not device or grad.device == device:
        return grad
    with tf.device(device):
        return tf.identity(grad)


def _spec(x: Any) -> tf.TensorSpec:
    return tf.TensorSpec(x.shape, x.dtype)


def _tape_jacobian(tape: tf.GradientTape, target: Any, sources: list[Any]) -> list[Any]:
    try:
        return list(tape.jacobian(target, sources, unconnected_gradients=_ZERO))
    except UnigradError:
        raise
    except Exception:  # noqa: BLE001 - pfor cannot vectorise every op; a while loop always works
        return list(tape.jacobian(target, sources, unconnected_gradients=_ZERO, experimental_use_pfor=False))


_loop_warned = False


def _warn_loop_fallback(err: Exception) -> None:
    global _loop_warned
    if not _loop_warned:
        _loop_warned = True
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        warnings.warn(
            f"tf.vectorized_map could not vectorise the loss ({type(err).__name__}: {first_line}); "
            f"per_example_grads loops over the examples in Python instead (slower, same result)",
            RuntimeWarning,
            stacklevel=4,
        )


ADAPTER = TensorFlowAdapter()
