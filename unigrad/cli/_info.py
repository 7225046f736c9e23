"""``unigrad info``: what unigrad sees on this machine, one backend per process.

Each backend is inspected in its own short-lived process (``python -m unigrad.cli._info BACKEND``,
answering one line of JSON), all at once: frameworks never share an address space, and their start-up
log lines stay out of the table unless ``--verbose``. Precision switches that only mean something on
a GPU (TF32) are shown only where the backend sees one.

Example:
    >>> from unigrad.cli._info import describe
    >>> describe("torch", {"version": "2.13.0", "devices": ["cpu"], "settings": ""})
    'torch       2.13.0         devices: cpu'
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import unigrad as ug
from unigrad.backends import framework_backends, get_adapter
from unigrad.conformance.devices import available_devices
from unigrad.conformance.pool import signal_name, worker_environment

BACKENDS = tuple(framework_backends())


def _settings(backend: str, devices: list[str]) -> str:
    """The precision settings that apply on ``devices``."""
    has_gpu = any(device.startswith("gpu") for device in devices)
    if backend == "jax":
        import jax

        precision = jax.config.jax_default_matmul_precision or "default"
        return f"x64 {'on' if jax.config.jax_enable_x64 else 'off'}, matmul precision {precision}"
    if backend not in ("torch", "tensorflow"):  # a newer backend describes its own settings
        return get_adapter(backend).settings(devices)
    if not has_gpu:  # TF32 is a GPU (Ampere and newer) matmul mode: nothing to say on a CPU
        return ""
    if backend == "torch":
        import torch

        return (
            f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, "
            f"cuDNN TF32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}"
        )
    import tensorflow as tf

    return f"TF32 {'on' if tf.config.experimental.tensor_float_32_execution_enabled() else 'off'}"


def inspect(backend: str) -> dict[str, Any]:
    """Version, devices and precision settings of ``backend`` (imports it: run in a worker)."""
    devices = available_devices(backend)
    version = get_adapter(backend).version()
    return {"version": version, "devices": devices, "settings": _settings(backend, devices)}


def describe(backend: str, facts: dict[str, Any]) -> str:
    """One line of the table."""
    line = f"{backend:<11} {facts['version']:<14} devices: {', '.join(facts['devices'])}"
    return f"{line}; {facts['settings']}" if facts["settings"] else line


def _start(backend: str, verbose: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "unigrad.cli._info", backend],
        stdout=subprocess.PIPE,
        stderr=None if verbose else subprocess.DEVNULL,
        text=True,
        env=worker_environment(verbose),
    )


def run_info(verbose: bool = False) -> int:
    """Print versions, devices and precision settings; exit code 1 if a backend failed to start."""
    import numpy as np

    print(f"unigrad {ug.__version__} (numpy {np.__version__})")
    installed = ug.installed_backends()
    if not installed:
        print("no backend installed: pip install 'unigrad[all]'")
    failed = 0
    processes = {backend: _start(backend, verbose) for backend in BACKENDS if backend in installed}
    for backend in BACKENDS:
        if backend not in installed:
            print(f"{backend:<11} not installed (pip install 'unigrad[{backend}]')")
            continue
        process = processes[backend]
        output, _ = process.communicate()
        lines = output.strip().splitlines()
        if process.returncode != 0 or not lines:
            how = signal_name(process.returncode)
            print(f"{backend:<11} failed to start ({how}); run `unigrad info --verbose` to see why")
            failed += 1
            continue
        print(describe(backend, json.loads(lines[-1])))
    return 1 if failed else 0


if __name__ == "__main__":
    print(json.dumps(inspect(sys.argv[1])))
