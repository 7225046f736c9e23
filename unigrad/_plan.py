"""A call's plan: the adapter that computes, the leaves it computes on, and how results go back.

A :class:`CallPlan` is what :func:`unigrad._dispatch.plan_call` hands every API function: the
validated leaves, their converted ``inputs`` (NumPy or another framework's arrays when ``backend=`` is
given, placed on ``device=``), the precision scope the call runs in, and how gradients, loss and aux
go back so that each has its parameter's framework, dtype and device. Data is converted here too
(:meth:`CallPlan.prepare_data`), with its per-type converters remembered.

Example:
    >>> import numpy as np
    >>> from unigrad._dispatch import plan_call
    >>> plan = plan_call({"w": np.ones(2, np.float32)}, "torch")
    >>> plan.adapter.name, type(plan.inputs[0]).__name__, plan.explicit
    ('torch', 'Tensor', True)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import optree

from unigrad import _tree
from unigrad._leaves import flatten_leaves
from unigrad.backends import Adapter, backend_name_of, get_adapter
from unigrad.backends._loss_call import LossCall

# Reusable and re-entrant: the context of every call that needs no precision scope.
_NO_SCOPE = nullcontext()
# (adapter, backend= given, whether this call prepares data leaves, the placer, the data's leaf types)
# -> per leaf, how prepare_data converts it. A flat dict of arrays (the commonest data) has its own
# table, keyed by its values' types, and is rebuilt without optree.
_DataKey = tuple[Adapter, bool, bool, Callable[[Any], Any] | None, tuple[type, ...]]
_data_converters: dict[_DataKey, list[Callable[[Any], Any] | None]] = {}
_dict_converters: dict[_DataKey, list[Callable[[Any], Any] | None]] = {}
_CONVERTERS_LIMIT = 256


class CallPlan:
    """How one call runs: the computing adapter and the conversions around it.

    Attributes:
        adapter: the computing backend's adapter.
        treedef: the params' structure.
        originals: the params' leaves as given.
        inputs: the leaves as ``adapter`` takes them (``originals`` itself when none is converted).
        origins: per leaf, the adapter of its own framework; ``None`` when every leaf is native.
        explicit: ``backend=`` was given: foreign data leaves are converted too.
        rebuild: leaves back into the params' structure: the one leaf of a bare array, a flat
            dict, list or tuple's own constructor (``unigrad._tree.rebuilder``), else
            ``treedef.unflatten``.
        bare: params is a single array, not a container (its treedef is a lone leaf).
        scope: the adapter's ``precision_scope`` when this call converts leaves of its scoped
            dtypes (float64 NumPy on JAX): the whole call runs inside it; ``None`` when the call
            needs none (the common case).
        place: ``device=``: moves what this call converts (NumPy, other frameworks' arrays) onto
            the device asked for, or the framework's default one (``Adapter.placer``); ``None``
            when they are made there already.
        given: ``inputs`` when the adapter calls the loss on the very leaves it was given (see
            ``loss_call``).
    """

    # A plain class: making a dataclass costs about 1 ms of ``import unigrad`` (measured).
    __slots__ = (
        "adapter", "bare", "explicit", "given", "inputs", "originals", "origins", "place", "rebuild",
        "scope", "treedef",
    )  # fmt: skip

    def __init__(
        self,
        adapter: Adapter,
        treedef: optree.PyTreeSpec,
        originals: list[Any],
        inputs: list[Any],
        origins: list[Adapter] | None,
        explicit: bool,
        rebuild: Callable[[list[Any]], Any],
        bare: bool = False,
        scope: Callable[[], AbstractContextManager[Any]] | None = None,
        place: Callable[[Any], Any] | None = None,
        given: list[Any] | None = None,
    ) -> None:
        self.adapter = adapter
        self.treedef = treedef
        self.originals = originals
        self.inputs = inputs
        self.origins = origins
        self.explicit = explicit
        self.rebuild = rebuild
        self.bare = bare
        self.scope = scope
        self.place = place
        self.given = given

    def to_backend(self, leaf: Any) -> Any:
        """A leaf of any framework (a tangent, a vector, a data array) as this call's adapter needs it,
        on this call's device when it is converted."""
        return to_backend(self.adapter, leaf, self.place)

    def scoped(self) -> AbstractContextManager[Any]:
        """The context a call of this plan runs in (see ``scope``)."""
        return _NO_SCOPE if self.scope is None else self.scope()

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
        # The rule Route.plan (unigrad._dispatch) applies when it makes a plan.
        given = inputs if origins is None and adapter.calls_loss_on_given_leaves else None
        return CallPlan(
            adapter,
            self.treedef,
            leaves,
            inputs,
            origins,
            self.explicit,
            self.rebuild,
            self.bare,
            self.scope,
            place,
            given,
        )

    def loss_call(self, fn: Callable[..., Any], params: Any, data: Any) -> LossCall:
        """``fn`` as the adapter calls it on this plan's leaves, its data prepared (see ``LossCall``).

        An adapter that differentiates the leaves as they are (TensorFlow's tape, torch's parameters
        requiring grad) calls the loss on the very list it was given: the loss then gets ``params``
        as the user passed them, as in native code, and no structure is rebuilt.
        """
        return LossCall(
            fn, params, self.given, self.rebuild, () if data is None else (self.prepare_data(data),)
        )

    def results(self, out: tuple[Any, Any, list[Any]], has_aux: bool, want_loss: bool) -> tuple[Any, Any]:
        """An adapter's ``(loss, aux, grads)`` as the API returns them: ``(loss, grads)``, or
        ``((loss, aux), grads)`` with ``has_aux``; each in its parameter's framework when converted
        (the loss only when ``want_loss``: ``grad`` throws it away)."""
        loss, aux, grads = out
        if self.origins is not None:  # some leaves were converted: results go back to their frameworks
            grads = self.restore_grads(grads)
            if want_loss:
                loss = self.restore_output(loss)
            if aux is not None:
                aux = self.restore_output(aux)
        if has_aux:
            return (loss, aux), self.rebuild(grads)
        return loss, self.rebuild(grads)

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
        leaves, treedef = flatten_leaves(data, "data")
        key = (adapter, explicit, prepare is not None, place, tuple(map(type, leaves)))
        converters = _data_converters.get(key)
        if converters is None:
            if len(_data_converters) >= _CONVERTERS_LIMIT:
                _data_converters.clear()
            converters = [_data_converter(adapter, explicit, prepare, leaf, place) for leaf in leaves]
            _data_converters[key] = converters
        if dict_key is not None and all(backend_name_of(value) is not None for value in data.values()):
            # every value is an array leaf, so the leaves' types are the values' types (in insertion
            # order, which optree's sorted leaves need not be): remember per value
            if len(_dict_converters) >= _CONVERTERS_LIMIT:
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


def to_backend(adapter: Adapter, leaf: Any, place: Callable[[Any], Any] | None = None) -> Any:
    """``leaf`` (an array of any framework) as an array of ``adapter``'s framework, ready for a call;
    a converted one moved by ``place`` (a plan's device) when given."""
    owner = backend_name_of(leaf)
    if owner is not None and owner != adapter.name:
        leaf = adapter.from_foreign(leaf, get_adapter(owner))
        if place is not None:
            leaf = place(leaf)
    return adapter.prepare_data_leaf(leaf)
