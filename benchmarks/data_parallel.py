"""``python -m benchmarks.data_parallel``: the data-parallel step against hand-written native steps.

For each engine, in the same worker processes and on the same shards, alternating rounds time:

- PyTorch, 2 processes with gloo: ``ug.data_parallel_value_and_grad_fn`` (eager) against a
  ``DistributedDataParallel`` module whose loss is scaled to the global mean;
- JAX, 2 forced host devices: the step with ``jit=True`` against ``jax.jit`` of ``value_and_grad``
  with the batch sharded over the same mesh;
- TensorFlow, 2 logical CPUs: the step with ``jit=True`` against a ``tf.function`` around
  ``strategy.run`` (per-replica tape, ``all_reduce`` SUM) on the same ``MirroredStrategy``.

Both contenders of an engine run in the same processes, one after the other in alternating order;
the ratio is taken per round (unigrad / native), and its median and quartiles are reported. The
section it writes in ``docs/benchmarks.md`` sits between two markers, replaced on each run.

Example:
    >>> from benchmarks.data_parallel import replace_section
    >>> replace_section("# page\\n", "## new\\n")
    '# page\\n\\n<!-- data-parallel:begin -->\\n## new\\n<!-- data-parallel:end -->\\n'
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._timing import median_interval

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- data-parallel:begin -->", "<!-- data-parallel:end -->"
EXAMPLES, FEATURES, HIDDEN = 1000, 32, 256
SHARDS = {"torch": [501, 499], "jax": [EXAMPLES], "tensorflow": [EXAMPLES]}  # per process
DESCRIPTION = {
    "torch": (
        "PyTorch, 2 processes (gloo), eager",
        "DistributedDataParallel, loss scaled to the global mean",
    ),
    "jax": ("JAX, 2 host devices, jit=True", "jax.jit(value_and_grad) over the same Mesh/NamedSharding"),
    "tensorflow": (
        "TensorFlow, 2 logical CPUs, jit=True",
        "tf.function(strategy.run) with tape and all_reduce",
    ),
}


def mlp_losses(params: Any, batch: Any) -> Any:
    """The benchmark's per-example loss (written with ug.namespace: the same on every engine)."""
    import unigrad as ug

    xp = ug.namespace(params)
    hidden = xp.tanh(xp.matmul(batch["x"], params["w1"]) + params["b1"])
    return (xp.matmul(hidden, params["w2"]) - batch["y"]) ** 2


def _data(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = {
        "w1": rng.normal(size=(FEATURES, HIDDEN)) / np.sqrt(FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(size=HIDDEN) / np.sqrt(HIDDEN),
    }
    batch = {"x": rng.normal(size=(EXAMPLES, FEATURES)), "y": rng.normal(size=EXAMPLES)}
    return {k: v.astype("float32") for k, v in params.items()}, {
        k: v.astype("float32") for k, v in batch.items()
    }


def _shard(batch: dict[str, np.ndarray], engine: str, rank: int) -> dict[str, np.ndarray]:
    bounds = np.cumsum([0, *SHARDS[engine]])
    return {k: v[bounds[rank] : bounds[rank + 1]] for k, v in batch.items()}


def _contenders_torch(rank: int) -> tuple[dict[str, Callable[[], Any]], float]:
    import torch
    import torch.distributed as dist

    import unigrad as ug

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    params_np, batch_np = _data()
    shard = {k: torch.from_numpy(v) for k, v in _shard(batch_np, "torch", rank).items()}

    class MLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1, self.b1, self.w2 = (
                torch.nn.Parameter(torch.from_numpy(params_np[k])) for k in ("w1", "b1", "w2")
            )

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return mlp_losses({"w1": self.w1, "b1": self.b1, "w2": self.w2}, batch)  # the same loss

    module = MLP()
    ddp = torch.nn.parallel.DistributedDataParallel(module)
    world = dist.get_world_size()
    params = {"w1": module.w1, "b1": module.b1, "w2": module.w2}
    step = ug.data_parallel_value_and_grad_fn(mlp_losses)

    def native() -> Any:
        for p in module.parameters():
            p.grad = None
        (ddp(shard).sum() * (world / EXAMPLES)).backward()  # DDP averages over processes
        return [p.grad for p in module.parameters()]

    def unigrad() -> Any:
        return step(params, shard)

    native_grads = native()
    _, grads = unigrad()
    diff = max(
        float((grads[k] - g).abs().max()) for k, g in zip(("w1", "b1", "w2"), native_grads, strict=True)
    )
    return {"unigrad": unigrad, "native": native}, diff


def _contenders_jax(rank: int) -> tuple[dict[str, Callable[[], Any]], float]:
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import unigrad as ug

    params_np, batch_np = _data()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated, sharded = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))
    params = {k: jax.device_put(v, replicated) for k, v in params_np.items()}

    @jax.jit
    def native_step(p: Any, b: Any) -> Any:
        return jax.value_and_grad(lambda q: mlp_losses(q, b).mean())(p)

    step = ug.data_parallel_value_and_grad_fn(mlp_losses, jit=True)

    def native() -> Any:
        b = {k: jax.device_put(v, sharded) for k, v in batch_np.items()}
        return jax.block_until_ready(native_step(params, b))

    def unigrad() -> Any:
        return jax.block_until_ready(step(params, batch_np))

    _, native_grads = native()
    _, grads = unigrad()
    diff = max(float(np.max(np.abs(np.asarray(grads[k]) - np.asarray(native_grads[k])))) for k in grads)
    return {"unigrad": unigrad, "native": native}, diff


def _contenders_tensorflow(rank: int) -> tuple[dict[str, Callable[[], Any]], float]:
    import tensorflow as tf

    import unigrad as ug

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    params_np, batch_np = _data()
    names = ("w1", "b1", "w2")
    params = {k: tf.constant(v) for k, v in params_np.items()}
    halves = np.array_split(np.arange(EXAMPLES), 2)

    def shards() -> Any:
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: {k: tf.constant(v[halves[ctx.replica_id_in_sync_group]]) for k, v in batch_np.items()}
        )

    def replica_step(p: Any, b: Any) -> Any:
        with tf.GradientTape() as tape:
            leaves = [p[k] for k in names]
            tape.watch(leaves)
            loss = tf.reduce_sum(mlp_losses(dict(zip(names, leaves, strict=True)), b)) / EXAMPLES
        grads = tape.gradient(loss, leaves)
        context = tf.distribute.get_replica_context()
        return context.all_reduce(tf.distribute.ReduceOp.SUM, [loss, *grads])

    native_step = tf.function(lambda p, b: strategy.run(replica_step, args=(p, b)), autograph=False)
    step = ug.data_parallel_value_and_grad_fn(mlp_losses, strategy=strategy, jit=True)

    def native() -> Any:
        return [strategy.experimental_local_results(v)[0] for v in native_step(params, shards())]

    def unigrad() -> Any:
        return step(params, batch_np)

    native_out = native()
    _, grads = unigrad()
    diff = max(float(tf.reduce_max(tf.abs(grads[k] - g))) for k, g in zip(names, native_out[1:], strict=True))
    return {"unigrad": unigrad, "native": native}, diff


def worker(engine: str, rank: int, rounds: int, inner: int) -> dict[str, Any]:
    """Time both contenders of ``engine`` in this process (and its peers, in lockstep)."""
    contenders, diff = {
        "torch": _contenders_torch,
        "jax": _contenders_jax,
        "tensorflow": _contenders_tensorflow,
    }[engine](rank)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    sync = _barrier(engine)
    for _ in range(3):  # warm-up: compile, allocate
        for fn in contenders.values():
            fn()
    for round_index in range(rounds):
        # Alternate the order, the same in every process (collectives keep them in step).
        for name in names if round_index % 2 == 0 else names[::-1]:
            fn = contenders[name]
            sync()  # every process starts the sample together: no skew from the previous one leaks in
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
    return {"times": times, "max_abs_diff": diff}


def _barrier(engine: str) -> Callable[[], None]:
    """What lines the processes up before each timed sample (one process: nothing)."""
    if engine == "torch":
        import torch.distributed as dist

        return dist.barrier
    return lambda: None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_engine(engine: str, rounds: int, inner: int) -> dict[str, Any]:
    """Start the engine's worker processes and return rank 0's timings."""
    processes = 2 if engine == "torch" else 1
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if engine == "jax":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(processes))
    procs = []
    for rank in range(processes):
        command = [
            sys.executable,
            "-m",
            "benchmarks.data_parallel",
            "--worker",
            engine,
            str(rank),
            str(rounds),
            str(inner),
        ]
        procs.append(
            subprocess.Popen(
                command,
                env={**env, "RANK": str(rank)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [proc.communicate(timeout=900) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"{engine} benchmark worker failed:\n{err[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def render(results: dict[str, dict[str, Any]], rounds: int, inner: int, note: str = "") -> str:
    """The page section: one row per engine (``note``: what to know about this run, if anything)."""
    lines = [
        "## Data-parallel step (`ug.data_parallel_value_and_grad_fn`)",
        "",
        f"Generated by `python -m benchmarks.data_parallel` ({rounds} alternating rounds of {inner} steps; "
        f"a {FEATURES}-{HIDDEN}-1 tanh MLP, float32, {EXAMPLES} examples in all). unigrad / native is the "
        "median of the per-round ratios of step times, with a 95% confidence interval for that median "
        "(distribution-free) and the rounds' quartiles; target ≤ 1.05×. |Δgrad| is the largest difference "
        "between the two contenders' gradients.",
        "",
        "| engine | native step | unigrad | native | unigrad / native | 95% CI | quartiles | \\|Δgrad\\| |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for engine, result in results.items():
        ours, native = result["times"]["unigrad"], result["times"]["native"]
        ratios = [a / b for a, b in zip(ours, native, strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        low, high = median_interval(ratios)
        title, baseline = DESCRIPTION[engine]
        lines.append(
            f"| {title} | {baseline} | {statistics.median(ours) * 1e3:.2f} ms | "
            f"{statistics.median(native) * 1e3:.2f} ms | {statistics.median(ratios):.3f}× | "
            f"{low:.3f}–{high:.3f} | {q1:.3f}–{q3:.3f} | {result['max_abs_diff']:.1e} |"
        )
    lines += [""] + ([note, ""] if note else [])
    lines += [
        "GPU rows (NCCL across several GPUs, JAX and TensorFlow on GPU meshes): not measured, no GPU "
        "was available for this run.",
        "",
    ]
    return "\n".join(lines)


def replace_section(page: str, section: str) -> str:
    """``page`` with the text between the markers replaced by ``section`` (appended when absent)."""
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1].lstrip("\n")
    return page.rstrip("\n") + "\n\n" + block


def main(argv: list[str] | None = None) -> int:
    """Run every engine (or be one worker, with ``--worker``) and write the section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_parallel")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "RANK", "ROUNDS", "INNER"))
    parser.add_argument("--engines", default="torch,jax,tensorflow")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--note", default="", help="a paragraph about this run, printed under the table")
    args = parser.parse_args(argv)
    if args.worker:
        engine, rank, rounds, inner = args.worker
        print(json.dumps(worker(engine, int(rank), int(rounds), int(inner))))
        return 0
    results = {}
    for engine in args.engines.split(","):
        start = time.perf_counter()
        results[engine] = run_engine(engine, args.rounds, args.inner)
        print(f"[bench] data-parallel {engine} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    section = render(results, args.rounds, args.inner, args.note)
    print(section)
    page = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(replace_section(page, section), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
