"""JAX adapter: ``jax.value_and_grad`` over the flat list of leaves.

Auxiliary outputs that JAX cannot trace (strings, arbitrary objects) are carried around the
transformation so ``has_aux`` accepts the same things on JAX as on PyTorch and TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from unigrad import _tree
from unigrad.backends._base import Adapter, OutputCheck


class JaxAdapter(Adapter):
    name = "jax"

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
        if dtype_name == "float64" and not jax.config.jax_enable_x64:
            return (
                "JAX's 64-bit mode is off, so JAX would silently compute it in float32; enable it "
                "with jax.config.update('jax_enable_x64', True) before creating arrays, or cast the "
                "parameter to float32"
            )
        return None

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def from_numpy(self, array: np.ndarray) -> Any:
        return jnp.asarray(array)

    def from_dlpack(self, source: Any) -> Any:
        return jax.dlpack.from_dlpack(source)

    def match(self, x: Any, like: Any) -> Any:
        return jax.device_put(x.astype(like.dtype), like.sharding)

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        # Only JAX arrays travel through the transformation; every other aux leaf (numbers, strings,
        # NumPy arrays) cannot depend on the parameters and is carried around it unchanged.
        carried: dict[str, Any] = {}

        def scalar_loss(diff_leaves: list[Any]) -> tuple[Any, Any]:
            loss, aux = finish(fn(diff_leaves))
            aux_leaves, carried["treedef"] = _tree.flatten(aux)
            carried["leaves"] = aux_leaves
            traced = {i: leaf for i, leaf in enumerate(aux_leaves) if isinstance(leaf, jax.Array)}
            return jnp.reshape(loss, ()), (loss, traced)

        (_, (loss, traced)), grads = jax.value_and_grad(scalar_loss, has_aux=True)(leaves)
        aux_leaves = [traced.get(i, leaf) for i, leaf in enumerate(carried["leaves"])]
        return loss, carried["treedef"].unflatten(aux_leaves), list(grads)


ADAPTER = JaxAdapter()
