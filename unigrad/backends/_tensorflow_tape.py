"""Reverse mode on TensorFlow without ``tf.GradientTape``'s Python wrapper, for plain eager tensors.

``tf.GradientTape`` is a Python class over a handful of C functions (``pywrap_tfe``: make a tape,
watch a tensor, stop recording, compute the gradient). Its ``watch`` and ``gradient`` run
per-source Python on top (``nest`` flattening and packing, a trainable-dtype test, composite-tensor
and variable unwrapping, each with ``isinstance`` checks against a ``typing`` protocol): about
215 µs a call on a one-element loss (a quarter of the whole call on the CPU) and 19 µs a watched
tensor (measured in docs/design.md). For sources that are plain eager tensors none of that changes
the result, so :func:`record` and :func:`gradient` call the C functions as the wrapper does.

Those functions are private: they are looked up and tried on a small graph once (in a thread of
its own, so that none of the caller's tapes or device scopes sees the check), and :func:`engine`
answers ``None`` where they are missing or differ; the adapter then uses ``tf.GradientTape``.
Variables (whose watching a distribution strategy may redirect) always go through
``tf.GradientTape``.

Example:
    >>> import tensorflow as tf
    >>> from unigrad.backends._tensorflow_tape import engine, gradient, record, stop
    >>> x = tf.constant([1.0, 2.0])
    >>> engine() is not None  # this TensorFlow's C tape functions passed the check
    True
    >>> tape = record([x])
    >>> try:
    ...     loss = tf.reduce_sum(x**2)
    ... finally:
    ...     stop(tape)
    >>> [g.numpy().tolist() for g in gradient(tape, loss, [x])]
    [[2.0, 4.0]]
"""

from __future__ import annotations

import threading
from typing import Any

import tensorflow as tf

try:
    from tensorflow.python import pywrap_tfe as _pywrap
except ImportError:  # pragma: no cover - a TensorFlow without it: tf.GradientTape is used
    _pywrap = None

_UNRESOLVED: Any = object()
#: The C functions once they passed the check, None where they failed (or are missing).
_engine: Any = _UNRESOLVED
#: The type of TensorFlow's eager tensors (not public in ``tf``).
EagerTensor = type(tf.constant(0.0))


def engine() -> Any:
    """TensorFlow's C tape functions when this TensorFlow has them and they differentiate as
    ``tf.GradientTape`` does, else ``None`` (checked once)."""
    return _engine if _engine is not _UNRESOLVED else _check_engine()


def record(sources: list[Any]) -> Any:
    """A new tape, recording on this thread and watching ``sources`` (plain eager tensors), as
    ``tf.GradientTape(watch_accessed_variables=False)`` entered and told to watch them."""
    tape = _engine.TFE_Py_TapeSetNew(False, False)  # not persistent; no variable watched by reading it
    watch = _engine.TFE_Py_TapeWatch
    for source in sources:
        watch(tape, source)
    return tape


def stop(tape: Any) -> None:
    """Stop ``tape`` recording (the exit of ``tf.GradientTape``'s context)."""
    _engine.TFE_Py_TapeSetRemove(tape)


def gradient(tape: Any, loss: Any, sources: list[Any]) -> list[Any]:
    """``tape.gradient(loss, sources, unconnected_gradients=ZERO)`` of a stopped tape: zeros for an
    unused source, ``IndexedSlices`` where TensorFlow makes them (as the public call does)."""
    # A variable as the loss is differentiated through its handle, as tf.GradientTape does.
    target = loss if type(loss) is EagerTensor else getattr(loss, "handle", loss)
    return list(_engine.TFE_Py_TapeGradient(tape, [target], sources, None, sources, "zero"))


def _check_engine() -> Any:
    """Resolve :data:`_engine`: the C functions if a two-source graph (one unused) gets the gradients
    ``tf.GradientTape`` gives and leaves no tape recording, else ``None``."""
    global _engine
    passed: list[bool] = []

    def check() -> None:
        try:
            with tf.device("/cpu:0"):
                x, unused = tf.constant([1.0, 2.0]), tf.constant([5.0])
                tape = _pywrap.TFE_Py_TapeSetNew(False, False)
                try:
                    _pywrap.TFE_Py_TapeWatch(tape, x)
                    _pywrap.TFE_Py_TapeWatch(tape, unused)
                    loss = tf.reduce_sum(x * tf.constant([2.0, 3.0]))
                finally:
                    _pywrap.TFE_Py_TapeSetRemove(tape)
                got = _pywrap.TFE_Py_TapeGradient(tape, [loss], [x, unused], None, [x, unused], "zero")
                passed.append(
                    len(got) == 2
                    and got[0].numpy().tolist() == [2.0, 3.0]
                    and got[1].numpy().tolist() == [0.0]
                    and bool(_pywrap.TFE_Py_TapeSetIsEmpty())
                )
        except Exception:  # noqa: BLE001 - any failure: the private calls are not what they were
            passed.append(False)

    if _pywrap is not None:
        checker = threading.Thread(target=check, name="unigrad-tensorflow-tape-check", daemon=True)
        try:
            checker.start()
            checker.join()
        except RuntimeError:  # no thread to be had (at interpreter shutdown): the public tape
            passed.clear()
    _engine = _pywrap if passed == [True] else None
    return _engine
