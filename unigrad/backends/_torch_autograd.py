"""Reverse mode on PyTorch without ``torch.autograd.grad``'s Python wrapper (see :func:`backward`),
and which tensors it differentiates: the params' own where they are parameters, else aliases
(:func:`autograd_inputs`).

Example:
    >>> import torch
    >>> from unigrad.backends._torch_autograd import backward
    >>> x = torch.tensor([1.0, 2.0]).requires_grad_()
    >>> backward((x ** 2).sum(), [x])
    (tensor([2., 4.]),)
"""

from __future__ import annotations

import contextvars
import logging
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import has_torch_function, has_torch_function_unary

from unigrad.backends._own_thread import passes

_UNRESOLVED: Any = object()
_DEBUG = logging.DEBUG
#: The function running the engine once it passed the check (_run_engine, or torch's own wrapper),
#: None where both failed.
_engine_backward: Callable[..., Any] | None = _UNRESOLVED
_graph = getattr(torch.autograd, "graph", None)
#: torch's wrapper of the engine call, and what it calls (private; None in a torch without them).
_WRAPPER: Callable[..., Any] | None = getattr(_graph, "_engine_run_backward", None)
_AUTOGRAD_LOG: logging.Logger | None = getattr(_graph, "log", None)
_ENGINE: Any = getattr(getattr(torch.autograd, "Variable", None), "_execution_engine", None)
_stash_in_thread: Any = getattr(torch._C, "_stash_obj_in_tls", None)
_remove_from_thread: Any = getattr(torch._C, "_remove_obj_from_tls", None)
#: The names that wrapper reads in the torch versions whose steps _run_engine repeats (2.13 to 2.15,
#: the same code): a wrapper reading any other name does something more, and is called as it is.
_WRAPPER_NAMES = frozenset(
    {
        "DEBUG",
        "Variable",
        "_C",
        "_execution_engine",
        "_register_logging_hooks_on_whole_graph",
        "_remove_obj_from_tls",
        "_stash_obj_in_tls",
        "contextvars",
        "copy_context",
        "getEffectiveLevel",
        "log",
        "logging",
        "run_backward",
        "torch",
    }
)


def backward(loss: Any, aliases: list[Any]) -> tuple[Any, ...]:
    """``torch.autograd.grad(loss, aliases, allow_unused=True)``: an unused alias's gradient is None.

    For a loss that the output check (``unigrad._loss``) accepted (one element, real floating) and
    plain tensors, what that call does reduces to seeding the loss with ones and running the engine;
    its Python wrapper (argument normalisation, ``_make_grads``) costs about as much host time as the
    rest of a small call, which a launch-bound GPU step shows in full. So the engine is called as the
    wrapper calls it (:func:`_run_engine`: the steps of torch's ``_engine_run_backward``, which keeps
    its ``TORCH_LOGS=autograd`` hooks and the context it hands the engine's device threads). Those
    are private: they are tried on a small graph once, and the public call is used where they are
    missing or differ, and for tensor subclasses that override torch functions (the public call
    dispatches those).
    """
    run = _engine_backward if _engine_backward is not _UNRESOLVED else _find_engine_backward()
    inputs = tuple(aliases)
    if run is None or has_torch_function_unary(loss) or has_torch_function(inputs):
        return torch.autograd.grad(loss, inputs, allow_unused=True)
    # the seed torch.autograd.grad makes for a one-element output (in _make_grads)
    seed = torch.ones_like(loss, memory_format=torch.preserve_format)
    grads: tuple[Any, ...] = run((loss,), (seed,), inputs)
    return grads


def _run_engine(outputs: tuple[Any, ...], seeds: tuple[Any, ...], inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """What :func:`_through_wrapper` does (torch 2.13 to 2.15), with the wrapper's logger level read
    through the logger's cache: the wrapper's own walk up four loggers, the packing of its ``*args``
    and ``**kwargs`` and its frame cost ~7 µs of a 0.2 ms step, caches cold (docs/design.md).
    Where ``TORCH_LOGS=autograd`` is on, the wrapper runs: it attaches its logging hooks."""
    if _AUTOGRAD_LOG.isEnabledFor(_DEBUG):  # type: ignore[union-attr]
        return _through_wrapper(outputs, seeds, inputs)
    # The caller's context, for the engine's device threads (torch.compile's configuration there).
    _stash_in_thread("context", contextvars.copy_context())
    try:
        grads: tuple[Any, ...] = _ENGINE.run_backward(
            outputs, seeds, False, False, inputs, True, accumulate_grad=False
        )
        return grads
    finally:
        _remove_from_thread("context")


def _through_wrapper(
    outputs: tuple[Any, ...], seeds: tuple[Any, ...], inputs: tuple[Any, ...]
) -> tuple[Any, ...]:
    """torch's ``_engine_run_backward`` with what ``torch.autograd.grad`` passes it: keep no graph,
    make none, allow unused inputs (their gradient is None), write no ``.grad``."""
    grads: tuple[Any, ...] = _WRAPPER(outputs, seeds, False, False, inputs, True, accumulate_grad=False)  # type: ignore[misc]
    return grads


def _find_engine_backward() -> Callable[..., Any] | None:
    """:func:`_run_engine` where torch's wrapper reads the names it is known by, else the wrapper
    itself, if it differentiates a small graph as ``torch.autograd.grad`` does (unused input: None;
    no ``.grad`` written); ``None`` where neither does.

    The check runs once, in a thread of its own: grad mode, inference mode and torch's function and
    dispatch modes are per thread, so none of the caller's sees its few CPU ops or changes them.
    """
    global _engine_backward
    candidates: list[Callable[..., Any]] = []
    if _WRAPPER is not None:
        known = frozenset(_WRAPPER.__code__.co_names) == _WRAPPER_NAMES
        candidates = [_run_engine, _through_wrapper] if known else [_through_wrapper]
    _engine_backward = None
    for run in candidates:

        def check(run: Callable[..., Any] = run) -> bool:
            x, unused = torch.ones(2, device="cpu").requires_grad_(), torch.ones(1, device="cpu")
            loss = (x * torch.tensor([2.0, 3.0], device="cpu")).sum()
            seed = torch.ones_like(loss, memory_format=torch.preserve_format)
            inputs = (x, unused.requires_grad_())
            got = run((loss,), (seed,), inputs)
            return len(got) == 2 and got[0].tolist() == [2.0, 3.0] and got[1] is None and x.grad is None

        if passes(check, "unigrad-torch-backward-check"):
            _engine_backward = run
            break
    return _engine_backward


def dense(grad: Any, alias: Any, leaf: Any) -> Any:
    """A dense (contiguous) gradient for ``leaf``: zeros where ``grad`` is None (an unused leaf, as
    ``materialize_grads=True`` makes them), a copy where it is not contiguous."""
    if grad is None:
        grad = torch.zeros_like(alias)
    return grad if grad.is_contiguous() else torch.empty_like(leaf).copy_(grad)


#: C-level per-tensor reads for map() over a call's leaves or gradients (no Python frame per item).
requires_grad = operator.attrgetter("requires_grad")
is_leaf = operator.attrgetter("is_leaf")
is_contiguous = torch.Tensor.is_contiguous


def autograd_inputs(leaves: list[Any]) -> list[Any]:
    """The tensors the loss is called on and differentiated with respect to.

    A leaf that is already one of autograd's leaves requiring grad (a parameter) is used as it is, as
    ``torch.autograd.grad(loss, params)`` uses it: the engine is asked not to accumulate, so its
    ``.grad`` stays untouched, and the detached alias every other leaf gets (about 0.3 µs a leaf, the
    largest per-leaf cost of a call) is not needed. A tensor that appears twice in the params gets
    aliases throughout, so that each occurrence has a gradient of its own, as in JAX.
    """
    if (
        all(map(requires_grad, leaves))
        and all(map(is_leaf, leaves))
        and (len(leaves) == 1 or len(set(map(id, leaves))) == len(leaves))
    ):
        # Parameters only, each once (the usual training step), asked at C level: the list itself,
        # so the loss is called on the params as passed (unigrad._api skips rebuilding them).
        return leaves
    inputs = [
        leaf if leaf.requires_grad and leaf.is_leaf else leaf.detach().requires_grad_() for leaf in leaves
    ]
    if len(inputs) > 1 and len(set(map(id, inputs))) < len(inputs):
        return [leaf.detach().requires_grad_() for leaf in leaves]
    return inputs  # at least one alias: every leaf used as it is was returned above


def differentiable(leaf: Any) -> Any:
    """An alias of ``leaf`` that requires grad; a copy for an inference tensor (made under
    ``torch.inference_mode()``), on which autograd can neither set ``requires_grad`` nor record ops.
    Must run outside inference mode, where a copy of an inference tensor is a normal tensor."""
    if leaf.is_inference():
        return leaf.clone().requires_grad_()
    return leaf.detach().requires_grad_()
