"""One worker of a local data-parallel run: ``python -m unigrad.distributed._worker JOB RANK``.

Started by :mod:`unigrad.distributed._launch`. Reads the job (a pickle: the loss's import name, the
params and this worker's examples as NumPy, how to launch), sets up the framework's distributed
engine as a user's program would (``torch.distributed`` with gloo, ``jax.distributed.initialize``,
logical CPUs or ``MultiWorkerMirroredStrategy``), runs ``ug.data_parallel_value_and_grad_fn`` on its
examples and writes ``(loss, grads)`` as NumPy. Rank 0 also computes the single-process full-batch
result with ``ug.value_and_grad``, the reference every worker is compared with.

Example:
    >>> from unigrad.distributed._worker import float64_in
    >>> import numpy as np
    >>> float64_in({"w": np.zeros(2)}), float64_in([np.zeros(2, np.float32)])
    (True, False)
"""

from __future__ import annotations

import os
import pickle
import sys
import time
import traceback
from typing import Any

import numpy as np

import unigrad as ug
from unigrad import _tree
from unigrad.distributed._job import len_of, numpy_tree, resolve


def float64_in(tree: Any) -> bool:
    """Whether any leaf of ``tree`` is a float64 NumPy array (JAX then needs its 64-bit mode)."""
    return any(getattr(leaf, "dtype", None) == np.float64 for leaf in _tree.flatten(tree)[0])


def _setup(job: dict[str, Any], rank: int) -> dict[str, Any]:
    """Start the engine the way a user's program does; returns extra step options."""
    backend, launch, world = job["backend"], job["launch"], job["world_size"]
    if backend == "torch" and launch == "processes":
        import torch.distributed as dist

        dist.init_process_group("gloo", rank=rank, world_size=world)  # MASTER_ADDR/PORT from the env
    elif backend == "jax":
        import jax

        if float64_in([case["params"] for case in job["cases"]]):
            jax.config.update("jax_enable_x64", True)
        if launch == "processes":
            jax.distributed.initialize(job["coordinator"], num_processes=world, process_id=rank)
    elif backend == "tensorflow":
        import tensorflow as tf

        if launch == "devices":
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * world)
        else:  # TF_CONFIG is in the environment; the strategy must exist before any TensorFlow op
            return {"strategy": tf.distribute.MultiWorkerMirroredStrategy()}
    return {}


def run(job: dict[str, Any], rank: int) -> dict[str, Any]:
    """The worker's whole job (every case of it, one engine set-up); returns what it writes."""
    options = _setup(job, rank)
    backend, results = job["backend"], []
    for case in job["cases"]:
        example_loss_fn = resolve(case["loss"])
        params, shard = case["params"], case["shards"][rank]
        step = ug.data_parallel_value_and_grad_fn(example_loss_fn, backend=backend, jit=job["jit"], **options)
        loss, grads = step(params, shard)
        if job["jit"]:
            loss, grads = step(params, shard)  # the second call runs the compiled step as it is
        result = {"loss": numpy_tree(loss), "grads": numpy_tree(grads), "examples": len_of(shard)}
        if rank == 0:
            result["reference"] = _single_process(example_loss_fn, params, case["batch"], backend)
        results.append(result)
    if backend == "torch" and job["launch"] == "processes":
        import torch.distributed as dist

        dist.destroy_process_group()
    return {"cases": results}


def _single_process(example_loss_fn: Any, params: Any, batch: Any, backend: str) -> dict[str, Any]:
    """The reference: ``ug.value_and_grad`` of the mean loss over the whole batch, in this process."""

    def mean_loss(p: Any, b: Any) -> Any:
        losses = example_loss_fn(p, b)
        return ug.namespace(losses).mean(losses)

    loss, grads = ug.value_and_grad(mean_loss, params, batch, backend=backend)
    return {"loss": numpy_tree(loss), "grads": numpy_tree(grads)}


#: How many of the innermost traceback frames the launcher shows for the worker that failed first.
ERROR_FRAMES = 6


def main(argv: list[str]) -> int:
    """Run the job and write ``result{rank}.pkl`` beside it: the results, or the error with its time.

    The error's wall-clock time (``error_time``) lets the launcher tell the worker that failed first
    from the ones that failed because of it (a peer that left a collective: gloo's "Connection closed
    by peer"), which often raise too, and may be lower ranks.
    """
    job_path, rank = argv[0], int(argv[1])
    with open(job_path, "rb") as file:
        job = pickle.load(file)
    try:
        result = run(job, rank)
    except BaseException as err:  # noqa: BLE001 - reported to the launcher, which names the worker
        error_time = time.time()
        kind = type(err)
        frames = traceback.extract_tb(err.__traceback__)[-ERROR_FRAMES:]
        result = {
            "error": traceback.format_exc(),
            "error_time": error_time,
            "error_type": kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}",
            "error_message": str(err),
            "error_frames": "".join(traceback.format_list(frames)),
        }
    # Written whole, then renamed: a worker killed while writing leaves no half pickle to misread.
    path = os.path.join(os.path.dirname(job_path), f"result{rank}.pkl")
    with open(f"{path}.part", "wb") as file:
        pickle.dump(result, file)
    os.replace(f"{path}.part", path)
    if "error" in result:
        # Exit now: the frameworks' exit handlers wait for the peers (jax.distributed's shutdown
        # barrier), and the peers wait in a collective for this worker, until the launcher's timeout.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
