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

Only plain calls qualify (see :func:`qualifies`): no ``has_aux`` (aux leaves that are not arrays are
carried around the trace, which takes one trace per entry), no conversions, no non-array data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unigrad._dispatch import CallPlan, plan_call
from unigrad._loss import output_checker
from unigrad.backends import backend_name_of


def qualifies(plan: CallPlan, data_leaves: list[Any], has_aux: bool) -> bool:
    """Whether a call planned as ``plan`` can run as a :class:`StructureEntry`."""
    adapter = plan.adapter
    return (
        adapter.compiler_keys_shapes
        and not has_aux
        and plan.origins is None
        and all(backend_name_of(leaf) == adapter.name for leaf in data_leaves)
    )


class StructureEntry:
    """One compiled step for every input with this structure and these leaf types.

    Called with ``(params, data)``; returns ``(loss, grads)``. ``traces`` counts the compiler's traces
    of it (one per new shape, dtype or sharding), for ``cache_size``.
    """

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        backend: str | None,
        plan: CallPlan,
        leaf_types: frozenset[type],
        options: dict[str, Any],
    ) -> None:
        self.leaf_types = leaf_types
        self.traces = 0
        adapter = plan.adapter
        finish = output_checker(adapter, False, remember=False)

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

            loss, _, grads = adapter.value_and_grad(call, traced.inputs, finish)
            return loss, treedef.unflatten(grads)

        self.run = adapter.compile_trees(step, options)
