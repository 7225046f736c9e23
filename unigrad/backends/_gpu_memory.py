"""GPU memory for frameworks that share a device: allocate on demand instead of reserving most of it.

JAX reserves 75% of a GPU's memory when it first uses it, and TensorFlow maps nearly all of it, so a
second process, or another framework in the same process (torch holding the params), finds the
device full (``CUDA_ERROR_OUT_OF_MEMORY``). Each has an environment variable that makes it allocate
what it needs when it needs it instead; both are read when the framework first opens the GPU, so
setting them before that is enough. Torch needs none: its caching allocator already grows on demand.

Nothing here imports a framework. A variable (or any of the framework's memory variables in
:data:`USER_SETTINGS`) that is already set is the user's decision and is never changed.

Example:
    >>> from unigrad.backends._gpu_memory import share_gpu_memory
    >>> share_gpu_memory({})
    {'XLA_PYTHON_CLIENT_PREALLOCATE': 'false', 'TF_FORCE_GPU_ALLOW_GROWTH': 'true'}
    >>> share_gpu_memory({"XLA_PYTHON_CLIENT_MEM_FRACTION": ".5"})["TF_FORCE_GPU_ALLOW_GROWTH"]
    'true'
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

#: framework module -> (variable, value) that makes it allocate GPU memory on demand.
ON_DEMAND = {
    "jax": ("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),
    "tensorflow": ("TF_FORCE_GPU_ALLOW_GROWTH", "true"),
}

#: framework module -> the variables by which a user configures its GPU memory; when one is set,
#: unigrad sets nothing for that framework (a chosen fraction means "preallocate this much").
USER_SETTINGS = {
    "jax": (
        "XLA_PYTHON_CLIENT_PREALLOCATE",
        "XLA_PYTHON_CLIENT_MEM_FRACTION",
        "XLA_CLIENT_MEM_FRACTION",
        "XLA_PYTHON_CLIENT_ALLOCATOR",
    ),
    "tensorflow": ("TF_FORCE_GPU_ALLOW_GROWTH", "TF_GPU_ALLOCATOR"),
}


def share_gpu_memory(
    env: MutableMapping[str, str], frameworks: tuple[str, ...] = tuple(ON_DEMAND)
) -> dict[str, str]:
    """Set the on-demand variable of each of ``frameworks`` in ``env`` unless the user configured it.

    Args:
        env: an environment (``os.environ``, or a worker's copy of it); changed in place.
        frameworks: module names from :data:`ON_DEMAND` (default: all of them).

    Returns:
        The variables this call set, with their values.
    """
    added = {}
    for framework in frameworks:
        if framework in ON_DEMAND and not any(name in env for name in USER_SETTINGS[framework]):
            name, value = ON_DEMAND[framework]
            env[name] = value
            added[name] = value
    return added


def before_import(module: str) -> None:
    """Called by unigrad just before it imports ``module``'s framework: when unigrad is the first to
    import JAX or TensorFlow in this process, it allocates GPU memory on demand (see the module
    docstring); a framework the user imported already is left as the user set it up."""
    framework = module.partition(".")[0]
    if framework in ON_DEMAND and framework not in sys.modules:
        share_gpu_memory(os.environ, (framework,))
