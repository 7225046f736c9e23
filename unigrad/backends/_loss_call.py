"""The user's loss as an adapter calls it: a function of the leaves, handed over in parts.

Eager TensorFlow keeps a Python stack trace for every op it runs, and jaxlib records the Python stack
at every dispatch: each frame between the user's call and their loss costs every op of the loss
(about 1,500 instructions a frame and op on TensorFlow, 1.5-2 µs a frame and call on JAX; see
docs/design.md). A :class:`LossCall` is a function of the leaves like any other, so every adapter
method can call it; :func:`loss_parts` splits it so that an adapter's hot path calls the user's
loss from its own frame instead, one frame nearer the caller.

Example:
    >>> from unigrad.backends._loss_call import LossCall, loss_parts
    >>> def loss(p, scale):
    ...     return p["w"] * scale
    >>> call = LossCall(loss, {"w": 2.0}, None, lambda leaves: {"w": leaves[0]}, (3.0,))
    >>> call([5.0])
    15.0
    >>> fn, arguments = loss_parts(call, [5.0])
    >>> fn(*arguments)
    15.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LossCall:
    """``loss_fn`` as a function of the flat leaves: ``fn(rebuild(leaves), *args)``.

    ``given`` is the very list of leaves that stands for ``params`` itself (an adapter that
    differentiates the leaves as they are: TensorFlow's tape, torch's parameters requiring grad):
    called on it, the loss gets the user's ``params`` object, as in native code, with nothing rebuilt.

    A plain object, not a tuple: JAX and MLX walk the containers among a transformation's
    arguments, and would trace the params and data inside one.
    """

    __slots__ = ("args", "fn", "given", "params", "rebuild")

    def __init__(
        self,
        fn: Callable[..., Any],
        params: Any,
        given: list[Any] | None,
        rebuild: Callable[[list[Any]], Any],
        args: tuple[Any, ...],
    ) -> None:
        self.fn = fn
        self.params = params
        self.given = given
        self.rebuild = rebuild
        self.args = args

    def __call__(self, leaves: list[Any]) -> Any:
        return self.fn(self.params if leaves is self.given else self.rebuild(leaves), *self.args)


def loss_parts(
    fn: Callable[[list[Any]], Any], leaves: list[Any]
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``(target, arguments)`` with ``target(*arguments) == fn(leaves)``: for a :class:`LossCall`, the
    user's loss and what it gets; for any other function of the leaves, itself and ``(leaves,)``."""
    if type(fn) is LossCall:
        tree = fn.params if leaves is fn.given else fn.rebuild(leaves)
        return fn.fn, (tree, *fn.args)
    return fn, (leaves,)
