"""The transform cases: what a :class:`TransformCase` is, what each transformation computes, the catalogue.

Each case names one public transformation (``value_and_grad_fn(jit=True)``, ``jvp``, ``vjp``,
``jacobian``, ``hessian``, ``hvp``, ``per_example_grads``), a function and its inputs;
:meth:`TransformCase.compute` calls the transformation and names its results (``{"out": ...,
"tangent": ...}``). :mod:`unigrad.conformance.transforms` runs the cases and compares them.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.transform_cases import select_transform_cases
    >>> [case] = select_transform_cases(["transform_hessian_quadratic"])
    >>> params, data, _ = case.make_inputs(seed=0)
    >>> hessian = case.compute(params, data, None, "numpy")["hessian"]  # finite differences
    >>> bool(np.allclose(hessian["x"]["x"], data["A"], atol=1e-6))  # d2/dx2 of x^T A x / 2
    True
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance import ops
from unigrad.conformance.cases import CASES
from unigrad.conformance.cases import complex as complex_cases
from unigrad.conformance.transform_case import TransformCase, TransformInputs

__all__ = ["TRANSFORM_CASES", "TransformCase", "TransformInputs", "select_transform_cases"]

# -- the catalogue -------------------------------------------------------------------------------------


def _case_named(name: str) -> Any:
    (case,) = [c for c in CASES if c.name == name]
    return case


def _from_gradient_case(name: str) -> tuple[Callable[[Any, Any], Any], TransformInputs]:
    case = _case_named(name)

    def inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
        params, data = case.inputs(rng)
        return params, data, None

    return case.loss, inputs


def _layer(params: Any, data: Any) -> Any:
    """A vector-valued function with a pytree output: a tanh layer and a norm."""
    xp = namespace(params)
    hidden = xp.tanh(xp.matmul(data["x"], params["w"]) + params["b"])
    return {"hidden": hidden, "norm": xp.sum(params["w"] ** 2) + xp.sum(params["b"] ** 2)}


def _layer_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"w": rng.normal(size=(3, 2)) * 0.7, "b": rng.normal(size=2) * 0.1}


def _layer_tangent_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    params = _layer_params(rng)
    return params, {"x": rng.normal(size=(4, 3))}, _layer_params(rng)


def _layer_cotangent_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    params = _layer_params(rng)
    cotangent = {"hidden": rng.normal(size=(4, 2)), "norm": rng.normal(size=())}
    return params, {"x": rng.normal(size=(4, 3))}, cotangent


MLP_SIZES = (2, 3, 1)


def _mlp_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    (n_in, n_hidden, n_out) = MLP_SIZES
    return {
        "w0": rng.normal(size=(n_in, n_hidden)) * 0.8,
        "b0": rng.normal(size=n_hidden) * 0.1,
        "w1": rng.normal(size=(n_hidden, n_out)) * 0.8,
        "b1": rng.normal(size=n_out) * 0.1,
    }


def _mlp_loss(params: Any, data: Any) -> Any:
    """Mean squared error of a one-hidden-layer tanh MLP; works on a batch or on one example."""
    xp = namespace(params)
    hidden = xp.tanh(xp.matmul(data["x"], params["w0"]) + params["b0"])
    prediction = xp.matmul(hidden, params["w1"]) + params["b1"]
    return xp.mean((prediction - data["y"]) ** 2)


def _mlp_data(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=(size, MLP_SIZES[0])), "y": rng.normal(size=(size, MLP_SIZES[-1]))}


def _mlp_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    return _mlp_params(rng), _mlp_data(rng, 5), None


def _mlp_vector_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    return _mlp_params(rng), _mlp_data(rng, 5), _mlp_params(rng)


def _quadratic(params: Any, data: Any) -> Any:
    """``x^T A x / 2 + b^T x``: its Hessian is A's symmetric part."""
    xp = namespace(params)
    x = params["x"]
    return xp.sum(x * xp.matmul(data["A"], x)) / 2 + xp.sum(data["b"] * x)


def _quadratic_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    factor = rng.normal(size=(4, 4))
    return {"x": rng.normal(size=4)}, {"A": factor @ factor.T + np.eye(4), "b": rng.normal(size=4)}, None


def _linear_regression_example(params: Any, example: Any) -> Any:
    xp = namespace(params)
    residual = xp.sum(example["x"] * params["w"]) + params["b"] - example["y"]
    return residual**2 / 2


def _linear_regression_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    params = {"w": rng.normal(size=3), "b": rng.normal(size=())}
    return params, {"x": rng.normal(size=(6, 3)), "y": rng.normal(size=6)}, None


TRANSFORM_CASES: list[TransformCase] = [
    TransformCase("transform_jit_mlp_tanh", "value_and_grad_fn", *_from_gradient_case("model_mlp_tanh")),
    TransformCase(
        "transform_jit_softmax_cross_entropy",
        "value_and_grad_fn",
        *_from_gradient_case("loss_softmax_cross_entropy"),
    ),
    TransformCase("transform_jvp_layer", "jvp", _layer, _layer_tangent_inputs),
    TransformCase("transform_vjp_layer", "vjp", _layer, _layer_cotangent_inputs),
    TransformCase("transform_jacobian_layer", "jacobian", _layer, _layer_tangent_inputs),
    TransformCase("transform_hessian_mlp", "hessian", _mlp_loss, _mlp_inputs),
    TransformCase("transform_hessian_quadratic", "hessian", _quadratic, _quadratic_inputs),
    TransformCase("transform_hvp_mlp", "hvp", _mlp_loss, _mlp_vector_inputs),
    TransformCase(
        "transform_per_example_linear_regression",
        "per_example_grads",
        _linear_regression_example,
        _linear_regression_inputs,
    ),
    TransformCase("transform_per_example_mlp", "per_example_grads", _mlp_loss, _mlp_inputs),
    # Complex params (docs/complex.md): float64/float32 mean complex128/complex64.
    TransformCase(
        "transform_jit_complex_linear_layer",
        "value_and_grad_fn",
        *_from_gradient_case("complex_linear_layer"),
        dtypes=complex_cases.COMPLEX_CASE_DTYPES,
    ),
    TransformCase(
        "transform_jvp_complex_layer",
        "jvp",
        complex_cases.layer_outputs,
        complex_cases.layer_tangent_inputs,
        dtypes=complex_cases.COMPLEX_CASE_DTYPES,
    ),
    TransformCase(
        "transform_vjp_complex_layer",
        "vjp",
        complex_cases.layer_outputs,
        complex_cases.layer_cotangent_inputs,
        dtypes=complex_cases.COMPLEX_CASE_DTYPES,
    ),
    TransformCase(
        "transform_jacobian_complex_layer",
        "jacobian",
        complex_cases.layer_outputs,
        complex_cases.layer_tangent_inputs,
        dtypes=complex_cases.COMPLEX_CASE_DTYPES,
    ),
    TransformCase(
        "transform_hvp_complex_phase_retrieval",
        "hvp",
        complex_cases.phase_retrieval_loss,
        complex_cases.phase_retrieval_vector_inputs,
        dtypes=complex_cases.COMPLEX_CASE_DTYPES,
    ),
]

# Forward mode and second order of every op of the table (unigrad.conformance.ops), tagged op.
TRANSFORM_CASES += ops.transform_cases()

_names = [case.name for case in TRANSFORM_CASES]
if len(set(_names)) != len(_names) or set(_names) & {case.name for case in CASES}:
    raise RuntimeError("transform case names must be unique across the whole catalogue")


def select_transform_cases(patterns: Iterable[str] | None = None) -> list[TransformCase]:
    """Transform cases whose name matches a pattern (exact or glob) or that carry it as a tag.

    ``None`` selects all of them. Unlike ``select_cases``, a pattern matching nothing is not an error
    here: the runner checks patterns against the whole catalogue.
    """
    if patterns is None:
        return list(TRANSFORM_CASES)
    patterns = list(patterns)
    return [
        case
        for case in TRANSFORM_CASES
        if any(fnmatch.fnmatchcase(case.name, pattern) or pattern in case.tags for pattern in patterns)
    ]
