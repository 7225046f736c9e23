"""Run a data-parallel step in worker processes on this machine, and compare it with one process.

:func:`run_local` is what ``unigrad.testing.assert_data_parallel_matches`` and
``unigrad check --world-size`` use: it writes a job file, starts the workers (see
:mod:`unigrad.distributed._worker`) on free localhost ports, waits for them, and returns one
:class:`WorkerResult` per worker, each compared leaf by leaf with rank 0's single-process result.

Launches:

- ``"devices"``: one process with ``world_size`` devices (JAX: ``--xla_force_host_platform_device_count``;
  TensorFlow: logical CPUs under ``MirroredStrategy``). Not for PyTorch, whose CPU is one device.
- ``"processes"``: ``world_size`` processes (PyTorch: gloo process group; JAX: ``jax.distributed``
  with a loopback coordinator; TensorFlow: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``), each
  holding a different number of examples.

Example:
    >>> from unigrad.distributed._launch import WorkerResult
    >>> WorkerResult("processes", worker=1, examples=3, loss_rel_error=1e-9,
    ...              leaf_rel_errors={"params['w']": 2e-7}).max_rel_error
    2e-07
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unigrad import _tree
from unigrad._errors import DistributedSetupError, UnknownBackendError
from unigrad.backends import canonical_name
from unigrad.backends._gpu_memory import share_gpu_memory
from unigrad.distributed._batch import uneven_sizes
from unigrad.distributed._job import importable_name, len_of, numpy_tree

#: The launches each backend supports, in the order they run by default.
LAUNCHES = {"torch": ("processes",), "jax": ("devices", "processes"), "tensorflow": ("devices", "processes")}


@dataclass
class WorkerResult:
    """One worker's result, compared with the single-process full-batch result.

    Attributes:
        launch: ``"devices"`` or ``"processes"``.
        worker: the worker's rank.
        examples: how many examples it held.
        loss_rel_error: ``|loss - reference| / |reference|``.
        leaf_rel_errors: per leaf path (``params['w']``), ``max|g - ref| / max|ref|``.
        worst: per leaf path, ``(index, value, reference)`` of the largest difference.
    """

    launch: str
    worker: int
    examples: int
    loss_rel_error: float
    leaf_rel_errors: dict[str, float] = field(default_factory=dict)
    worst: dict[str, tuple[tuple[int, ...], float, float]] = field(default_factory=dict)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error of the loss and every gradient leaf."""
        return max([self.loss_rel_error, *self.leaf_rel_errors.values()])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _split(batch: Any, sizes: list[int]) -> list[Any]:
    leaves, treedef = _tree.flatten(batch, "batch")
    bounds = np.cumsum([0, *sizes])
    return [
        treedef.unflatten(
            [leaf[a:b] if isinstance(leaf, np.ndarray) and leaf.ndim else leaf for leaf in leaves]
        )
        for a, b in itertools.pairwise(bounds)
    ]


def _environment(backend: str, launch: str, world_size: int, rank: int, ports: list[int]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("TF_CONFIG", None)
    share_gpu_memory(env)  # the workers share this machine's GPUs: JAX and TF allocate on demand
    if backend == "jax":
        count = world_size if launch == "devices" else 1
        env["XLA_FLAGS"] = (
            f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}".strip()
        )
        env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    if backend == "torch":
        env.update(
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ports[0]), RANK=str(rank), WORLD_SIZE=str(world_size)
        )
    if backend == "tensorflow" and launch == "processes":
        workers = [f"127.0.0.1:{port}" for port in ports]
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": rank}}
        )
    return env


def run_local(
    example_loss_fn: Callable[..., Any] | str,
    params: Any,
    batch: Any,
    *,
    backend: str,
    launch: str,
    world_size: int = 2,
    jit: bool = False,
    timeout: float = 300.0,
) -> list[WorkerResult]:
    """Run the data-parallel step in local workers and compare each with the single-process result.

    Raises:
        NotImportableError: ``example_loss_fn`` cannot be imported by the workers.
        DistributedSetupError: a worker failed or timed out (with its traceback or output).
    """
    cases = [(example_loss_fn, params, batch)]
    return run_local_cases(
        cases, backend=backend, launch=launch, world_size=world_size, jit=jit, timeout=timeout
    )[0]


def run_local_cases(
    cases: list[tuple[Callable[..., Any] | str, Any, Any]],
    *,
    backend: str,
    launch: str,
    world_size: int = 2,
    jit: bool = False,
    timeout: float = 300.0,
) -> list[list[WorkerResult]]:
    """:func:`run_local` for several ``(example_loss_fn, params, batch)`` cases in one set of workers
    (the frameworks start once); one list of worker results per case."""
    backend = canonical_name(backend)
    if launch not in LAUNCHES.get(backend, ()):
        raise UnknownBackendError(
            f"launch {launch!r} is not available on backend {backend!r}: choose from "
            f"{', '.join(LAUNCHES.get(backend, ())) or 'torch, jax, tensorflow'}"
        )
    processes = world_size if launch == "processes" else 1
    job_cases = []
    for example_loss_fn, params, batch in cases:
        params_np, batch_np = numpy_tree(params), numpy_tree(batch)
        shards = _split(batch_np, uneven_sizes(len_of(batch_np), processes))
        job_cases.append(
            {
                "loss": importable_name(example_loss_fn),
                "params": params_np,
                "batch": batch_np,
                "shards": shards,
            }
        )
    ports = [_free_port() for _ in range(processes)]
    job = {
        "backend": backend, "launch": launch, "world_size": world_size, "jit": jit, "cases": job_cases,
        "coordinator": f"127.0.0.1:{ports[0]}",
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="unigrad-dp-") as folder:
        job_path = os.path.join(folder, "job.pkl")
        with open(job_path, "wb") as file:
            pickle.dump(job, file)
        _run_workers(job_path, backend, launch, world_size, processes, ports, timeout)
        results = []
        for rank in range(processes):
            with open(os.path.join(folder, f"result{rank}.pkl"), "rb") as file:
                results.append(pickle.load(file)["cases"])
    return [
        _compare([worker[index] for worker in results], case["params"], launch)
        for index, case in enumerate(job_cases)
    ]


def _run_workers(
    job_path: str,
    backend: str,
    launch: str,
    world_size: int,
    processes: int,
    ports: list[int],
    timeout: float,
) -> None:
    folder = os.path.dirname(job_path)
    workers = []
    for rank in range(processes):
        log = open(os.path.join(folder, f"log{rank}.txt"), "wb")  # noqa: SIM115 - closed below
        command = [sys.executable, "-m", "unigrad.distributed._worker", job_path, str(rank)]
        env = _environment(backend, launch, world_size, rank, ports)
        workers.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    deadline = time.monotonic() + timeout
    exited_at: dict[int, float] = {}  # wall-clock time, comparable with a worker's own error_time
    first_failure: float | None = None
    timed_out = False
    while True:
        for rank, (proc, _) in enumerate(workers):
            if rank not in exited_at and proc.poll() is not None:
                exited_at[rank] = time.time()
                if proc.returncode != 0 and first_failure is None:
                    first_failure = time.monotonic()
        if len(exited_at) == processes:
            break
        # The others would wait for a failed worker in a collective until their own timeout; a short
        # grace lets the ones that noticed it exit by themselves and write their own errors.
        if first_failure is not None and time.monotonic() > first_failure + FAILURE_GRACE_S:
            break
        if time.monotonic() > deadline:
            timed_out = first_failure is None
            break
        time.sleep(0.05)
    killed = set()
    for rank, (proc, log) in enumerate(workers):
        if proc.poll() is None:
            proc.kill()
            killed.add(rank)
        proc.wait()
        log.close()
        exited_at.setdefault(rank, time.time())
    failures = [
        _read_failure(folder, rank, proc.returncode, rank in killed, exited_at[rank])
        for rank, (proc, _) in enumerate(workers)
        if proc.returncode != 0
    ]
    if failures:
        where = f"of {processes} ({backend}, launch {launch!r}, world size {world_size})"
        raise DistributedSetupError(_failure_report(failures, where, timeout if timed_out else None))


#: After the first worker fails, how long the others may take to exit on their own before they are killed.
FAILURE_GRACE_S = 2.0

#: A worker whose error is one of these failed because a peer left a collective (or the job), not first.
_CONSEQUENTIAL_TYPES = (
    "DistBackendError",
    "DistNetworkError",
    "UnavailableError",
    "CancelledError",
    "AbortedError",
)
_CONSEQUENTIAL_WORDS = (
    "closed by peer", "reset by peer", "broken pipe", "remote worker", "connection closed",
    "connection reset", "coordination service", "heartbeat", "collective ops is aborted", "socket closed",
)  # fmt: skip


@dataclass
class _Failure:
    """One worker that did not exit 0, as the launcher reports it."""

    rank: int
    returncode: int
    killed: bool  # by the launcher, after another worker failed or at the timeout
    time: float  # when it raised (its own record), else when the launcher saw it end
    error_type: str = ""  # empty when it wrote no error (a crash, or killed)
    message: str = ""
    frames: str = ""
    output: str = ""  # the end of its stdout and stderr

    @property
    def consequential(self) -> bool:
        """Whether this failure followed from another's: killed, or a collective's lost connection."""
        if self.killed:
            return True
        text = (self.message if self.error_type else self.output[-2000:]).lower()
        short_type = self.error_type.rpartition(".")[2]
        return short_type in _CONSEQUENTIAL_TYPES or any(word in text for word in _CONSEQUENTIAL_WORDS)

    def summary(self) -> str:
        """One line: what happened to this worker."""
        if self.error_type:
            line = (self.message.strip().splitlines() or [""])[0]
            line = line if len(line) <= 160 else f"{line[:157]}..."
            return f"{self.error_type}: {line}" if line else self.error_type
        if self.killed:
            return "killed by the launcher (it was still running)"
        last = (self.output.strip().splitlines() or ["(no output)"])[-1].strip()
        return f"exited with {self.returncode} without a result; its last output line: {last[:160]}"


def _read_failure(folder: str, rank: int, returncode: int, killed: bool, ended: float) -> _Failure:
    """What worker ``rank`` left in ``folder``: its error (``result{rank}.pkl``) and its output."""
    try:
        with open(os.path.join(folder, f"log{rank}.txt"), errors="replace") as file:
            output = file.read()[-3000:]
    except OSError:
        output = ""
    failure = _Failure(rank, returncode, killed, ended, output=output)
    try:
        with open(os.path.join(folder, f"result{rank}.pkl"), "rb") as file:
            result = pickle.load(file)
    except Exception:  # noqa: BLE001 - none, or unreadable: the worker's output tells what there is
        return failure
    if "error" in result:
        failure.killed = False  # it raised before the launcher stopped it
        failure.time = float(result.get("error_time", ended))
        failure.error_type = str(result.get("error_type", "Exception"))
        failure.message = str(result.get("error_message", ""))
        failure.frames = str(result.get("error_frames", "")) or str(result["error"])
    return failure


def _failure_report(failures: list[_Failure], where: str, timed_out_after: float | None) -> str:
    """The worker that failed first (its error and innermost frames), then one line for each other.

    First means: among the failures that did not follow from another's (see
    :attr:`_Failure.consequential`), the earliest; a failure that followed from another's comes first
    only when every failure did (then the earliest of those).
    """
    ordered = sorted(failures, key=lambda f: (f.consequential, f.time, f.rank))
    first, others = ordered[0], ordered[1:]
    failed = "failed first" if others else "failed"
    if timed_out_after is not None and first.killed:
        lines = [f"worker {first.rank} {where} timed out after {timed_out_after:g} s; the end of its output:"]
        lines.append(first.output.rstrip() or "(no output)")
    elif first.error_type:
        lines = [f"worker {first.rank} {where} {failed}, with {first.summary()}"]
        lines.append("Traceback (innermost frames):")
        lines.append(first.frames.rstrip())
        message = first.message if len(first.message) <= 3000 else f"{first.message[:3000]}..."
        lines.append(f"{first.error_type}: {message}" if message else first.error_type)
    else:
        lines = [f"worker {first.rank} {where} {failed}: {first.summary()}; the end of its output:"]
        lines.append(first.output.rstrip() or "(no output)")
    if others:
        lines.append("The other workers that failed, after it (likely in consequence):")
        lines.extend(f"  worker {other.rank}: {other.summary()}" for other in others)
    return "\n".join(lines)


def _compare(results: list[dict[str, Any]], params: Any, launch: str) -> list[WorkerResult]:
    reference = results[0]["reference"]
    paths = _tree.leaf_paths(params)
    ref_leaves = _tree.flatten(reference["grads"])[0]
    ref_loss = float(reference["loss"])
    compared = []
    for rank, result in enumerate(results):
        loss_error = abs(float(result["loss"]) - ref_loss) / max(abs(ref_loss), np.finfo(np.float64).tiny)
        worker = WorkerResult(launch, rank, int(result["examples"]), loss_error)
        for path, got, want in zip(paths, _tree.flatten(result["grads"])[0], ref_leaves, strict=True):
            got64, want64 = np.asarray(got, np.float64), np.asarray(want, np.float64)
            diff = np.abs(got64 - want64)
            scale = max(float(np.max(np.abs(want64), initial=0.0)), np.finfo(np.float64).tiny)
            worker.leaf_rel_errors[path] = float(np.max(diff, initial=0.0)) / scale
            if diff.size:
                index = np.unravel_index(int(np.argmax(diff)), diff.shape)
                worker.worst[path] = (tuple(int(i) for i in index), float(got64[index]), float(want64[index]))
        compared.append(worker)
    return compared
