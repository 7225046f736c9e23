"""The PyTorch engine: the local step on this process's examples, then ``torch.distributed`` all-reduces.

Each process differentiates the sum of its examples' losses (through ``ug.value_and_grad_fn``,
compiled with ``torch.compile`` when ``jit=True``), copies the gradients into one flat buffer per
dtype and device, and all-reduces it with SUM in buckets of ``BUCKET_BYTES`` (DDP's default bucket
size), all launched at once; the loss sum and the example count ride at the head of the buffer of
the loss's dtype. Dividing by the total count afterwards makes uneven shards exact, with no padding
and no repeated example. The gradients handed back are views of the buffers.

Without an initialised process group the step is the single-process computation.

Example:
    >>> import torch
    >>> from unigrad.distributed._torch import flat_buffers
    >>> buffers, views = flat_buffers([torch.ones(2, 2), torch.zeros(3)])
    >>> buffers
    [tensor([1., 1., 1., 1., 0., 0., 0.])]
    >>> [tuple(view.shape) for view in views]
    [(2, 2), (3,)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from unigrad import _tree
from unigrad._compiled import ValueAndGradFn
from unigrad._loss import output_checker
from unigrad.backends import get_adapter
from unigrad.distributed._batch import (
    COUNT_BASE,
    LocalBatch,
    check_per_example,
    count_parts,
    split_output,
)

#: Bytes per all-reduce call: DDP's default ``bucket_cap_mb=25``.
BUCKET_BYTES = 25 * 1024 * 1024


def _world(group: Any) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


def flat_buffers(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``tensors`` copied into one flat buffer per dtype and device (in order of first appearance: the
    buffer holding ``tensors[0]`` comes first), and views of the buffers shaped as ``tensors``, which
    an all-reduce of the buffers fills in place."""
    by_kind: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for index, tensor in enumerate(tensors):
        by_kind.setdefault((tensor.dtype, tensor.device), []).append(index)
    buffers = []
    views = list(tensors)
    for indices in by_kind.values():
        members = [tensors[i] for i in indices]
        # DDP's own helpers, one C++ call each: written as reshapes, a cat, a split and views in
        # Python they cost about 100 us a step more inside a real step (measured on a CPU MLP).
        # (It returns a lone tensor's own memory as the buffer: that one is copied, so the in-place
        # reduction never writes into a tensor the caller or autograd may still hold.)
        flat = _flatten_dense_tensors(members) if len(members) > 1 else members[0].reshape(-1).clone()
        for i, view in zip(indices, _unflatten_dense_tensors(flat, members), strict=True):
            views[i] = view
        buffers.append(flat)
    return buffers, views


def all_reduce_buffers(buffers: list[torch.Tensor], group: Any) -> None:
    """Sum every buffer over the group, in place, in buckets of at most :data:`BUCKET_BYTES` launched
    together (asynchronously) and then awaited; a single bucket is one blocking call."""
    buckets = [
        bucket
        for flat in buffers
        for bucket in flat.split(max(1, BUCKET_BYTES * 8 // torch.finfo(flat.dtype).bits))
    ]
    if len(buckets) == 1:  # a small model: one blocking call, no work handle to keep and wait on
        dist.all_reduce(buckets[0], op=dist.ReduceOp.SUM, group=group)
        return
    pending = [dist.all_reduce(b, op=dist.ReduceOp.SUM, group=group, async_op=True) for b in buckets]
    for work in pending:
        work.wait()


def _divide(flat: torch.Tensor, count: torch.Tensor) -> None:
    """``flat /= count`` in place, ``count`` a 0-d tensor of the loss buffer's dtype. A 16-bit buffer
    divides in float32: its own dtype would round the count (bfloat16 holds 99,840 for 100,000)."""
    if flat.dtype in (torch.float32, torch.float64):
        flat.div_(count.to(flat.device, flat.dtype))
    else:
        flat.copy_(flat.to(torch.float32).div_(count.to(flat.device, torch.float32)))


class Engine:
    """Runs a data-parallel step on ``torch.distributed`` (see the module docstring)."""

    keeps_numpy = False  # torch.from_numpy shares the memory: converting costs nothing

    def __init__(
        self,
        example_loss_fn: Callable[..., Any],
        has_aux: bool,
        jit: bool,
        group: Any = None,
        jit_options: Any = None,
    ) -> None:
        self.group = group
        adapter = get_adapter("torch")

        def summed_loss(params: Any, data: tuple[Any, torch.Tensor, torch.Tensor | None]) -> Any:
            batch, first_array, divisor = data
            losses, aux = split_output(example_loss_fn(params, batch), has_aux, "torch")
            check_per_example(losses, first_array.shape[0], adapter)
            if divisor is None:
                total = losses.sum()
            else:  # float16 params: the mean, summed and divided in float32 (see _run_float16)
                total = (losses.sum(dtype=torch.float32) / divisor).to(losses.dtype)
            return (total, aux) if has_aux else total

        summed_loss.__qualname__ = getattr(example_loss_fn, "__qualname__", "example_loss_fn")
        # Compiled: value_and_grad_fn's one torch.compile per signature. Eager: the adapter itself on
        # the leaves the caller already planned (no second planning, flattening or keying per step).
        self.local_step = ValueAndGradFn(summed_loss, "torch", has_aux, jit, jit_options) if jit else None
        self.summed_loss = summed_loss
        self.finish = output_checker(adapter, has_aux)
        self.adapter = adapter
        self.has_aux = has_aux
        self._counts: tuple[Any, torch.Tensor] | None = None

    @property
    def cache_size(self) -> int:
        return 0 if self.local_step is None else self.local_step.cache_size

    def _local(
        self, param_leaves: list[Any], rebuild: Callable[[list[Any]], Any], data: tuple[Any, torch.Tensor]
    ) -> tuple[Any, Any, list[Any]]:
        """This process's loss sum, aux and gradient leaves."""
        if self.local_step is not None:
            out, grads = self.local_step(rebuild(param_leaves), data)
            local_sum, aux = out if self.has_aux else (out, None)
            return local_sum, aux, _tree.flatten(grads)[0]
        summed_loss = self.summed_loss
        return self.adapter.value_and_grad(
            lambda leaves: summed_loss(rebuild(leaves), data), param_leaves, self.finish
        )

    def run(
        self, param_leaves: list[Any], rebuild: Callable[[list[Any]], Any], batch: LocalBatch, param_key: Any
    ) -> tuple[Any, Any, list[Any]]:
        tree = batch.with_arrays(batch.arrays)
        if any(leaf.dtype == torch.float16 for leaf in param_leaves):
            return self._run_float16(param_leaves, rebuild, tree, batch)
        local_sum, aux, grad_leaves = self._local(param_leaves, rebuild, (tree, batch.arrays[0], None))
        if _world(self.group) == 1:
            count = float(batch.size)
            # One dispatch for every leaf (what torch.optim's foreach paths use), not one per leaf.
            return local_sum.detach() / count, aux, list(torch._foreach_div(grad_leaves, count))
        # The loss sum and the count ride at the head of the gradients' buffer of the loss's dtype
        # (one collective for a model of one dtype); a half-precision loss sends them apart in float64.
        dtype = local_sum.dtype if local_sum.dtype in (torch.float32, torch.float64) else torch.float64
        device = grad_leaves[0].device
        loss_sum = local_sum.detach().reshape(1).to(device, dtype)
        stats = [loss_sum, self._count_parts(batch.size, dtype, device)]
        buffers, views = flat_buffers([*stats, *grad_leaves])
        all_reduce_buffers(buffers, self.group)
        head = buffers[0]  # [loss sum, count // COUNT_BASE, count % COUNT_BASE, ...]
        # The total count stays on the device (no host sync before the division, which matters on GPUs)
        count = head[2].add(head[1], alpha=COUNT_BASE)
        for flat in buffers:
            _divide(flat, count)  # one division per buffer: the mean loss and every gradient at once
        # The loss is copied out (a 0-d view would keep the whole gradient buffer alive in a list
        # of logged losses); the gradients stay views of their buffer, as DDP's gradient_as_bucket_view.
        return head[0].to(local_sum.dtype, copy=True), aux, views[2:]

    def _run_float16(
        self, param_leaves: list[Any], rebuild: Callable[[list[Any]], Any], tree: Any, batch: LocalBatch
    ) -> tuple[Any, Any, list[Any]]:
        """The step for float16 params: the mean is differentiated, not the sum, whose per-example
        gradients would add up past float16's largest value (65,504) on a large shard. So the total
        count comes first, in a small collective of its own, and nothing is divided afterwards."""
        world = _world(self.group)
        total = batch.size
        if world > 1:
            counts = torch.tensor(count_parts(batch.size), dtype=torch.float64, device=param_leaves[0].device)
            dist.all_reduce(counts, op=dist.ReduceOp.SUM, group=self.group)
            hi, lo = counts.tolist()
            total = int(hi) * COUNT_BASE + int(lo)
        # A CPU scalar tensor, not a Python number: a compiled step takes it as an input (a new count
        # is no new trace) and the float32 division sees it exactly.
        divisor = torch.tensor(float(total), dtype=torch.float64)
        loss, aux, grads = self._local(param_leaves, rebuild, (tree, batch.arrays[0], divisor))
        if world == 1:
            return loss.detach(), aux, list(grads)
        buffers, views = flat_buffers([loss.detach().reshape(1), *grads])
        all_reduce_buffers(buffers, self.group)
        return views[0][0].clone(), aux, views[1:]

    def _count_parts(self, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``count_parts(size)`` as a tensor (the last one is kept: a training loop repeats its sizes)."""
        key = (size, dtype, device)
        if self._counts is None or self._counts[0] != key:
            self._counts = (key, torch.tensor(count_parts(size), dtype=dtype, device=device))
        return self._counts[1]
