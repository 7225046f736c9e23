"""Compiled steps keyed by pytree structure alone, for compilers that key shapes and dtypes themselves.

``jax.jit`` keeps its own cache of traces, keyed (in C++) by each input's shape, dtype, weak type
and sharding, and flattens its pytree arguments in C++ too. For a step whose params and data are
all JAX arrays, doing that work again in Python (an optree flatten, a signature per leaf, a tuple to
hash) was the whole gap between ``value_and_grad_fn(jit=True)`` and ``jax.jit(jax.value_and_grad)``
on the CPU MLP benchmark (about 30 us per call, 7%).

A :class:`StructureEntry` is keyed by the compiler's own treedef of ``(params, data)`` and guarded by
the leaf types (any other type, such as a NumPy array the compiler would silently accept, takes the
keyed path with its conversions). The compiled function takes the pytrees as they are. What a new
key's planning checks (the params' dtypes, the loss) is checked while tracing instead, so it still
happens once per new signature and raises the same typed errors.

Only calls without conversions or non-array data qualify (see :func:`qualifies`), and calls whose params
are all NumPy arrays the compiler can take as they are (:func:`numpy_qualifies`: no placement; the
call's scope is entered around each run, JAX's 64-bit mode for float64 leaves and on a GPU the float32
matmul precision, and the compiler keys its traces by those settings too): ``jax.jit`` transfers NumPy
leaves itself, in C++, where converting each one first in Python cost ~30 us a leaf (a 10-leaf client
ran at 3.2x ``jax.jit`` on the same list). Their results come back as NumPy, as on the keyed path (a
flat list of small gradients of one dtype as views of one host copy: see :func:`_packed`), and the
entry also checks the NumPy dtypes: other dtypes get an entry of their own (``StructureEntry.other``
links a structure's entries), whose scope may differ.
With ``has_aux``, the aux must be arrays only: other aux leaves (numbers, strings) are carried around a
trace, which takes one trace per key, so a step whose aux holds them goes back to the keyed path.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

import numpy as np

from unigrad import _tree
from unigrad._dispatch import CallPlan, plan_call
from unigrad._loss import output_checker
from unigrad.backends import Adapter, backend_name_of

_dtype_of = attrgetter("dtype")


#: NumPy results of a flat list of small gradients come back as one buffer at most this large: each
#: array the compiled step returns costs ~2 us (an output buffer, a Python array, a host copy), which
#: is most of a small leaf's cost; above this, copying into one buffer costs more than that saves.
_PACK_LIMIT_BYTES = 256 * 1024


def _packed(grads: list[Any], adapter: Adapter) -> Any:
    """``grads`` as one flat array (while tracing), when they share a dtype and are small together;
    else unchanged. The host side cuts it back by the params' own sizes and shapes."""
    if len(grads) < 2 or len({grad.dtype for grad in grads}) != 1:
        return grads
    if sum(grad.size for grad in grads) * grads[0].dtype.itemsize > _PACK_LIMIT_BYTES:
        return grads
    return adapter.concat_flat(grads)


class AuxNotArraysOnly(Exception):
    """Raised while tracing when the aux holds leaves that are not arrays: use the keyed path."""


def qualifies(plan: CallPlan, data_leaves: list[Any]) -> bool:
    """Whether a call planned as ``plan`` can run as a :class:`StructureEntry`."""
    adapter = plan.adapter
    return (
        adapter.compiler_keys_shapes
        and plan.origins is None
        and all(backend_name_of(leaf) == adapter.name for leaf in data_leaves)
    )


def numpy_qualifies(plan: CallPlan, data_leaves: list[Any]) -> bool:
    """Whether a call planned as ``plan`` has NumPy params (and NumPy or the adapter's data) that the
    compiler can take unconverted: it keys shapes itself and no placement is needed. The plan's
    scope is entered around each run (see :class:`StructureEntry`): JAX's 64-bit mode for float64 or
    complex128 leaves (``jax.jit`` keys its traces by it, and transfers them unnarrowed inside it),
    the matmul precision of NumPy float32 on a GPU."""
    adapter = plan.adapter
    scoped = adapter.scoped_dtypes
    return (
        adapter.compiler_keys_shapes
        and plan.origins is not None
        and plan.place is None
        and all(origin.name == "numpy" for origin in plan.origins)
        and (
            plan.scope is not None
            or not any(
                origin.dtype_name(leaf) in scoped
                for origin, leaf in zip(plan.origins, plan.originals, strict=True)
            )
        )
        and all(backend_name_of(leaf) in (adapter.name, "numpy") for leaf in data_leaves)
    )


class StructureEntry:
    """One compiled step for every input with this structure and these leaf types.

    ``run(params, data)`` returns ``(loss, grads)``, or ``((loss, aux), grads)`` with ``has_aux``.
    ``traces`` counts the compiler's traces of it (one per new shape, dtype or sharding), for
    ``cache_size``.
    """

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        backend: str | None,
        has_aux: bool,
        plan: CallPlan,
        leaf_types: frozenset[type],
        options: dict[str, Any],
        numpy_dtypes: frozenset[Any] | None = None,
    ) -> None:
        self.leaf_types = leaf_types
        #: The entry made before this one for the same structure, with other kinds of leaves.
        self.other: StructureEntry | None = None
        #: For NumPy params: the dtypes of the leaves the entry was made for (see :meth:`accepts`).
        self.numpy_dtypes = numpy_dtypes
        self.traces = 0
        adapter = plan.adapter
        finish = output_checker(adapter, has_aux, remember=False)
        # How the params are rebuilt from their leaves, recorded while tracing (one structure per
        # entry: the same every time; a flat list, tuple or dict by its constructor).
        param_rebuild: list[Callable[[list[Any]], Any]] = []

        def step(params: Any, data: Any) -> tuple[Any, Any]:
            self.traces += 1  # Python in the body runs only while the compiler traces it
            # A new shape or dtype is checked here, as a new key is on the keyed path: plan_call
            # raises the same typed errors for traced leaves (an integer param, float64 without x64).
            traced = plan_call(params, backend)
            treedef = traced.treedef
            if data is None:

                def call(leaves: list[Any]) -> Any:
                    return loss_fn(treedef.unflatten(leaves))
            else:

                def call(leaves: list[Any]) -> Any:
                    return loss_fn(treedef.unflatten(leaves), data)

            loss, aux, grads = adapter.value_and_grad(call, traced.inputs, finish)
            if numpy_dtypes is not None:  # flat: run_on_numpy converts them and rebuilds the tree
                param_rebuild[:] = [traced.rebuild]
                flat_params = type(params) in (list, tuple) and all(map(adapter.is_array, params))
                grads_out: Any = _packed(grads, adapter) if flat_params else grads
            else:
                grads_out = treedef.unflatten(grads)
            if not has_aux:
                return loss, grads_out
            if not all(map(adapter.is_array, _tree.flatten(aux)[0])):
                raise AuxNotArraysOnly
            return (loss, aux), grads_out

        compiled = adapter.compile_trees(step, options)
        if numpy_dtypes is None:
            self.run = compiled
        else:
            scope = plan.scope

            def run_on_numpy(params: Any, data: Any) -> tuple[Any, Any]:
                if scope is None:
                    head, flat = compiled(params, data)
                else:  # the matmul precision NumPy's float32 has (see numpy_qualifies)
                    with scope():
                        head, flat = compiled(params, data)
                # As the keyed path hands them back: writable gradients of their own, the loss (and
                # aux) as the framework's NumPy export. The step returns the gradients flat and the
                # first conversion starts at once: a pytree walk over the fresh arrays first costs
                # ~15 us a call on ten leaves (measured), more than the walk itself.
                if type(flat) is list:
                    grads = param_rebuild[0](list(map(np.array, flat)))
                else:  # one packed buffer (see _packed): views of one host copy, cut here (not in a
                    # helper: one Python call less a step) by the params' own sizes and shapes
                    buffer = np.array(flat)
                    pieces = []
                    start = 0
                    for leaf in params:
                        end = start + leaf.size
                        pieces.append(buffer[start:end].reshape(leaf.shape))
                        start = end
                    grads = pieces if type(params) is list else param_rebuild[0](pieces)
                if has_aux:
                    loss, aux = head
                    return (np.asarray(loss), _tree.tree_map(np.asarray, aux)), grads
                return np.asarray(head), grads

            self.run = run_on_numpy

    def accepts(self, leaves: list[Any]) -> bool:
        """Whether leaves (of this entry's structure and leaf types) may run here: for NumPy params,
        only dtypes seen when it was made (any other is planned on the keyed path)."""
        numpy_dtypes = self.numpy_dtypes
        return numpy_dtypes is None or numpy_dtypes.issuperset(map(_dtype_of, leaves))
