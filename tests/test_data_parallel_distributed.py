"""Real multi-process data-parallel runs on localhost: torch (gloo), JAX (jax.distributed), TF (TF_CONFIG).

Marked ``distributed`` and ``slow`` (out of the default run): ``nox -s tests-distributed``, or
``pytest -m distributed tests/test_data_parallel_distributed.py``. Each run starts two processes that
import their framework (5 to 25 s each on two cores).
"""

from __future__ import annotations

import time

import pytest
from conftest import require
from data_parallel_losses import logistic_losses, logistic_problem, mlp_losses, mlp_problem

from unigrad.testing import assert_data_parallel_matches

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


@pytest.mark.parametrize(
    ("backend", "dtype", "jit", "examples"),
    [
        ("torch", "float64", False, 7),  # 4 + 3
        ("torch", "float32", True, 8),  # 5 + 3
        ("jax", "float64", False, 7),
        ("jax", "float64", True, 8),
        ("jax", "float32", True, 7),
        ("tensorflow", "float64", False, 7),
        ("tensorflow", "float32", True, 8),
    ],
)
def test_two_processes_equal_one_process(backend: str, dtype: str, jit: bool, examples: int) -> None:
    require(backend)
    params, batch = mlp_problem(dtype, examples=examples)
    start = time.perf_counter()
    results = assert_data_parallel_matches(
        mlp_losses, params, batch, backend=backend, world_size=2, launches=["processes"], jit=jit
    )
    seconds = time.perf_counter() - start
    print(
        f"{backend} 2 processes {dtype} jit={jit} shards {[r.examples for r in results]}: max rel error "
        f"{max(r.max_rel_error for r in results):.2e} in {seconds:.1f} s"
    )
    assert [r.examples for r in results] == ([4, 3] if examples == 7 else [5, 3])


def test_torch_three_processes_logistic() -> None:
    require("torch")
    params, batch = logistic_problem(examples=10)
    results = assert_data_parallel_matches(
        logistic_losses, params, batch, backend="torch", world_size=3, launches=["processes"]
    )
    assert sorted(r.examples for r in results) == [3, 3, 4]
