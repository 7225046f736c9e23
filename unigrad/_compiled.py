"""A reusable (optionally compiled) ``value_and_grad``: plan once per input signature, then just run.

``value_and_grad_fn(loss_fn, jit=True)`` returns a :class:`ValueAndGradFn`. Each call flattens the
params (and data), builds a cache key from the pytree structures and each array leaf's type, shape,
dtype and device (plus the value of every non-array data leaf when compiling), and looks it up:

- a hit runs the stored entry: convert foreign leaves, call, hand results back; nothing is
  validated or planned again, and nothing is retraced;
- a miss validates the params (``unigrad._dispatch.plan_call``), builds the entry and, with
  ``jit=True``, compiles it once for exactly that key (``jax.jit``, ``tf.function`` with the key's
  input signature, ``torch.compile`` on a code object of its own).

If compiling fails on the first call of a key (no C++ compiler for TorchInductor, an op XLA cannot
lower, Python control flow on traced values...), that key runs eagerly from then on and a
:class:`~unigrad.CompileFallbackWarning` is issued once per step function; the result is the same.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from unigrad import _tree
from unigrad._compiled_by_structure import StructureEntry, numpy_qualifies, qualifies
from unigrad._dispatch import CallPlan, plan_call, to_backend
from unigrad._errors import InvalidDataError, UnigradError
from unigrad._loss import output_checker
from unigrad._reusable import (
    CompiledEntry,
    ReusableFn,
    chained,
    data_signature,
    loss_with_data,
    param_signature,
)
from unigrad.backends._base import StepFn

#: At most this many structure entries for one pytree structure (kinds of leaves: JAX arrays, NumPy
#: of each set of dtypes); more take the keyed path.
_VARIANTS_LIMIT = 4


#: A NumPy array's dtype, read by the C getter itself: it raises TypeError for anything that is not an
#: ndarray, so one pass over a flat list checks the leaves' type and dtype together.
_NDARRAY_DTYPE = np.ndarray.dtype.__get__


class _Entry(CompiledEntry):
    """Everything one cache key needs: the validated plan and the (compiled) computation."""

    def __init__(
        self, owner: ValueAndGradFn, plan: CallPlan, data: Any, data_leaves: list[Any], data_def: Any
    ) -> None:
        self.owner = owner
        self.plan = plan
        adapter = plan.adapter
        # A traced body checks the loss in full, once per trace: see output_checker's `remember`.
        finish = output_checker(adapter, owner.has_aux, remember=not owner.jit)
        loss_fn = owner.loss_fn
        rebuild_params = _tree.unflattener(plan.treedef)
        with_data = data is not None
        if owner.jit:
            # Array data leaves are inputs of the compiled function; the others are constants in it.
            self.data_positions, bind = loss_with_data(
                loss_fn, rebuild_params, data_leaves, data_def, with_data
            )

            def body(param_leaves: list[Any], data_arrays: list[Any]) -> tuple[Any, Any, list[Any]]:
                return adapter.value_and_grad(bind(data_arrays), param_leaves, finish)

            self.body: StepFn = body
            self.run: StepFn | None = None  # compiled on the first call
        else:
            self.finish = finish

    def _data_arrays(self, data_leaves: list[Any]) -> list[Any]:
        adapter = self.plan.adapter
        place = self.plan.place
        return [to_backend(adapter, data_leaves[index], place) for index in self.data_positions]

    def __call__(self, leaves: list[Any], data: Any, data_leaves: list[Any]) -> tuple[Any, Any]:
        if self.plan.scope is not None:
            # Every call of this key runs in the same scope, so jax.jit (whose key holds the x64
            # mode) traces it once.
            with self.plan.scope():
                return self._call(leaves, data, data_leaves)
        return self._call(leaves, data, data_leaves)

    def _call(self, leaves: list[Any], data: Any, data_leaves: list[Any]) -> tuple[Any, Any]:
        plan = self.plan.rebind(leaves)
        owner = self.owner
        if owner.jit:
            arrays = self._data_arrays(data_leaves)
            run = self.run
            if run is None:
                loss, aux, grads = self._compile_and_run(plan.inputs, arrays)
            else:
                loss, aux, grads = run(plan.inputs, arrays)
        else:
            loss, aux, grads = plan.adapter.value_and_grad(
                plan.bind(owner.loss_fn, data), plan.inputs, self.finish
            )
        grads_tree = plan.treedef.unflatten(plan.restore_grads(grads))
        loss = plan.restore_output(loss)
        if owner.has_aux:
            return (loss, plan.restore_output(aux)), grads_tree
        return loss, grads_tree


class ValueAndGradFn(ReusableFn):
    """A reusable ``step(params, data=None)`` returning what :func:`unigrad.value_and_grad` returns.

    Made by :func:`value_and_grad_fn`. Inputs with a new structure, shape, dtype or device (or, with
    ``jit=True``, a new value of a non-array data leaf) are planned, and compiled, once; later calls
    with the same key reuse that work.

    Attributes:
        loss_fn: the loss function.
        backend: the backend asked for (``None``: the params' own).
        has_aux: ``loss_fn`` returns ``(loss, aux)``.
        jit: whether each key is compiled.
        jit_options: keyword arguments for the compiler (``jax.jit``, ``tf.function``, ``torch.compile``).
    """

    maker, runs = "value_and_grad_fn", "step"
    _entries: dict[Hashable, _Entry]
    _by_structure: dict[Hashable, StructureEntry]
    # A flat list or tuple of arrays and no data (a client's commonest call, e.g. NumPy leaves into
    # jax.jit): (its type, its length) -> the structure entry made for it, found without flattening
    # (the compiler's flatten, the treedef's hash: about 5 us of a real call). Set by calls.
    _flat_structures: dict[tuple[type, int], StructureEntry] | None = None

    def __call__(self, params: Any, data: Any = None) -> tuple[Any, Any]:
        flat = self._flat_structures
        kind = type(params)
        entry = None
        if flat is not None and data is None and (kind is list or kind is tuple):
            # The commonest client call (a flat list of arrays, no data) found in this frame: each
            # Python call is ~1 us of a ~200 us compiled step once the compiler has left the caches
            # cold. The entry's leaf types are the compiler's leaves: a sequence whose items all
            # have one of them is flat, like the one the entry was made for; NumPy leaves must
            # have a dtype the entry was made for (others: the structure's next entry, if any).
            entry = flat.get((kind, len(params)))
            while entry is not None:  # the entries of this structure, one per kind of leaves
                dtypes = entry.numpy_dtypes
                if dtypes is None:  # the compiler's own arrays: it keys their dtypes itself
                    if entry.leaf_types.issuperset(map(type, params)):
                        break
                else:  # NumPy: type and dtype in one C-level pass (the getter refuses non-arrays)
                    try:
                        if dtypes.issuperset(map(_NDARRAY_DTYPE, params)):
                            break
                    except TypeError:  # not all NumPy arrays: not this entry
                        pass
                entry = entry.other
        if entry is None and self._by_structure:
            entry = self._structure_entry(params, data)
        if entry is not None:
            try:
                return entry.run(params, data)
            except UnigradError:
                raise
            except Exception:  # noqa: BLE001 - e.g. a new shape the compiler refused: from now on
                # this structure takes the keyed path, which compiles per signature and falls back
                # to eager with a warning
                self._forget_structure(entry)
                self._structure_refused = True
        return self._keyed_call(params, data)

    def _structure_entry(self, params: Any, data: Any) -> StructureEntry | None:
        """The structure entry these inputs run on, or ``None`` (keyed path)."""
        try:
            leaves, treedef = self._compiler_flatten((params, data))
        except (RecursionError, SystemError):
            # A cycle (JAX's C++ flatten reports it as a SystemError caused by a RecursionError):
            # the keyed path's flatten raises the typed error naming where it is.
            return None
        entry = self._by_structure.get(treedef)
        while entry is not None:  # the entries of this structure, one per kind of leaves
            if entry.leaf_types.issuperset(map(type, leaves)) and (
                entry.numpy_dtypes is None or entry.accepts(leaves)
            ):
                return entry
            entry = entry.other
        return None

    def clear_cache(self) -> None:
        """Forget every planned and compiled signature (the next call of each plans it again)."""
        super().clear_cache()
        self._flat_structures = None

    def _forget_structure(self, entry: StructureEntry) -> None:
        for table in (self._by_structure, self._flat_structures or {}):
            for key, head in list(table.items()):
                if head is entry:
                    if entry.other is None:
                        del table[key]
                    else:
                        table[key] = entry.other
                    continue
                while head is not None and head.other is not entry:
                    head = head.other
                if head is not None:
                    head.other = entry.other

    def _keyed_call(self, params: Any, data: Any) -> tuple[Any, Any]:
        leaves, treedef = _tree.flatten(params)
        if self.jit:
            data_leaves, data_def = _tree.flatten(data, "data")
            key: Hashable = (treedef, data_def, param_signature(leaves), data_signature(data_leaves))
        else:
            data_leaves, data_def = [], None
            key = (treedef, param_signature(leaves))
        try:
            entry = self._entries.get(key)
        except TypeError:  # an unhashable non-array data leaf
            raise self._unhashable(data, data_leaves) from None
        if entry is None:
            if _tree.register_container_leaves(leaves + data_leaves):
                return self(params, data)  # dataclass containers are structure: key them as such
            plan = plan_call(params, self.backend, device=self.device)
            # device= is placed by the plan's conversions: the structure path hands NumPy to jax.jit
            structured = self.jit and self.device is None and not self._structure_refused
            if structured and (qualifies(plan, data_leaves) or numpy_qualifies(plan, data_leaves)):
                result = self._try_by_structure(plan, params, data, data_leaves)
                if result is not None:
                    return result
            entry = _Entry(self, plan, data, data_leaves, data_def)
            self._entries[key] = entry
        return entry(leaves, data, data_leaves)

    def _try_by_structure(
        self, plan: CallPlan, params: Any, data: Any, data_leaves: list[Any]
    ) -> tuple[Any, Any] | None:
        """Make and run a structure-keyed entry; ``None`` when compiling fails (the keyed path then
        compiles or falls back to eager with its warning, as for any other backend)."""
        leaves, treedef = plan.adapter.compiler_flatten((params, data))
        # An entry already made for this structure holds other kinds of leaves (float32 NumPy, and
        # now float16; JAX arrays, and now NumPy): the new entry goes in front of it, and both stay
        # (replacing it retraced at every switch between the two), up to a few kinds a structure.
        previous = self._by_structure.get(treedef)
        if sum(1 for _ in chained(previous)) >= _VARIANTS_LIMIT:
            return None
        numpy_dtypes = None if plan.origins is None else frozenset(leaf.dtype for leaf in leaves)
        entry = StructureEntry(
            self.loss_fn,
            self.backend,
            self.has_aux,
            plan,
            frozenset(map(type, leaves)),
            self.jit_options,
            numpy_dtypes,
        )
        try:
            result = entry.run(params, data)
        except UnigradError:
            raise
        except Exception:  # noqa: BLE001 - whatever the compiler refused, the keyed path handles
            # The loss is what failed (untraceable control flow, aux that is not arrays): do not
            # trace it twice for every later signature.
            self._structure_refused = True
            return None
        entry.other = previous
        self._by_structure[treedef] = entry
        self._compiler_flatten = plan.adapter.compiler_flatten
        kind = type(params)
        flat = data is None and (kind is list or kind is tuple) and len(leaves) == len(params)
        if flat and all(map(operator.is_, leaves, params)):  # each item is a leaf itself
            if self._flat_structures is None:
                self._flat_structures = {}
            self._flat_structures[(kind, len(params))] = entry
        return result

    def _unhashable(self, data: Any, data_leaves: list[Any]) -> InvalidDataError:
        paths = _tree.leaf_paths(data, "data")
        for path, leaf in zip(paths, data_leaves, strict=True):
            try:
                hash(leaf)
            except TypeError:
                return InvalidDataError(
                    f"{path} is an unhashable {type(leaf).__name__}; with jit=True, data leaves that are "
                    f"not arrays are compiled in as constants and key the cache by value: pass it as "
                    f"an array, make it hashable, or close over it in loss_fn"
                )
        return InvalidDataError("data holds an unhashable non-array leaf")  # pragma: no cover


def value_and_grad_fn(
    loss_fn: Callable[..., Any],
    *,
    backend: str | None = None,
    has_aux: bool = False,
    jit: bool = False,
    jit_options: Mapping[str, Any] | None = None,
    device: Any = None,
) -> ValueAndGradFn:
    """A reusable ``step(params, data=None)`` computing :func:`unigrad.value_and_grad`, optionally compiled.

    Validation and planning happen once per input signature instead of on every call; with
    ``jit=True`` each signature is also compiled once: ``jax.jit`` on JAX, ``tf.function`` with that
    signature's exact ``input_signature`` on TensorFlow (it never retraces), ``torch.compile`` on
    PyTorch (one static-shaped graph per signature). See ``docs/compiled.md`` for the retracing rules.

    Args:
        loss_fn: as for :func:`unigrad.value_and_grad`.
        backend: as for :func:`unigrad.value_and_grad` (``None``: the params' own framework).
        has_aux: ``loss_fn`` returns ``(loss, aux)``; the step then returns ``((loss, aux), grads)``.
        jit: compile each input signature. If compiling fails on the platform, the step warns once
            (:class:`~unigrad.CompileFallbackWarning`) and runs eagerly; it never raises for that.
        jit_options: keyword arguments for the compiler, e.g. ``{"backend": "aot_eager"}`` for
            ``torch.compile`` or ``{"jit_compile": True}`` for ``tf.function``.
        device: with ``backend=``, where converted leaves are placed (see :func:`unigrad.value_and_grad`).

    Returns:
        A :class:`ValueAndGradFn`; ``step.cache_size`` counts the signatures seen so far.

    Raises:
        NotCallableError: ``loss_fn`` is not callable.
        UnknownBackendError: ``backend`` is not a backend unigrad knows.

    Example:
        >>> import torch, unigrad as ug
        >>> step = ug.value_and_grad_fn(lambda w, x: ((x * w) ** 2).sum())
        >>> loss, grads = step(torch.tensor(2.0), torch.tensor([1.0, 1.0]))
        >>> float(loss), float(grads)
        (8.0, 8.0)
        >>> step.cache_size
        1
    """
    if device is not None and backend is None:
        plan_call(None, None, device=device)  # raises the error that explains device= needs backend=
    return ValueAndGradFn(loss_fn, backend, has_aux, jit, jit_options, device)
