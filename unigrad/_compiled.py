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

import warnings
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from unigrad import _tree
from unigrad._api import _require_callable
from unigrad._compiled_by_structure import StructureEntry, numpy_qualifies, qualifies
from unigrad._dispatch import CallPlan, plan_call, to_backend
from unigrad._errors import CompileFallbackWarning, InvalidDataError, UnigradError
from unigrad._loss import output_checker
from unigrad.backends import Adapter, backend_name_of, canonical_name, get_adapter
from unigrad.backends._base import StepFn

# leaf type -> its adapter's signature function (None: not an array); filled on first sight.
_signers: dict[type, Callable[[Any], Hashable] | None] = {}


def _signer(leaf: Any) -> Callable[[Any], Hashable] | None:
    leaf_type = type(leaf)
    try:
        return _signers[leaf_type]
    except KeyError:
        owner = backend_name_of(leaf)
        signer = None if owner is None else get_adapter(owner).signature
        _signers[leaf_type] = signer
        return signer


def _param_signature(leaves: list[Any]) -> tuple[Hashable, ...]:
    # A non-array params leaf is keyed by its type only: the miss path rejects it with a clear error.
    return tuple((type(leaf),) if (signer := _signer(leaf)) is None else signer(leaf) for leaf in leaves)


def _data_signature(leaves: list[Any]) -> tuple[Hashable, ...]:
    # Non-array data leaves are compiled in as constants, so their value is part of the key.
    return tuple((type(leaf), leaf) if (signer := _signer(leaf)) is None else signer(leaf) for leaf in leaves)


class _Entry:
    """Everything one cache key needs: the validated plan and the (compiled) computation."""

    def __init__(
        self, owner: ValueAndGradFn, plan: CallPlan, data: Any, data_leaves: list[Any], data_def: Any
    ) -> None:
        self.owner = owner
        self.plan = plan
        adapter = plan.adapter
        # A traced body checks the loss in full, once per trace: see check_loss's `remember`.
        finish = output_checker(adapter, owner.has_aux, remember=not owner.jit)
        loss_fn = owner.loss_fn
        rebuild_params = _tree.unflattener(plan.treedef)
        with_data = data is not None
        if owner.jit:
            # Array data leaves are inputs of the compiled function; the others are constants in it.
            positions = [i for i, leaf in enumerate(data_leaves) if _signer(leaf) is not None]
            self.data_positions = positions
            # The constants only: holding this call's arrays would keep its batch alive.
            statics = [None if i in positions else leaf for i, leaf in enumerate(data_leaves)]
            rebuild_data = _tree.unflattener(data_def)

            def body(param_leaves: list[Any], data_arrays: list[Any]) -> tuple[Any, Any, list[Any]]:
                leaves = list(statics)
                for index, value in zip(positions, data_arrays, strict=True):
                    leaves[index] = value
                call_data = rebuild_data(leaves)

                def call(diff_leaves: list[Any]) -> Any:
                    params = rebuild_params(diff_leaves)
                    return loss_fn(params, call_data) if with_data else loss_fn(params)

                return adapter.value_and_grad(call, param_leaves, finish)

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

    def _compile_and_run(self, inputs: list[Any], arrays: list[Any]) -> tuple[Any, Any, list[Any]]:
        adapter = self.plan.adapter
        try:
            compiled = adapter.compile(self.body, inputs, arrays, self.owner.jit_options)
            result = compiled(inputs, arrays)
        except UnigradError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever the compiler refused, eager still works
            failure = err
        else:
            self.run = compiled
            return result
        # Outside the except block: a bug in the loss itself raises here as it would without jit,
        # not chained to the compiler's error.
        result = self.body(inputs, arrays)
        self.run = self.body
        self.owner._warn_fallback(adapter, failure)
        return result


class ValueAndGradFn:
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

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        backend: str | None,
        has_aux: bool,
        jit: bool,
        jit_options: Mapping[str, Any] | None,
        device: Any = None,
    ) -> None:
        _require_callable(loss_fn)
        self.device = device
        self.loss_fn = loss_fn
        self.backend = None if backend is None else canonical_name(backend)
        self.has_aux = has_aux
        self.jit = bool(jit)
        self.jit_options = dict(jit_options or {})
        self._entries: dict[Hashable, _Entry] = {}
        # jit=True on a backend whose compiler keys shapes itself (JAX): treedef of (params, data) ->
        # entry; see unigrad._compiled_by_structure. Stays empty when a call does not qualify.
        self._by_structure: dict[Hashable, StructureEntry] = {}
        self._structure_refused = False
        self._compiler_flatten: Callable[[Any], tuple[list[Any], Hashable]] = _tree.flatten
        self._warned = False

    @property
    def cache_size(self) -> int:
        """How many distinct input signatures have been planned (and, with ``jit=True``, compiled).

        On JAX with ``jit=True``, shapes and dtypes are keyed by ``jax.jit`` itself: its traces are
        what is counted there.
        """
        return len(self._entries) + sum(entry.traces for entry in self._by_structure.values())

    def clear_cache(self) -> None:
        """Forget every planned and compiled signature (the next call of each plans it again)."""
        self._entries.clear()
        self._by_structure.clear()

    def __call__(self, params: Any, data: Any = None) -> tuple[Any, Any]:
        by_structure = self._by_structure
        if by_structure:
            try:
                leaves, treedef = self._compiler_flatten((params, data))
            except (RecursionError, SystemError):
                # A cycle (JAX's C++ flatten reports it as a SystemError caused by a RecursionError):
                # the keyed path's flatten raises the typed error naming where it is.
                return self._keyed_call(params, data)
            entry = by_structure.get(treedef)
            if entry is not None and entry.leaf_types.issuperset(map(type, leaves)) and entry.accepts(leaves):
                try:
                    return entry.run(params, data)
                except UnigradError:
                    raise
                except Exception:  # noqa: BLE001 - e.g. a new shape the compiler refused: from now on
                    # this structure takes the keyed path, which compiles per signature and falls
                    # back to eager with a warning
                    del by_structure[treedef]
                    self._structure_refused = True
        return self._keyed_call(params, data)

    def _keyed_call(self, params: Any, data: Any) -> tuple[Any, Any]:
        leaves, treedef = _tree.flatten(params)
        if self.jit:
            data_leaves, data_def = _tree.flatten(data, "data")
            key: Hashable = (treedef, data_def, _param_signature(leaves), _data_signature(data_leaves))
        else:
            data_leaves, data_def = [], None
            key = (treedef, _param_signature(leaves))
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
        self._by_structure[treedef] = entry
        self._compiler_flatten = plan.adapter.compiler_flatten
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

    def _warn_fallback(self, adapter: Adapter, err: Exception) -> None:
        if self._warned:
            return
        self._warned = True
        warn_compile_fallback("value_and_grad_fn", adapter.name, err, "step")

    def __repr__(self) -> str:
        name = getattr(self.loss_fn, "__qualname__", repr(self.loss_fn))
        return (
            f"<unigrad value_and_grad_fn of {name} backend={self.backend!r} jit={self.jit} "
            f"signatures={self.cache_size}>"
        )


def warn_compile_fallback(maker: str, backend: str, err: Exception, runs: str) -> None:
    """Warn that ``maker(jit=True)`` could not compile, so its ``runs`` go eagerly (callers warn once)."""
    # Compiler errors often say what failed on their second line ("backend='inductor' raised:").
    reason = " ".join(line.strip() for line in str(err).strip().splitlines()[:2])[:300]
    warnings.warn(
        f"{maker}(jit=True) could not compile on backend {backend!r} ({type(err).__name__}: "
        f"{reason}); this {runs} runs eagerly instead (same results, eager speed). Pass jit=False "
        f"to silence this.",
        CompileFallbackWarning,
        stacklevel=5,  # the user's call: past this function, _warn_fallback and the object's call
    )


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
