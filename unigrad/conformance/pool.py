"""A pool of conformance workers: one backend per process, several processes at once.

Two frameworks' native libraries never share an address space here (TensorFlow followed by triton,
which ``torch.compile`` imports, is a segmentation fault with the CUDA build of torch), and a native
crash costs one case on one backend, not the run: the case gets ``err`` rows naming the signal, and
a fresh worker takes the backend's remaining cases.

Scheduling: each backend has a queue of case names; up to ``jobs`` workers run at once, each serving
one backend case by case. A free slot starts a worker for the backend with the most cases left and
the fewest workers, so a slow backend is helped by the slots the fast ones free. Results arrive as
JSON lines (:mod:`unigrad.conformance.wire`) and are handed to ``on_result`` in the calling thread;
:mod:`unigrad.conformance.isolated` turns them into comparisons.

Sharing a GPU: by default ``jobs`` is the CPU cores, and on a machine with NVIDIA GPUs at most
:data:`GPU_WORKERS_PER_DEVICE` per GPU (every framework worker opens a context on each GPU it sees).
The workers' environment makes JAX and TensorFlow allocate device memory on demand
(:func:`~unigrad.backends._gpu_memory.share_gpu_memory`), and a worker that runs out of device memory
anyway gives ``err`` rows that say so and what to change (:func:`explain_out_of_memory`).

Example:
    >>> from unigrad.conformance.pool import default_jobs
    >>> default_jobs() >= 1
    True
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from unigrad.backends._gpu_memory import ON_DEMAND, USER_SETTINGS, share_gpu_memory
from unigrad.conformance.wire import dumps, loads

#: A free slot starts another worker for a backend that already has one only when at least this many
#: of its cases are waiting (a worker's start costs a framework import, up to seconds).
HELPER_MIN_CASES = 6

#: With NVIDIA GPUs, the default ``jobs`` is at most this many workers per GPU. Each worker holds a
#: CUDA context per GPU (a few hundred MB before any array) plus what its framework caches; four
#: fit a small GPU, and the cases are small, so more workers would mostly add contexts.
GPU_WORKERS_PER_DEVICE = 4

#: Lower-case pieces of a framework's error text that mean a device ran out of memory (XLA, the CUDA
#: driver, torch, TensorFlow).
OUT_OF_MEMORY_MARKERS = (
    "out of memory",
    "out_of_memory",
    "outofmemoryerror",
    "resource_exhausted",
    "resourceexhaustederror",
    "oom when allocating",
)
OUT_OF_MEMORY_PREFIX = "the device ran out of memory"

#: ``on_result(backend, case_name, records)``: ``records`` are the worker's outcome records, or
#: ``None`` with ``error`` set when the worker crashed or could not start.
ResultHandler = Callable[[str, str, list[dict[str, Any]] | None, str], None]


def default_jobs() -> int:
    """Workers to run at once: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def visible_gpu_count() -> int:
    """NVIDIA GPUs this process's workers would see, found without importing a framework.

    The driver lists its GPUs in ``/proc/driver/nvidia/gpus`` (else ``nvidia-smi -L`` is asked, as on
    WSL); ``CUDA_VISIBLE_DEVICES`` narrows them as CUDA does (up to its first invalid entry such as
    ``-1``). ``0`` on a machine without the NVIDIA driver, whatever ``CUDA_VISIBLE_DEVICES`` says.
    """
    installed = _installed_gpu_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not installed or visible is None:
        return installed
    count = 0
    for entry in visible.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        count += 1
    return min(count, installed)


def _installed_gpu_count() -> int:
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        pass
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return 0
    try:
        listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def default_workers(gpus: int | None = None) -> int:
    """Workers to run at once by default: :func:`default_jobs`, at most :data:`GPU_WORKERS_PER_DEVICE`
    per GPU when there are GPUs (``gpus``: how many; default :func:`visible_gpu_count`).

    Example:
        >>> default_workers(gpus=0) == default_jobs()
        True
        >>> default_workers(gpus=1) <= GPU_WORKERS_PER_DEVICE
        True
    """
    gpus = visible_gpu_count() if gpus is None else gpus
    jobs = default_jobs()
    return min(jobs, GPU_WORKERS_PER_DEVICE * gpus) if gpus > 0 else jobs


def is_out_of_memory(message: str) -> bool:
    """Whether a worker's error text or log says a device ran out of memory."""
    lowered = message.lower()
    return any(marker in lowered for marker in OUT_OF_MEMORY_MARKERS)


def explain_out_of_memory(message: str) -> str:
    """``message``, led by what to change when it says a device ran out of memory; else unchanged.

    Example:
        >>> explain_out_of_memory("ValueError: bad shape")
        'ValueError: bad shape'
        >>> explain_out_of_memory("RuntimeError: CUDA_ERROR_OUT_OF_MEMORY").startswith(OUT_OF_MEMORY_PREFIX)
        True
    """
    if message.startswith(OUT_OF_MEMORY_PREFIX) or not is_out_of_memory(message):
        return message
    return _out_of_memory_hint(message)


def _out_of_memory_hint(message: str) -> str:
    on_demand = " and ".join(f"{name}={value}" for name, value in ON_DEMAND.values())
    yours = [
        f"{name}={os.environ[name]}"
        for names in USER_SETTINGS.values()
        for name in names
        if name in os.environ and (name, os.environ[name]) not in ON_DEMAND.values()
    ]
    overridden = f"; this environment sets {', '.join(yours)}, which unigrad keeps" if yours else ""
    return (
        f"{OUT_OF_MEMORY_PREFIX}: the workers share the GPU, so run fewer at once (--jobs N) and let "
        f"JAX and TensorFlow allocate on demand ({on_demand}, set for the workers unless already "
        f"set{overridden}; see docs/gpu.md): {message}"
    )


def signal_name(returncode: int) -> str:
    """``'SIGSEGV (signal 11)'`` for a process killed by a signal, else ``'exit code N'``."""
    if returncode < 0:
        try:
            return f"{signal.Signals(-returncode).name} (signal {-returncode})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def compile_cache_dir() -> Path:
    """Where the workers keep JAX's persistent compilation cache: ``$XDG_CACHE_HOME/unigrad/jax``
    (``~/.cache/unigrad/jax`` by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "unigrad" / "jax"


def worker_environment(verbose: bool, *, jobs: int = 1, compile_cache: bool = False) -> dict[str, str]:
    """The workers' environment: the caller's, with framework logging quiet unless ``verbose``.

    Variables the caller has set are kept. ``jobs`` workers share the cores: each framework's
    thread pools get ``cores // jobs`` threads, so they do not fight over them. They may share GPUs
    too: JAX and TensorFlow allocate device memory on demand rather than reserving most of a GPU
    each (:func:`~unigrad.backends._gpu_memory.share_gpu_memory`; set always, harmless without a
    GPU, unless the caller configured that framework's memory). ``compile_cache``
    turns on JAX's persistent compilation cache (:func:`compile_cache_dir`): JAX compiles every
    operation on its first use with new shapes (~65 ms each on CPU, most of a cold run's time), and a
    later run reads them back.
    """
    env = dict(os.environ)
    if not verbose:
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's and XLA's C++ start-up lines
        env.setdefault("GRPC_VERBOSITY", "ERROR")
        env.setdefault("PYTHONWARNINGS", "ignore")
    threads = str(max(1, default_jobs() // max(1, jobs)))
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env.setdefault(name, threads)
    if compile_cache:
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(compile_cache_dir()))
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # default: only >1 s ones
    share_gpu_memory(env)
    return env


@dataclass
class _Schedule:
    """Case queues per backend and how many workers serve each; shared by the slot threads."""

    queues: dict[str, deque[str]]
    running: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_backend(self) -> str | None:
        with self.lock:
            # A second worker for a backend pays the framework's import again: only worth it when
            # enough of its cases are left.
            open_backends = [
                b
                for b, q in self.queues.items()
                if b not in self.failed and len(q) >= (HELPER_MIN_CASES if self.running.get(b) else 1)
            ]
            if not open_backends:
                return None
            backend = min(open_backends, key=lambda b: (self.running.get(b, 0), -len(self.queues[b])))
            self.running[backend] = self.running.get(backend, 0) + 1
            return backend

    def next_case(self, backend: str) -> str | None:
        with self.lock:
            cases = self.queues[backend]
            return cases.popleft() if cases and backend not in self.failed else None

    def done(self, backend: str) -> None:
        with self.lock:
            self.running[backend] -= 1

    def fail(self, backend: str, message: str) -> list[str]:
        """Mark ``backend`` as unable to start; returns the cases it will never run."""
        with self.lock:
            self.failed.setdefault(backend, message)
            left = list(self.queues[backend])
            self.queues[backend].clear()
            return left


@dataclass
class WorkerPool:
    """Runs case names on backends in worker processes (see the module docstring).

    Attributes:
        request: what every worker is told besides its backend (``devices``, ``dtypes``, ``seed``,
            ``user``).
        jobs: workers at once (``None``: :func:`default_workers`, one per core, at most
            :data:`GPU_WORKERS_PER_DEVICE` per GPU; a number given is kept as it is).
        gpus: GPUs the workers see (``None``: :func:`visible_gpu_count`); bounds the default ``jobs``.
        verbose: let the workers' stderr (framework logs) through to this process's stderr.
        compile_cache: keep JAX's compiled operations on disk between runs (see
            :func:`worker_environment`).
    """

    request: dict[str, Any]
    jobs: int | None = None
    gpus: int | None = None
    verbose: bool = False
    compile_cache: bool = True
    ready: dict[str, dict[str, Any]] = field(default_factory=dict)
    _workers: int = field(default=0, init=False, repr=False)

    def run(self, backends: Sequence[str], case_names: Sequence[str], on_result: ResultHandler) -> None:
        """Evaluate every case on every backend; ``on_result`` is called here, once per pair."""
        schedule = _Schedule({backend: deque(case_names) for backend in backends})
        inbox: queue.Queue[tuple[str, str, list[dict[str, Any]] | None, str] | None] = queue.Queue()
        slots = min(self.workers, len(backends) * max(1, len(case_names))) if case_names else 0
        threads = [
            threading.Thread(target=self._slot, args=(schedule, inbox), daemon=True) for _ in range(slots)
        ]
        for thread in threads:
            thread.start()
        finished = 0
        while finished < len(threads):
            item = inbox.get()
            if item is None:
                finished += 1
            else:
                on_result(*item)
        for thread in threads:
            thread.join()

    @property
    def workers(self) -> int:
        """Workers at once: ``jobs``, or :func:`default_workers` when it is ``None``."""
        if not self._workers:
            self._workers = self.jobs if self.jobs is not None else default_workers(self.gpus)
        return self._workers

    def _slot(self, schedule: _Schedule, inbox: queue.Queue[Any]) -> None:
        try:
            while (backend := schedule.next_backend()) is not None:
                try:
                    self._serve_one_worker(backend, schedule, inbox)
                finally:
                    schedule.done(backend)
        finally:
            inbox.put(None)

    def _start(self, backend: str, log: IO[bytes] | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "unigrad.conformance.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if self.verbose else log,
            text=True,
            env=worker_environment(self.verbose, jobs=self.workers, compile_cache=self.compile_cache),
        )

    def _serve_one_worker(self, backend: str, schedule: _Schedule, inbox: queue.Queue[Any]) -> None:
        with tempfile.TemporaryFile() as log:
            process = self._start(backend, log)
            assert process.stdin is not None and process.stdout is not None
            try:
                hello = _send(process, {**self.request, "backend": backend})
                if hello is None or hello.get("event") != "ready":
                    why = (hello or {}).get("message") or _died(process, log, backend, "while starting")
                    why = explain_out_of_memory(why)
                    for name in schedule.fail(backend, why):
                        inbox.put((backend, name, None, f"{backend} could not start: {why}"))
                    return
                self.ready.setdefault(backend, hello)
                while (name := schedule.next_case(backend)) is not None:
                    answer = _send(process, {"case": name})
                    if answer is None:
                        inbox.put(
                            (backend, name, None, _died(process, log, backend, f"while running {name}"))
                        )
                        return
                    inbox.put((backend, name, _out_of_memory_as_err(answer["outcomes"]), ""))
            finally:
                if process.stdin and not process.stdin.closed:
                    with contextlib.suppress(BrokenPipeError):
                        process.stdin.close()
                process.wait()


def _send(process: subprocess.Popen[str], message: dict[str, Any]) -> dict[str, Any] | None:
    """The worker's answer to ``message``, or ``None`` when it died before answering."""
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(dumps(message) + "\n")
        process.stdin.flush()
    except BrokenPipeError:
        return None
    line = process.stdout.readline()
    return loads(line) if line else None


def _out_of_memory_as_err(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Explain the records whose error is a device running out of memory, and mark them as crashes:
    the machine's limit, never the framework's answer (a known difference or an unsupported dtype)."""
    for record in records:
        if record.get("error") and is_out_of_memory(record["error"]):
            record["error"] = explain_out_of_memory(record["error"])
            record["crashed"] = True
    return records


def _died(process: subprocess.Popen[str], log: IO[bytes], backend: str, when: str) -> str:
    """What to report for a worker that ended without answering: the signal and the log's last line
    (its first out-of-memory line instead, if any, with what to change)."""
    with contextlib.suppress(BrokenPipeError, OSError):
        process.stdin.close()  # type: ignore[union-attr]
    returncode = process.wait()
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal Python error")]  # faulthandler's headline
    out_of_memory = [line for line in lines if is_out_of_memory(line)]
    last = (out_of_memory[:1] or fatal or lines or [""])[-1]
    detail = f"; log: {last[:160]}" if last else ""
    message = (
        f"the {backend} worker process crashed with {signal_name(returncode)} {when}{detail} "
        "(rerun with --verbose for the log)"
    )
    return _out_of_memory_hint(message) if out_of_memory else message
