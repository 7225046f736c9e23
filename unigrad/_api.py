"""The public differentiation API: validate, flatten, dispatch to an adapter, unflatten."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from unigrad._dispatch import CallPlan, plan_call
from unigrad._errors import NotCallableError
from unigrad._loss import output_checker

if TYPE_CHECKING:  # the NumPy adapter is imported by the first reference_grad, not by `import unigrad`
    from unigrad.backends._numpy import NumpyAdapter

PyTree = TypeVar("PyTree")


def _require_callable(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise NotCallableError(
            f"loss_fn must be callable as loss_fn(params, data) or loss_fn(params), "
            f"got {type(loss_fn).__name__} {loss_fn!r:.60}"
        )


def _value_and_grad(
    loss_fn: Callable[..., Any],
    params: Any,
    data: Any,
    has_aux: bool,
    backend: str | None,
    adapter: NumpyAdapter | None = None,
    want_loss: bool = True,
    device: Any = None,
) -> tuple[Any, Any]:
    if not callable(loss_fn):
        _require_callable(loss_fn)
    plan = plan_call(params, backend, adapter, device)
    with plan.scoped():
        return _run(plan, params, loss_fn, data, has_aux, want_loss)


def _run(
    plan: CallPlan, params: Any, loss_fn: Callable[..., Any], data: Any, has_aux: bool, want_loss: bool
) -> tuple[Any, Any]:
    finish = output_checker(plan.adapter, has_aux)
    out = plan.adapter.value_and_grad(plan.loss_call(loss_fn, params, data), plan.inputs, finish)
    return plan.results(out, has_aux, want_loss)


def value_and_grad(
    loss_fn: Callable[..., Any],
    params: PyTree,
    data: Any = None,
    *,
    has_aux: bool = False,
    backend: str | None = None,
    device: Any = None,
) -> tuple[Any, PyTree]:
    """The loss and its gradient with respect to ``params``, on the backend the params live on.

    Args:
        loss_fn: called as ``loss_fn(params, data)``, or ``loss_fn(params)`` when ``data`` is
            ``None``. Returns a real floating array with one element (shape ``()`` or ``(1,)``...),
            or a pair ``(loss, aux)`` when ``has_aux=True``.
        params: a pytree (dict, list, tuple, namedtuple, dataclass, node registered with optree or
            ``jax.tree_util``; ``None`` is structure) of floating (or complex) arrays of one framework:
            ``torch.Tensor`` / ``nn.Parameter``, ``tf.Tensor`` / ``tf.Variable`` / Keras 3 variable,
            ``jax.Array``; or NumPy arrays together with ``backend=``. A complex leaf ``z = x + iy``
            gets ``∂L/∂x + i·∂L/∂y`` on every backend (JAX's conjugate convention is undone; see
            docs/complex.md).
        data: any pytree passed to ``loss_fn`` untouched and not differentiated. When ``backend=``
            is given, its NumPy and other-framework array leaves are converted to that backend.
        has_aux: ``loss_fn`` returns ``(loss, aux)``; the result is then ``((loss, aux), grads)``.
        backend: ``'torch'``, ``'tensorflow'`` (``'tf'``), ``'jax'`` or ``'numpy'`` (the
            finite-difference reference). ``None`` infers it from the params. Leaves of another
            framework, or NumPy, are converted (zero-copy through DLPack where possible) and their
            gradients handed back in their own framework.
        device: with ``backend=``, where the converted leaves (NumPy, other frameworks' arrays; params
            and data) are placed for the call: a device object of the framework or a string
            (``'cuda:0'``, ``'gpu'``, ``'cpu:1'``). ``None``: the framework's default device
            (``torch.get_default_device()``, JAX's default device, TensorFlow's placement). The
            gradients still come back where their parameters are (NumPy on the host).

    Returns:
        ``(loss, grads)``: ``grads`` has exactly the structure of ``params``, and each gradient
        the framework, dtype and device of its parameter. Parameters the loss does not use get zeros.
        The loss (and aux) come back in the params' framework, detached from any graph.

    Raises:
        UnigradError: a subclass naming the offending leaf and the fix, for bad params, an unknown
            or missing backend, or a loss that is not a real scalar.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> def loss_fn(p, d):
        ...     return ((d["x"] * p["w"] - d["y"]) ** 2).sum()
        >>> params = {"w": np.array(2.0)}
        >>> data = {"x": np.array([1.0, 2.0]), "y": np.array([1.0, 2.0])}
        >>> loss, grads = ug.value_and_grad(loss_fn, params, data, backend="torch")
        >>> float(loss), float(grads["w"])
        (5.0, 10.0)
    """
    # _run written out: eager TensorFlow and JAX record the Python stack at every op, so the adapter
    # is called from this frame, and the loss from the adapter's (backends/_loss_call.py).
    if not callable(loss_fn):
        _require_callable(loss_fn)
    plan = plan_call(params, backend, None, device)
    if plan.scope is not None:  # float64 NumPy on JAX: the whole call keeps 64 bits, this thread only
        with plan.scope():
            return _run(plan, params, loss_fn, data, has_aux, True)
    finish = output_checker(plan.adapter, has_aux)
    out = plan.adapter.value_and_grad(plan.loss_call(loss_fn, params, data), plan.inputs, finish)
    return plan.results(out, has_aux, True)


def grad(
    loss_fn: Callable[..., Any],
    params: PyTree,
    data: Any = None,
    *,
    has_aux: bool = False,
    backend: str | None = None,
    device: Any = None,
) -> Any:
    """The gradient of ``loss_fn`` with respect to ``params`` (see :func:`value_and_grad`, also for
    ``backend=`` and ``device=``).

    Returns:
        ``grads`` shaped like ``params``; with ``has_aux=True``, ``(grads, aux)`` as in ``jax.grad``.

    Example:
        >>> import torch, unigrad as ug
        >>> ug.grad(lambda x: x ** 2, torch.tensor(3.0))
        tensor(6.)
    """
    # As in value_and_grad: the adapter is called from this frame.
    if not callable(loss_fn):
        _require_callable(loss_fn)
    plan = plan_call(params, backend, None, device)
    if plan.scope is not None:
        with plan.scope():
            result = _run(plan, params, loss_fn, data, has_aux, False)
    else:
        finish = output_checker(plan.adapter, has_aux)
        out = plan.adapter.value_and_grad(plan.loss_call(loss_fn, params, data), plan.inputs, finish)
        result = plan.results(out, has_aux, False)
    if has_aux:
        (_, aux), grads = result
        return grads, aux
    return result[1]


def reference_grad(
    loss_fn: Callable[..., Any],
    params: Any,
    data: Any = None,
    *,
    step: float | None = None,
) -> Any:
    """Central finite-difference gradient in float64: the independent oracle for checking backends.

    ``loss_fn`` runs on NumPy (write it with ``ug.namespace`` or NumPy directly). Params of any
    framework are copied to float64 NumPy first; floating data leaves are promoted to float64.
    Costs two loss evaluations per parameter element: use it on small problems.

    Args:
        loss_fn: as for :func:`grad`, written against NumPy (or ``ug.namespace``).
        params: a pytree of floating arrays of any framework (copied to float64 NumPy; complex
            ones to complex128, differentiated along their real and imaginary parts separately).
        data: as for :func:`grad`.
        step: relative step ``h``; element ``x`` is moved by ``h * max(1, |x|)`` (default: the cube
            root of float64's epsilon, about 6.1e-6, which balances truncation and round-off).

    Returns:
        float64 NumPy gradients shaped like ``params``.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> g = ug.reference_grad(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]))
        >>> np.round(g, 6)
        array([ 3., 12.])
    """
    from unigrad._host import tree_to_float64
    from unigrad.backends._numpy import DEFAULT_STEP, NumpyAdapter

    params64 = tree_to_float64(params)
    adapter = NumpyAdapter(DEFAULT_STEP if step is None else step)
    return _value_and_grad(loss_fn, params64, data, False, "numpy", adapter)[1]
