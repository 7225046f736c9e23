"""Pinning every framework to a fixed number of CPU threads, before any of them is imported.

The benchmark machines have few cores shared with other jobs; a framework whose worker threads wait
for a descheduled sibling turns a 1 ms call into an 80 ms one now and then. One thread each makes
the rounds comparable; ``--threads`` changes it.
"""

from __future__ import annotations

import os
import sys

FRAMEWORK_MODULES = ("torch", "tensorflow", "jax")


def limit_threads(threads: int) -> dict[str, str]:
    """Set the environment variables that size PyTorch's, TensorFlow's and XLA's thread pools.

    Must run before the frameworks are imported; child processes inherit the variables.

    Returns:
        the variables set (for the report).

    Raises:
        RuntimeError: a framework is already imported, so the limit would not apply to it.
    """
    imported = [name for name in FRAMEWORK_MODULES if name in sys.modules]
    if imported:
        raise RuntimeError(f"limit_threads must run before importing {', '.join(imported)}")
    count = str(threads)
    variables = {
        "OMP_NUM_THREADS": count,
        "MKL_NUM_THREADS": count,
        "TF_NUM_INTRAOP_THREADS": count,
        "TF_NUM_INTEROP_THREADS": count,
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={count}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    os.environ.update(variables)
    return variables
