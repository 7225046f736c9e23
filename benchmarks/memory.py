"""Case 7: peak memory of one ``ug.grad`` on ~50M float32 parameters, and zero-copy conversions.

Peak RSS is read in fresh processes (one per measurement, native and unigrad alternating). On Linux
the high-water mark is reset through ``/proc/self/clear_refs`` just before the call and read from
``VmHWM`` after it, so the figure is the peak *during the call* (parameters, gradients, framework
runtime and all). ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is only the fallback: a child's
``ru_maxrss`` starts from its parent's high-water mark across fork and exec, so under a benchmark
process that already holds three frameworks it reports the parent's peak, not the child's.
The parameters are converted one leaf at a time so that building them peaks lower than the call.

Zero-copy is checked in this process by comparing data pointers.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from benchmarks._child import run_json
from benchmarks._results import Result, fmt_bytes, pending
from benchmarks.workloads import BACKENDS, is_installed

TARGET = "≤ 1.1×"
LIMIT = 1.1

_CHILD = """
import json, resource
from benchmarks.memory import child_measure
print(json.dumps(child_measure({backend!r}, {mode!r}, {rows}, {hidden})))
"""


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM, the peak resident set size (Linux 4.0+)
        return True
    except OSError:
        return False


def child_measure(backend: str, mode: str, rows: int, hidden: int) -> dict[str, Any]:
    """In a fresh process: build the big workload, run one native or unigrad gradient, report memory.

    Args:
        backend: the framework.
        mode: ``"native"`` (the backend's first native form) or ``"unigrad"`` (``ug.grad``).
        rows, hidden: the two weight matrices are ``rows x hidden`` and ``hidden x rows``.

    Returns:
        ``peak_kib`` (the process's peak), ``before_kib`` (RSS before the call), ``call_peak_kib``
        (peak during the call, or ``None`` where it cannot be reset) and ``params``.
    """
    import importlib
    import resource

    from benchmarks.workloads import BACKEND_MODULES, Workload, _problems

    module = importlib.import_module(BACKEND_MODULES[backend])
    np_params, np_data = _problems.big(rows, hidden)
    count = _problems.parameter_count(np_params)
    params = {}
    for name in list(np_params):
        params[name] = module.convert({name: np_params.pop(name)}, trainable=True)[name]
    data = module.convert(np_data, trainable=False)
    loss_fn = module.make_loss("big")
    work = Workload(
        backend, "big", params, data, loss_fn, module.native_steps(loss_fn, params, data), module.sync
    )
    if mode == "unigrad":
        import unigrad as ug

        def step() -> Any:
            return work.sync(ug.grad(work.loss_fn, work.params, work.data))
    else:
        step = next(iter(work.natives.values()))
    build_peak = _status_kib("VmHWM")
    before = _status_kib("VmRSS")
    resettable = _reset_peak()
    result = step()
    call_peak = _status_kib("VmHWM") if resettable else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    del result
    if call_peak is not None and build_peak is not None:
        peak = max(build_peak, call_peak)  # this process's own peak (see the module docstring)
    return {"peak_kib": peak, "before_kib": before, "call_peak_kib": call_peak, "params": count}


def peak_rss(
    backends: tuple[str, ...] = BACKENDS, *, repeats: int = 3, rows: int = 4096, hidden: int = 6144
) -> list[Result]:
    """Peak RSS of native vs unigrad, ``repeats`` fresh processes each, alternating."""
    title = f"7. peak RSS during one gradient of {2 * rows * hidden / 1e6:.1f}M float32 params"
    results = []
    for backend in backends:
        if not is_installed(backend):
            results.append(pending(title, backend, f"{backend} not installed", TARGET))
            continue
        runs: dict[str, list[dict[str, Any]]] = {"native": [], "unigrad": []}
        for index in range(repeats):
            order = ("native", "unigrad") if index % 2 == 0 else ("unigrad", "native")
            for mode in order:
                code = _CHILD.format(backend=backend, mode=mode, rows=rows, hidden=hidden)
                runs[mode].append(run_json(code))
        peak = {
            mode: statistics.median(r["call_peak_kib"] or r["peak_kib"] for r in runs[mode]) * 1024
            for mode in runs
        }
        growth = {
            mode: statistics.median(
                (r["call_peak_kib"] if r["call_peak_kib"] is not None else r["peak_kib"]) - r["before_kib"]
                for r in runs[mode]
            )
            * 1024
            for mode in runs
        }
        ratio = peak["unigrad"] / peak["native"]
        params_bytes = runs["native"][0]["params"] * 4
        results.append(
            Result(
                title,
                backend,
                fmt_bytes(peak["native"]),
                fmt_bytes(peak["unigrad"]),
                f"{ratio:.3f}× (median of {repeats} processes each)",
                TARGET,
                ratio <= LIMIT,
                f"growth during the call: native {fmt_bytes(growth['native'])}, unigrad "
                f"{fmt_bytes(growth['unigrad'])} (params {fmt_bytes(params_bytes)}; the gradients alone "
                f"are as large)",
                {
                    "native_bytes": peak["native"],
                    "unigrad_bytes": peak["unigrad"],
                    "ratio": ratio,
                    "native_growth_bytes": growth["native"],
                    "unigrad_growth_bytes": growth["unigrad"],
                },
            )
        )
    return results


def aligned_array(size: int, alignment: int = 64) -> np.ndarray:
    """A float32 array whose data starts on an ``alignment``-byte boundary (what XLA and TF require
    to alias memory instead of copying)."""
    raw = np.empty(size * 4 + alignment, np.uint8)
    offset = (-raw.ctypes.data) % alignment
    array = raw[offset : offset + size * 4].view(np.float32)
    array[:] = 1.0
    return array


def data_pointer(x: Any) -> int:
    """The address of ``x``'s first element (NumPy, torch, JAX, or TensorFlow through DLPack)."""
    if isinstance(x, np.ndarray):
        return int(x.ctypes.data)
    module = type(x).__module__
    if module.startswith("torch"):
        return int(x.data_ptr())
    if hasattr(x, "unsafe_buffer_pointer"):
        return int(x.unsafe_buffer_pointer())
    if module.startswith("mlx"):  # MLX exposes no address: NumPy's DLPack import is a view of it
        return int(np.from_dlpack(x).ctypes.data)
    import tensorflow as tf
    import torch

    # TensorFlow exposes no address: torch.from_dlpack aliases the buffer and reports it.
    return int(torch.from_dlpack(tf.experimental.dlpack.to_dlpack(x)).data_ptr())


def _can_alias(backend: str, array: np.ndarray) -> bool:
    """Whether the framework has *some* zero-copy import of this aligned NumPy array."""
    if backend == "torch":
        import torch

        return data_pointer(torch.from_numpy(array)) == data_pointer(array)
    if backend == "jax":
        import jax

        return data_pointer(jax.device_put(array)) == data_pointer(array)
    if backend == "mlx":
        import mlx.core as mx

        return data_pointer(mx.array(array)) == data_pointer(array)
    import tensorflow as tf

    return data_pointer(tf.experimental.dlpack.from_dlpack(array.__dlpack__())) == data_pointer(array)


def zero_copy(backends: tuple[str, ...] = BACKENDS, size: int = 1 << 16) -> list[Result]:
    """Whether unigrad's NumPy<->framework conversions and its hot path copy parameters."""
    from benchmarks.workloads import build
    from unigrad.backends import get_adapter

    results = []
    for backend in backends:
        title_in = "7. zero-copy NumPy → framework (ug.grad(..., backend=) inputs)"
        title_out = "7. zero-copy framework → NumPy (gradients handed back)"
        title_hot = "7. no copy of native params in the hot path"
        if not is_installed(backend) or (backend == "tensorflow" and not is_installed("torch")):
            why = (
                f"{backend} not installed" if not is_installed(backend) else "needs torch to read TF pointers"
            )
            results += [pending(t, backend, why) for t in (title_in, title_out, title_hot)]
            continue
        adapter = get_adapter(backend)
        array = aligned_array(size)
        converted = adapter.from_numpy(array)
        shared_in = data_pointer(converted) == data_pointer(array)
        possible = _can_alias(backend, array)
        results.append(_copy_row(title_in, backend, shared_in, possible, "adapter.from_numpy", _BY_DESIGN_IN))
        # The path a gradient takes back to a NumPy parameter (CallPlan.restore_grads).
        numpy_adapter = get_adapter("numpy")
        back = numpy_adapter.match(numpy_adapter.from_foreign(converted, adapter), array)
        shared_out = data_pointer(back) == data_pointer(converted)
        results.append(
            _copy_row(title_out, backend, shared_out, None, "gradient handed back", _BY_DESIGN_OUT)
        )
        shared_hot, how = _hot_path_shares(build(backend, "mlp", batch=2))
        results.append(_copy_row(title_hot, backend, shared_hot, None, how, {}))
    return results


def _hot_path_shares(work: Any) -> tuple[bool, str]:
    """Whether the arrays the loss receives inside ``ug.grad`` alias the caller's params."""
    import unigrad as ug
    from unigrad._dispatch import plan_call

    seen: dict[str, Any] = {}

    def probe(params: dict[str, Any], data: Any = None) -> Any:
        seen.update(params)
        return work.loss_fn(params, data)

    ug.grad(probe, work.params, work.data)
    if work.backend == "torch":
        shared = all(seen[k].data_ptr() == v.data_ptr() for k, v in work.params.items())
        return shared, "loss sees detached aliases: same data_ptr as the params"
    if work.backend == "tensorflow":
        shared = all(seen[k] is v for k, v in work.params.items())
        return shared, "loss sees the params' own tensors"
    # JAX and MLX hand the loss tracers: check that the leaves given to the transformation are the
    # params themselves.
    inputs = plan_call(work.params, None).inputs
    shared = {id(x) for x in inputs} == {id(v) for v in work.params.values()}
    transformation = "jax.vjp" if work.backend == "jax" else "mx.value_and_grad"
    return shared, f"{transformation} gets the params' own arrays"


# Copies that are decisions, not misses: the reason is printed in the row.
_BY_DESIGN_IN = {
    "jax": "by design: JAX arrays are immutable and run asynchronously, so aliasing a writable NumPy "
    "buffer lets a later write to it change a JAX array (jax.device_put does alias large arrays; "
    "upstream calls that a bug, jax-ml/jax#37830)",
}
_BY_DESIGN_OUT = {
    "jax": "by design: JAX exports gradients to NumPy read-only, and unigrad hands back writable arrays "
    "(as torch's .numpy() is); the copy is one memcpy of the gradient",
    "tensorflow": "by design: TF's zero-copy exports (np.asarray, DLPack) are read-only, and unigrad hands "
    "back writable arrays (as torch's .numpy() is); the copy is one memcpy of the gradient",
    "mlx": "by design: np.asarray of an MLX array is a writable view of MLX's own buffer, which MLX "
    "treats as immutable; the copy is one memcpy of the gradient",
}


def _copy_row(
    title: str, backend: str, shared: bool, possible: bool | None, how: str, by_design: dict[str, str]
) -> Result:
    aligned_only = backend == "tensorflow" and title.startswith("7. zero-copy NumPy")
    if shared:
        met: bool | None = True
        note = f"{how}: shares memory"
        if aligned_only:
            note += " (64-byte-aligned arrays; TF aborts on less aligned buffers, so others are copied)"
    elif possible is False:
        met = None
        note = f"{how}: copies; the framework offers no zero-copy import of NumPy here"
    else:
        met = False
        note = f"{how}: copies; " + by_design.get(backend, "the framework could alias it")
    return Result(title, backend, "-", "shared" if shared else "copied", "-", "zero-copy", met, note)
