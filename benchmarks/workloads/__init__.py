"""Benchmark workloads: one problem on one backend, with its loss and its hand-written natives.

A :class:`Workload` holds framework arrays built from the NumPy problem of
:mod:`benchmarks.workloads._problems`, a loss written with the framework's own ops, and the native
ways to get ``(loss, grads)`` that unigrad is compared against. Importing this package imports no
framework: :func:`build` imports only the backend it is asked for.

Example:
    >>> from benchmarks.workloads import build
    >>> work = build("torch", "tiny", size=3)  # doctest: +SKIP
    >>> loss, grads = work.unigrad_step()  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import unigrad as ug  # here, not in unigrad_step: an import statement per call is ~1.4 µs of harness
from benchmarks.workloads import _problems

#: backend name -> the module that builds its workloads.
BACKEND_MODULES = {
    "torch": "benchmarks.workloads._torch",
    "tensorflow": "benchmarks.workloads._tensorflow",
    "jax": "benchmarks.workloads._jax",
    "mlx": "benchmarks.workloads._mlx",
}
BACKENDS = tuple(BACKEND_MODULES)
PROBLEMS = ("tiny", "mlp", "pytree", "transformer", "big")

Step = Callable[[], tuple[Any, Any]]


def is_installed(backend: str) -> bool:
    """Whether ``backend``'s framework (or any module) can be imported (without importing it)."""
    from unigrad.backends import BACKENDS, module_available

    return module_available(BACKENDS[backend].module if backend in BACKENDS else backend)


@dataclass
class Workload:
    """One problem on one backend.

    Attributes:
        backend: ``"torch"``, ``"tensorflow"``, ``"jax"`` or ``"mlx"``.
        problem: one of :data:`PROBLEMS`.
        params: framework arrays (a bare array for ``tiny``, a flat dict otherwise).
        data: framework arrays or ``None``.
        loss_fn: ``loss_fn(params, data=None)`` written with the framework's ops.
        natives: name -> a step returning ``(loss, grads)`` the hand-written native way, results
            ready (synchronised); the first is the form the brief names first.
        sync: blocks until a result is computed (JAX's async dispatch, a CUDA stream) and returns it.
        device: ``"cpu"`` or ``"gpu"``.
    """

    backend: str
    problem: str
    params: Any
    data: Any
    loss_fn: Callable[..., Any]
    natives: dict[str, Step]
    sync: Callable[[Any], Any]
    device: str = "cpu"
    #: The native compiled forms, where the backend's module gives them (see benchmarks.compiled).
    compiled_natives: Callable[[], dict[str, Step]] | None = None

    def unigrad_step(self) -> tuple[Any, Any]:
        """``ug.value_and_grad`` on this workload, synchronised like the natives."""
        return self.sync(ug.value_and_grad(self.loss_fn, self.params, self.data))


def build(backend: str, problem: str, *, device: str = "cpu", **sizes: Any) -> Workload:
    """The workload of ``problem`` (sized by ``sizes``, see ``_problems``) on ``backend``'s ``device``
    (``"cpu"``, or ``"gpu"`` for PyTorch and JAX).

    Raises:
        ModuleNotFoundError: the backend's framework is not installed.
        ValueError: unknown backend or problem.
    """
    if backend not in BACKEND_MODULES:
        raise ValueError(f"unknown backend {backend!r}: choose one of {BACKENDS}")
    if problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}: choose one of {PROBLEMS}")
    module = importlib.import_module(BACKEND_MODULES[backend])
    heads = sizes.get("heads", 4)
    np_params, np_data = getattr(_problems, problem)(**sizes)
    params = module.convert(np_params, trainable=True, device=device)
    data = None if np_data is None else module.convert(np_data, trainable=False, device=device)
    loss_fn = module.make_loss(problem, heads=heads)
    sync = functools.partial(module.sync, device=device)
    natives = module.native_steps(loss_fn, params, data)
    compiled_natives = getattr(module, "compiled_native_steps", None)
    if device != "cpu":  # the natives wait for the device too, or they would be timed asynchronously
        natives = {name: _synced(step, sync) for name, step in natives.items()}
    work = Workload(backend, problem, params, data, loss_fn, natives, sync, device)
    if compiled_natives is not None:  # a backend module may give its compiled natives itself
        work.compiled_natives = lambda: compiled_natives(loss_fn, params, data)
    return work


def _synced(step: Step, sync: Callable[[Any], Any]) -> Step:
    return lambda: sync(step())


def to_numpy_tree(tree: Any) -> Any:
    """A bare array or flat dict of framework arrays as float64 NumPy (for comparing gradients)."""

    def one(x: Any) -> np.ndarray:
        if hasattr(x, "detach"):
            x = x.detach().cpu()
        return np.asarray(x, dtype=np.float64)

    if isinstance(tree, dict):
        return {key: one(value) for key, value in tree.items()}
    return one(tree)
