"""PyTorch adapter: reverse mode with ``torch.autograd.grad`` on detached aliases of the parameters.

Differentiating ``leaf.detach().requires_grad_()`` aliases (no copy) instead of the user's tensors
means no ``.grad`` is written and no ``requires_grad`` flag is flipped on anything the user owns; it
is also as fast as ``loss.backward()`` (see the Core issue's measurements).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree
import torch

from unigrad.backends._base import Adapter, OutputCheck


class TorchAdapter(Adapter):
    name = "torch"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def dtype_name(self, x: Any) -> str:
        return str(x.dtype).removeprefix("torch.")

    def device_of(self, x: Any) -> str:
        return str(x.device)

    def version(self) -> str:
        return str(torch.__version__)

    def to_numpy(self, x: Any) -> np.ndarray:
        x = x.detach()
        if x.dtype == torch.bfloat16:
            import ml_dtypes  # shipped with JAX and TensorFlow; NumPy itself has no bfloat16

            return x.cpu().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return x.cpu().numpy()

    def dlpack_source(self, x: Any) -> Any:
        return x.detach()

    def from_numpy(self, array: np.ndarray) -> Any:
        array = np.asarray(array)
        if array.dtype.name == "bfloat16":
            return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
        if not array.flags.writeable or not array.flags.aligned:
            array = array.copy()  # torch.from_numpy warns on read-only memory; copy to stay silent
        return torch.from_numpy(array)

    def from_dlpack(self, source: Any) -> Any:
        return torch.from_dlpack(source)

    def match(self, x: Any, like: Any) -> Any:
        return x.to(device=like.device, dtype=like.dtype)

    def detach(self, x: Any) -> Any:
        return x.detach() if isinstance(x, torch.Tensor) else x

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        with torch.enable_grad():
            aliases = [leaf.detach().requires_grad_() for leaf in leaves]
            loss, aux = finish(fn(aliases))
            if loss.requires_grad:
                grads = list(torch.autograd.grad(loss, aliases, allow_unused=True, materialize_grads=True))
            else:  # the loss never touched the parameters
                grads = [torch.zeros_like(leaf) for leaf in leaves]
        aux = optree.tree_map(self.detach, aux, namespace="unigrad")
        return loss.detach(), aux, grads


ADAPTER = TorchAdapter()
