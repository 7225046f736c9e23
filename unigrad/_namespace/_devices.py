"""Where a namespace's creation functions put new arrays: on the device of the array it was made for.

Three questions, one answer each per backend, so that :func:`unigrad._namespace.namespace` stays one
path for every backend:

* **which device does a leaf live on** (:func:`device_key`): a hashable key read from the leaf with
  one attribute access (:data:`DEVICE_ATTRIBUTE`) and no framework import, or ``None`` where there
  is no concrete device (JAX tracers, symbolic TensorFlow tensors, NumPy and MLX's one memory).
* **does that device need pinning** (:func:`placement`): an array on the framework's own default
  device (PyTorch's CPU, TensorFlow's ``CPU:0``, ``jax.devices()[0]``), or with no concrete device,
  gets the backend's unpinned namespace, which leaves new arrays to the framework's placement rules
  (``with torch.device(...)``, ``jax.default_device``, ``tf.device`` included). An array anywhere
  else gets a namespace pinned to its device. Decided once per device key, then cached.
* **what a caller's ``device=`` means** (:func:`requested`): a device as the framework accepts it.

:func:`pin` wraps the creation functions that take ``device=`` (:data:`PLACED`) so that they default
to the pinned device; an explicit ``device=`` still wins, ``asarray`` of an array of the backend keeps
that array's device (Array API semantics), and ``zeros_like`` / ``ones_like`` follow their argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from typing import Any

#: The creation functions that default to the namespace's device (``*_like`` follow their argument).
PLACED = ("asarray", "zeros", "ones", "full", "eye", "arange", "linspace", "fft.fftfreq", "fft.rfftfreq")


#: backend -> the attribute of its arrays that says where they live (hashable); backends absent here
#: (NumPy, MLX) have one memory. JAX tracers have no ``sharding`` and symbolic TensorFlow tensors an
#: empty ``device``: no concrete device.
DEVICE_ATTRIBUTE = {"torch": "device", "tensorflow": "device", "jax": "sharding"}


def device_key(backend: str, leaf: Any) -> Hashable:
    """The key of the device ``leaf`` lives on, or ``None`` for none. Never imports a framework."""
    attribute = DEVICE_ATTRIBUTE.get(backend)
    if attribute is None:
        return None
    key = getattr(leaf, attribute, None)
    if key is None and backend == "tensorflow":  # a Keras 3 variable: its tf.Variable has the device
        key = getattr(getattr(leaf, "value", None), "device", None)
    return key


def placement(backend: str, key: Hashable) -> Any:
    """The device to pin for a leaf whose device key is ``key``; ``None``: leave it to the framework."""
    if key is None or backend not in DEVICE_ATTRIBUTE:
        return None
    if backend == "torch":
        return None if key.type == "cpu" else key
    if backend == "tensorflow":
        if not key:
            return None
        import tensorflow as tf

        spec = tf.DeviceSpec.from_string(key)
        return None if spec.device_type == "CPU" and not spec.device_index else key
    devices = key.device_set
    if len(devices) != 1:  # spread over several devices: JAX's own rules place what it combines with
        return None
    import jax

    (device,) = devices
    return None if device == jax.devices()[0] else device


def requested(backend: str, device: Any) -> Any:
    """The device to pin for a caller's ``device=`` on ``backend``; ``None`` where there is one memory.

    Raises:
        ValueError: a device string the framework does not accept, or not ``'cpu'`` on NumPy.
        TypeError: on JAX, something other than a ``jax.Device`` or a ``Sharding``.
    """
    if backend == "torch":
        import torch

        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"namespace: device={device!r} is not a PyTorch device ({err})") from err
    if backend == "tensorflow":
        import tensorflow as tf

        name = device if isinstance(device, str) else getattr(device, "to_string", lambda: None)()
        if not isinstance(name, str):
            raise TypeError(
                f"namespace: device= on TensorFlow takes a device string ('/GPU:0', x.device) or a "
                f"tf.DeviceSpec, got {type(device).__name__} {device!r}"
            )
        return tf.DeviceSpec.from_string(name).to_string()  # ValueError for a malformed name
    if backend == "jax":
        import jax

        if not isinstance(device, jax.Device | jax.sharding.Sharding):
            raise TypeError(
                f"namespace: device= on JAX takes a jax.Device (e.g. jax.devices()[0]) or a Sharding, "
                f"as jax.numpy does, got {type(device).__name__} {device!r}"
            )
        return device
    if backend == "mlx":
        import mlx.core as mx

        # Unified memory: an MLX array has no device, whichever device computed it.
        if isinstance(device, mx.Device | mx.DeviceType) or device in ("cpu", "gpu"):
            return None
        raise ValueError(f"namespace: device= on MLX is mx.cpu, mx.gpu, 'cpu' or 'gpu', got {device!r}")
    if device != "cpu":
        raise ValueError(
            f"namespace: NumPy arrays live on the CPU only, so device= must be 'cpu', got {device!r}"
        )
    return None


def pin(
    functions: Mapping[str, Callable[..., Any]], device: Any, is_own_array: Callable[[Any], bool]
) -> dict[str, Callable[..., Any]]:
    """The :data:`PLACED` functions of ``functions``, putting new arrays on ``device`` by default."""
    pinned = {name: _defaulting_to(functions[name], device) for name in PLACED if name != "asarray"}
    asarray = functions["asarray"]

    @functools.wraps(asarray)
    def asarray_on_device(obj: Any, /, **kwargs: Any) -> Any:
        if kwargs.get("device") is None and not is_own_array(obj):
            kwargs["device"] = device
        return asarray(obj, **kwargs)

    pinned["asarray"] = asarray_on_device
    return pinned


def _defaulting_to(function: Callable[..., Any], device: Any) -> Callable[..., Any]:
    @functools.wraps(function)
    def on_device(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("device") is None:
            kwargs["device"] = device
        return function(*args, **kwargs)

    return on_device
