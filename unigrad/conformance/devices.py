"""Devices per backend, and placing float64 NumPy values on a backend, device and dtype.

Device names are ``'cpu'``, ``'gpu'`` or ``'<kind>:<index>'`` (``'cpu:1'``, ``'gpu:0'``). Several CPU
devices can be made without a GPU, so placement is testable anywhere: start JAX with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` and ``'cpu:1'`` is a second device.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.devices import available_devices, place
    >>> available_devices("numpy")
    ['cpu']
    >>> place("numpy", np.ones(2), "float32", "cpu").dtype
    dtype('float32')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from unigrad.backends._gpu_memory import before_import

#: The complex dtype of each floating precision that has one.
COMPLEX_OF = {"float64": "complex128", "float32": "complex64"}


def _split(device: str) -> tuple[str, int]:
    kind, _, index = device.partition(":")
    return kind, int(index or 0)


def available_devices(backend: str) -> list[str]:
    """Device names ``backend`` can compute on here: ``'cpu'`` first, then GPUs if any."""
    if backend == "numpy":
        return ["cpu"]
    # The in-process runner may be the first to import JAX or TensorFlow, beside torch's GPU memory.
    before_import(backend)
    if backend == "torch":
        import torch

        return ["cpu"] + [f"gpu:{i}" if i else "gpu" for i in range(torch.cuda.device_count())]
    if backend == "jax":
        import jax

        cpus = [f"cpu:{d.id}" if d.id else "cpu" for d in jax.devices("cpu")]
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        return cpus + [f"gpu:{i}" if i else "gpu" for i in range(len(gpus))]
    if backend == "tensorflow":
        import tensorflow as tf

        cpus = tf.config.list_logical_devices("CPU")  # several when the CPU is split into logical ones
        gpus = tf.config.list_logical_devices("GPU")
        return [f"cpu:{i}" if i else "cpu" for i in range(len(cpus))] + [
            f"gpu:{i}" if i else "gpu" for i in range(len(gpus))
        ]
    return _adapter(backend).available_devices()


def _adapter(backend: str) -> Any:
    """The adapter of a backend not handled above (MLX): it answers for its own devices."""
    from unigrad.backends import BACKENDS, get_adapter

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    return get_adapter(backend)


def _torch_device(device: str) -> Any:
    import torch

    kind, index = _split(device)
    return torch.device("cpu") if kind == "cpu" else torch.device("cuda", index)


def _jax_device(device: str) -> Any:
    import jax

    kind, index = _split(device)
    return jax.devices(kind)[index]


def place(backend: str, values: np.ndarray, dtype: str | None, device: str) -> Any:
    """``values`` as an array of ``backend`` on ``device``; floating values cast to ``dtype``.

    Complex values take the complex dtype of that precision (``float64`` → ``complex128``,
    ``float32`` → ``complex64``: a dtype column of the conformance matrix means both). Integer and
    boolean arrays keep their dtype (labels, indices). The cast happens inside the framework so that
    bfloat16 works where NumPy has no such dtype.

    Raises:
        ValueError: complex values at a precision with no complex dtype (float16, bfloat16).
    """
    values = np.asarray(values)
    floating = np.issubdtype(values.dtype, np.floating)
    target = dtype if (floating and dtype is not None) else None
    if dtype is not None and np.iscomplexobj(values):
        if dtype not in COMPLEX_OF:
            raise ValueError(f"complex values have no {dtype} counterpart: use float64 or float32")
        target = COMPLEX_OF[dtype]
    if backend == "numpy":
        return values.astype(target) if target else values.copy()
    if backend == "torch":
        import torch

        tensor = torch.from_numpy(values.copy())
        if target:
            tensor = tensor.to(getattr(torch, target))
        return tensor.to(_torch_device(device))
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        array = jnp.asarray(values, dtype=target) if target else jnp.asarray(values)
        return jax.device_put(array, _jax_device(device))
    if backend == "tensorflow":
        import tensorflow as tf

        kind, index = _split(device)
        with tf.device(f"/{kind.upper()}:{index}"):
            tensor = tf.constant(values)
            return tf.cast(tensor, target) if target else tensor
    adapter = _adapter(backend)
    if target in adapter.missing_dtypes:
        raise DtypeUnavailableError(f"{backend} has no {target} dtype")
    return adapter.place(values, target, device)


class DtypeUnavailableError(ValueError):
    """The backend has no such dtype at all (MLX: complex128): the runner reports ``n/a``."""


class NotDifferentiableError(ValueError):
    """A declared gap (``unigrad._namespace.gap_for``): the backend cannot differentiate the call: ``n/a``."""


#: How an evaluation that failed with either error above begins, once it is error text (a tuple,
#: as ``str.startswith`` takes it).
UNAVAILABLE_PREFIX = (f"{DtypeUnavailableError.__name__}:", f"{NotDifferentiableError.__name__}:")


def device_of(backend: str, x: Any) -> str:
    """The device name (as above) an array of ``backend`` lives on."""
    if backend == "numpy":
        return "cpu"
    if backend == "torch":
        kind = "cpu" if x.device.type == "cpu" else "gpu"
        index = x.device.index or 0
    elif backend == "jax":
        (dev,) = x.devices()
        kind, index = ("cpu" if dev.platform == "cpu" else "gpu"), dev.id
    elif backend != "tensorflow":
        return str(_adapter(backend).device_of(x))
    else:
        import tensorflow as tf

        spec = tf.DeviceSpec.from_string(x.device)
        kind, index = spec.device_type.lower(), spec.device_index or 0
    return f"{kind}:{index}" if index else kind


def place_tree(tree: Any, backend: str, dtype: str, device: str) -> Any:
    """Every NumPy leaf of ``tree`` placed with :func:`place`; other leaves as they are."""
    from unigrad import _tree

    def place_leaf(leaf: Any) -> Any:
        return place(backend, leaf, dtype, device) if isinstance(leaf, np.ndarray) else leaf

    return _tree.tree_map(place_leaf, tree)


@contextlib.contextmanager
def strict_precision(backends: list[str]) -> Iterator[None]:
    """Within the block: JAX 64-bit mode on, TF32 off on GPUs, highest matmul precision.

    Scoped and restored afterwards: the runner never leaves a global mode changed.
    """
    with contextlib.ExitStack() as stack:
        if "jax" in backends:
            import jax

            stack.enter_context(jax.enable_x64(True))
            stack.enter_context(jax.default_matmul_precision("highest"))
        if "torch" in backends:
            import torch

            previous = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

            def restore() -> None:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous

            stack.callback(restore)
        if "tensorflow" in backends:
            import tensorflow as tf

            was_enabled = tf.config.experimental.tensor_float_32_execution_enabled()
            tf.config.experimental.enable_tensor_float_32_execution(False)
            stack.callback(tf.config.experimental.enable_tensor_float_32_execution, was_enabled)
        yield
