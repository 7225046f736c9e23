"""Complex-parameter cases: real losses of complex parameters, none of them holomorphic.

Every backend must return ``∂L/∂Re z + i·∂L/∂Im z`` (see docs/complex.md); the reference takes
central differences on the real and imaginary parts separately. A holomorphic loss cannot be real
(unless constant), so these are the losses people actually write: squared magnitudes, imaginary or
real parts of linear maps, a complex linear layer with a real loss, unitarity, phase retrieval, a
quantum expectation value.

Dtype columns: ``float64`` means complex128 params and data (and float64 for real leaves of the
same tree), ``float32`` means complex64 (``unigrad.conformance.devices.place``); there is no complex
float16 or bfloat16 on every backend, so these cases run in those two columns only.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.cases.complex import CASES
    >>> case = next(c for c in CASES if c.name == "complex_abs_squared")
    >>> params, data = case.make_inputs(seed=0)
    >>> params["z"].dtype, case.dtypes
    (dtype('complex128'), ('float64', 'float32'))
    >>> len(CASES) >= 8
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad._namespace import namespace
from unigrad.conformance.case import Case

#: The dtype columns complex cases run in (complex128 and complex64).
COMPLEX_CASE_DTYPES = ("float64", "float32")


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Standard complex normal values (real and imaginary parts each N(0, 1/2))."""
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(2.0)


def _squared_magnitude(xp: Any, w: Any) -> Any:
    """``|w|²`` elementwise, as a real array: ``Re(w · conj(w))``."""
    return xp.real(w * xp.conj(w))


# -- losses ------------------------------------------------------------------------------------------


def _abs_squared(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(_squared_magnitude(xp, p["z"]))


def _imag_linear(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.imag(d["c"] * p["z"]))


def _abs_squared_plus_imag(p: Any, d: Any) -> Any:
    # The loss measured in issue 12: torch and TensorFlow return 2z + i·conj(c) … natively, JAX its conjugate.
    xp = namespace(p)
    return xp.sum(_squared_magnitude(xp, p["z"])) + xp.sum(xp.imag(d["c"] * p["z"]))


def _modulus(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(xp.abs(p["z"] - d["c"]))  # |z - c|, away from its kink at z = c


def _linear_layer(p: Any, d: Any) -> Any:
    xp = namespace(p)
    out = xp.matmul(d["x"], p["w"]) + p["b"]
    return xp.mean(_squared_magnitude(xp, out - d["y"]))


def _unitarity(p: Any, d: Any) -> Any:
    # ||UᴴU - I||²_F: the penalty that keeps a complex matrix near the unitary group.
    xp = namespace(p)
    u = p["u"]
    gram = xp.matmul(xp.conj(xp.matrix_transpose(u)), u)
    return xp.sum(_squared_magnitude(xp, gram - xp.eye(u.shape[-1], dtype=u.dtype)))


def _phase_retrieval(p: Any, d: Any) -> Any:
    # Intensity-only measurements y = |Az|² (phases lost): least squares on the intensities.
    xp = namespace(p)
    intensity = _squared_magnitude(xp, xp.matmul(d["a"], p["z"]))
    return xp.mean(xp.square(intensity - d["y"]))


def _expectation(p: Any, d: Any) -> Any:
    # A quantum state's energy <ψ|H|ψ> / <ψ|ψ> for a Hermitian H: real, invariant to ψ's global phase.
    xp = namespace(p)
    psi = p["psi"]
    energy = xp.sum(xp.real(xp.conj(psi) * xp.matmul(d["h"], psi)))
    return energy / xp.sum(_squared_magnitude(xp, psi))


def _mixed_tree(p: Any, d: Any) -> Any:
    # Real and complex leaves in one tree: a real gain on a complex signal (|gain·z - c|², part by
    # part: casting gain to complex would make TensorFlow's cast gradient warn that it drops an
    # imaginary part), and a real bias on the imaginary part.
    xp = namespace(p)
    z, c, gain = p["z"], d["c"], p["gain"]
    misfit = xp.square(gain * xp.real(z) - xp.real(c)) + xp.square(gain * xp.imag(z) - xp.imag(c))
    return xp.sum(misfit) + xp.sum(xp.sin(p["bias"]) * xp.imag(z))


def _exp_distance(p: Any, d: Any) -> Any:
    xp = namespace(p)
    return xp.sum(_squared_magnitude(xp, xp.exp(p["z"]) - d["c"]))


# -- inputs -------------------------------------------------------------------------------------------


def _z_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"z": _normal(rng, 4)}, None


def _z_and_c_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"z": _normal(rng, 2, 3)}, {"c": _normal(rng, 2, 3)}


def _modulus_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    c = _normal(rng, 5)
    offset = np.exp(1j * rng.uniform(0, 2 * np.pi, 5)) * rng.uniform(0.5, 1.5, 5)  # |z - c| >= 0.5
    return {"z": c + offset}, {"c": c}


def _linear_layer_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    x = _normal(rng, 8, 3)
    y = x @ _normal(rng, 3, 2) + 0.1 * _normal(rng, 8, 2)
    return {"w": _normal(rng, 3, 2), "b": _normal(rng, 2)}, {"x": x, "y": y}


def _unitarity_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    q, _ = np.linalg.qr(_normal(rng, 3, 3))
    return {"u": q + 0.2 * _normal(rng, 3, 3)}, None  # near, not on, the unitary group


def _phase_retrieval_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    a = _normal(rng, 6, 3)
    truth = _normal(rng, 3)
    return {"z": truth + 0.3 * _normal(rng, 3)}, {"a": a, "y": np.abs(a @ truth) ** 2}


def _expectation_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    m = _normal(rng, 4, 4)
    return {"psi": _normal(rng, 4)}, {"h": (m + m.conj().T) / 2}


def _mixed_tree_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    params = {"z": _normal(rng, 3), "gain": rng.normal(size=3), "bias": rng.normal(size=3)}
    return params, {"c": _normal(rng, 3)}


def _exp_inputs(rng: np.random.Generator) -> tuple[Any, Any]:
    return {"z": 0.5 * _normal(rng, 4)}, {"c": _normal(rng, 4)}


# -- for the transform cases (unigrad.conformance.transforms) ------------------------------------------


def layer_outputs(p: Any, d: Any) -> Any:
    """A real, vector-valued function of complex params (a pytree output): the power of each output
    of a complex linear layer, and the imaginary part of its total."""
    xp = namespace(p)
    out = xp.matmul(d["x"], p["w"]) + p["b"]
    return {"power": _squared_magnitude(xp, out), "imag_total": xp.sum(xp.imag(out))}


def _layer_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"w": _normal(rng, 3, 2), "b": _normal(rng, 2)}


def layer_tangent_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    """Params, data and complex tangents (directions in the real sense) for :func:`layer_outputs`."""
    return _layer_params(rng), {"x": _normal(rng, 4, 3)}, _layer_params(rng)


def layer_cotangent_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    """Params, data and a real cotangent for :func:`layer_outputs`."""
    cotangent = {"power": rng.normal(size=(4, 2)), "imag_total": rng.normal(size=())}
    return _layer_params(rng), {"x": _normal(rng, 4, 3)}, cotangent


def phase_retrieval_loss(p: Any, d: Any) -> Any:
    """The phase-retrieval loss of the catalogue (for ``hvp``)."""
    return _phase_retrieval(p, d)


def phase_retrieval_vector_inputs(rng: np.random.Generator) -> tuple[Any, Any, Any]:
    """Params, data and a complex vector for the Hessian-vector product of the phase-retrieval loss."""
    params, data = _phase_retrieval_inputs(rng)
    return params, data, {"z": _normal(rng, 3)}


def _case(name: str, loss: Any, inputs: Any) -> Case:
    return Case(f"complex_{name}", ("complex",), loss, inputs, dtypes=COMPLEX_CASE_DTYPES)


CASES: list[Case] = [
    _case("abs_squared", _abs_squared, _z_inputs),
    _case("imag_linear", _imag_linear, _z_and_c_inputs),
    _case("abs_squared_plus_imag", _abs_squared_plus_imag, _z_and_c_inputs),
    _case("modulus", _modulus, _modulus_inputs),
    _case("linear_layer", _linear_layer, _linear_layer_inputs),
    _case("unitarity", _unitarity, _unitarity_inputs),
    _case("phase_retrieval", _phase_retrieval, _phase_retrieval_inputs),
    _case("expectation_value", _expectation, _expectation_inputs),
    _case("mixed_real_complex_tree", _mixed_tree, _mixed_tree_inputs),
    _case("exp_distance", _exp_distance, _exp_inputs),
]
