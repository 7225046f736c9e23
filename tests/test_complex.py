"""Complex parameters: every backend returns dL/dRe z + i·dL/dIm z, checked against the re/im reference.

The reference (``ug.reference_grad``, the NumPy backend) differentiates the real and imaginary parts
separately by central differences, sharing no code with the frameworks. Besides agreement, a
gradient must be a descent direction: ``L(z - eps·g) < L(z)`` for every complex conformance case.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from conftest import require

import unigrad as ug
from unigrad._host import tree_to_float64
from unigrad.conformance.case import Tolerance
from unigrad.conformance.cases.complex import CASES as COMPLEX_CASES
from unigrad.conformance.compare import compare_trees
from unigrad.conformance.devices import place_tree
from unigrad.conformance.tolerances import tolerance_for
from unigrad.conformance.wire import decode_leaves, dumps, encode_leaves, loads, rebuild

BACKENDS = ("torch", "tensorflow", "jax")
#: complex dtype -> the real dtype of its parts, whose tolerance (one table, in the conformance
#: package) it is held to.
PART_DTYPE = {"complex128": "float64", "complex64": "float32"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return str(request.param)


@pytest.fixture(params=sorted(PART_DTYPE))
def cdtype(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _complex(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _as(backend: str, tree: Any, cdtype: str) -> Any:
    """``tree``'s NumPy leaves as ``backend`` arrays: complex ones of ``cdtype``, real ones of the
    matching real dtype (the conformance runner's placement)."""
    return place_tree(tree, backend, PART_DTYPE[cdtype], "cpu")


def _assert_close(got: Any, want: Any, cdtype: str, what: str) -> None:
    tolerance = tolerance_for(PART_DTYPE[cdtype])
    failures = [m for m in compare_trees(tree_to_float64(got), want, tolerance) if not m.passed]
    assert not failures, f"{what}: " + "; ".join(
        f"{m.path}[{m.worst_index}] got {m.got:.6g}, want {m.want:.6g}" for m in failures
    )


def _issue_loss(z: Any, data: Any) -> Any:
    """The loss measured in issue 12, plus a nonlinear term: sum |z|² + Im(c·z) + sin(Re z)·Im z."""
    xp = ug.namespace(z)
    squared = xp.real(z * xp.conj(z))
    return xp.sum(squared) + xp.sum(xp.imag(data["c"] * z)) + xp.sum(xp.sin(xp.real(z)) * xp.imag(z))


def _issue_problem(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return _complex(rng, 2, 3), {"c": _complex(rng, 2, 3)}


def _mixed_loss(p: dict[str, Any], data: Any) -> Any:
    xp = ug.namespace(p)
    z, w = p["z"], p["w"]
    field = xp.matmul(data["a"], z)  # complex (3,)
    return xp.sum(w * xp.real(field * xp.conj(field))) + xp.sum(w**2 * xp.imag(z))


def _mixed_problem() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return {"z": _complex(rng, 3), "w": rng.normal(size=3)}, {"a": _complex(rng, 3, 3)}


# -- the reference itself ----------------------------------------------------------------------------


def test_reference_differentiates_real_and_imaginary_parts_separately() -> None:
    z, data = _issue_problem()
    c = data["c"]
    # d/dx and d/dy of |z|² + (Re c·y + Im c·x) + sin(x)·y, joined as d/dx + i·d/dy.
    x, y = z.real, z.imag
    closed_form = (2 * x + c.imag + np.cos(x) * y) + 1j * (2 * y + c.real + np.sin(x))
    reference = ug.reference_grad(_issue_loss, z, data)
    assert reference.dtype == np.complex128
    np.testing.assert_allclose(reference, closed_form, rtol=1e-8, atol=1e-9)


def test_reference_promotes_complex64_to_complex128() -> None:
    z, data = _issue_problem()
    reference = ug.reference_grad(_issue_loss, z.astype(np.complex64), data)
    assert reference.dtype == np.complex128


# -- gradients on every backend ------------------------------------------------------------------------


def test_grad_of_native_arrays_matches_reference(backend: str, cdtype: str) -> None:
    z, data = _issue_problem()
    want = ug.reference_grad(_issue_loss, z.astype(cdtype), data)
    params = _as(backend, z, cdtype)
    loss, grads = ug.value_and_grad(_issue_loss, params, _as(backend, data, cdtype))
    assert type(grads) is type(params) and ug.to_numpy(grads).dtype == np.dtype(cdtype)
    np.testing.assert_allclose(float(ug.to_numpy(loss)), float(_issue_loss(z, data)), rtol=1e-5)
    _assert_close(grads, want, cdtype, f"{backend} {cdtype}")


def test_grad_of_numpy_params_with_backend(backend: str, cdtype: str) -> None:
    z, data = _issue_problem(seed=2)
    z = z.astype(cdtype)
    grads = ug.grad(_issue_loss, z, {"c": data["c"].astype(cdtype)}, backend=backend)
    assert isinstance(grads, np.ndarray) and grads.dtype == np.dtype(cdtype)
    _assert_close(grads, ug.reference_grad(_issue_loss, z, data), cdtype, f"{backend} {cdtype} from NumPy")


def test_mixed_real_and_complex_tree(backend: str, cdtype: str) -> None:
    params, data = _mixed_problem()
    want = ug.reference_grad(_mixed_loss, place_tree(params, "numpy", PART_DTYPE[cdtype], "cpu"), data)
    grads = ug.grad(_mixed_loss, _as(backend, params, cdtype), _as(backend, data, cdtype))
    assert ug.to_numpy(grads["z"]).dtype == np.dtype(cdtype)
    assert ug.to_numpy(grads["w"]).dtype == np.dtype(PART_DTYPE[cdtype])
    _assert_close(grads, want, cdtype, f"{backend} {cdtype} mixed tree")


def test_compiled_step_matches_reference(backend: str) -> None:
    z, data = _issue_problem(seed=3)
    want = ug.reference_grad(_issue_loss, z, data)
    step = ug.value_and_grad_fn(_issue_loss, jit=True)
    params, placed = _as(backend, z, "complex128"), _as(backend, data, "complex128")
    step(params, placed)
    _, grads = step(params, placed)  # the second call runs what the first compiled
    _assert_close(grads, want, "complex128", f"{backend} value_and_grad_fn(jit=True)")


@pytest.mark.parametrize("case", COMPLEX_CASES, ids=lambda case: case.name)
def test_gradient_descends(case: Any, backend: str) -> None:
    """L(z - eps·g) < L(z): the returned gradient is the steepest-ascent direction of the real pair."""
    params, data = case.make_inputs(seed=0)

    def loss(p: Any) -> float:
        return float(case.loss(p, data))

    placed = _as(backend, data, "complex128")
    grads = tree_to_float64(ug.grad(lambda p: case.loss(p, placed), _as(backend, params, "complex128")))
    scale = max(float(np.max(np.abs(g))) for g in _leaves(grads))
    eps = 1e-4 / max(scale, 1.0)
    stepped = _step(params, grads, eps)
    assert loss(stepped) < loss(params), f"{case.name} on {backend}: z - eps·g does not descend"


def test_descent_check_rejects_the_conjugate_convention() -> None:
    """The descent check can fail: JAX's native convention (the conjugate) ascends on L = sum Im(z)."""

    def imaginary_part(z: Any) -> Any:
        return ug.namespace(z).sum(ug.namespace(z).imag(z))

    z = _complex(np.random.default_rng(10), 3)
    grads = ug.reference_grad(imaginary_part, z)  # i everywhere
    assert float(imaginary_part(z - 1e-3 * grads)) < float(imaginary_part(z))
    assert float(imaginary_part(z - 1e-3 * np.conj(grads))) > float(imaginary_part(z))


def _leaves(tree: Any) -> list[Any]:
    from unigrad import _tree

    return _tree.flatten(tree)[0]


def _step(params: Any, grads: Any, eps: float) -> Any:
    from unigrad import _tree

    leaves, treedef = _tree.flatten(params)
    return treedef.unflatten([p - eps * g for p, g in zip(leaves, _leaves(grads), strict=True)])


# -- transformations -----------------------------------------------------------------------------------


def _vector_fn(z: Any, data: Any) -> Any:
    """Real-valued, vector output: the loss and |z|² per row."""
    xp = ug.namespace(z)
    return {"loss": _issue_loss(z, data), "rows": xp.sum(xp.real(z * xp.conj(z)), axis=1)}


def test_transforms_match_reference(backend: str, cdtype: str) -> None:
    z, data = _issue_problem(seed=4)
    z = z.astype(cdtype)
    rng = np.random.default_rng(5)
    tangent = _complex(rng, 2, 3).astype(cdtype)
    cotangent = {
        "loss": np.array(1.5, PART_DTYPE[cdtype]),
        "rows": rng.normal(size=2).astype(PART_DTYPE[cdtype]),
    }
    native_data = _as(backend, data, cdtype)

    def both(name: str, call: Any) -> None:
        _assert_close(
            call(backend, native_data), call("numpy", data), cdtype, f"{name} on {backend} {cdtype}"
        )

    both("jvp", lambda b, d: ug.jvp(_vector_fn, z, tangent, d, backend=b)[1])
    # The reference's outputs are float64 whatever the params' precision: so is its cotangent.
    cotangent64 = {key: value.astype(np.float64) for key, value in cotangent.items()}
    both(
        "vjp", lambda b, d: ug.vjp(_vector_fn, z, cotangent64 if b == "numpy" else cotangent, d, backend=b)[1]
    )
    both("jacobian", lambda b, d: ug.jacobian(_vector_fn, z, d, backend=b))
    both("hvp", lambda b, d: ug.hvp(_issue_loss, z, tangent, d, backend=b))


def test_jvp_is_the_directional_derivative_in_the_real_sense(backend: str) -> None:
    z, data = _issue_problem(seed=6)
    tangent = _complex(np.random.default_rng(7), 2, 3)
    g = ug.grad(_issue_loss, z, data, backend=backend)
    _, slope = ug.jvp(_issue_loss, z, tangent, data, backend=backend)
    # dL along (Re t, Im t) = dL/dx·Re t + dL/dy·Im t = Re(conj(g)·t)
    np.testing.assert_allclose(float(slope), float(np.sum(np.real(np.conj(g) * tangent))), rtol=1e-9)


def test_per_example_grads_match_reference(backend: str) -> None:
    z, _ = _issue_problem(seed=8)
    batch = {"c": _complex(np.random.default_rng(9), 4, 2, 3)}
    got = ug.per_example_grads(_issue_loss, z, batch, backend=backend)
    want = np.stack([ug.reference_grad(_issue_loss, z, {"c": c}) for c in batch["c"]])
    _assert_close(got, want, "complex128", f"per_example_grads on {backend}")


# -- errors --------------------------------------------------------------------------------------------


def test_complex_loss_value_is_refused_with_the_fix(backend: str) -> None:
    z, data = _issue_problem()
    with pytest.raises(ug.InvalidLossError, match=rf"complex128 loss on backend '{backend}'.*real part"):
        ug.grad(
            lambda p, d: ug.namespace(p).sum(p * d["c"]),
            _as(backend, z, "complex128"),
            _as(backend, data, "complex128"),
        )


def test_integer_params_still_refused(backend: str) -> None:
    with pytest.raises(ug.InvalidParamsError, match=r"params\['k'\].*int32.*complex64, complex128"):
        params = {"z": np.ones(2, np.complex64), "k": np.ones(2, np.int32)}
        ug.grad(lambda p: ug.namespace(p).sum(ug.namespace(p).real(p["z"])), params, backend=backend)


def test_hessian_of_complex_params_is_refused_naming_hvp(backend: str) -> None:
    params, data = _mixed_problem()
    with pytest.raises(ug.InvalidParamsError, match=r"params\['z'\] is a complex128.*ug\.hvp"):
        ug.hessian(_mixed_loss, params, data, backend=backend)


def test_complex_output_of_jvp_is_refused_naming_the_split(backend: str) -> None:
    z, _ = _issue_problem()
    with pytest.raises(
        ug.InvalidOutputError, match=r"output is complex128.*xp\.real\(out\), xp\.imag\(out\)"
    ):
        ug.jvp(lambda p: p * 2.0, z, z, backend=backend)


def test_complex128_on_jax_without_x64_is_a_precision_error() -> None:
    require("jax")
    import jax
    import jax.numpy as jnp

    z = jnp.asarray(np.ones(2, np.complex128))  # made with x64 on (conftest)
    with jax.enable_x64(False), pytest.raises(ug.PrecisionError, match=r"complex128.*complex64"):
        ug.grad(lambda p: ug.namespace(p).sum(ug.namespace(p).real(p)), z)


# -- frameworks' native conventions (what unigrad corrects, measured) -----------------------------------


def test_jax_native_gradient_is_the_conjugate() -> None:
    """Documented upstream: jax.grad of a real function of z returns dL/dx - i·dL/dy. If a JAX release
    changes this, unigrad's conjugation in backends/_jax.py must go."""
    require("jax")
    import jax
    import jax.numpy as jnp

    z, data = _issue_problem()
    native = np.asarray(jax.grad(lambda p: _issue_loss(p, {"c": jnp.asarray(data["c"])}))(jnp.asarray(z)))
    np.testing.assert_allclose(np.conj(native), ug.reference_grad(_issue_loss, z, data), rtol=1e-6, atol=1e-8)


# -- the wire codec of isolated workers -----------------------------------------------------------------


def test_wire_round_trip_keeps_complex_leaves_bit_for_bit() -> None:
    values = np.array([[1 + 2j, complex(np.nan, -0.0)], [complex(1.0, np.inf), 0.1 + 1e-300j]])
    tree = {"z": values, "w": np.array([0.5, np.nan])}
    line = dumps({"grads": encode_leaves(tree)})
    back = rebuild(loads(line)["grads"], tree)
    assert back["z"].dtype == np.complex128 and back["w"].dtype == np.float64
    assert np.array_equal(back["z"].view(np.float64), values.view(np.float64), equal_nan=True)
    assert np.signbit(back["z"][0, 1].imag)
    assert json.loads(line)  # plain JSON
    assert decode_leaves(encode_leaves([np.zeros((0, 2), np.complex64)]))[0].shape == (0, 2)


def test_isolated_workers_carry_complex_gradients() -> None:
    """The worker's record, through JSON, back into the reference's tree, compared part by part."""
    from unigrad.conformance.isolated import _outcome
    from unigrad.conformance.runner import Outcome
    from unigrad.conformance.worker import outcome_record

    reference = {"z": np.array([1 + 2j, 3 - 4j])}
    record = outcome_record(("jax", "cpu", "float64"), Outcome(loss=np.array(2.0), grads=reference))
    outcome = _outcome(loads(dumps(record)), reference)
    assert not any(not m.passed for m in compare_trees(outcome.grads, reference, Tolerance(0, 0)))
    conjugated = {"z": np.conj(outcome.grads["z"])}
    assert [m.passed for m in compare_trees(conjugated, reference, Tolerance(1e-6, 1e-8))] == [True, False]


# -- unigrad.testing with complex params ----------------------------------------------------------------


def test_testing_helpers_take_complex_params(backend: str) -> None:
    from unigrad.testing import assert_grad_matches_reference, assert_grads_agree

    params, data = _mixed_problem()
    # complex64 params are held to float32's tolerance, not float64's
    assert_grad_matches_reference(
        _mixed_loss, _as(backend, params, "complex64"), _as(backend, data, "complex64")
    )
    report = assert_grads_agree(_mixed_loss, params, data, backends=[backend])
    assert report.ok and any(leaf.path.endswith(".imag") for c in report.comparisons for leaf in c.leaves)


def test_jax_conjugates_on_the_first_complex_call_of_a_fresh_process() -> None:
    """JAX's conjugation is skipped until a complex parameter has been planned (it costs a dtype
    read per leaf); in a new process a compiled step on complex params must still be conjugated."""
    require("jax")
    import subprocess
    import sys

    script = (
        "import jax, numpy as np, unigrad as ug\n"
        "jax.config.update('jax_enable_x64', True)\n"
        "z = jax.numpy.asarray(np.array([1 + 2j, -3j]))\n"
        "step = ug.value_and_grad_fn(lambda w: ug.namespace(w).sum(ug.namespace(w).imag(w)), jit=True)\n"
        "_, g = step(z)\n"
        "assert np.allclose(np.asarray(g), 1j), g\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
