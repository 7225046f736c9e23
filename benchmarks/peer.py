"""Case 8: the peer EagerPy (``eagerpy.value_and_grad_fn``) on the MLP, in the same rounds.

EagerPy differentiates one tensor, not a pytree, so for this case the MLP's parameters are packed in
one flat vector that the loss slices into ``w1, b1, w2, b2`` (views). Native, unigrad and EagerPy all
run that same loss, written with the framework's ops (EagerPy's wrapper is unwrapped with ``.raw``),
so the figures compare the wrappers, not different kernels.
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks._results import Result, fmt_ratio, fmt_time, pending
from benchmarks._timing import interleave, ratios
from benchmarks.workloads import BACKEND_MODULES, BACKENDS, Workload, _problems, is_installed

TITLE = "8. peer: EagerPy value_and_grad_fn vs unigrad, MLP packed in one vector"


def packed_mlp(backend: str, batch: int = 128) -> Workload:
    """The MLP of case 2 with its parameters packed in one float32 vector."""
    module = importlib.import_module(BACKEND_MODULES[backend])
    np_params, np_data = _problems.mlp(batch)
    layout = [(name, value.shape, value.size) for name, value in np_params.items()]
    flat = module.convert(np.concatenate([value.ravel() for value in np_params.values()]), trainable=True)
    data = module.convert(np_data, trainable=False)
    mlp_loss = module.make_loss("mlp")
    reshape = _reshaper(backend)

    def packed_loss(vector: Any, data: Any) -> Any:
        params, start = {}, 0
        for name, shape, size in layout:
            params[name] = reshape(vector[start : start + size], shape)
            start += size
        return mlp_loss(params, data)

    return Workload(
        backend, "mlp", flat, data, packed_loss, module.native_steps(packed_loss, flat, data), module.sync
    )


def _reshaper(backend: str) -> Callable[[Any, tuple[int, ...]], Any]:
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.reshape
    return lambda x, shape: x.reshape(shape)


def eagerpy_step(work: Workload) -> Callable[[], Any]:
    """``eagerpy.value_and_grad_fn`` on ``work`` (raw tensors in and out, synchronised)."""
    import eagerpy as ep

    def wrapped_loss(x: Any, data: Any) -> Any:
        return ep.astensor(work.loss_fn(x.raw, data))

    # EagerPy's PyTorch path clones x and calls requires_grad_ on the clone: x must not require grad.
    raw = work.params.detach() if hasattr(work.params, "detach") else work.params
    x = ep.astensor(raw)
    value_and_grad = ep.value_and_grad_fn(x, wrapped_loss)

    def step() -> Any:
        loss, grad = value_and_grad(x, work.data)
        return work.sync((loss.raw, grad.raw))

    return step


#: The frameworks EagerPy wraps.
EAGERPY_BACKENDS = ("torch", "tensorflow", "jax")


def run(backends: tuple[str, ...] = BACKENDS, *, rounds: int = 31, batch: int = 128) -> list[Result]:
    """Native, unigrad and EagerPy on the packed MLP, interleaved, per installed backend."""
    results = []
    for backend in backends:
        if not is_installed(backend):
            results.append(pending(TITLE, backend, f"{backend} not installed"))
            continue
        if not is_installed("eagerpy"):
            results.append(pending(TITLE, backend, "eagerpy not installed (pip install eagerpy)"))
            continue
        if backend not in EAGERPY_BACKENDS:
            results.append(pending(TITLE, backend, f"EagerPy has no {backend} backend"))
            continue
        work = packed_mlp(backend, batch)
        native_name, native = next(iter(work.natives.items()))
        times = interleave(
            {"native": native, "unigrad": work.unigrad_step, "eagerpy": eagerpy_step(work)}, rounds=rounds
        )
        ours = ratios(times["unigrad"], times["native"])
        theirs = ratios(times["eagerpy"], times["native"])
        versus = ratios(times["unigrad"], times["eagerpy"])
        results.append(
            Result(
                TITLE,
                backend,
                fmt_time(statistics.median(times["native"])),
                fmt_time(statistics.median(times["unigrad"])),
                fmt_ratio(ours),
                "",
                None,
                f"native: {native_name}; EagerPy {fmt_time(statistics.median(times['eagerpy']))}, "
                f"{fmt_ratio(theirs)} native; unigrad/EagerPy {versus.median:.3f}×",
                {
                    "native_s": statistics.median(times["native"]),
                    "unigrad_s": statistics.median(times["unigrad"]),
                    "eagerpy_s": statistics.median(times["eagerpy"]),
                    "ratio": ours.median,
                    "eagerpy_ratio": theirs.median,
                },
            )
        )
    return results
