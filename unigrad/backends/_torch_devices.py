"""PyTorch devices for unigrad: what ``device=`` names, and the accelerator check of the precision rule.

Example:
    >>> from unigrad.backends._torch_devices import torch_device
    >>> torch_device("gpu:1"), torch_device("meta")
    (device(type='cuda', index=1), device(type='meta'))
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from unigrad._errors import InvalidDeviceError

# torch.device -> the function moving a tensor there (one per device: it keys unigrad's caches).
_placers: dict[Any, Callable[[Any], Any]] = {}


def _moved(x: Any, device: Any) -> Any:
    return x.to(device)


def torch_device(device: Any) -> Any:
    """``device`` as a ``torch.device``; ``'gpu'``/``'gpu:N'`` are read as ``'cuda'``/``'cuda:N'``."""
    if isinstance(device, torch.device):
        return device
    text = str(device)
    if text == "gpu" or text.startswith("gpu:"):
        text = "cuda" + text[3:]
    try:
        return torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidDeviceError(
            f"backend 'torch' has no device {device!r}: pass a torch.device or a string torch accepts "
            f"('cpu', 'cuda', 'cuda:1', 'mps', 'meta'; 'gpu' means 'cuda')"
        ) from None


# What torch.get_default_device() reads: the torch-function modes (``with torch.device(...)`` pushes a
# DeviceContext there) and the context torch.set_default_device() leaves. Private names: where a torch
# lacks them, every call asks torch.get_default_device() itself.
_function_modes = getattr(torch._C, "_len_torch_function_stack", None)
_global_device_context = getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None)
_CPU = torch.device("cpu")


def default_device() -> Any:
    """``torch.get_default_device()``, without its cost when nothing has changed the default.

    torch's function imports two modules and scans the mode stack at every call (about 5 µs here,
    the largest single cost of a NumPy call on the CPU); with no torch-function mode active and no
    default set, its answer is the CPU.
    """
    if (
        _function_modes is not None
        and _global_device_context is not None
        and _function_modes() == 0
        # this thread's attributes as a dict: getattr with a default raises and catches an
        # AttributeError inside when the attribute is missing (the usual case), ~9x the cost
        and _global_device_context.__dict__.get("device_context") is None
    ):
        return _CPU
    return torch.get_default_device()


def placer(device: Any) -> Callable[[Any], Any] | None:
    """The function moving a tensor onto ``device`` (``None``: torch's default device), or ``None``
    when tensors made from NumPy are there already (the CPU)."""
    target = default_device() if device is None else torch_device(device)
    if target.type == "cpu":
        return None  # torch.from_numpy's tensors are on the CPU already
    place = _placers.get(target)
    if place is None:
        place = _placers.setdefault(target, functools.partial(_moved, device=target))
    return place


@functools.cache
def on_accelerator() -> bool:
    """Whether torch sees a CUDA device (float32 matmuls may use TF32 there)."""
    return bool(torch.cuda.is_available())
