"""What the array-api-compat namespaces do not give us as we need it, per backend.

Two kinds of functions live here, both built the first time a backend's namespace is made (each
builder imports its framework, so nothing is imported before an array of that framework is seen):

* **extras**, names outside the Array API standard (``logsumexp``, ``sigmoid``, ``softplus``,
  ``relu``, ``erf``, ``rsqrt``, ``log_softmax``, ``softmax``, ``einsum``), implemented with each
  framework's native function where it has one and on top of NumPy for the reference backend;
* **corrections** to standard names where an array-api-compat namespace departs from NumPy's
  semantics or from the other backends: PyTorch's ``take`` (N-d indices, negative indices,
  ``axis=None``) and ``asarray`` (default device), the tuple results of ``linalg.slogdet``,
  ``linalg.eigh``, ``linalg.qr`` and ``linalg.svd``, which every backend returns as the same named
  tuples, and the containers of ``meshgrid`` and ``broadcast_arrays`` (lists, as the standard
  says; NumPy and PyTorch give tuples) and ``unstack`` (a tuple).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from unigrad._namespace._names import EighResult, QRResult, SlogdetResult, SVDResult

Axis = int | Sequence[int] | None
Functions = dict[str, Callable[..., Any]]


def extras_for(backend: str) -> Functions:
    """The non-standard guaranteed functions of ``backend`` (imports its framework); empty for a
    backend whose shim implements them itself (MLX)."""
    builder = _EXTRAS.get(backend)
    return {} if builder is None else builder()


def corrections_for(backend: str, module: ModuleType) -> Functions:
    """Standard names whose array-api-compat version ``module`` must be replaced on ``backend``."""
    corrections = {
        "linalg.slogdet": _returning(SlogdetResult, module.linalg.slogdet),
        "linalg.eigh": _returning(EighResult, module.linalg.eigh),
        "linalg.qr": _returning(QRResult, module.linalg.qr),
        "linalg.svd": _returning(SVDResult, module.linalg.svd),
        "meshgrid": _returning(list, module.meshgrid, spread=False),
        "broadcast_arrays": _returning(list, module.broadcast_arrays, spread=False),
        "unstack": _returning(tuple, module.unstack, spread=False),
    }
    if backend == "torch":
        corrections.update(_torch_corrections(module))
    if backend == "jax":
        corrections.update(_jax_corrections(module))
    return corrections


def _jax_corrections(module: ModuleType) -> Functions:
    import numpy as np

    def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
        # jnp.repeat refuses a list; as NumPy it is concrete, so its size is known inside jax.jit.
        if isinstance(repeats, list | tuple):
            repeats = np.asarray(repeats)
        return module.repeat(x, repeats, axis=axis)

    return {"repeat": repeat}


def _returning(result_type: type, function: Callable[..., Any], spread: bool = True) -> Callable[..., Any]:
    """``function`` with its result turned into ``result_type`` (a named tuple's fields are spread)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        return result_type(*result) if spread else result_type(result)

    return wrapper


def _torch_corrections(module: ModuleType) -> Functions:
    import torch

    def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
        if isinstance(obj, torch.Tensor):
            # torch.asarray cuts a tensor from the graph before torch 2.13 (requires_grad=False: the
            # gradient through xp.asarray(x) was 0 on torch 2.11) and warns from 2.13 on; .to() and
            # .clone() are differentiable on every version.
            out = obj.to(device=device, dtype=dtype)
            if out is not obj and copy is False:
                raise ValueError(
                    f"asarray(copy=False): a {obj.dtype} tensor on {obj.device} needs a copy to become "
                    f"dtype={dtype}, device={device}; pass copy=None to allow it"
                )
            return obj.clone() if copy and out is obj else out
        # torch.asarray keeps a NumPy array on the CPU; put new tensors on torch's default device
        # (a namespace pinned to a device passes its own).
        if device is None:
            device = torch.get_default_device()
        return module.asarray(obj, dtype=dtype, device=device, copy=copy)

    def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
        # index_select wants a 1-D index and no negative entries; np.take takes any shape and counts
        # negative indices from the end, and flattens x when axis is None.
        if axis is None:
            x, axis = x.reshape(-1), 0
        axis = axis % x.ndim
        indices = torch.as_tensor(indices, device=x.device)
        size = x.shape[axis]
        flat = torch.where(indices < 0, indices + size, indices).reshape(-1)
        picked = torch.index_select(x, axis, flat)
        return picked.reshape(x.shape[:axis] + indices.shape + x.shape[axis + 1 :])

    def imag(x: Any, /) -> Any:
        # torch.imag refuses a real tensor; NumPy gives zeros of its dtype.
        return torch.imag(x) if x.is_complex() else torch.zeros_like(x)

    def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
        if isinstance(repeats, list | tuple):  # repeat_interleave refuses a list, NumPy takes one
            repeats = torch.as_tensor(repeats, device=x.device)
        return module.repeat(x, repeats, axis=axis)

    return {"asarray": asarray, "take": take, "imag": imag, "repeat": repeat}


# -- extras, one builder per backend -----------------------------------------------------------


def _torch_extras() -> Functions:
    import torch
    import torch.nn.functional as functional

    def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
        dims = tuple(range(x.ndim)) if axis is None else axis
        return torch.logsumexp(x, dim=dims, keepdim=keepdims)

    def softplus(x: Any) -> Any:
        # Past the threshold F.softplus returns x itself; exp(-20) is below float32's resolution but
        # not float64's, so float64 switches over later (exp(40) is still far from overflowing).
        threshold = 40.0 if x.dtype == torch.float64 else 20.0
        return functional.softplus(x, threshold=threshold)

    return {
        "logsumexp": logsumexp,
        "sigmoid": torch.sigmoid,
        "softplus": softplus,
        "relu": torch.relu,
        "erf": torch.special.erf,
        "rsqrt": torch.rsqrt,
        "log_softmax": lambda x, axis=-1: torch.log_softmax(x, dim=axis),
        "softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
        "einsum": torch.einsum,
    }


def _tensorflow_extras() -> Functions:
    import tensorflow as tf

    def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
        axes = axis if axis is None or isinstance(axis, int) else list(axis)
        return tf.math.reduce_logsumexp(x, axis=axes, keepdims=keepdims)

    return {
        "logsumexp": logsumexp,
        "sigmoid": tf.math.sigmoid,
        "softplus": tf.math.softplus,
        "relu": tf.nn.relu,
        "erf": tf.math.erf,
        "rsqrt": tf.math.rsqrt,
        "log_softmax": lambda x, axis=-1: tf.nn.log_softmax(x, axis=axis),
        "softmax": lambda x, axis=-1: tf.nn.softmax(x, axis=axis),
        "einsum": tf.einsum,
    }


def _jax_extras() -> Functions:
    import jax
    import jax.numpy as jnp
    import jax.scipy.special

    return {
        "logsumexp": lambda x, axis=None, keepdims=False: jax.nn.logsumexp(x, axis=axis, keepdims=keepdims),
        "sigmoid": jax.nn.sigmoid,
        "softplus": jax.nn.softplus,
        "relu": jax.nn.relu,
        "erf": jax.scipy.special.erf,
        "rsqrt": jax.lax.rsqrt,
        "log_softmax": lambda x, axis=-1: jax.nn.log_softmax(x, axis=axis),
        "softmax": lambda x, axis=-1: jax.nn.softmax(x, axis=axis),
        "einsum": jnp.einsum,
    }


def _numpy_extras() -> Functions:
    import numpy as np

    # SciPy is not a dependency; math.erf is exact to float64 rounding, and the reference backend
    # values accuracy over speed.
    erf_float64 = np.vectorize(math.erf, otypes=[np.float64])

    def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
        x = np.asarray(x)
        top = np.max(x, axis=axis, keepdims=True)
        top = np.where(np.isfinite(top), top, 0)  # all -inf (or an inf) must not give inf - inf
        with np.errstate(divide="ignore"):
            total = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
        return total if keepdims else np.squeeze(total, axis=axis)

    def sigmoid(x: Any) -> Any:
        decay = np.exp(-np.abs(x))  # never overflows
        return np.where(np.asarray(x) >= 0, 1 / (1 + decay), decay / (1 + decay))

    def erf(x: Any) -> Any:
        x = np.asarray(x)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return np.asarray(erf_float64(x), dtype=dtype)

    def log_softmax(x: Any, axis: int = -1) -> Any:
        return x - logsumexp(x, axis=axis, keepdims=True)

    return {
        "logsumexp": logsumexp,
        "sigmoid": sigmoid,
        "softplus": lambda x: np.logaddexp(x, 0),
        "relu": lambda x: np.maximum(x, 0),
        "erf": erf,
        "rsqrt": lambda x: 1 / np.sqrt(x),
        "log_softmax": log_softmax,
        "softmax": lambda x, axis=-1: np.exp(log_softmax(x, axis=axis)),
        "einsum": np.einsum,
    }


_EXTRAS: dict[str, Callable[[], Functions]] = {
    "torch": _torch_extras,
    "tensorflow": _tensorflow_extras,
    "jax": _jax_extras,
    "numpy": _numpy_extras,
}
