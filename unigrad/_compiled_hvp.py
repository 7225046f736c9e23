"""A reusable (by default compiled) Hessian-vector product: ``hvp_fn(loss_fn)(params, vector, data)``.

The pattern of :func:`unigrad.value_and_grad_fn`: each call builds a cache key from the pytree
structures of ``params``, ``vector`` and ``data`` and each array leaf's type, shape, dtype and device
(plus the value of every non-array data leaf), and looks it up. A miss validates the params and the
vector (as :func:`unigrad.hvp` does), and with ``jit=True`` compiles the product once for that key
(``jax.jit``, ``tf.function`` with the key's exact input signature, ``torch.compile``); a hit only
converts foreign leaves and runs. If compiling fails, that key runs eagerly and a
:class:`~unigrad.CompileFallbackWarning` is issued once.

Example:
    >>> import numpy as np, unigrad as ug
    >>> product = ug.hvp_fn(lambda x: (x**3).sum(), backend="torch", jit=False)
    >>> product(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    array([ 6., 12.])
    >>> product.cache_size
    1
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from unigrad import _tree
from unigrad._compiled_by_structure import numpy_qualifies, qualifies
from unigrad._dispatch import CallPlan, _flatten_tree, plan_call
from unigrad._errors import InvalidDataError, UnigradError
from unigrad._loss import output_checker
from unigrad._matching import like_params
from unigrad._reusable import (
    CompiledEntry,
    ReusableFn,
    data_signature,
    loss_with_data,
    param_signature,
    signer,
)
from unigrad.backends import backend_name_of


class _HvpEntry(CompiledEntry):
    """One cache key: the validated plan, and the (compiled) product for inputs like these."""

    def __init__(
        self, owner: HvpFn, plan: CallPlan, with_data: bool, data_leaves: list[Any], data_def: Any
    ) -> None:
        self.owner, self.plan = owner, plan
        adapter = plan.adapter
        finish = output_checker(adapter, owner.has_aux, remember=not owner.jit)
        loss_fn, has_aux = owner.loss_fn, owner.has_aux
        rebuild_params = _tree.unflattener(plan.treedef)
        self.positions, bind = loss_with_data(loss_fn, rebuild_params, data_leaves, data_def, with_data)
        size = len(plan.originals)

        # One body for every backend's compiler: (params, vector + data arrays) -> (None, aux, products),
        # the shape of a compiled training step (unigrad.backends._base.StepFn).
        def body(param_leaves: list[Any], inputs: list[Any]) -> tuple[Any, Any, list[Any]]:
            vector, data_arrays = inputs[:size], inputs[size:]
            call = bind(data_arrays)
            products = adapter.hvp(call, param_leaves, vector, finish)
            # The aux at params, from one more evaluation (not differentiated); a compiler merges it
            # with the product's own forward pass.
            aux = finish(call(param_leaves))[1] if has_aux else None
            return None, aux, products

        if not with_data and not has_aux:
            # A solver's product (no data, no aux): a body reading as little as possible, since a
            # compiler guards on everything the traced code reads (Dynamo checks those guards on
            # every call: about 90 fewer here).
            def call_params_only(diff_leaves: list[Any]) -> Any:
                return loss_fn(rebuild_params(diff_leaves))

            def body(param_leaves: list[Any], inputs: list[Any]) -> tuple[Any, Any, list[Any]]:
                return None, None, adapter.hvp(call_params_only, param_leaves, inputs, finish)

        self.body = body
        self.run = None if owner.jit else body

    def __call__(self, leaves: list[Any], vector_leaves: list[Any], data_leaves: list[Any]) -> Any:
        plan = self.plan
        if plan.scope is not None:  # 64-bit NumPy on JAX: every call of this key in the same scope
            with plan.scope():
                return self._call(leaves, vector_leaves, data_leaves)
        return self._call(leaves, vector_leaves, data_leaves)

    def _call(self, leaves: list[Any], vector_leaves: list[Any], data_leaves: list[Any]) -> Any:
        plan = self.plan if self.plan.origins is None else self.plan.rebind(leaves)
        params = leaves if plan.origins is None else plan.inputs
        adapter = plan.adapter
        inputs = [plan.to_backend(leaf) for leaf in vector_leaves]
        inputs += [plan.to_backend(data_leaves[index]) for index in self.positions]
        run = self.run
        if run is None:
            _, aux, products = self._compile_and_run(params, inputs)
        else:
            _, aux, products = run(params, inputs)
        result = plan.rebuild(plan.restore_grads(products) if plan.origins is not None else products)
        if self.owner.has_aux:
            return result, plan.restore_output(_tree.tree_map(adapter.detach, aux))
        return result


def _like(vector_leaves: list[Any], leaves: list[Any]) -> bool:
    """Whether each vector leaf is of its parameter's type, shape and dtype (native comparisons)."""
    if len(vector_leaves) != len(leaves):
        return False
    try:
        for vector_leaf, leaf in zip(vector_leaves, leaves, strict=True):
            if not (
                type(vector_leaf) is type(leaf)
                and vector_leaf.shape == leaf.shape
                and vector_leaf.dtype == leaf.dtype
            ):
                return False
    except AttributeError:  # not arrays: the miss path says what is wrong with them
        return False
    return True


class _StructureEntry:
    """One jitted product for every native input with this pytree structure (see
    ``unigrad._compiled_by_structure``): the compiler keys shapes, dtypes and shardings itself, and
    what a new key's planning checks is checked while tracing."""

    def __init__(self, owner: HvpFn, plan: CallPlan, params: Any, vector: Any, data: Any) -> None:
        adapter = plan.adapter
        finish = output_checker(adapter, False, remember=False)
        loss_fn, backend = owner.loss_fn, owner.backend
        self.traces = 0
        self.result: tuple[Any] | None = None
        flat, structure = adapter.compiler_flatten((params, vector, data))
        self.leaf_types = frozenset(map(type, flat))
        # NumPy inputs (a solver's float64 vectors, say) go to the compiler as they are, inside the
        # plan's scope (JAX's 64-bit mode for float64), and come back as NumPy; only the dtypes
        # seen here run on this entry (others are keyed: their scope may differ).
        numpy = plan.origins is not None
        self.numpy_dtypes = frozenset(leaf.dtype for leaf in flat) if numpy else None
        rebuild: list[Callable[[list[Any]], Any]] = []

        def step(params: Any, vector: Any, data: Any) -> Any:
            self.traces += 1  # Python in the body runs only while the compiler traces it
            traced = plan_call(params, backend)
            vector_inputs = like_params(vector, "vector", params, traced)
            products = adapter.hvp(traced.bind(loss_fn, data), traced.inputs, vector_inputs, finish)
            if numpy:  # flat: converted to NumPy and rebuilt on the host (see below)
                rebuild[:] = [traced.rebuild]
                return products
            return traced.treedef.unflatten(products)

        compiled = adapter.compile_trees(step, owner.jit_options)
        scope = plan.scope

        def run_on_numpy(params: Any, vector: Any, data: Any) -> Any:
            if scope is None:
                products = compiled(params, vector, data)
            else:
                with scope():
                    products = compiled(params, vector, data)
            return rebuild[0](list(map(np.array, products)))  # writable, as on the keyed path

        self.run = run_on_numpy if numpy else compiled
        try:
            self.result = (self.run(params, vector, data),)
        except UnigradError:
            raise
        except Exception:  # noqa: BLE001 - whatever the compiler refused, the keyed path handles
            owner._structure_refused = True
            return
        owner._by_structure[structure] = self
        owner._compiler_flatten = adapter.compiler_flatten

    def accepts(self, flat: list[Any]) -> bool:
        """Whether inputs with these compiler leaves run here: the leaf types it was made for and,
        for NumPy inputs, only the dtypes it was made for."""
        if not self.leaf_types.issuperset(map(type, flat)):
            return False
        return self.numpy_dtypes is None or self.numpy_dtypes.issuperset(leaf.dtype for leaf in flat)


class HvpFn(ReusableFn):
    """A reusable ``product(params, vector, data=None)`` returning what :func:`unigrad.hvp` returns.

    Made by :func:`hvp_fn`; see there. ``cache_size`` counts the input signatures seen so far.
    """

    maker, runs = "hvp_fn", "product"
    _entries: dict[Hashable, _HvpEntry]
    _by_structure: dict[Hashable, _StructureEntry]
    # A solver's call: one bare array as params, one as vector, no data. The last such call's route,
    # so the next one skips flattening and keying (~40 us in a real call on a small product, measured
    # by benchmarks/second_order.py): (array type, the structure entry and its treedef, or None and
    # the keyed route). Set per instance by its calls.
    _bare: tuple[type, _StructureEntry | None, Any] | None = None

    def clear_cache(self) -> None:
        """Forget every planned and compiled signature (the next call of each plans it again)."""
        super().clear_cache()
        self._bare = None

    def __call__(self, params: Any, vector: Any, data: Any = None) -> Any:
        bare = self._bare
        if bare is not None and data is None and type(params) is bare[0] and type(vector) is bare[0]:
            entry = bare[1]
            if entry is None:
                return bare[2](params, vector)
            dtypes = entry.numpy_dtypes
            if dtypes is not None and not (params.dtype in dtypes and vector.dtype in dtypes):
                return self._call(params, vector, None)  # NumPy of another dtype: its own key
            # The compiled product is called from this frame: JAX records the Python stack of every
            # dispatch, and each frame of ours between the caller and jax.jit costs about 1.5 us a
            # call on the 2-core machine (docs/design.md, "Why the number of frames on that path matters").
            try:
                return entry.run(params, vector, None)
            except UnigradError:
                raise
            except Exception:  # noqa: BLE001 - as in _call: the keyed path from now on
                self._by_structure.pop(bare[2], None)
                self._structure_refused = True
                self._bare = None
                return self._call(params, vector, None)
        result = self._call(params, vector, data)
        # device= places what is converted: every call takes the keyed path, which does that
        if self.device is None and data is None and type(params) is type(vector) and backend_name_of(params):
            self._bare = (type(params), *self._bare_route(params))
        return result

    def _bare_route(self, params: Any) -> tuple[_StructureEntry | None, Any]:
        """How the next bare call (params and vector arrays of ``params``' type, no data) runs: the
        structure entry of such calls and its treedef, or ``None`` and the keyed route."""
        if self._by_structure:  # jax.jit keys shapes and dtypes itself
            structure = self._compiler_flatten((params, params, None))[1]
            entry = self._by_structure.get(structure)
            if entry is not None:
                return entry, structure
        sign = signer(params)
        assert sign is not None  # params is an array
        # The key _call makes for such a call: the three treedefs, then the params' signature, None
        # (the vector is like the params) and the empty data signature.
        head = (_flatten_tree(params)[1], _flatten_tree(params, "vector")[1], _flatten_tree(None, "data")[1])

        last: list[Any] = [None, None]  # the last signature and its entry: no tuple to hash per call
        has_aux = self.has_aux

        def keyed(p: Any, v: Any) -> Any:
            if v.shape == p.shape and v.dtype == p.dtype:
                signature = sign(p)
                if signature == last[0]:
                    entry = last[1]
                else:
                    entry = self._entries.get((*head, (signature,), None, ()))
                    if entry is not None:
                        last[:] = signature, entry
                if entry is not None:
                    run, plan = entry.run, entry.plan
                    if run is not None and plan.origins is None and plan.scope is None and not has_aux:
                        # compiled already, native leaves, no aux: straight to the compiled product
                        adapter = plan.adapter
                        return run([p], [adapter.prepare_data_leaf(v)])[2][0]
                    return entry([p], [v], [])
            return self._call(p, v, None)  # a new key, or a vector unlike the params: the full path

        return None, keyed

    def _call(self, params: Any, vector: Any, data: Any) -> Any:
        structure: Hashable | None = None
        if self._by_structure:
            try:
                flat, structure = self._compiler_flatten((params, vector, data))
            except (RecursionError, SystemError):  # a cycle: the keyed path names where it is
                flat, structure = [], None
            entry = self._by_structure.get(structure)
            if entry is not None and entry.accepts(flat):
                try:
                    return entry.run(params, vector, data)
                except UnigradError:
                    raise
                except Exception:  # noqa: BLE001 - e.g. a shape the compiler refused: keyed path from now on
                    del self._by_structure[structure]
                    self._structure_refused = True
        # _flatten_tree: bare arrays and flat dicts seen before skip optree (a few us each).
        leaves, treedef = _flatten_tree(params)
        vector_leaves, vector_def = _flatten_tree(vector, "vector")
        data_leaves, data_def = _flatten_tree(data, "data")
        signature = param_signature(leaves)
        key = (
            treedef,
            vector_def,
            data_def,
            signature,
            # The vector must be like the params: when each leaf visibly is (the framework's own cheap
            # comparisons), the params' signature stands for it; otherwise it is keyed (and checked,
            # on a miss) by its own.
            None if _like(vector_leaves, leaves) else param_signature(vector_leaves),
            data_signature(data_leaves),
        )
        try:
            entry = self._entries.get(key)
        except TypeError:  # an unhashable non-array data leaf
            raise InvalidDataError(
                "data holds an unhashable non-array leaf; hvp_fn compiles non-array data leaves in as "
                "constants and keys its cache by their value: pass it as an array, make it hashable, "
                "or close over it in loss_fn"
            ) from None
        if entry is None:
            if _tree.register_container_leaves(leaves + vector_leaves + data_leaves):
                return self._call(params, vector, data)  # dataclass containers are structure: key them
            plan = plan_call(params, self.backend, device=self.device)
            with plan.scoped():
                like_params(vector, "vector", params, plan)  # validated once per key
            # device= is placed by the plan's conversions: the structure path hands NumPy to jax.jit
            structural = self.jit and not self.has_aux and not self._structure_refused and self.device is None
            # One entry a structure: another kind of leaves for it (float32 NumPy after float64) is
            # keyed, rather than replacing the entry and retracing at every switch.
            structural = structural and structure not in self._by_structure
            others = vector_leaves + data_leaves
            if structural and (qualifies(plan, others) or numpy_qualifies(plan, others)):
                structured = _StructureEntry(self, plan, params, vector, data)
                if structured.result is not None:
                    return structured.result[0]
            entry = _HvpEntry(self, plan, data is not None, data_leaves, data_def)
            self._entries[key] = entry
        return entry(leaves, vector_leaves, data_leaves)


def hvp_fn(
    loss_fn: Callable[..., Any],
    *,
    backend: str | None = None,
    has_aux: bool = False,
    jit: bool = True,
    jit_options: Mapping[str, Any] | None = None,
    device: Any = None,
) -> HvpFn:
    """A reusable ``product(params, vector, data=None)`` computing :func:`unigrad.hvp`, compiled.

    For solvers that take many Hessian-vector products at points of the same shapes (truncated
    Newton, trust-region CG): validation and planning happen once per input signature, and with
    ``jit=True`` (the default) the product is compiled once per signature (``jax.jit``,
    ``tf.function`` with that signature, ``torch.compile``).

    Args:
        loss_fn: as for :func:`unigrad.hvp`.
        backend: as for :func:`unigrad.hvp` (``None``: the params' own framework).
        has_aux: ``loss_fn`` returns ``(loss, aux)``; the product then returns ``(hvp, aux)``.
        jit: compile each input signature. If compiling fails on the platform, the product warns
            once (:class:`~unigrad.CompileFallbackWarning`) and runs eagerly; it never raises for that.
        jit_options: keyword arguments for the compiler.
        device: with ``backend=``, where converted leaves (params, vector and data) are placed (see
            :func:`unigrad.hvp`); ``None``: the framework's default device.

    Returns:
        An :class:`HvpFn`: ``product(params, vector, data=None)`` returns a pytree like ``params``
        (each leaf with its parameter's framework, dtype and device), or ``(hvp, aux)``.

    Raises:
        NotCallableError: ``loss_fn`` is not callable.
        UnknownBackendError: ``backend`` is not a backend unigrad knows.

    Example:
        >>> import torch, unigrad as ug
        >>> product = ug.hvp_fn(lambda x, a: (a * x**2).sum(), jit=False)
        >>> product(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]), torch.tensor(3.0))
        tensor([6., 6.])
    """
    if device is not None and backend is None:
        plan_call(None, None, device=device)  # raises the error that explains device= needs backend=
    return HvpFn(loss_fn, backend, has_aux, jit, jit_options, device)
