"""pytest plugin (registered through the ``pytest11`` entry point as ``unigrad``).

Gives any test suite the shape SciPy's users know: a ``ug_backend`` fixture parametrised over the
backends (missing ones skipped with the reason shown by ``-rs``), a ``ug_device`` fixture, markers
for GPU-only and slow tests and for skipping backends with a reason, and a report-header line with
versions. Loading the plugin imports no framework.

Options:
    ``--unigrad-backends=torch,jax``  backends ``ug_backend`` runs over (default: all of them).
    ``--unigrad-devices=cpu,gpu``     devices ``ug_device`` runs over (default: ``cpu``).
    ``--unigrad-run-slow``            run tests marked ``unigrad_slow``.

Markers:
    ``@pytest.mark.unigrad_gpu``: needs a GPU on the backend under test (skipped otherwise).
    ``@pytest.mark.unigrad_slow``: skipped unless ``--unigrad-run-slow``.
    ``@pytest.mark.unigrad_skip_backends("tensorflow", reason="...")``: skip those backends.

Example (a test module of your library)::

    def test_my_loss_grad(ug_backend, ug_device):
        params = make_params(ug_backend, ug_device)
        grads = unigrad.grad(my_loss, params)
        ...
"""

from __future__ import annotations

import importlib.metadata

import pytest

import unigrad
from unigrad.backends import BACKENDS, framework_backends, is_installed

KNOWN_BACKENDS = tuple(framework_backends())


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("unigrad", "unigrad: gradients on every backend")
    group.addoption(
        "--unigrad-backends",
        default=",".join(KNOWN_BACKENDS),
        help=f"comma-separated backends for the ug_backend fixture (default: {','.join(KNOWN_BACKENDS)})",
    )
    group.addoption(
        "--unigrad-devices", default="cpu", help="comma-separated devices for ug_device (cpu, gpu)"
    )
    group.addoption("--unigrad-run-slow", action="store_true", help="run tests marked unigrad_slow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unigrad_gpu: needs a GPU on the backend under test")
    config.addinivalue_line("markers", "unigrad_slow: slow; runs only with --unigrad-run-slow")
    config.addinivalue_line(
        "markers", "unigrad_skip_backends(*names, reason): skip these backends for this test, saying why"
    )
    unknown = [b for b in _split(config.getoption("--unigrad-backends")) if b not in KNOWN_BACKENDS]
    if unknown:
        raise pytest.UsageError(
            f"--unigrad-backends: unknown backend(s) {', '.join(unknown)}; "
            f"choose from {', '.join(KNOWN_BACKENDS)}"
        )


def _version(backend: str) -> str | None:
    for distribution in BACKENDS[backend].distribution_names:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def pytest_report_header(config: pytest.Config) -> str:
    parts = []
    for backend in _split(config.getoption("--unigrad-backends")):
        version = _version(backend)
        parts.append(f"{backend} {version}" if version else f"{backend} (not installed)")
    devices = config.getoption("--unigrad-devices")
    return (
        # unigrad's own version, not its distribution's: a source tree on PYTHONPATH has none
        f"unigrad {unigrad.__version__}: {', '.join(parts)}; devices requested: {devices}"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ug_backend" in metafunc.fixturenames:
        backends = _split(metafunc.config.getoption("--unigrad-backends"))
        metafunc.parametrize("ug_backend", backends, indirect=True)
    if "ug_device" in metafunc.fixturenames:
        devices = _split(metafunc.config.getoption("--unigrad-devices"))
        metafunc.parametrize("ug_device", devices, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--unigrad-run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="unigrad_slow test: pass --unigrad-run-slow to run it")
    for item in items:
        if item.get_closest_marker("unigrad_slow"):
            item.add_marker(skip_slow)


def _has_gpu(backend: str) -> bool:
    from unigrad.conformance.devices import available_devices

    return any(device.startswith("gpu") for device in available_devices(backend))


@pytest.fixture
def ug_backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``'torch'``, ``'tensorflow'``, ``'jax'`` or ``'mlx'``; skipped if not
    installed."""
    backend = request.param
    if not is_installed(backend):
        pytest.skip(f"{backend} is not installed (pip install 'unigrad[{backend}]')")
    marker = request.node.get_closest_marker("unigrad_skip_backends")
    if marker is not None and backend in marker.args:
        pytest.skip(f"{backend} skipped by the test: {marker.kwargs.get('reason', 'no reason given')}")
    if request.node.get_closest_marker("unigrad_gpu") and not _has_gpu(backend):
        pytest.skip(f"unigrad_gpu test: {backend} sees no GPU")
    return backend


@pytest.fixture
def ug_device(request: pytest.FixtureRequest) -> str:
    """The device under test (``'cpu'``, ``'gpu'``); GPU skipped where the backend has none."""
    device = request.param
    if device.startswith("gpu"):
        backends = (
            [request.getfixturevalue("ug_backend")]
            if "ug_backend" in request.fixturenames
            else [b for b in KNOWN_BACKENDS if is_installed(b)]
        )
        if not any(_has_gpu(b) for b in backends):
            pytest.skip(f"no GPU visible to {', '.join(backends) or 'any installed backend'}")
    return device
