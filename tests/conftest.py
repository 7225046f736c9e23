"""Shared fixtures: a ``backend`` fixture over the installed frameworks, skipping missing ones."""

from __future__ import annotations

import numpy as np
import pytest

from unigrad.backends import BACKENDS, framework_backends, module_available

FRAMEWORK_BACKENDS = tuple(framework_backends())


def is_installed(backend: str) -> bool:
    """Whether a backend's framework (or any other module) can be imported; never imports it."""
    return module_available(BACKENDS[backend].module if backend in BACKENDS else backend)


def skip_reason(backend: str) -> str:
    return f"{backend} is not installed (pip install 'unigrad[{backend}]')"


if is_installed("triton") and is_installed("tensorflow"):
    # The CUDA build of torch ships triton, and `import tensorflow` followed by `import triton` (what
    # torch.compile does) is a segmentation fault. The tests run every framework in one process, so
    # they take the import order that works (docs/known-differences.md, "Troubleshooting").
    import triton  # noqa: F401

if is_installed("jax"):
    # float64 tests need JAX's 64-bit mode; the test process opts in explicitly, unigrad never does.
    import jax

    jax.config.update("jax_enable_x64", True)


@pytest.fixture(params=FRAMEWORK_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each differentiating backend, skipped with the reason when its framework is missing."""
    name = request.param
    if not is_installed(name):
        pytest.skip(skip_reason(name))
    return name


@pytest.fixture(params=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def require(*backends: str) -> None:
    """Skip the current test unless every named framework is installed."""
    for name in backends:
        if not is_installed(name):
            pytest.skip(skip_reason(name))


def count_conversions(monkeypatch: pytest.MonkeyPatch, backend: str) -> list[int]:
    """A list that grows by one each time ``backend``'s adapter converts a NumPy array from now on
    (its ``from_numpy``, still called through)."""
    from unigrad.backends import get_adapter

    adapter = type(get_adapter(backend))
    conversions: list[int] = []
    from_numpy = adapter.from_numpy
    monkeypatch.setattr(adapter, "from_numpy", lambda self, a: conversions.append(1) or from_numpy(self, a))
    return conversions
