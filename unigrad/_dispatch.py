"""How a call runs, decided once per input signature: :func:`plan_call`.

The first call with a signature (the backend asked for, and the type and dtype of each params leaf)
is planned in full: every leaf is validated (:mod:`unigrad._validate`), the computing adapter chosen,
and for each leaf how it is converted into that adapter (NumPy, or another framework's arrays when
``backend=`` is given), plus the precision scope the call needs. That decision is remembered as a
:class:`Route`. Every later call with the same signature replays it: flatten, look up, convert what
the route converts, and hand the :class:`~unigrad._plan.CallPlan` to the API function. A flat dict,
list or tuple of arrays is also indexed by its keys (or its type) with its leaves' types and dtypes,
in its own order, so that one lookup finds both its route and how it is flattened and rebuilt. This
cache is the only fast path of a call; it is bounded (:data:`ROUTES_LIMIT`) and shared safely between
threads (a route is immutable, and dict lookups and stores are atomic).

Example:
    >>> import numpy as np
    >>> from unigrad._dispatch import clear_routes, plan_call, routes_cached
    >>> clear_routes()
    >>> plan = plan_call({"w": np.ones(2, np.float32)}, "torch")
    >>> plan = plan_call({"w": np.zeros(2, np.float32)}, "torch")  # same signature: replayed
    >>> routes_cached()
    1
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, nullcontext
from operator import attrgetter
from typing import Any

import optree

from unigrad._errors import EmptyParamsError, InvalidDeviceError
from unigrad._leaves import (
    ARRAY_TYPES,
    flatten_leaves,
    flatten_params,
    known_flat,
    leaf_spec,
    note_array_types,
    only_leaf,
)
from unigrad._plan import CallPlan, to_backend
from unigrad._precision import ScopeFactory, matmul_scope
from unigrad._validate import (
    check_kept_dtypes,
    check_native_dtypes,
    describe_leaf,
    infer_backend,
    raise_not_an_array,
    raise_on_dtype_problem,
)
from unigrad.backends import DTYPE_KEYS, Adapter, backend_name_of, get_adapter

__all__ = ["CallPlan", "Route", "bare_native_adapter", "describe_leaf", "plan_call", "to_backend"]

#: At most this many signatures are remembered; the cache starts afresh when it is full.
ROUTES_LIMIT = 1024
# signature -> route. A bare array's signature is (its type, its dtype); a tree's is
# (backend asked for, the leaves' types, the leaves' dtypes).
_routes: dict[Hashable, Route] = {}
# The same routes, for flat dicts, lists and tuples of arrays, found with their structure in one
# lookup: (the dict's keys or the sequence's type, the route key of its values in the container's
# own order) -> (route, the function giving the values in optree's order or None where that is the
# container's own, treedef, rebuilder). Bounded with _routes.
_flat_routes: dict[Hashable, tuple[Route, Any, optree.PyTreeSpec, Callable[[list[Any]], Any]]] = {}
_get_dtype = attrgetter("dtype")
_NO_SCOPE = nullcontext()


class Route:
    """What planning decided for one signature, replayed by every later call with it.

    Attributes:
        adapter: the computing backend's adapter.
        explicit: ``backend=`` was given (data leaves of other frameworks are converted too).
        importers: per leaf, the function converting it into ``adapter`` (``None`` for its own
            leaves); ``None`` when every leaf is ``adapter``'s own.
        origins: per leaf, the adapter of the framework it comes from (with ``importers``).
        x64: the adapter's precision scope, when a converted leaf has one of its scoped dtypes.
    """

    # A plain class: making a dataclass costs about 1 ms of ``import unigrad`` (measured).
    __slots__ = ("adapter", "explicit", "importers", "origins", "x64")

    def __init__(
        self,
        adapter: Adapter,
        explicit: bool,
        importers: tuple[Callable[[Any], Any] | None, ...] | None = None,
        origins: tuple[Adapter, ...] | None = None,
        x64: ScopeFactory | None = None,
    ) -> None:
        self.adapter = adapter
        self.explicit = explicit
        self.importers = importers
        self.origins = origins
        self.x64 = x64

    def plan(
        self,
        params: Any,
        leaves: list[Any],
        treedef: optree.PyTreeSpec,
        device: Any,
        rebuild: Callable[[list[Any]], Any] | None = None,
    ) -> CallPlan:
        """The plan of a call with this route's signature (``rebuild``: a cheaper function than
        ``treedef.unflatten`` rebuilding the params, see ``CallPlan.rebuild``)."""
        adapter, explicit, importers = self.adapter, self.explicit, self.importers
        place = adapter.placer(device) if explicit else None
        bare = leaves[0] is params
        rebuild = only_leaf if bare else rebuild or treedef.unflatten
        if importers is None:
            given = leaves if adapter.calls_loss_on_given_leaves else None
            return CallPlan(
                adapter, treedef, leaves, leaves, None, explicit, rebuild, bare, None, place, given
            )
        origins = list(self.origins or ())
        if self.x64 is None:  # the common case: no context to enter (a nullcontext costs ~0.5 us)
            inputs = _imported(leaves, importers, place)
        else:
            with self.x64():
                inputs = _imported(leaves, importers, place)
                # whether the device keeps 64 bits can change (jax.default_device)
                check_kept_dtypes(params, leaves, inputs, origins, adapter)
        scope = _both(self.x64, matmul_scope(adapter, origins))
        return CallPlan(adapter, treedef, leaves, inputs, origins, explicit, rebuild, bare, scope, place)


def _imported(
    leaves: list[Any], importers: tuple[Callable[[Any], Any] | None, ...], place: Callable[[Any], Any] | None
) -> list[Any]:
    """The leaves in the computing framework: each converted by its importer, then placed."""
    inputs = [leaf if imp is None else imp(leaf) for leaf, imp in zip(leaves, importers, strict=True)]
    if place is not None:
        inputs = [x if imp is None else place(x) for x, imp in zip(inputs, importers, strict=True)]
    return inputs


def routes_cached() -> int:
    """How many signatures are remembered now."""
    return len(_routes)


def clear_routes() -> None:
    """Forget every remembered signature (the next call of each is planned in full again)."""
    _routes.clear()
    _flat_routes.clear()


def bare_native_adapter(params: Any) -> Adapter | None:
    """The adapter of ``params`` when it is one array of a type and dtype planned natively before
    (so it needs no checks and no conversion), else ``None``."""
    route = _routes.get(_bare_key(params)) if type(params) in ARRAY_TYPES else None
    return None if route is None else route.adapter


def plan_call(
    params: Any, backend: str | None, adapter: Adapter | None = None, device: Any = None
) -> CallPlan:
    """Validate ``params`` and decide how the call runs (replaying the route of a known signature).

    Args:
        params: the user's parameter pytree.
        backend: the backend asked for, or ``None`` to infer it from the leaves.
        adapter: an adapter instance to use instead of ``backend``'s registered one (never cached).
        device: where the leaves this call converts (NumPy, other frameworks') are placed; ``None``:
            the framework's default device. Only with ``backend=`` (nothing is converted without).

    Raises:
        EmptyParamsError, InvalidParamsError, BackendRequiredError, MixedBackendsError,
        PrecisionError, UnknownBackendError, BackendNotInstalledError, InvalidDeviceError.
    """
    inferred = backend is None and adapter is None
    if inferred:
        if device is not None:
            raise InvalidDeviceError(
                f"device={device!r} places the arrays unigrad converts (NumPy, or another framework's "
                f"arrays), which happens only with backend=: pass backend= too, or move the params to "
                f"the device yourself (their gradients stay where they are)"
            )
        # Only an array type planned before can have a bare route (asking a container for its dtype
        # would raise and catch an AttributeError, ~1 us).
        route = _routes.get(_bare_key(params)) if type(params) in ARRAY_TYPES else None
        if route is not None:  # a bare array: no flatten at all
            return route.plan(params, [params], leaf_spec(params), None)
    kind = type(params)
    flat_key: Hashable | None = None
    if adapter is None and (kind is dict or kind is list or kind is tuple):
        # A flat dict, list or tuple of arrays: its container, keys and leaves' types and dtypes
        # find its structure and route in one lookup, in this frame (each step of a call costs
        # 3-10x its warm cost once the framework has left the caches cold: docs/design.md).
        values = list(params.values()) if kind is dict else list(params)
        if values:
            value_types = tuple(map(type, values))
            if ARRAY_TYPES.issuperset(value_types):
                flat_key = (tuple(params) if kind is dict else kind, _route_key(backend, value_types, values))
                known = _flat_routes.get(flat_key)
                if known is not None:
                    route, in_order, treedef, rebuild = known
                    leaves = values if in_order is None else list(in_order(params))
                    return route.plan(params, leaves, treedef, device, rebuild)
    leaves, treedef, rebuild = flatten_params(params)
    if not leaves:
        raise EmptyParamsError(
            f"params has no array leaves (structure {treedef}); pass at least one floating array"
        )
    key: Hashable | None = None
    if adapter is None:
        try:
            types = tuple(map(type, leaves))
            key = _route_key(backend, types, leaves)
        except AttributeError:  # a leaf without a dtype: planning names it
            key = None
        route = None if key is None else _routes.get(key)
        if route is not None:
            if flat_key is not None:
                _remember_flat_route(flat_key, route, params)
            return route.plan(params, leaves, treedef, device, rebuild)
    route = _route_for(params, leaves, backend, adapter)
    if key is not None and _replayable(route, leaves):
        # Planning may have imported the adapter, which registers its cheaper dtype key: the route is
        # remembered under the key later calls make. (A TensorFlow DType hashes and compares equal to
        # its enum, so a key of DTypes kept from before would still be found, one slow __eq__ a leaf.)
        key = _route_key(backend, types, leaves)
        _remember(key, route)
        if flat_key is not None:  # keyed after planning too, as the route
            flat_key = (flat_key[0], _route_key(backend, value_types, values))
            _remember_flat_route(flat_key, route, params)
        if inferred and route.importers is None and len(leaves) == 1 and leaves[0] is params:
            _remember(_bare_key(params), route)
    return route.plan(params, leaves, treedef, device, rebuild)


def _bare_key(params: Any) -> Hashable:
    """The key a bare array's route is remembered and looked up under: its type and its dtype's name
    (:data:`~unigrad.backends.DTYPE_KEYS`: TensorFlow's ``.dtype`` runs Python); the name is ``None``
    for anything without a dtype (no route is ever remembered under that)."""
    kind = type(params)
    fast = DTYPE_KEYS.get(kind)
    return (kind, getattr(params, "dtype", None) if fast is None else fast(params))


def _route_key(backend: str | None, types: tuple[type, ...], leaves: list[Any]) -> Hashable:
    """The key a call's route is remembered and looked up under: the backend asked for, each leaf's
    type and its dtype's name (raises AttributeError for a leaf without a dtype). The name is
    ``.dtype``, or the type's cheaper :data:`~unigrad.backends.DTYPE_KEYS` function when every leaf
    has that one type."""
    fast = DTYPE_KEYS.get(types[0])
    if fast is None or types.count(types[0]) != len(types):
        fast = _get_dtype
    return (backend, types, tuple(map(fast, leaves)))


def _remember_flat_route(flat_key: Hashable, route: Route, params: Any) -> None:
    """Remember ``route`` under the flat signature of ``params`` (see ``_flat_routes``), with how its
    values are put in optree's order and rebuilt, when ``params`` is a flat container of arrays."""
    flat = known_flat(params)
    if flat is not None:
        if len(_flat_routes) >= ROUTES_LIMIT:
            _flat_routes.clear()
        _flat_routes[flat_key] = (route, *flat)


def _remember(key: Hashable, route: Route) -> None:
    if len(_routes) >= ROUTES_LIMIT:
        _routes.clear()
    _routes[key] = route


def _replayable(route: Route, leaves: list[Any]) -> bool:
    """Whether later calls may replay ``route``: not when the checks of its adapter's own leaves
    depend on a global mode (JAX's float64 and its x64 flag), which may change between calls."""
    target = route.adapter
    dependent = target.mode_dependent_dtypes
    if dependent:
        for leaf, importer in zip(leaves, route.importers or [None] * len(leaves), strict=True):
            if importer is None and target.dtype_name(leaf) in dependent:
                return False
    return True


def _route_for(params: Any, leaves: list[Any], backend: str | None, adapter: Adapter | None) -> Route:
    # The owner depends on the leaf's type alone: looked up once per distinct type (one C-level pass
    # over the leaves), not once per leaf.
    by_type = dict(zip(map(type, leaves), leaves, strict=True))
    owner_by_type = {kind: backend_name_of(leaf) for kind, leaf in by_type.items()}
    note_array_types(kind for kind, owner in owner_by_type.items() if owner is not None)
    owners = [owner_by_type[type(leaf)] for leaf in leaves]
    if None in owner_by_type.values():
        raise_not_an_array(params, leaves, owners)
    explicit = backend is not None or adapter is not None
    if adapter is None:
        distinct = set(owner_by_type.values())
        if backend is None:
            owner = next(iter(distinct))
            backend = str(owner) if len(distinct) == 1 and owner != "numpy" else None
            backend = backend or infer_backend(params, leaves, owners)
        adapter = get_adapter(backend)
    if all(owner == adapter.name for owner in owner_by_type.values()):
        check_native_dtypes(params, leaves, adapter)
        return Route(adapter, explicit)
    origins = [get_adapter(owner) for owner in owners]  # type: ignore[arg-type]
    x64 = _x64_scope(adapter, leaves, origins)
    with _NO_SCOPE if x64 is None else x64():
        for index, leaf in enumerate(leaves):
            raise_on_dtype_problem(params, index, leaf, origins[index], adapter)
    if x64 is None:
        importer_of = {o.name: adapter.importer_from(o) for o in origins if o is not adapter}
    else:  # looked up at each call: a scoped conversion is checked again at each call (Route.plan)
        importer_of = {o.name: functools.partial(_converted, adapter, o) for o in origins if o is not adapter}
    importers = tuple(None if origin is adapter else importer_of[origin.name] for origin in origins)
    return Route(adapter, explicit, importers, tuple(origins), x64)


def _converted(adapter: Adapter, origin: Adapter, leaf: Any) -> Any:
    return adapter.from_foreign(leaf, origin)


def _x64_scope(adapter: Adapter, leaves: list[Any], origins: list[Adapter]) -> ScopeFactory | None:
    """``adapter.precision_scope`` when a leaf converted into it has one of its scoped dtypes."""
    scoped = adapter.scoped_dtypes
    if not scoped:
        return None
    for leaf, origin in zip(leaves, origins, strict=True):
        if origin is not adapter and origin.dtype_name(leaf) in scoped:
            return adapter.precision_scope
    return None


def _both(first: ScopeFactory | None, second: ScopeFactory | None) -> ScopeFactory | None:
    """One context factory entering ``first`` then ``second`` (either may be ``None``)."""
    if first is None or second is None:
        return first or second

    @contextmanager
    def both() -> Iterator[None]:
        with first(), second():
            yield

    return both


# Kept for the modules that flatten data and batches the way params are flattened.
_flatten_tree = flatten_leaves
