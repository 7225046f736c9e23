"""unigrad.testing: passes on agreeing losses, fails with a precise message on a planted difference."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import require

import unigrad as ug
from unigrad.testing import assert_grad_matches_reference, assert_grads_agree


def agreeing_loss(params, data):
    xp = ug.namespace(params)
    hidden = xp.tanh(xp.matmul(data["x"], params["w"]) + params["b"])
    return xp.mean(hidden**2)


def planted_loss(params, data):
    xp = ug.namespace(params)
    # behaves differently on one backend: the kind of bug assert_grads_agree exists to catch
    scale = 1.05 if xp.name == "jax" else 1.0
    return xp.sum(params["w"] ** 2 * data["x"]) * scale


@pytest.fixture
def problem() -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    return (
        {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)},
        {"x": rng.normal(size=(4, 3))},
    )


def test_agreeing_loss_passes_on_every_installed_backend(problem) -> None:
    if not ug.installed_backends():
        pytest.skip("no framework installed")
    params, data = problem
    report = assert_grads_agree(agreeing_loss, params, data)
    assert report.ok and report.comparisons
    assert {c.backend for c in report.comparisons} == set(ug.installed_backends())


def test_planted_disagreement_fails_with_leaf_values_and_tolerance() -> None:
    require("jax", "torch")
    params = {"w": np.array([1.0, -2.0])}
    data = {"x": np.array([1.0, 1.0])}
    with pytest.raises(AssertionError) as info:
        assert_grads_agree(planted_loss, params, data, backends=["torch", "jax"], dtypes=["float64"])
    message = str(info.value)
    assert "planted_loss" in message
    assert "jax/cpu/float64 vs finite differences (reference) fail" in message
    # worst element, both values, errors and tolerance
    assert re.search(r"params\['w'\]\[1\]: got -4\.2, want -4, abs err 0\.2, rel err 0\.05", message), message
    assert "(rtol 1e-06, atol 1e-08)" in message
    assert "torch/cpu/float64 vs jax/cpu/float64 (pairwise) fail" in message


def test_explicit_tolerances_are_used() -> None:
    require("jax", "torch")
    params, data = {"w": np.array([1.0, -2.0])}, {"x": np.array([1.0, 1.0])}
    report = assert_grads_agree(
        planted_loss, params, data, backends=["torch", "jax"], dtypes=["float64"], rtol=0.2
    )
    assert all(c.rtol >= 0.2 for c in report.comparisons)


def test_gradcheck_on_each_framework(backend: str) -> None:
    from frameworks import make

    params = {"w": make(backend, [[0.5, -1.0], [2.0, 0.1], [0.3, 0.3]], "float64"),
              "b": make(backend, [0.1, -0.2], "float64")}  # fmt: skip
    data = {"x": make(backend, np.random.default_rng(1).normal(size=(4, 3)), "float64")}
    assert_grad_matches_reference(agreeing_loss, params, data)


def test_gradcheck_catches_a_wrong_gradient() -> None:
    require("torch")
    import torch

    class WrongSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # should be 2x

    def loss(p):
        return WrongSquare.apply(p["x"]).sum() if isinstance(p["x"], torch.Tensor) else (p["x"] ** 2).sum()

    with pytest.raises(AssertionError, match=r"params\['x'\]\[\d\]: got .* rel err 0\.5"):
        assert_grad_matches_reference(loss, {"x": torch.tensor([1.0, 2.0], dtype=torch.float64)})
