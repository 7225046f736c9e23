"""``unigrad info``: what unigrad sees on this machine."""

from __future__ import annotations

import unigrad as ug
from unigrad.conformance.devices import available_devices


def _precision_settings(backend: str) -> str:
    if backend == "jax":
        import jax

        precision = jax.config.jax_default_matmul_precision or "default"
        return f"x64 {'on' if jax.config.jax_enable_x64 else 'off'}, matmul precision {precision}"
    if backend == "torch":
        import torch

        return (
            f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, "
            f"cuDNN TF32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}"
        )
    import tensorflow as tf

    enabled = tf.config.experimental.tensor_float_32_execution_enabled()
    return f"TF32 {'on' if enabled else 'off'}"


def run_info() -> int:
    """Print versions, devices and precision settings; exit code 0."""
    import numpy as np

    print(f"unigrad {ug.__version__} (numpy {np.__version__})")
    installed = ug.installed_backends()
    if not installed:
        print("no backend installed: pip install 'unigrad[all]'")
    for backend in ("torch", "tensorflow", "jax"):
        if backend not in installed:
            print(f"{backend:<11} not installed (pip install 'unigrad[{backend}]')")
            continue
        version = __import__(backend).__version__
        devices = ", ".join(available_devices(backend))
        print(f"{backend:<11} {version:<14} devices: {devices}; {_precision_settings(backend)}")
    return 0
