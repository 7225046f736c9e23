"""The JAX engine: the batch sharded over a device mesh, the gradient partitioned by XLA (GSPMD).

The params are replicated (``NamedSharding(mesh, P())``) and the batch is split along axis 0 over
every device of the mesh (``NamedSharding(mesh, P(axes))``; with several processes, each process's
examples become its part of one global array through ``jax.make_array_from_process_local_data``).
The step differentiates the masked sum of the per-example losses: XLA partitions it so that each
device differentiates its own examples and all-reduces the partial sums; the result is divided by the
number of real examples. Batches that do not divide evenly are padded with copies of the last example
and masked out, so no example is dropped or counted twice. No ``shard_map`` is used, hence no
``pmean`` to get wrong.

Example:
    >>> from unigrad.distributed._jax import padded_size
    >>> padded_size(7, 2), padded_size(8, 4)
    (8, 8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from unigrad.backends import get_adapter
from unigrad.distributed._batch import LocalBatch, check_per_example, split_output


def padded_size(size: int, devices: int) -> int:
    """``size`` rounded up to a multiple of ``devices`` (and at least ``devices``)."""
    return max(1, -(-size // devices)) * devices


def default_mesh() -> Mesh:
    """One axis, ``'data'``, over ``jax.devices()`` (every process's devices after ``jax.distributed``)."""
    return Mesh(np.array(jax.devices()), ("data",))


def _mean_of_sum(losses: Any, count: Any) -> Any:
    """``sum(losses) / count`` in the losses' dtype; 16-bit losses are summed and divided in float32
    (as ``jnp.mean`` does): float16 turns a count above 65,504 into inf, and every gradient into 0."""
    if jnp.finfo(losses.dtype).bits > 16:
        return jnp.sum(losses) / count
    return (jnp.sum(losses, dtype=jnp.float32) / count).astype(losses.dtype)


def _pad(array: Any, rows: int) -> Any:
    missing = rows - array.shape[0]
    if missing == 0:
        return array
    xp = np if isinstance(array, np.ndarray) else jnp
    if array.shape[0] == 0:  # nothing to copy: zeros, masked out like any padding
        return xp.zeros((rows, *array.shape[1:]), array.dtype)
    # Copies of a real example keep the padding's losses (and their gradients) finite, which a mask
    # needs: 0 * inf would still be nan.
    return xp.concatenate([array, xp.repeat(array[-1:], missing, axis=0)], axis=0)


class Engine:
    """Runs a data-parallel step over a JAX device mesh (see the module docstring)."""

    keeps_numpy = True  # NumPy batches go to their devices in one copy, not through device 0

    def __init__(
        self,
        example_loss_fn: Callable[..., Any],
        has_aux: bool,
        jit: bool,
        mesh: Mesh | None = None,
        jit_options: Any = None,
    ) -> None:
        self.mesh = mesh
        self.has_aux = has_aux
        self.jit = jit
        self.jit_options = dict(jit_options or {})
        adapter = get_adapter("jax")

        def step(
            param_leaves: list[Any], batch_arrays: list[Any], mask: Any, count: Any, shape_of: Any
        ) -> Any:
            rebuild, batch = shape_of

            def masked_sum(leaves: list[Any]) -> Any:
                out = example_loss_fn(rebuild(leaves), batch.with_arrays(batch_arrays))
                losses, aux = split_output(out, has_aux, "jax")
                check_per_example(losses, batch_arrays[0].shape[0], adapter)
                if mask is not None:
                    losses = jnp.where(mask, losses, jnp.zeros((), losses.dtype))
                # count: the number of real examples, known on the host (no collective to count the
                # mask). Scaling before differentiating, as a hand-written mean does, leaves nothing
                # to divide afterwards.
                return _mean_of_sum(losses, count), aux

            (loss, aux), grads = jax.value_and_grad(masked_sum, has_aux=True)(param_leaves)
            return loss, aux, grads

        self._step = step
        self._compiled: dict[Any, Callable[..., Any]] = {}
        self._placement: tuple[Mesh, NamedSharding, NamedSharding, int] | None = None
        self._masks: dict[tuple[int, int], Any] = {}

    @property
    def cache_size(self) -> int:
        """Compiled signatures (traces of ``jax.jit``, which keys shapes and dtypes itself)."""
        return sum(fn._cache_size() for fn in self._compiled.values())

    def run(
        self, param_leaves: list[Any], rebuild: Callable[[list[Any]], Any], batch: LocalBatch, param_key: Any
    ) -> tuple[Any, Any, list[Any]]:
        _, batch_sharding, replicated, local_devices = self._placement or self._place()
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            sizes = np.asarray(multihost_utils.process_allgather(np.array([batch.size]))).reshape(-1)
            rows = padded_size(int(sizes.max()), local_devices)
            padded, count = bool((sizes != rows).any()), int(sizes.sum())
        else:
            rows = padded_size(batch.size, local_devices)
            padded, count = rows != batch.size, batch.size
        local = batch.arrays if rows == batch.size else [_pad(a, rows) for a in batch.arrays]
        arrays = _global_all(local, batch_sharding)
        mask = None
        if padded:
            mask = self._masks.get((rows, batch.size))
            if mask is None:
                mask = _global(np.arange(rows) < batch.size, batch_sharding)
                self._masks = {(rows, batch.size): mask}  # the last one: a training loop repeats its sizes
        params = _global_all(param_leaves, replicated)
        if not self.jit:
            return self._step(params, arrays, mask, float(count), (rebuild, batch))
        # jax.jit keys shapes, dtypes and shardings itself (mask=None is a structure of its own)
        key = (param_key, batch.key())
        compiled = self._compiled.get(key)
        if compiled is None:
            step, static = self._step, (rebuild, batch.template())
            # The count is static: a new count comes with a new batch shape in a training loop but for
            # rare multi-process cases, and a scalar argument would be copied to every device per call.
            options = {"static_argnums": (3,), **self.jit_options}
            compiled = jax.jit(lambda p, a, m, c: step(p, a, m, c, static), **options)
            self._compiled[key] = compiled
        return compiled(params, arrays, mask, count)

    def _place(self) -> tuple[Mesh, NamedSharding, NamedSharding, int]:
        """The mesh, the batch's and the params' shardings, and this process's device count (once)."""
        mesh = self.mesh if self.mesh is not None else default_mesh()
        batch_sharding = NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names)))
        local = len([d for d in mesh.devices.flat if d.process_index == jax.process_index()])
        self._placement = (mesh, batch_sharding, NamedSharding(mesh, PartitionSpec()), local)
        return self._placement


def _global_all(arrays: list[Any], sharding: NamedSharding) -> list[Any]:
    """Each of ``arrays`` as :func:`_global` makes it, the ones to place in one ``device_put`` (one
    call for the whole batch, as a hand-written step does: a call per array costs ~0.3 ms more each
    on two CPU devices)."""
    todo = [i for i, array in enumerate(arrays) if getattr(array, "sharding", None) != sharding]
    if not todo:
        return arrays
    if jax.process_count() > 1 or len(todo) == 1:
        return [_global(array, sharding) if i in todo else array for i, array in enumerate(arrays)]
    placed = jax.device_put([arrays[i] for i in todo], sharding)
    result = list(arrays)
    for i, array in zip(todo, placed, strict=True):
        result[i] = array
    return result


def _global(array: Any, sharding: NamedSharding) -> Any:
    """``array`` (this process's part) as a global array with ``sharding``."""
    if getattr(array, "sharding", None) == sharding:
        return array  # already placed (device_put would still cost about 0.5 ms for two devices)
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    return jax.make_array_from_process_local_data(sharding, np.asarray(array))
