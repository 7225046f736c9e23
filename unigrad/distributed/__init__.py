"""Data-parallel gradients on each framework's own distributed engine.

``data_parallel_value_and_grad_fn(example_loss_fn)`` returns a step ``step(params, local_batch)``:
each process (and each of its devices or replicas) differentiates the *sum* of its examples' losses,
the framework's own collectives add the gradients (and the loss and the example count) over every
shard, and the result is divided by the total number of examples. Every process gets the same
``(loss, grads)``: the mean loss over all examples of all shards and its gradient, equal to what one
process computes on the whole batch, for shards of any (uneven) sizes.

The engines: ``torch.distributed`` (the process group ``torchrun`` sets up; gloo or NCCL), JAX's
``Mesh``/``NamedSharding`` (over ``jax.devices()``, which spans every process after
``jax.distributed.initialize``), and ``tf.distribute`` (``MirroredStrategy`` over the local devices,
``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``). See ``docs/distributed.md``.

Importing this package imports no framework.

Example:
    >>> import torch, unigrad as ug
    >>> def squared_errors(params, batch):  # one loss per example
    ...     return (batch["x"] * params["w"] - batch["y"]) ** 2
    >>> step = ug.data_parallel_value_and_grad_fn(squared_errors)
    >>> batch = {"x": torch.tensor([1.0, 2.0, 3.0]), "y": torch.tensor([0.0, 0.0, 0.0])}
    >>> loss, grads = step({"w": torch.tensor(1.0)}, batch)  # no process group: one process
    >>> round(float(loss), 4), round(float(grads["w"]), 4)  # float32: 14/3 and 28/3
    (4.6667, 9.3333)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from unigrad._api import _require_callable
from unigrad._dispatch import CallPlan, plan_call
from unigrad.backends import canonical_name
from unigrad.distributed._batch import local_batch

__all__ = ["DataParallelValueAndGradFn", "data_parallel_value_and_grad_fn"]

_ENGINES = {
    "torch": "unigrad.distributed._torch",
    "jax": "unigrad.distributed._jax",
    "tensorflow": "unigrad.distributed._tensorflow",
}


class DataParallelValueAndGradFn:
    """``step(params, local_batch) -> (loss, grads)``, data-parallel; made by
    :func:`data_parallel_value_and_grad_fn`.

    Attributes:
        example_loss_fn: the per-example loss function.
        backend: the backend asked for (``None``: the params' own).
        has_aux: ``example_loss_fn`` returns ``(per_example_losses, aux)``.
        jit: whether the per-shard step is compiled.
        engine_options: per backend, the engine's own options (``mesh``, ``strategy``, ``group``).
    """

    def __init__(
        self,
        example_loss_fn: Callable[..., Any],
        backend: str | None,
        has_aux: bool,
        jit: bool,
        engine_options: dict[str, dict[str, Any]],
    ) -> None:
        _require_callable(example_loss_fn)
        self.example_loss_fn = example_loss_fn
        self.backend = None if backend is None else canonical_name(backend)
        self.has_aux = has_aux
        self.jit = bool(jit)
        self.engine_options = engine_options
        self._engines: dict[str, Any] = {}

    def engine(self, backend: str) -> Any:
        """The engine running this step on ``backend`` (made on first use)."""
        engine = self._engines.get(backend)
        if engine is None:
            import importlib

            if backend not in _ENGINES:
                from unigrad._errors import UnknownBackendError

                raise UnknownBackendError(
                    f"backend {backend!r} has no distributed engine: data-parallel steps run on "
                    f"'torch', 'jax' or 'tensorflow'"
                )
            module = importlib.import_module(_ENGINES[backend])
            options = self.engine_options.get(backend, {})
            engine = module.Engine(self.example_loss_fn, self.has_aux, self.jit, **options)
            self._engines[backend] = engine
        return engine

    @property
    def cache_size(self) -> int:
        """How many input signatures have been compiled (``jit=True``) or planned, over all engines."""
        return sum(engine.cache_size for engine in self._engines.values())

    def __call__(self, params: Any, local_batch_tree: Any) -> tuple[Any, Any]:
        # plan_call remembers, per leaf types and dtypes, the checks a first call passed (as for every
        # ug.grad call), so a training loop's steps skip them.
        plan: CallPlan = plan_call(params, self.backend)
        adapter = plan.adapter
        engine = self.engine(adapter.name)
        # The precision scope the plan converted the params in (float64 NumPy on JAX without x64
        # turned on): the whole step runs in it, or JAX would compute in float32.
        with plan.scoped():
            batch = local_batch(local_batch_tree, adapter, engine.keeps_numpy)
            loss, aux, grads = engine.run(plan.inputs, plan.rebuild, batch, (plan.treedef, plan.bare))
            grads_tree = plan.rebuild(plan.restore_grads(grads))
            loss = plan.restore_output(loss)
            aux = plan.restore_output(aux)
        return ((loss, aux), grads_tree) if self.has_aux else (loss, grads_tree)

    def __repr__(self) -> str:
        name = getattr(self.example_loss_fn, "__qualname__", repr(self.example_loss_fn))
        return f"<unigrad data_parallel_value_and_grad_fn of {name} backend={self.backend!r} jit={self.jit}>"


def data_parallel_value_and_grad_fn(
    example_loss_fn: Callable[..., Any],
    *,
    backend: str | None = None,
    has_aux: bool = False,
    jit: bool = False,
    jit_options: Mapping[str, Any] | None = None,
    mesh: Any = None,
    strategy: Any = None,
    group: Any = None,
) -> DataParallelValueAndGradFn:
    """A data-parallel ``step(params, local_batch) -> (loss, grads)`` on the framework's own engine.

    Each process passes the examples it holds (``local_batch``; any number, shards may be uneven).
    The result, the same on every process, is the mean of the per-example losses over **all**
    examples of all processes and devices, and its gradient: each shard differentiates the sum of its
    losses, the engine all-reduces the gradient sums, the loss sum and the example count (SUM), and
    both are divided by the total count. Without a distributed setup it runs as one process (PyTorch
    without a process group, JAX or TensorFlow with one device) and equals
    ``ug.value_and_grad(lambda p, b: mean(example_loss_fn(p, b)), params, batch)``.

    Args:
        example_loss_fn: ``example_loss_fn(params, batch)`` returning one loss per example, shape
            ``(n,)`` for a shard of ``n`` examples (or ``(losses, aux)`` with ``has_aux=True``). It
            must not mix examples (batch statistics, contrastive terms, dividing by the local batch
            size): such terms cannot equal the single-process result.
        backend: ``'torch'``, ``'jax'`` or ``'tensorflow'`` (``None``: the params' own framework;
            NumPy params need it).
        has_aux: ``example_loss_fn`` returns ``(losses, aux)``; the step then returns
            ``((loss, aux), grads)`` where ``aux`` is this process's, not reduced.
        jit: compile the per-shard step, once per input signature (``torch.compile`` of the local
            step, ``jax.jit`` over the mesh, ``tf.function`` around ``strategy.run``).
        jit_options: keyword arguments for the compiler (``torch.compile``, ``jax.jit``,
            ``tf.function``), e.g. ``{"backend": "aot_eager"}`` for ``torch.compile``.
        mesh: JAX only: the ``jax.sharding.Mesh`` to shard the batch over (default: one axis
            ``'data'`` over ``jax.devices()``).
        strategy: TensorFlow only: the ``tf.distribute.Strategy`` (default: the one in scope, else
            ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names several workers, else
            ``MirroredStrategy`` over the local GPUs, or the local logical CPUs when there is none).
        group: PyTorch only: the process group (default: the default group, if initialised).

    Returns:
        A :class:`DataParallelValueAndGradFn`.

    Raises:
        NotCallableError: ``example_loss_fn`` is not callable.
        PerExampleLossError: (on call) the loss did not return one value per example.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> step = ug.data_parallel_value_and_grad_fn(lambda w, b: (b * w) ** 2, backend="torch")
        >>> loss, grads = step(np.array(2.0), np.array([1.0, 3.0]))
        >>> float(loss), float(grads)
        (20.0, 20.0)
    """
    jit_options = dict(jit_options or {})
    options = {
        "torch": {"group": group, "jit_options": jit_options},
        "jax": {"mesh": mesh, "jit_options": jit_options},
        "tensorflow": {"strategy": strategy, "jit_options": jit_options},
    }
    return DataParallelValueAndGradFn(example_loss_fn, backend, has_aux, jit, options)
