"""The pytest plugin, driven with pytester the way a third-party test suite would use it."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from unigrad.backends import framework_backends, is_installed

pytest_plugins = ["pytester"]

INSTALLED = [b for b in framework_backends() if is_installed(b)]
MISSING = [b for b in framework_backends() if b not in INSTALLED]


@functools.cache
def _backends_with_gpu() -> frozenset[str]:
    """The installed backends that see a GPU, asked in a child process (importing every framework
    into the test process can crash it: TensorFlow, then torch)."""
    probe = (
        "import json, sys; from unigrad.conformance.devices import available_devices; "
        "gpu = [b for b in sys.argv[1:] if any(d.startswith('gpu') for d in available_devices(b))]; "
        "print(json.dumps(gpu))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *INSTALLED], capture_output=True, text=True, check=True
    )
    return frozenset(json.loads(out.stdout.splitlines()[-1]))


def _sees_gpu(backend: str) -> bool:
    return backend in _backends_with_gpu()


TEST_FILE = """
import numpy as np
import pytest
import unigrad as ug

def loss(p):
    xp = ug.namespace(p)
    return xp.sum(p["w"] ** 2)

def test_grad_on_every_backend(ug_backend, ug_device):
    params = {"w": np.array([1.0, 2.0], dtype=np.float32)}
    grads = ug.grad(loss, params, backend=ug_backend)
    np.testing.assert_allclose(grads["w"], [2.0, 4.0])

@pytest.mark.unigrad_gpu
def test_needs_gpu(ug_backend):
    pass

@pytest.mark.unigrad_slow
def test_slow():
    pass

@pytest.mark.unigrad_skip_backends("tensorflow", reason="no complex support here")
def test_skips_tf(ug_backend):
    assert ug_backend != "tensorflow"
"""


def _entry_point_installed() -> bool:
    return any(ep.value == "unigrad.pytest_plugin" for ep in entry_points(group="pytest11"))


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_third_party=TEST_FILE)
    # The plugin loads through its pytest11 entry point, as it will for any user who installs unigrad;
    # from a source tree on PYTHONPATH (the GPU machine, no network to install from) it is named.
    load = () if _entry_point_installed() else ("-p", "unigrad.pytest_plugin")
    return pytester.runpytest_subprocess("-rs", *load, *args)


def test_backends_parametrised_and_missing_ones_skipped_with_reason(pytester: pytest.Pytester) -> None:
    result = _run(pytester)
    outcomes = result.parseoutcomes()
    # each installed backend x cpu for test_grad; unigrad_gpu runs where the backend sees a GPU and is
    # skipped elsewhere; slow skipped; the skip marker skips tensorflow
    with_gpu = [b for b in INSTALLED if _sees_gpu(b)]
    expected = len(INSTALLED) + len([b for b in INSTALLED if b != "tensorflow"]) + len(with_gpu)
    assert outcomes.get("passed", 0) == expected
    result.stdout.fnmatch_lines(["*unigrad_slow test: pass --unigrad-run-slow to run it*"])
    if len(with_gpu) < len(INSTALLED):
        result.stdout.fnmatch_lines(["*sees no GPU*"])
    for backend in MISSING:
        # fnmatch reads [...] as a character class: match the extra's brackets literally with [[]
        result.stdout.fnmatch_lines([f"*{backend} is not installed (pip install 'unigrad[[]{backend}]')*"])
    if "tensorflow" in INSTALLED:
        result.stdout.fnmatch_lines(["*tensorflow skipped by the test: no complex support here*"])


def test_options_select_backends_and_devices(pytester: pytest.Pytester) -> None:
    if not INSTALLED:
        pytest.skip("no framework installed")
    chosen = INSTALLED[0]
    result = _run(pytester, f"--unigrad-backends={chosen}", "--unigrad-devices=cpu,gpu", "--unigrad-run-slow")
    outcomes = result.parseoutcomes()
    # cpu passes, gpu passes where the backend sees one and is skipped elsewhere; slow test now runs
    assert outcomes.get("passed", 0) >= 2
    if _sees_gpu(chosen):
        assert outcomes.get("passed", 0) >= 4  # test_grad and test_needs_gpu on the GPU too
    else:
        result.stdout.fnmatch_lines(["*no GPU visible to*"])


def test_header_lists_versions(pytester: pytest.Pytester) -> None:
    result = _run(pytester)
    result.stdout.fnmatch_lines(["unigrad *: torch *, tensorflow *, jax *; devices requested: cpu"])


def test_unknown_backend_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--unigrad-backends=mxnet")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend(s) mxnet*"])
