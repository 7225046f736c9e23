"""TensorFlow's gradient tapes: what a tape watches (:func:`watchable`), recording and differentiating
without ``tf.GradientTape``'s per-call and per-source Python (:func:`record`, :func:`stop`,
:func:`gradient`), and dense gradients (:func:`dense`).

``tf.GradientTape`` is a Python class over TensorFlow's tape functions (make a tape, watch a tensor
or a variable, stop recording, compute the gradient). Its ``watch`` and ``gradient`` run per-source
Python on top (``nest`` flattening and packing, a trainable-dtype test that only logs,
composite-tensor unwrapping, each with ``isinstance`` checks against a ``typing`` protocol): about
220 µs a call on a one-element loss (a quarter of the whole call on the CPU) and 19 µs a watched
tensor (docs/design.md). For eager tensors and plain ``tf.Variable`` sources none of that changes
the result, so :func:`record`, :func:`stop` and :func:`gradient` call the functions
``tf.GradientTape`` calls, in the same order, with the same arguments.

Those functions are TensorFlow's internals: they are looked up and tried once on a small graph (in
a thread of its own, so that none of the caller's tapes or device scopes sees the check), and
:func:`engine` answers ``False`` where they are missing or differ; the adapter then uses
``tf.GradientTape``, as it does for any other source type (distributed and Keras variables' own
types, symbolic tensors inside ``tf.function``).

Example:
    >>> import tensorflow as tf
    >>> from unigrad.backends._tensorflow_tape import engine, gradient, record, stop
    >>> x, v = tf.constant([1.0, 2.0]), tf.Variable([3.0])
    >>> engine({type(x), type(v)})  # this TensorFlow's tape functions passed the check
    True
    >>> tape = record([x, v])
    >>> try:
    ...     loss = tf.reduce_sum(x**2) * v[0]
    ... finally:
    ...     stop(tape)
    >>> [g.numpy().tolist() for g in gradient(tape, loss, [x, v])]
    [[6.0, 12.0], [5.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from unigrad.backends import keras_tensorflow_variable_types
from unigrad.backends._own_thread import passes

try:
    from tensorflow.python import pywrap_tfe as _pywrap
    from tensorflow.python.eager import imperative_grad as _imperative_grad
    from tensorflow.python.eager import tape as _tape_lib
    from tensorflow.python.ops.resource_variable_ops import ResourceVariable
except ImportError:  # pragma: no cover - a TensorFlow laid out otherwise: tf.GradientTape is used
    _pywrap = _tape_lib = _imperative_grad = ResourceVariable = None

#: The type of TensorFlow's eager tensors (not public in ``tf``).
EagerTensor = type(tf.constant(0.0))
#: The source types :func:`record` watches: anything else goes through ``tf.GradientTape``.
SOURCE_TYPES = frozenset({EagerTensor, ResourceVariable} - {None})
_ZERO = tf.UnconnectedGradients.ZERO
#: Whether the functions passed the check, without (False) and with (True) a variable among the
#: sources: the variable check runs at the first variable (its first read costs ~8 ms in a process).
_checked: dict[bool, bool] = {}


def engine(kinds: set[type]) -> bool:
    """Whether sources of ``kinds`` (a subset of :data:`SOURCE_TYPES`) can be differentiated with
    :func:`record` and :func:`gradient`: TensorFlow's tape functions did on a small graph what
    ``tf.GradientTape`` does (checked once, and once more for variables)."""
    with_variable = ResourceVariable in kinds
    passed = _checked.get(with_variable)
    if passed is None:
        passed = _checked[with_variable] = _check(with_variable)
    return passed


def record(sources: list[Any]) -> Any:
    """A new tape, recording on this thread and watching ``sources`` (of :data:`SOURCE_TYPES`), as
    ``tf.GradientTape(watch_accessed_variables=False)`` entered and told to watch them."""
    tape = _tape_lib.push_new_tape(persistent=False, watch_accessed_variables=False)
    watch, watch_variable = _tape_lib.watch, _tape_lib.watch_variable
    for source in sources:
        if type(source) is EagerTensor:
            watch(tape, source)
        else:  # a variable: through TensorFlow's resolver, which a distribution strategy may replace
            watch_variable(tape, source)
    return tape


def stop(tape: Any) -> None:
    """Stop ``tape`` recording (the exit of ``tf.GradientTape``'s context)."""
    _tape_lib.pop_tape(tape)


def gradient(tape: Any, loss: Any, sources: list[Any]) -> list[Any]:
    """``tape.gradient(loss, sources, unconnected_gradients=ZERO)`` of a stopped tape: zeros for an
    unused source, ``IndexedSlices`` where TensorFlow makes them (as the public call does)."""
    # Variables (the loss too, if it is one) are differentiated through their handles, as there.
    target = loss if type(loss) is EagerTensor else getattr(loss, "handle", loss)
    flat = [source if type(source) is EagerTensor else source.handle for source in sources]
    grads = _imperative_grad.imperative_grad(
        tape, [target], flat, output_gradients=None, sources_raw=sources, unconnected_gradients=_ZERO
    )
    return list(grads)


def _check(with_variable: bool) -> bool:
    """Whether a graph of a tensor, an unused tensor (and a variable) gets the gradients
    ``tf.GradientTape`` gives and leaves no tape recording, in a thread of its own."""

    def check() -> bool:
        with tf.device("/cpu:0"):
            x, unused = tf.constant([1.0, 2.0]), tf.constant([5.0])
            sources = [x, unused, tf.Variable([3.0])] if with_variable else [x, unused]
            tape = record(sources)
            try:
                loss = tf.reduce_sum(x * tf.constant([2.0, 3.0]))
                loss = loss * sources[2] if with_variable else loss
            finally:
                stop(tape)
            got = [g.numpy().tolist() for g in gradient(tape, loss, sources)]
        wanted = [[6.0, 9.0], [0.0], [8.0]] if with_variable else [[2.0, 3.0], [0.0]]
        return got == wanted and bool(_pywrap.TFE_Py_TapeSetIsEmpty())

    return _tape_lib is not None and passes(check, "unigrad-tensorflow-tape-check")


def watchable(leaves: list[Any]) -> list[Any]:
    """``leaves`` with each Keras variable replaced by the ``tf.Variable`` it wraps: a tape watches
    and differentiates with respect to those (the loss reads them through the Keras variable)."""
    if not _KERAS_VARIABLES.among(leaves):
        return leaves
    keras_types = keras_tensorflow_variable_types()
    return [leaf.value if isinstance(leaf, keras_types) else leaf for leaf in leaves]


class _KindTest:
    """Whether a list holds an instance of some classes, decided once per item type.

    ``isinstance`` against TensorFlow's and Keras's classes (ABCs) costs 0.2-0.4 µs an item, and
    several µs a call once the framework's own work has left the caches cold; the answer for a type
    never changes, so it is remembered in a dict (bounded by the number of array types in use).
    """

    def __init__(self, classes: Callable[[], tuple[type, ...]]) -> None:
        self._classes = classes
        self._known: dict[type, bool] = {}

    def among(self, items: list[Any]) -> bool:
        known = self._known
        kinds = (type(items[0]),) if len(items) == 1 else set(map(type, items))
        for kind in kinds:
            found = known.get(kind)
            if found is None:
                found = known[kind] = issubclass(kind, self._classes())
            if found:
                return True
        return False


# Keras 3 variables (asked again for each new type: Keras may be imported after the first call).
_KERAS_VARIABLES = _KindTest(keras_tensorflow_variable_types)
_INDEXED_SLICES = _KindTest(lambda: (tf.IndexedSlices,))


def dense(grads: list[Any]) -> list[Any]:
    """``grads`` with every ``IndexedSlices`` (the gradient through a gather) made a dense tensor."""
    if not _INDEXED_SLICES.among(grads):
        return grads
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
