"""The GPU table: the MLP, transformer and compiled-path cases on PyTorch and JAX, on the first GPU.

Runs only where a framework sees a GPU (``torch.cuda.is_available()``, ``jax.devices("gpu")``);
elsewhere it returns no rows and the page says that the GPU was not measured. Every timed call waits
for the device (``torch.cuda.synchronize``, ``block_until_ready``) before the clock is read. Case
titles start with ``GPU:`` so that the report puts them in their own table.

Example:
    >>> from benchmarks import gpu
    >>> isinstance(gpu.gpu_backends(), list)
    True
"""

from __future__ import annotations

import importlib
from dataclasses import replace

from benchmarks import compiled, eager
from benchmarks._results import Result
from benchmarks.workloads import build, is_installed

PREFIX = "GPU: "
#: The transformer at a size worth a GPU (the CPU table's batch 4 is launch-bound there).
GPU_TRANSFORMER_BATCH = 32


def gpu_backends() -> list[str]:
    """The installed frameworks (of PyTorch and JAX) that see a GPU here."""
    found = []
    if is_installed("torch") and importlib.import_module("torch").cuda.is_available():
        found.append("torch")
    if is_installed("jax"):
        jax = importlib.import_module("jax")
        try:
            if jax.devices("gpu"):
                found.append("jax")
        except RuntimeError:  # JAX's answer when it has no GPU backend
            pass
    return found


def run(rounds: int = 31, backends: list[str] | None = None, device: str = "gpu") -> list[Result]:
    """The GPU rows for every framework of ``backends`` (default: those that see a GPU).

    ``device="cpu"`` runs the same pipeline on the CPU: what the smoke test checks on machines
    without a GPU.
    """
    selected = gpu_backends() if backends is None else backends
    by_problem = {case.problem: case for case in eager.cases()}
    transformer = replace(
        by_problem["transformer"],
        title=by_problem["transformer"].title.replace("batch 4", f"batch {GPU_TRANSFORMER_BATCH}"),
        sizes={"batch": GPU_TRANSFORMER_BATCH},
    )
    results = []
    for backend in selected:
        for case in (by_problem["mlp"], transformer):
            work = build(backend, case.problem, device=device, **case.sizes)
            row = eager.judge(case, work, eager.time_workload(work, rounds))
            results.append(replace(row, case=PREFIX + row.case))
        work = build(backend, "mlp", device=device)
        results.append(
            compiled.measure(work, PREFIX + "5. compiled: MLP 784-256-10, batch 128", rounds, judged=True)
        )
    return results
