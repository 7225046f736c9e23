"""PyTorch workloads: losses with ``torch`` ops; natives ``loss.backward()`` and ``torch.func``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.workloads import Step


def convert(tree: Any, *, trainable: bool, device: str = "cpu") -> Any:
    """NumPy -> torch (``torch.from_numpy``, no copy on the CPU; ``device="gpu"``: CUDA device 0);
    params get ``requires_grad``."""
    target = torch.device("cuda" if device == "gpu" else "cpu")

    def one(array: np.ndarray) -> torch.Tensor:
        if array.dtype.kind == "i":  # cross_entropy wants int64 targets
            return torch.from_numpy(array.astype(np.int64)).to(target)
        tensor = torch.from_numpy(array).to(target)
        return tensor.requires_grad_() if trainable else tensor

    return {key: one(value) for key, value in tree.items()} if isinstance(tree, dict) else one(tree)


def _layer_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], scale, bias, eps=1e-5)


def make_loss(problem: str, *, heads: int = 4) -> Callable[..., Any]:
    """The loss of ``problem`` written with PyTorch ops."""

    def tiny(x: torch.Tensor, data: Any = None) -> torch.Tensor:
        return (x**2).sum()

    def mlp(p: dict[str, torch.Tensor], data: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = torch.tanh(data["x"] @ p["w1"] + p["b1"])
        return F.cross_entropy(hidden @ p["w2"] + p["b2"], data["y"])

    def pytree(p: dict[str, torch.Tensor], data: Any = None) -> torch.Tensor:
        return (torch.cat(list(p.values())) ** 2).sum()

    def transformer(p: dict[str, torch.Tensor], data: dict[str, torch.Tensor]) -> torch.Tensor:
        x = data["x"]
        batch, seq, d_model = x.shape
        h = _layer_norm(x, p["ln1_scale"], p["ln1_bias"])

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, seq, heads, d_model // heads).transpose(1, 2)

        q, k, v = split(h @ p["wq"]), split(h @ p["wk"]), split(h @ p["wv"])
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, seq, d_model)
        x = x + attended @ p["wo"]
        h = _layer_norm(x, p["ln2_scale"], p["ln2_bias"])
        x = x + F.gelu(h @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return ((x - data["y"]) ** 2).mean()

    def big(p: dict[str, torch.Tensor], data: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((torch.tanh(data["x"] @ p["w1"]) @ p["w2"]) ** 2).mean()

    losses = {"tiny": tiny, "mlp": mlp, "pytree": pytree, "transformer": transformer, "big": big}
    return losses[problem]


def native_steps(loss_fn: Callable[..., Any], params: Any, data: Any) -> dict[str, Step]:
    """``loss.backward()`` (grads read from ``.grad``) and ``torch.func.grad_and_value``."""
    is_dict = isinstance(params, dict)
    keys = list(params) if is_dict else []
    leaves = list(params.values()) if is_dict else [params]

    def backward() -> tuple[Any, Any]:
        for leaf in leaves:
            leaf.grad = None  # what optimizer.zero_grad(set_to_none=True) does
        loss = loss_fn(params, data)
        loss.backward()
        if is_dict:
            return loss.detach(), {key: leaf.grad for key, leaf in zip(keys, leaves, strict=True)}
        return loss.detach(), params.grad

    grad_and_value = torch.func.grad_and_value(loss_fn)

    def func() -> tuple[Any, Any]:
        grads, loss = grad_and_value(params, data)
        return loss, grads

    return {"loss.backward()": backward, "torch.func.grad_and_value": func}


def sync(result: Any, device: str = "cpu") -> Any:
    """PyTorch on the CPU computes synchronously; on a GPU, wait for the CUDA stream."""
    if device == "gpu":
        torch.cuda.synchronize()
    return result
