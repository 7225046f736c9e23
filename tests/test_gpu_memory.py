"""Sharing a GPU: JAX and TensorFlow allocate on demand in workers and when unigrad imports them, the
conformance pool bounds its workers per GPU, and running out of device memory says so (docs/gpu.md).

Everything here runs without a GPU: the variables are set always, the GPU count is injected, and the
out-of-memory messages come from fake workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any

import pytest
from conftest import require

from unigrad.backends._gpu_memory import USER_SETTINGS, before_import, share_gpu_memory
from unigrad.conformance import pool
from unigrad.conformance.pool import (
    GPU_WORKERS_PER_DEVICE,
    OUT_OF_MEMORY_PREFIX,
    WorkerPool,
    default_workers,
    explain_out_of_memory,
    visible_gpu_count,
    worker_environment,
)
from unigrad.distributed._launch import _environment

MEMORY_VARIABLES = sorted({name for names in USER_SETTINGS.values() for name in names})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No GPU memory variable set, as on a fresh machine."""
    for name in MEMORY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- the workers' environment ------------------------------------------------------------------------


def test_conformance_workers_allocate_gpu_memory_on_demand(clean_env: pytest.MonkeyPatch) -> None:
    env = worker_environment(verbose=False, jobs=4)
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ  # the parent's own is untouched


def test_conformance_workers_keep_the_callers_memory_settings(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    clean_env.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    env = worker_environment(verbose=False)
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"


def test_a_chosen_fraction_means_the_caller_wants_preallocation(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", ".2")
    clean_env.setenv("TF_GPU_ALLOCATOR", "cuda_malloc_async")
    env = worker_environment(verbose=False)
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in env
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in env
    assert share_gpu_memory({"XLA_CLIENT_MEM_FRACTION": ".2"}) == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}


@pytest.mark.parametrize(
    ("backend", "launch"), [("jax", "processes"), ("tensorflow", "devices"), ("torch", "processes")]
)
def test_data_parallel_workers_allocate_gpu_memory_on_demand(
    clean_env: pytest.MonkeyPatch, backend: str, launch: str
) -> None:
    env = _environment(backend, launch, 2, 1, [12345, 12346])
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    clean_env.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    assert _environment(backend, launch, 2, 1, [12345, 12346])["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"


# -- when unigrad is the one importing JAX or TensorFlow -----------------------------------------------


def _run(script: str, **env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in MEMORY_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={**base, "JAX_PLATFORMS": "cpu", **env},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


IMPORT_THEN_JAX_GRAD = """
    import os, sys
    import torch
    import unigrad as ug
    print(os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"), "jax" in sys.modules)
    grads = ug.grad(lambda p: (p ** 2).sum(), torch.ones(3), backend="jax")
    assert isinstance(grads, torch.Tensor) and grads.tolist() == [2.0, 2.0, 2.0]
    print(os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"))
"""


def test_jax_imported_by_unigrad_next_to_torch_allocates_on_demand() -> None:
    require("torch", "jax")
    # `import unigrad` sets nothing and imports no JAX; the jax backend's first use sets the variable.
    assert _run(IMPORT_THEN_JAX_GRAD) == ["None", "False", "false"]


def test_the_users_own_jax_setting_is_kept() -> None:
    require("torch", "jax")
    assert _run(IMPORT_THEN_JAX_GRAD, XLA_PYTHON_CLIENT_PREALLOCATE="true") == ["true", "False", "true"]


def test_jax_the_user_imported_is_left_as_it_is() -> None:
    require("torch", "jax")
    script = """
        import os
        import jax, torch
        import unigrad as ug
        ug.grad(lambda p: (p ** 2).sum(), torch.ones(3), backend="jax")
        print(os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"))
    """
    assert _run(script) == ["None"]


def test_before_import_sets_tensorflows_variable_only_before_its_first_import(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.delitem(sys.modules, "tensorflow", raising=False)
    before_import("torch")
    before_import("mlx.core")
    assert not set(MEMORY_VARIABLES) & set(os.environ)
    before_import("tensorflow")
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    clean_env.delenv("TF_FORCE_GPU_ALLOW_GROWTH")
    clean_env.setitem(sys.modules, "tensorflow", sys)  # imported already (by the user)
    before_import("tensorflow")
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in os.environ


# -- how many workers hold a GPU at once ---------------------------------------------------------------


def test_gpu_count_follows_the_driver_and_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "_installed_gpu_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpu_count() == 2
    for visible, count in [("0", 1), ("1,0", 2), ("0,1,2,3", 2), ("", 0), ("-1", 0), ("0,-1,1", 1)]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert visible_gpu_count() == count, visible
    monkeypatch.setattr(pool, "_installed_gpu_count", lambda: 0)  # no driver: no GPU, whatever it says
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert visible_gpu_count() == 0


def test_default_workers_are_bounded_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "default_jobs", lambda: 16)
    assert default_workers(gpus=0) == 16  # CPU only: one per core, as before
    assert default_workers(gpus=1) == GPU_WORKERS_PER_DEVICE
    assert default_workers(gpus=2) == 2 * GPU_WORKERS_PER_DEVICE
    assert default_workers(gpus=64) == 16
    assert WorkerPool({}, gpus=1).workers == GPU_WORKERS_PER_DEVICE
    assert WorkerPool({}, jobs=16, gpus=1).workers == 16  # --jobs given: kept
    monkeypatch.setattr(pool, "visible_gpu_count", lambda: 0)
    assert WorkerPool({}).workers == 16


def test_the_pool_runs_no_more_workers_than_the_gpu_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "default_jobs", lambda: 16)
    running, most = 0, 0
    lock = threading.Lock()

    def serve(self: WorkerPool, backend: str, schedule: Any, inbox: Any) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        while (name := schedule.next_case(backend)) is not None:
            inbox.put((backend, name, [], ""))
        with lock:
            running -= 1

    monkeypatch.setattr(WorkerPool, "_serve_one_worker", serve)
    results = []
    cases = [f"case{i}" for i in range(40)]
    WorkerPool({}, gpus=1).run(["torch", "jax", "tensorflow"], cases, lambda *item: results.append(item))
    assert len(results) == 3 * len(cases)
    assert 1 < most <= GPU_WORKERS_PER_DEVICE


# -- running out of device memory ----------------------------------------------------------------------

OUT_OF_MEMORY_ERRORS = [
    "RuntimeError: Unable to initialize backend 'cuda': RESOURCE_EXHAUSTED: CUDA_ERROR_OUT_OF_MEMORY",
    "XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 4096 bytes.",
    "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 139.81 GiB total)",
    "AcceleratorError: CUDA error: out of memory",
    "ResourceExhaustedError: OOM when allocating tensor with shape[1024,1024]",
]


@pytest.mark.parametrize("message", OUT_OF_MEMORY_ERRORS)
def test_out_of_memory_errors_say_so_and_what_to_set(clean_env: pytest.MonkeyPatch, message: str) -> None:
    explained = explain_out_of_memory(message)
    assert explained.startswith(OUT_OF_MEMORY_PREFIX)
    assert "--jobs" in explained and "XLA_PYTHON_CLIENT_PREALLOCATE=false" in explained
    assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in explained and explained.endswith(message)
    assert explain_out_of_memory(explained) == explained  # once only


@pytest.mark.parametrize(
    "message", ["ValueError: shapes (3,) and (4,) not aligned", "MemoryError: Unable to allocate 8 GiB"]
)
def test_other_errors_are_unchanged(message: str) -> None:
    assert explain_out_of_memory(message) == message


def test_out_of_memory_names_the_users_own_preallocation(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=true" in explain_out_of_memory(OUT_OF_MEMORY_ERRORS[0])


FAKE_WORKER = """
import json, sys
request = json.loads(sys.stdin.readline())
behaviour = {behaviour!r}
if behaviour == "refuse":
    message = "RuntimeError: Unable to initialize backend 'cuda': "
    message += "RESOURCE_EXHAUSTED: CUDA_ERROR_OUT_OF_MEMORY"
    print(json.dumps({{"event": "error", "message": message}}), flush=True)
    sys.exit(1)
print(json.dumps({{"event": "ready", "version": "0", "devices": ["cpu", "gpu"]}}), flush=True)
for line in sys.stdin:
    name = json.loads(line)["case"]
    if behaviour == "crash":
        print("E0000 cuda_driver.cc: failed to alloc: CUDA_ERROR_OUT_OF_MEMORY", file=sys.stderr)
        print("Fatal Python error: Aborted", file=sys.stderr, flush=True)
        sys.exit(134)
    records = [
        {{"device": "cpu", "dtype": "float32", "error": ""}},
        {{"device": "gpu", "dtype": "float32", "error": "OutOfMemoryError: CUDA out of memory. Tried"}},
    ]
    print(json.dumps({{"event": "result", "case": name, "outcomes": records}}), flush=True)
"""


def _fake_pool(monkeypatch: pytest.MonkeyPatch, behaviour: str) -> list[tuple[Any, ...]]:
    def start(self: WorkerPool, backend: str, log: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", FAKE_WORKER.format(behaviour=behaviour)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )

    monkeypatch.setattr(WorkerPool, "_start", start)
    results: list[tuple[Any, ...]] = []
    WorkerPool({}, jobs=1).run(["jax"], ["sum"], lambda *item: results.append(item))
    return results


def test_a_case_out_of_device_memory_is_an_explained_error(clean_env: pytest.MonkeyPatch) -> None:
    [(backend, name, records, error)] = _fake_pool(clean_env, "answer")
    assert (backend, name, error) == ("jax", "sum", "")
    cpu, gpu = records
    assert cpu["error"] == "" and "crashed" not in cpu
    # an err row (never a known difference or an unsupported dtype), saying why and what to do
    assert gpu["crashed"] is True and gpu["error"].startswith(OUT_OF_MEMORY_PREFIX)
    assert gpu["error"].endswith("OutOfMemoryError: CUDA out of memory. Tried")


def test_a_worker_that_cannot_start_for_lack_of_memory_says_so(clean_env: pytest.MonkeyPatch) -> None:
    [(_, _, records, error)] = _fake_pool(clean_env, "refuse")
    assert records is None
    assert error.startswith(f"jax could not start: {OUT_OF_MEMORY_PREFIX}")
    assert "RESOURCE_EXHAUSTED: CUDA_ERROR_OUT_OF_MEMORY" in error


def test_a_worker_crash_out_of_memory_says_so(clean_env: pytest.MonkeyPatch) -> None:
    [(_, _, records, error)] = _fake_pool(clean_env, "crash")
    assert records is None and error.startswith(OUT_OF_MEMORY_PREFIX)
    assert "crashed with exit code 134 while running sum" in error
    assert "log: E0000 cuda_driver.cc: failed to alloc: CUDA_ERROR_OUT_OF_MEMORY" in error


def test_a_crash_with_no_memory_line_is_reported_as_before() -> None:
    with tempfile.TemporaryFile() as log:
        log.write(b"something\nFatal Python error: Segmentation fault\n")
        process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], stdin=subprocess.PIPE)
        message = pool._died(process, log, "torch", "while running sum")  # type: ignore[arg-type]
    assert message.startswith("the torch worker process crashed with exit code 3 while running sum")
    assert "Fatal Python error: Segmentation fault" in message and OUT_OF_MEMORY_PREFIX not in message
