"""The TensorFlow engine: ``tf.distribute`` replicas, one ``GradientTape`` each, all-reduced with SUM.

This process's examples are split over the strategy's local replicas (unevenly when they do not
divide); each replica differentiates the sum of its examples' losses on its own tape, and the
replica context's ``all_reduce`` (the strategy's cross-device ops: packed and batched by TensorFlow)
adds the gradients, the loss sums and the example counts over every replica of every worker; the
results are divided by the total count. With ``jit=True`` the whole ``strategy.run`` is a
``tf.function``, traced once per input signature.

The default strategy: the one in scope (``with strategy.scope():``), else
``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names more than one task, else a
``MirroredStrategy`` over the local GPUs, or over the local logical CPUs when there is no GPU.

Example:
    >>> from unigrad.distributed._tensorflow import workers_in_tf_config
    >>> workers_in_tf_config('{"cluster": {"worker": ["localhost:1", "localhost:2"]}}')
    2
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad._errors import DistributedSetupError
from unigrad._reusable import param_signature
from unigrad.backends import get_adapter
from unigrad.backends._tensorflow import _unaliased
from unigrad.distributed._batch import (
    COUNT_BASE,
    LocalBatch,
    check_per_example,
    count_parts,
    split_output,
)


def workers_in_tf_config(text: str | None) -> int:
    """The number of tasks (workers and chief) that a ``TF_CONFIG`` value names (0 when unset)."""
    if not text:
        return 0
    cluster = json.loads(text).get("cluster", {})
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))


_made: list[tf.distribute.Strategy] = []


def default_strategy() -> tf.distribute.Strategy:
    """See the module docstring. A strategy made here is made once per process and shared by every
    step: two ``MirroredStrategy`` objects over the same devices number their collectives alike, and
    running both in one process aborts with a shape mismatch in a collective (measured on TF 2.21)."""
    if tf.distribute.has_strategy():
        return tf.distribute.get_strategy()
    if _made:
        return _made[0]
    _made.append(_new_default_strategy())
    return _made[0]


def _new_default_strategy() -> tf.distribute.Strategy:
    if workers_in_tf_config(os.environ.get("TF_CONFIG")) > 1:
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as err:
            raise DistributedSetupError(
                f"TF_CONFIG names several workers but MultiWorkerMirroredStrategy could not start "
                f"({type(err).__name__}: {err}); create it at the start of the program, before any "
                f"TensorFlow op runs, and pass it as strategy= (or call the step inside strategy.scope())"
            ) from err
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


class Engine:
    """Runs a data-parallel step on a ``tf.distribute`` strategy (see the module docstring)."""

    keeps_numpy = True  # each replica's slice of a NumPy batch is copied once, to its own device

    def __init__(
        self,
        example_loss_fn: Callable[..., Any],
        has_aux: bool,
        jit: bool,
        strategy: Any = None,
        jit_options: Any = None,
    ) -> None:
        self._strategy = strategy
        self.has_aux = has_aux
        self.jit = jit
        self.jit_options = dict(jit_options or {})
        self.traces = 0
        adapter = get_adapter("tensorflow")

        def replica_step(param_leaves: list[Any], shard: list[Any], static: Any) -> Any:
            rebuild, batch, local_count = static
            size = adapter.shape(shard[0])[0]
            with tf.GradientTape() as tape:
                watched = _unaliased(param_leaves)  # an aliased leaf gets its own part, as in ug.grad
                tape.watch(watched)
                out = example_loss_fn(rebuild(watched), batch.with_arrays(shard))
                losses, aux = split_output(out, has_aux, "tensorflow")
                check_per_example(losses, size, adapter)
                if local_count is None:
                    total = tf.reduce_sum(losses)
                else:
                    # One worker: the total count is this process's, known when tracing. Scaling the
                    # loss before differentiating (as a hand-written step does) leaves nothing to
                    # divide after the all-reduce.
                    total = _divided(tf.reduce_sum(_widened(losses)), local_count, losses.dtype)
            zero = tf.UnconnectedGradients.ZERO
            grads = tape.gradient(total, watched, unconnected_gradients=zero)
            if local_count is not None:
                loss, *grads = _all_reduce_sum([total, *grads])
                return loss, aux, grads
            # Several workers: the count is summed with the rest. The loss sum and the count ride with
            # the gradients of the loss's dtype (a half-precision loss sends them in float64): one
            # collective for a model of one dtype.
            dtype = total.dtype if total.dtype in (tf.float32, tf.float64) else tf.float64
            hi, lo = count_parts(size)
            stats = tf.stack([tf.cast(total, dtype), tf.constant(hi, dtype), tf.constant(lo, dtype)])
            stats, *grads = _all_reduce_sum([stats, *grads])
            count = stats[1] * COUNT_BASE + stats[2]
            loss = tf.cast(stats[0] / count, total.dtype)
            return loss, aux, [_divided(g, count, g.dtype) for g in grads]

        self._replica_step = replica_step
        self._compiled: dict[Any, Any] = {}
        self._concrete: dict[Any, Any] = {}

    @property
    def strategy(self) -> tf.distribute.Strategy:
        """The strategy this engine runs on (made on first use when none was given)."""
        if self._strategy is None:
            self._strategy = default_strategy()
        return self._strategy

    @property
    def cache_size(self) -> int:
        """Traces of the compiled step (one per input signature)."""
        return self.traces

    def run(
        self, param_leaves: list[Any], rebuild: Callable[[list[Any]], Any], batch: LocalBatch, param_key: Any
    ) -> tuple[Any, Any, list[Any]]:
        strategy = self.strategy
        shards = _shards(batch.arrays, batch.size, strategy)
        # One worker: every example of the step is in this process, so the count is known here.
        local_count = batch.size if strategy.num_replicas_in_sync == _local_replicas(strategy) else None
        replica_step = self._replica_step
        if not self.jit:
            static = (rebuild, batch, local_count)
            result = strategy.run(replica_step, args=(list(param_leaves), shards, static))
            return _first_replica(strategy, result)
        key = (param_key, batch.key())
        compiled = self._compiled.get(key)
        if compiled is None:
            static = (rebuild, batch.template())

            def run_all(params: list[Any], sharded: Any, local_count: int | None) -> Any:
                self.traces += 1  # Python side effect: runs once per trace
                result = strategy.run(replica_step, args=(params, sharded, (*static, local_count)))
                # Every replica holds the same reduced values: the first replica's are returned from
                # inside the graph, so no per-replica structure is packed and unpacked on each call.
                return _first_replica(strategy, result)

            # autograph=False as in value_and_grad_fn(jit=True): the loss's Python is traced as written
            compiled = tf.function(run_all, **{"autograph": False, **self.jit_options})
            self._compiled[key] = compiled
        # One concrete function per signature, called directly: tf.function's per-call binding of the
        # arguments and its trace lookup cost about 1 ms per step here (PerReplica inputs).
        signature = (key, param_signature(param_leaves), param_signature(batch.arrays), local_count)
        concrete = self._concrete.get(signature)
        if concrete is None:
            concrete = compiled.get_concrete_function(list(param_leaves), shards, local_count)
            self._concrete[signature] = concrete
        loss, aux, grads = concrete(list(param_leaves), shards, local_count)
        return loss, aux, list(grads)


def _widened(x: Any) -> Any:
    """``x`` in float32 when it is a 16-bit float (whose range ends at 65,504 for float16)."""
    return tf.cast(x, tf.float32) if x.dtype.size == 2 else x


def _divided(x: Any, count: Any, dtype: Any) -> Any:
    """``x / count`` as ``dtype``; 16-bit values divide in float32, where the count is exact (float16
    makes a count above 65,504 inf, and every gradient 0)."""
    x = _widened(x)
    return tf.cast(x / tf.cast(count, x.dtype), dtype)


def _local_replicas(strategy: tf.distribute.Strategy) -> int:
    """How many of the strategy's replicas run in this process."""
    return len(strategy.extended.worker_devices)


def _first_replica(strategy: tf.distribute.Strategy, result: Any) -> tuple[Any, Any, list[Any]]:
    """``(loss, aux, grads)`` as the first local replica holds them."""
    loss, aux, grads = (strategy.experimental_local_results(part)[0] for part in result)
    return loss, aux, list(grads)


def _all_reduce_sum(tensors: list[Any]) -> list[Any]:
    """``tensors`` summed over all replicas, as one flat tensor per dtype: one ``all_reduce`` per dtype
    whatever the number of parameter leaves (as the PyTorch engine's buckets).

    One call per dtype, not one call for the list: given several dtypes, MultiWorkerMirroredStrategy
    packs them into one concat and fails (measured on TF 2.21).
    """
    by_dtype: dict[Any, list[int]] = {}
    for index, tensor in enumerate(tensors):
        by_dtype.setdefault(tensor.dtype, []).append(index)
    context = tf.distribute.get_replica_context()
    result = list(tensors)
    for indices in by_dtype.values():
        flat = tf.concat([tf.reshape(tensors[i], [-1]) for i in indices], 0)
        flat = context.all_reduce(tf.distribute.ReduceOp.SUM, flat)
        pieces = tf.split(flat, [int(np.prod(tensors[i].shape)) for i in indices])
        for i, piece in zip(indices, pieces, strict=True):
            result[i] = tf.reshape(piece, tf.shape(tensors[i]))
    return result


def _shards(arrays: list[Any], size: int, strategy: tf.distribute.Strategy) -> Any:
    """This process's examples split over its local replicas (sizes differ by at most one)."""
    local = _local_replicas(strategy)
    bounds = _bounds(size, local)

    def shard_for(context: tf.distribute.distribute_lib.ValueContext) -> list[Any]:
        index = context.replica_id_in_sync_group % local
        return [tf.convert_to_tensor(array[bounds[index] : bounds[index + 1]]) for array in arrays]

    return strategy.experimental_distribute_values_from_function(shard_for)


@functools.lru_cache(maxsize=64)
def _bounds(size: int, parts: int) -> tuple[int, ...]:
    """Where each of ``parts`` near-equal slices of ``size`` examples starts (and the last ends)."""
    return (0, *np.cumsum([len(part) for part in np.array_split(np.arange(size), parts)]).tolist())
