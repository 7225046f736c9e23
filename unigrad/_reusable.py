"""What the reusable, optionally compiled functions share: ``value_and_grad_fn`` and ``hvp_fn``.

Both keep a cache keyed by input signature (:func:`param_signature`, :func:`data_signature`), build
one body per key that rebuilds ``data`` around its array leaves (:func:`loss_with_data`), compile it
once (:class:`CompiledEntry`: where the compiler refuses, the body runs eagerly and the function
warns once, :func:`warn_compile_fallback`), and hold their options and caches in a
:class:`ReusableFn`.

Example:
    >>> import numpy as np
    >>> from unigrad._reusable import data_signature
    >>> data_signature([np.zeros((2, 3), np.float32), "mean"])
    ((<class 'numpy.ndarray'>, (2, 3), 'float32', 'cpu'), (<class 'str'>, 'mean'))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, ClassVar

from unigrad import _tree
from unigrad._api import _require_callable
from unigrad._dispatch import CallPlan
from unigrad._errors import CompileFallbackWarning, UnigradError
from unigrad.backends import backend_name_of, canonical_name, get_adapter
from unigrad.backends._base import StepFn

#: The loss as a function of the params' flat leaves.
FlatLoss = Callable[[list[Any]], Any]

# leaf type -> its adapter's signature function (None: not an array); filled on first sight.
_signers: dict[type, Callable[[Any], Hashable] | None] = {}


def signer(leaf: Any) -> Callable[[Any], Hashable] | None:
    """The function giving ``leaf``'s signature (its adapter's), or ``None`` if it is not an array."""
    leaf_type = type(leaf)
    try:
        return _signers[leaf_type]
    except KeyError:
        owner = backend_name_of(leaf)
        found = None if owner is None else get_adapter(owner).signature
        _signers[leaf_type] = found
        return found


def chained(entry: Any) -> Iterator[Any]:
    """``entry`` and the entries linked after it (``entry.other``: a structure's entries, one per
    kind of leaves; an entry without ``other`` stands alone)."""
    while entry is not None:
        yield entry
        entry = getattr(entry, "other", None)


def param_signature(leaves: list[Any]) -> tuple[Hashable, ...]:
    """The cache key of params leaves: each array's type, shape, dtype and device."""
    # A non-array params leaf is keyed by its type only: the miss path rejects it with a clear error.
    return tuple((type(leaf),) if (sign := signer(leaf)) is None else sign(leaf) for leaf in leaves)


def data_signature(leaves: list[Any]) -> tuple[Hashable, ...]:
    """The cache key of data leaves: as :func:`param_signature`, and the value of each non-array leaf."""
    # Non-array data leaves are compiled in as constants, so their value is part of the key.
    return tuple((type(leaf), leaf) if (sign := signer(leaf)) is None else sign(leaf) for leaf in leaves)


def loss_with_data(
    loss_fn: Callable[..., Any],
    rebuild_params: Callable[[list[Any]], Any],
    data_leaves: list[Any],
    data_def: Any,
    with_data: bool,
) -> tuple[list[int], Callable[[list[Any]], FlatLoss]]:
    """For a compiled body: where ``data``'s array leaves are, and the loss with ``data`` around them.

    Returns:
        ``(positions, bind)``: the positions of the array leaves among ``data_leaves`` (the body takes
        them as inputs), and ``bind(data_arrays)``, the loss as a function of the params' leaves with
        ``data`` rebuilt around those arrays; its other leaves are constants, compiled in.
    """
    positions = [i for i, leaf in enumerate(data_leaves) if signer(leaf) is not None]
    # The constants only: holding this call's arrays would keep its batch alive.
    statics = [None if i in positions else leaf for i, leaf in enumerate(data_leaves)]
    rebuild_data = _tree.unflattener(data_def)

    def bind(data_arrays: list[Any]) -> FlatLoss:
        leaves = list(statics)
        for index, value in zip(positions, data_arrays, strict=True):
            leaves[index] = value
        call_data = rebuild_data(leaves)

        def call(diff_leaves: list[Any]) -> Any:
            params = rebuild_params(diff_leaves)
            return loss_fn(params, call_data) if with_data else loss_fn(params)

        return call

    return positions, bind


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


class CompiledEntry:
    """A cache entry whose ``body`` is compiled on its first call (``run`` is ``None`` until then).

    Subclasses set ``plan`` (the key's validated plan), ``owner`` (the :class:`ReusableFn` it belongs
    to), ``body`` and ``run``.
    """

    plan: CallPlan
    owner: ReusableFn
    body: StepFn
    run: StepFn | None

    def _compile_and_run(self, first: list[Any], second: list[Any]) -> tuple[Any, Any, list[Any]]:
        """``body`` compiled, kept as ``run`` and run on ``(first, second)``; where compiling (or the
        compiled call) fails, ``body`` itself becomes ``run`` and the owner warns once."""
        adapter = self.plan.adapter
        try:
            compiled = adapter.compile(self.body, first, second, self.owner.jit_options)
            result = compiled(first, second)
        except UnigradError:
            raise
        except Exception as err:  # noqa: BLE001 - whatever the compiler refused, eager still works
            failure = err
        else:
            self.run = compiled
            return result
        # Outside the except block: a bug in the loss itself raises here as it would without jit,
        # not chained to the compiler's error.
        result = self.body(first, second)
        self.run = self.body
        self.owner._warn_fallback(adapter.name, failure)
        return result


class ReusableFn:
    """The options and caches of a reusable function: :class:`unigrad.ValueAndGradFn`, :class:`unigrad.HvpFn`.

    The options are the arguments of the function that made it (``loss_fn``, ``backend``, ``has_aux``,
    ``jit``, ``jit_options``); the caches map an input signature to its planned (and compiled) entry.
    """

    #: The function that makes it (``"hvp_fn"``) and what one call of it runs (``"product"``), as the
    #: compile-fallback warning and ``repr`` name them.
    maker: ClassVar[str]
    runs: ClassVar[str]

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
        self.loss_fn = loss_fn
        #: with ``backend=``: where the leaves each call converts are placed (None: the default)
        self.device = device
        self.backend = None if backend is None else canonical_name(backend)
        self.has_aux = has_aux
        self.jit = bool(jit)
        self.jit_options = dict(jit_options or {})
        self._entries: dict[Hashable, Any] = {}
        # jit=True on a backend whose compiler keys shapes itself (JAX): the compiler's treedef of the
        # inputs -> one entry for all of their signatures; see unigrad._compiled_by_structure. Stays
        # empty when a call does not qualify.
        self._by_structure: dict[Hashable, Any] = {}
        self._structure_refused = False
        self._compiler_flatten: Callable[[Any], tuple[list[Any], Hashable]] = _tree.flatten
        self._warned = False

    @property
    def cache_size(self) -> int:
        """How many distinct input signatures have been planned (and, with ``jit=True``, compiled).

        On JAX with ``jit=True`` and native inputs, shapes and dtypes are keyed by ``jax.jit`` itself:
        its traces are what is counted there.
        """
        traces = sum(entry.traces for head in self._by_structure.values() for entry in chained(head))
        return len(self._entries) + traces

    def clear_cache(self) -> None:
        """Forget every planned and compiled signature (the next call of each plans it again)."""
        self._entries.clear()
        self._by_structure.clear()

    def _warn_fallback(self, backend: str, err: Exception) -> None:
        if self._warned:
            return
        self._warned = True
        warn_compile_fallback(self.maker, backend, err, self.runs)

    def __repr__(self) -> str:
        name = getattr(self.loss_fn, "__qualname__", repr(self.loss_fn))
        return (
            f"<unigrad {self.maker} of {name} backend={self.backend!r} jit={self.jit} "
            f"signatures={self.cache_size}>"
        )
