"""Choosing the backend of a call and moving leaves into it and back out.

A :class:`CallPlan` is made once per call from the flat parameter leaves: which adapter computes,
which leaves must be converted into it (NumPy or another framework's arrays when ``backend=`` is
given), and how results go back so that every gradient has its parameter's framework, dtype and
device.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

import optree

from unigrad import _tree
from unigrad._errors import (
    BackendRequiredError,
    EmptyParamsError,
    InvalidDeviceError,
    InvalidParamsError,
    MixedBackendsError,
    PrecisionError,
)
from unigrad._precision import ScopeFactory, matmul_scope
from unigrad.backends import (
    COMPLEX_DTYPES,
    FLOAT_DTYPES,
    Adapter,
    backend_name_of,
    framework_backends,
    get_adapter,
    listed,
)

# (backend, dtype object) -> NumPy-style dtype name; saves a string conversion per leaf per call.
_dtype_names: dict[tuple[str, Any], str] = {}
_get_dtype = attrgetter("dtype")
_first = itemgetter(0)
# The treedef of a single leaf (the same for every leaf), made on first use.
_leaf_spec: optree.PyTreeSpec | None = None
# A flat dict of arrays (the commonest params) flattened without optree: its keys in insertion order ->
# (its keys in optree's order, its treedef); optree's flatten costs about 8 µs of a real TF MLP call.
_flat_dicts: dict[tuple[Any, ...], tuple[list[Any], optree.PyTreeSpec]] = {}
_FLAT_DICTS_LIMIT = 1024
# Leaf types found to be some framework's arrays (filled by plan_call).
_array_types: set[type] = set()
# Calls already planned as native (every leaf the inferred backend's own, no dtype problem): the leaf
# types (one type for a bare array, the frozenset of them for a tree) -> (adapter, dtypes that passed).
# A repeated call with the same kinds of leaves skips the planning, which in a real call (caches
# cold after the framework ran) costs several times what it does in a loop of its own.
_bare_native: dict[type, tuple[Adapter, set[Any]]] = {}
_tree_native: dict[frozenset[type], tuple[Adapter, set[Any]]] = {}
# Calls with backend= whose leaves were converted and passed the checks: (backend asked for, the leaf
# types) -> (adapter, each leaf type's origin adapter, dtypes that passed). A repeated NumPy call with
# backend= (a solver's loop) skips the planning, as native calls do with _tree_native.
# Each leaf type also has its converter into the adapter (Adapter.importer_from, or None for its own).
_foreign_plans: dict[
    tuple[str, frozenset[type]],
    tuple[Adapter, dict[type, Adapter], set[Any], dict[type, Callable[[Any], Any] | None]],
] = {}
_FOREIGN_PLANS_LIMIT = 256
# (adapter, backend= given, whether this call prepares data leaves, the data's leaf types) -> per
# leaf, how prepare_data converts it. A flat dict of arrays (the commonest data) has its own table,
# keyed by its values' types, and is rebuilt without optree.
_DataKey = tuple[Adapter, bool, bool, Callable[[Any], Any] | None, tuple[type, ...]]
_data_converters: dict[_DataKey, list[Callable[[Any], Any] | None]] = {}
_dict_converters: dict[_DataKey, list[Callable[[Any], Any] | None]] = {}
# Reusable and re-entrant: the context of every call that needs no precision scope.
_NO_SCOPE = nullcontext()


@dataclass(slots=True)
class CallPlan:
    """How one call runs: the computing adapter and the conversions around it."""

    adapter: Adapter
    treedef: optree.PyTreeSpec
    originals: list[Any]
    inputs: list[Any]
    origins: list[Adapter] | None  # per-leaf origin, or None when every leaf is already native
    explicit: bool  # backend= was given: foreign data leaves are converted too
    bare: bool = False  # params is a single array, not a container: its treedef is a lone leaf
    # The adapter's precision_scope when this call converts leaves of its scoped dtypes (float64
    # NumPy on JAX): the whole call runs inside it. None when the call needs none (the common case).
    scope: Callable[[], AbstractContextManager[Any]] | None = None
    # device=: moves what this call converts (NumPy, other frameworks' arrays) onto the device asked
    # for, or the framework's default one (Adapter.placer). None when they are made there already.
    place: Callable[[Any], Any] | None = None

    def to_backend(self, leaf: Any) -> Any:
        """A leaf of any framework (a tangent, a vector, a data array) as this call's adapter needs it,
        on this call's device when it is converted."""
        return to_backend(self.adapter, leaf, self.place)

    def scoped(self) -> AbstractContextManager[Any]:
        """The context a call of this plan runs in (see ``scope``)."""
        return _NO_SCOPE if self.scope is None else self.scope()

    @property
    def rebuild(self) -> Callable[[list[Any]], Any]:
        """Leaves back into the params' structure (for a bare array, simply the one leaf)."""
        return _first if self.bare else self.treedef.unflatten

    @property
    def home(self) -> Adapter | None:
        """The framework loss and aux are handed back in: the params' own, when they share one."""
        if self.origins is None:
            return None
        names = {origin.name for origin in self.origins}
        if len(names) == 1 and self.origins[0] is not self.adapter:
            return self.origins[0]
        return None

    def restore_grads(self, grads: list[Any]) -> list[Any]:
        """Gradients converted back to each parameter's framework, dtype and device."""
        if self.origins is None:
            return grads
        adapter = self.adapter
        return [
            grad if origin is adapter else origin.restore(grad, adapter, original)
            for grad, origin, original in zip(grads, self.origins, self.originals, strict=True)
        ]

    def restore_output(self, tree: Any) -> Any:
        """Arrays of the computing framework in ``tree`` converted to the params' framework."""
        home = self.home
        if home is None:
            return tree
        adapter = self.adapter
        return _tree.tree_map(lambda x: home.from_foreign(x, adapter) if adapter.is_array(x) else x, tree)

    def rebind(self, leaves: list[Any]) -> CallPlan:
        """This plan for new leaves with the same types, dtypes and devices (a compiled step's cache hit).

        Converts foreign leaves as the original plan did; validates nothing, since the cache key
        already says that these leaves are like the ones this plan was made and checked for.
        """
        adapter, origins, place = self.adapter, self.origins, self.place
        if origins is None:
            inputs = leaves
        else:
            inputs = [
                leaf if origin is adapter else adapter.from_foreign(leaf, origin)
                for leaf, origin in zip(leaves, origins, strict=True)
            ]
            if place is not None:
                inputs = [
                    x if origin is adapter else place(x) for x, origin in zip(inputs, origins, strict=True)
                ]
        return CallPlan(
            adapter, self.treedef, leaves, inputs, origins, self.explicit, self.bare, self.scope, place
        )

    def bind(self, fn: Callable[..., Any], data: Any) -> Callable[[list[Any]], Any]:
        """``fn`` as a function of this plan's flat leaves: ``fn(params)``, or ``fn(params, data)``."""
        treedef = self.treedef
        if data is None:
            return lambda leaves: fn(treedef.unflatten(leaves))
        call_data = self.prepare_data(data)
        return lambda leaves: fn(treedef.unflatten(leaves), call_data)

    def prepare_data(self, data: Any) -> Any:
        """``data`` as the loss function sees it: foreign arrays converted when ``backend=`` was given,
        and the adapter's own arrays prepared when it asks for that (PyTorch under inference mode)."""
        if data is None:
            return data
        adapter = self.adapter
        explicit = self.explicit
        prepare = adapter.data_preparer()
        if not explicit and prepare is None:
            return data  # the common case: data goes to the loss untouched, not even flattened
        place = self.place
        dict_key = None
        if type(data) is dict:  # a flat dict of arrays seen before: no optree on either side
            dict_key = (adapter, explicit, prepare is not None, place, tuple(map(type, data.values())))
            converters = _dict_converters.get(dict_key)
            if converters is not None:
                return {
                    name: value if convert is None else convert(value)
                    for (name, value), convert in zip(data.items(), converters, strict=True)
                }
        leaves, treedef = _flatten_tree(data, "data")
        key = (adapter, explicit, prepare is not None, place, tuple(map(type, leaves)))
        converters = _data_converters.get(key)
        if converters is None:
            if len(_data_converters) >= _FOREIGN_PLANS_LIMIT:
                _data_converters.clear()
            converters = [_data_converter(adapter, explicit, prepare, leaf, place) for leaf in leaves]
            _data_converters[key] = converters
        if dict_key is not None and all(backend_name_of(value) is not None for value in data.values()):
            # every value is an array leaf, so the leaves' types are the values' types (in insertion
            # order, which optree's sorted leaves need not be): remember per value
            if len(_dict_converters) >= _FOREIGN_PLANS_LIMIT:
                _dict_converters.clear()
            _dict_converters[dict_key] = [
                _data_converter(adapter, explicit, prepare, value, place) for value in data.values()
            ]
        return treedef.unflatten(
            [
                leaf if convert is None else convert(leaf)
                for convert, leaf in zip(converters, leaves, strict=True)
            ]
        )


def _data_converter(
    adapter: Adapter,
    explicit: bool,
    prepare: Callable[[Any], Any] | None,
    leaf: Any,
    place: Callable[[Any], Any] | None = None,
) -> Callable[[Any], Any] | None:
    """What ``prepare_data`` does to data leaves of ``leaf``'s type (``None``: nothing); it depends on
    the type alone (and on ``prepare``, the adapter's data preparer of this call, for converted
    leaves), so it is worked out once per (adapter, explicit, prepare or not, the leaves' types).

    The adapter's own leaves always get ``prepare_data_leaf`` (an identity unless overridden): a
    tensor made under PyTorch's inference mode stays an inference tensor after the mode ends."""
    owner = backend_name_of(leaf)
    if owner == adapter.name:  # PyTorch inference tensors made earlier need the hook in any mode
        return (
            None
            if type(adapter).prepare_data_leaf is Adapter.prepare_data_leaf
            else adapter.prepare_data_leaf
        )
    if owner is None or not explicit:
        return None
    convert = adapter.importer_from(get_adapter(owner))
    if place is not None:
        imported = convert
        convert = lambda x: place(imported(x))  # noqa: E731 - one closure per cached converter
    if prepare is None:
        return convert
    return lambda x: prepare(convert(x))


def _flatten_tree(tree: Any, root: str = "params") -> tuple[list[Any], optree.PyTreeSpec]:
    """``tree``'s leaves and treedef, registering the container types it meets (dataclasses, JAX
    nodes); bare arrays and flat dicts of arrays seen before skip optree.

    Raises:
        CyclicTreeError: ``tree`` contains itself (its path is named from ``root``).
    """
    global _leaf_spec
    if backend_name_of(tree) is not None:
        # A bare array is one leaf: skip optree, whose flatten of an unregistered framework type
        # costs several µs in a real call (measured by benchmarks/: cold caches after the framework ran).
        if _leaf_spec is None:
            _leaf_spec = _tree.flatten(tree)[1]
        return [tree], _leaf_spec
    if type(tree) is dict:
        known = _flat_dicts.get(tuple(tree))
        if known is not None:
            keys, treedef = known
            leaves = [tree[key] for key in keys]
            if _array_types.issuperset(map(type, leaves)):
                return leaves, treedef
    leaves, treedef = _tree.flatten(tree, root)
    if _tree.register_container_leaves(leaves):
        leaves, treedef = _tree.flatten(tree, root)
    # Remembered only when every value is itself an array leaf: {"a": (x,)} has one key and one leaf
    # too, but its value is a container (found by the property test in tests/test_structures.py).
    if type(tree) is dict:
        _array_types.update(type(value) for value in tree.values() if backend_name_of(value) is not None)
    if type(tree) is dict and _array_types.issuperset(map(type, tree.values())):
        if len(_flat_dicts) >= _FLAT_DICTS_LIMIT:  # key sets made on the fly: do not grow forever
            _flat_dicts.clear()
        _flat_dicts[tuple(tree)] = (list(treedef.entries()), treedef)
    return leaves, treedef


def _model_hint(leaf: Any) -> str | None:
    """How to pass a framework's model object as params, for the models people pass by mistake."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(leaf, torch.nn.Module):
        return (
            "pass its parameters, dict(model.named_parameters()), as params, and call the model "
            "inside loss_fn with torch.func.functional_call(model, params, (x,))"
        )
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(leaf, keras.layers.Layer):
        return (
            "pass its variables, model.trainable_variables, as params, and inside loss_fn either call "
            "the model (it reads those variables) or, as a pure function, "
            "model.stateless_call(params, model.non_trainable_variables, x)[0]"
        )
    return None


def describe_leaf(leaf: Any, owner: str | None) -> str:
    """``"a torch Tensor of dtype int64"``, ``"a str value"``: what a message says a leaf is."""
    if owner is None:
        dtype = getattr(leaf, "dtype", None)
        return f"a {type(leaf).__qualname__} value" + (f" of dtype {dtype}" if dtype is not None else "")
    return f"a {owner} {type(leaf).__qualname__} of dtype {get_adapter(owner).dtype_name(leaf)}"


def _dtype_problem(origin: Adapter, target: Adapter, leaf: Any) -> str | None:
    key = (origin.name, getattr(leaf, "dtype", None))
    name = _dtype_names.get(key)
    if name is None:
        name = origin.dtype_name(leaf)
        if key[1] is not None:
            _dtype_names[key] = name
    if name not in FLOAT_DTYPES and name not in COMPLEX_DTYPES:
        return (
            "only floating parameters (float16, bfloat16, float32, float64) and complex ones "
            "(complex64, complex128) can be differentiated: cast it to a float dtype, or pass it in "
            "data instead of params"
        )
    # Not cached: it can depend on global modes (JAX's x64 flag) that change between calls.
    return target.param_problem(name)


def bare_native_adapter(params: Any) -> Adapter | None:
    """The adapter of ``params`` when it is one array, of a type and dtype planned natively before
    (so it needs no checks and no conversion), else ``None``: the shortest route of a call."""
    known = _bare_native.get(type(params))
    if known is not None and params.dtype in known[1]:
        return known[0]
    return None


def plan_call(
    params: Any, backend: str | None, adapter: Adapter | None = None, device: Any = None
) -> CallPlan:
    """Validate ``params`` and decide how the call runs.

    Args:
        params: the user's parameter pytree.
        backend: the backend asked for, or ``None`` to infer it from the leaves.
        adapter: an adapter instance to use instead of ``backend``'s registered one.
        device: where the leaves this call converts (NumPy, other frameworks') are placed; ``None``:
            the framework's default device. Only with ``backend=`` (nothing is converted without).

    Raises:
        EmptyParamsError, InvalidParamsError, BackendRequiredError, MixedBackendsError,
        PrecisionError, UnknownBackendError, BackendNotInstalledError, InvalidDeviceError.
    """
    inferred = backend is None and adapter is None
    if inferred and device is not None:
        raise InvalidDeviceError(
            f"device={device!r} places the arrays unigrad converts (NumPy, or another framework's "
            f"arrays), which happens only with backend=: pass backend= too, or move the params to the "
            f"device yourself (their gradients stay where they are)"
        )
    if inferred:
        bare = bare_native_adapter(params)
        if bare is not None:
            assert _leaf_spec is not None  # set when the entry was made
            return CallPlan(bare, _leaf_spec, [params], [params], None, False, True)
    leaves, treedef = _flatten_tree(params)
    if not leaves:
        raise EmptyParamsError(
            f"params has no array leaves (structure {treedef}); pass at least one floating array"
        )
    if inferred:
        known = _tree_native.get(frozenset(map(type, leaves)))
        if known is not None and known[1].issuperset(map(_get_dtype, leaves)):
            return CallPlan(known[0], treedef, leaves, leaves, None, False)
    elif adapter is None:
        remembered = _foreign_plans.get((backend, frozenset(map(type, leaves))))  # type: ignore[arg-type]
        if remembered is not None and remembered[2].issuperset(map(_get_dtype, leaves)):
            target, origin_of, _, importer_of = remembered
            types = list(map(type, leaves))
            place = target.placer(device)
            importers = map(importer_of.__getitem__, types)
            if place is None:
                inputs = [
                    leaf if importer is None else importer(leaf)
                    for leaf, importer in zip(leaves, importers, strict=True)
                ]
            else:
                inputs = [
                    leaf if importer is None else place(importer(leaf))
                    for leaf, importer in zip(leaves, importers, strict=True)
                ]
            origins = list(map(origin_of.__getitem__, types))
            scope = matmul_scope(target, origin_of.values())
            return CallPlan(target, treedef, leaves, inputs, origins, True, leaves[0] is params, scope, place)
    # The owner depends on the leaf's type alone, so it is looked up once per distinct type (one
    # C-level pass over the leaves), not once per leaf: this is the per-leaf cost of every call.
    by_type = dict(zip(map(type, leaves), leaves, strict=True))
    owner_by_type = {kind: backend_name_of(leaf) for kind, leaf in by_type.items()}
    _array_types.update(kind for kind, owner in owner_by_type.items() if owner is not None)
    owners: list[str | None] | None = None  # per leaf; only built when the leaves disagree
    uniform = len(owner_by_type) == 1 or len(set(owner_by_type.values())) == 1
    owner = next(iter(owner_by_type.values()))
    if not uniform or owner is None:
        owners = [owner_by_type[type(leaf)] for leaf in leaves]
    if None in owner_by_type.values():
        assert owners is not None
        index = owners.index(None)
        path = _tree.leaf_paths(params)[index]
        raise InvalidParamsError(
            f"{path} is {describe_leaf(leaves[index], None)}, not an array: "
            + (
                _model_hint(leaves[index])
                or f"params leaves must be floating arrays of {listed([*framework_backends(), 'numpy'])} "
                "(wrap numbers with np.asarray and pass backend=, or register custom containers with "
                "jax.tree_util or optree)"
            )
        )

    explicit = backend is not None or adapter is not None
    if adapter is None:
        if backend is None:
            if owners is None and owner != "numpy":
                backend = str(owner)  # one framework owns every leaf: nothing to infer
            else:
                backend = _infer_backend(params, leaves, owners if owners is not None else [owner])
        adapter = get_adapter(backend)

    place = adapter.placer(device) if explicit else None
    native = owners is None and owner == adapter.name
    if native:
        _check_native_dtypes(params, leaves, adapter)
        if not explicit:
            _remember_native(params, leaves, adapter)
        return CallPlan(adapter, treedef, leaves, leaves, None, explicit, leaves[0] is params, None, place)

    if owners is None:
        owners = [owner_by_type[type(leaf)] for leaf in leaves]
    origins = [get_adapter(owner) for owner in owners]  # type: ignore[arg-type]
    x64 = _scope_for(adapter, leaves, origins)
    with _NO_SCOPE if x64 is None else x64():
        for index, leaf in enumerate(leaves):
            _raise_on_dtype_problem(params, index, leaf, origins[index], adapter)
        inputs = [
            leaf if origin is adapter else adapter.from_foreign(leaf, origin)
            for leaf, origin in zip(leaves, origins, strict=True)
        ]
        if place is not None:
            inputs = [x if origin is adapter else place(x) for x, origin in zip(inputs, origins, strict=True)]
        if x64 is not None:
            _check_kept_dtypes(params, leaves, inputs, origins, adapter)
    if x64 is None and backend is not None:
        _remember_foreign(backend, leaves, origins, adapter)
    scope = _both(x64, matmul_scope(adapter, origins))
    return CallPlan(adapter, treedef, leaves, inputs, origins, explicit, leaves[0] is params, scope, place)


def _both(first: ScopeFactory | None, second: ScopeFactory | None) -> ScopeFactory | None:
    """One context factory entering ``first`` then ``second`` (either may be ``None``)."""
    if first is None or second is None:
        return first or second

    @contextmanager
    def both() -> Iterator[None]:
        with first(), second():
            yield

    return both


def _remember_foreign(backend: str, leaves: list[Any], origins: list[Adapter], adapter: Adapter) -> None:
    """Let later calls with ``backend=`` and leaves of these types and dtypes skip planning.

    Not for dtypes whose check depends on a mode (they would need a scope or an error next time).
    """
    one_per_dtype = dict(zip(map(_get_dtype, leaves), zip(leaves, origins, strict=True), strict=True))
    for leaf, origin in one_per_dtype.values():
        name = origin.dtype_name(leaf)
        if name in adapter.mode_dependent_dtypes or name in adapter.scoped_dtypes:
            return
    if len(_foreign_plans) >= _FOREIGN_PLANS_LIMIT:
        _foreign_plans.clear()
    key = (backend, frozenset(map(type, leaves)))
    entry = _foreign_plans.setdefault(key, (adapter, {}, set(), {}))
    entry[1].update(zip(map(type, leaves), origins, strict=True))
    entry[2].update(one_per_dtype)
    for kind, origin in entry[1].items():
        if kind not in entry[3]:
            entry[3][kind] = None if origin is adapter else adapter.importer_from(origin)


def _scope_for(
    adapter: Adapter, leaves: list[Any], origins: list[Adapter]
) -> Callable[[], AbstractContextManager[Any]] | None:
    """``adapter.precision_scope`` when a leaf converted into it has one of its scoped dtypes."""
    scoped = adapter.scoped_dtypes
    if not scoped:
        return None
    for leaf, origin in zip(leaves, origins, strict=True):
        if origin is not adapter and origin.dtype_name(leaf) in scoped:
            return adapter.precision_scope
    return None


def _check_kept_dtypes(
    params: Any, leaves: list[Any], inputs: list[Any], origins: list[Adapter], adapter: Adapter
) -> None:
    """Raise :class:`PrecisionError` for a leaf whose dtype the conversion did not keep (a device
    without 64-bit support, say): the scope could not honour it."""
    for index, (leaf, converted, origin) in enumerate(zip(leaves, inputs, origins, strict=True)):
        wanted, got = origin.dtype_name(leaf), adapter.dtype_name(converted)
        if wanted != got:
            path = _tree.leaf_paths(params)[index]
            raise PrecisionError(
                f"{path} is {describe_leaf(leaf, origin.name)} but backend {adapter.name!r} made a "
                f"{got} array of it on {adapter.device_of(converted)}, even with its 64-bit mode on "
                f"for the call: cast the parameter to {got}, or use a device or backend with {wanted}"
            )


def _remember_native(params: Any, leaves: list[Any], adapter: Adapter) -> None:
    """Let later calls with leaves of these types and dtypes skip planning (these passed the checks).

    Not for dtypes whose check depends on a global mode (JAX's float64 and its x64 flag).
    """
    one_per_dtype = dict(zip(map(_get_dtype, leaves), leaves, strict=True))
    if any(adapter.dtype_name(leaf) in adapter.mode_dependent_dtypes for leaf in one_per_dtype.values()):
        return
    dtypes = set(one_per_dtype)
    if len(leaves) == 1 and leaves[0] is params:
        _bare_native.setdefault(type(params), (adapter, set()))[1].update(dtypes)
    else:
        _tree_native.setdefault(frozenset(map(type, leaves)), (adapter, set()))[1].update(dtypes)


def _raise_on_dtype_problem(params: Any, index: int, leaf: Any, origin: Adapter, target: Adapter) -> None:
    problem = _dtype_problem(origin, target, leaf)
    if problem is not None:
        path = _tree.leaf_paths(params)[index]
        error = InvalidParamsError if "only floating" in problem else PrecisionError
        raise error(f"{path} is {describe_leaf(leaf, origin.name)} on backend {target.name!r}: {problem}")


def _check_native_dtypes(params: Any, leaves: list[Any], adapter: Adapter) -> None:
    """The dtype check of leaves that are all ``adapter``'s arrays, once per distinct dtype.

    Raises for the first leaf (in flatten order) whose dtype has a problem, exactly as checking every
    leaf in turn would.
    """
    for leaf in dict(zip(map(_get_dtype, leaves), leaves, strict=True)).values():
        if _dtype_problem(adapter, adapter, leaf) is not None:
            break
    else:
        return
    for index, leaf in enumerate(leaves):
        _raise_on_dtype_problem(params, index, leaf, adapter, adapter)


def _infer_backend(params: Any, leaves: list[Any], owners: list[str | None]) -> str:
    distinct = list(dict.fromkeys(owners))
    if distinct == ["numpy"]:
        raise BackendRequiredError(
            "params are NumPy arrays, which cannot be differentiated by themselves: pass "
            f"backend={listed(framework_backends(), quoted=True)} (or 'numpy' for the "
            "finite-difference reference); gradients come back as NumPy arrays of the same dtype"
        )
    if len(distinct) > 1:
        paths = _tree.leaf_paths(params)
        examples = ", ".join(
            f"{paths[owners.index(name)]} is {describe_leaf(leaves[owners.index(name)], name)}"
            for name in distinct
        )
        raise MixedBackendsError(
            f"params mix leaves of {len(distinct)} backends ({examples}): convert them to one "
            f"framework, or pass backend= to say which one computes (the others are converted)"
        )
    return str(distinct[0])


def to_backend(adapter: Adapter, leaf: Any, place: Callable[[Any], Any] | None = None) -> Any:
    """``leaf`` (an array of any framework) as an array of ``adapter``'s framework, ready for a call;
    a converted one moved by ``place`` (a plan's device) when given."""
    owner = backend_name_of(leaf)
    if owner is not None and owner != adapter.name:
        leaf = adapter.from_foreign(leaf, get_adapter(owner))
        if place is not None:
            leaf = place(leaf)
    return adapter.prepare_data_leaf(leaf)
