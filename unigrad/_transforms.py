"""Derivatives beyond the gradient: ``jvp``, ``vjp``, ``jacobian``, ``hessian``, ``hvp``, per-example grads.

Each function validates and plans the call like :func:`unigrad.grad` (``unigrad._dispatch``), checks
the extra pytree it takes (tangents, cotangent, vector, batch) against what it pairs with
(``unigrad._matching``), hands flat lists to the backend adapter, and unflattens once on the way back.

Nesting of pytree results follows JAX: ``jacobian(fn, params)[out][param]`` (outer structure: the
output of ``fn``; inner: ``params``) and ``hessian(loss_fn, params)[p][q]`` (params inside params),
each leaf of shape ``out.shape + param.shape`` or ``p.shape + q.shape``.

Example:
    >>> import numpy as np, unigrad as ug
    >>> ug.hessian(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]), backend="torch")
    array([[ 6.,  0.],
           [ 0., 12.]])
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from unigrad import _tree
from unigrad._api import _require_callable
from unigrad._complex import refuse_complex_params
from unigrad._dispatch import CallPlan, _flatten_tree, bare_native_adapter, plan_call
from unigrad._loss import output_checker
from unigrad._matching import FlatOutputs, check_batch, like_params, matching
from unigrad.backends import Adapter, backend_name_of

PyTree = TypeVar("PyTree")
FlatCall = Callable[[list[Any]], Any]  # fn of the params' flat leaves (CallPlan.bind)


@contextlib.contextmanager
def _planned(fn: Callable[..., Any], params: Any, backend: str | None, device: Any) -> Iterator[CallPlan]:
    """Every transform's start: ``fn`` checked callable, the call planned, and the plan's scope entered
    (float64 NumPy on JAX: 64 bits for this call, in this thread only)."""
    _require_callable(fn)
    plan = plan_call(params, backend, device=device)
    with plan.scoped():
        yield plan


def _flat_outputs(call: FlatCall, has_aux: bool, adapter: Adapter, name: str) -> FlatOutputs:
    """``call``'s output flattened and checked; with ``has_aux``, ``call`` returns ``(out, aux)``, checked,
    and only ``out`` is kept."""
    if not has_aux:
        return FlatOutputs(call, adapter, name)
    check = output_checker(adapter, True)

    def output_only(leaves: list[Any]) -> Any:
        out = call(leaves)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            check(out)  # raises InvalidAuxError, saying what was returned
        return out[0]

    return FlatOutputs(output_only, adapter, name)


def _aux_at(plan: CallPlan, call: Callable[[list[Any]], Any]) -> Any:
    """The aux of ``call`` (returning ``(out, aux)``) at the params, detached, in the params' framework.

    From one more evaluation, not differentiated: the transforms' own evaluations run on traced or
    wrapped values (JAX tracers, torch.func wrappers) that cannot leave them.
    """
    aux = call(plan.inputs)[1]
    return plan.restore_output(_tree.tree_map(plan.adapter.detach, aux))


def _nested(plan: CallPlan, outer: Any, rows: list[list[Any]]) -> Any:
    """``rows[i][j]`` as ``outer``'s structure of params-shaped trees, in the params' framework."""
    return plan.restore_output(outer.unflatten([plan.treedef.unflatten(row) for row in rows]))


def jvp(
    fn: Callable[..., Any],
    params: PyTree,
    tangents: PyTree,
    data: Any = None,
    *,
    backend: str | None = None,
    device: Any = None,
    has_aux: bool = False,
) -> Any:
    """Forward mode: the output of ``fn`` and its directional derivative along ``tangents``.

    Args:
        fn: ``fn(params, data)`` (or ``fn(params)``) returning a floating array or a pytree of them.
        params: as for :func:`unigrad.grad`.
        tangents: a pytree like ``params``: same structure, and each leaf the shape and dtype of its
            parameter (any framework; converted). A complex tangent ``t`` is the direction
            ``(Re t, Im t)`` in the real sense (docs/complex.md).
        data: passed to ``fn``, not differentiated.
        backend: as for :func:`unigrad.grad`.
        device: as for :func:`unigrad.grad` (where converted leaves are placed).
        has_aux: ``fn`` returns ``(out, aux)``; ``aux`` is not differentiated (as in ``jax.jvp``).

    Returns:
        ``(out, out_tangent)``: ``fn``'s output and ``J @ tangents``, both with the structure of the
        output, in the params' framework; ``(out, out_tangent, aux)`` with ``has_aux=True``.

    Raises:
        StructureMismatchError: ``tangents`` has another structure, or a leaf another shape.
        DtypeMismatchError: a tangent leaf is not an array of its parameter's dtype.
        InvalidOutputError: ``fn`` returned something other than floating arrays.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> x, direction = np.array([1.0, 3.0]), np.array([1.0, 0.0])
        >>> ug.jvp(lambda p: p ** 2, x, direction, backend="tensorflow")
        (array([1., 9.]), array([2., 0.]))
    """
    with _planned(fn, params, backend, device) as plan:
        tangent_inputs = like_params(tangents, "tangents", params, plan)
        call = plan.bind(fn, data)
        outputs = _flat_outputs(call, has_aux, plan.adapter, "jvp")
        out, out_tangents = plan.adapter.jvp(outputs, plan.inputs, tangent_inputs)
        result = (
            plan.restore_output(outputs.treedef.unflatten(out)),
            plan.restore_output(outputs.treedef.unflatten(out_tangents)),
        )
        return (*result, _aux_at(plan, call)) if has_aux else result


def vjp(
    fn: Callable[..., Any],
    params: PyTree,
    cotangent: Any,
    data: Any = None,
    *,
    backend: str | None = None,
    device: Any = None,
    has_aux: bool = False,
) -> Any:
    """Reverse mode: the output of ``fn`` and ``cotangent @ J``, a pytree like ``params``.

    Args:
        fn: ``fn(params, data)`` (or ``fn(params)``) returning a floating array or a pytree of them.
        params: as for :func:`unigrad.grad`.
        cotangent: a pytree like ``fn``'s output (same structure, shapes and dtypes).
        data: passed to ``fn``, not differentiated.
        backend: as for :func:`unigrad.grad`.
        device: as for :func:`unigrad.grad` (where converted leaves are placed).
        has_aux: ``fn`` returns ``(out, aux)``; ``aux`` is not differentiated (as in ``jax.vjp``).

    Returns:
        ``(out, params_cotangent)``; ``params_cotangent`` has the structure of ``params`` and each
        leaf the framework, dtype and device of its parameter. ``(out, params_cotangent, aux)``
        with ``has_aux=True``.

    Raises:
        StructureMismatchError, DtypeMismatchError: ``cotangent`` does not match the output.
        InvalidOutputError: ``fn`` returned something other than floating arrays.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> x = np.array([1.0, 3.0])
        >>> out, pulled = ug.vjp(lambda p: p ** 2, x, np.array([1.0, 1.0]), backend="torch")
        >>> pulled
        array([2., 6.])
    """
    with _planned(fn, params, backend, device) as plan:
        adapter = plan.adapter
        call = plan.bind(fn, data)
        outputs = _flat_outputs(call, has_aux, adapter, "vjp")
        out, pullback = adapter.vjp(outputs, plan.inputs)
        out_tree = outputs.treedef.unflatten(out)
        cotangents = matching(
            cotangent, "cotangent", out_tree, outputs.treedef, out, [adapter] * len(out), "output", adapter
        )
        grads = pullback(cotangents)
        result = plan.restore_output(out_tree), plan.treedef.unflatten(plan.restore_grads(grads))
        return (*result, _aux_at(plan, call)) if has_aux else result


def jacobian(
    fn: Callable[..., Any],
    params: PyTree,
    data: Any = None,
    *,
    backend: str | None = None,
    device: Any = None,
    has_aux: bool = False,
) -> Any:
    """The Jacobian of a (vector-valued) ``fn`` with respect to ``params`` (reverse mode, vectorised).

    Args:
        fn: ``fn(params, data)`` (or ``fn(params)``) returning a floating array or a pytree of them.
        params: as for :func:`unigrad.grad`.
        data: passed to ``fn``, not differentiated.
        backend: as for :func:`unigrad.grad`.
        device: as for :func:`unigrad.grad` (where converted leaves are placed).
        has_aux: ``fn`` returns ``(out, aux)``; the result is then ``(jacobian, aux)``, as from
            ``jax.jacrev(fn, has_aux=True)``.

    Returns:
        JAX's nesting: the structure of ``fn``'s output, each output leaf holding a pytree like
        ``params`` whose leaf for parameter ``p`` has shape ``out.shape + p.shape``. A single array
        output of a single array parameter gives one array of shape ``out.shape + param.shape``.

    Raises:
        InvalidOutputError: ``fn`` returned something other than floating arrays.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> def fn(p):
        ...     return {"y": p["a"] * p["b"]}
        >>> jac = ug.jacobian(fn, {"a": np.array([1.0, 2.0]), "b": np.array(3.0)}, backend="torch")
        >>> dy = jac["y"]  # the Jacobian of output "y", shaped like params
        >>> dy["a"]
        array([[3., 0.],
               [0., 3.]])
        >>> dy["b"]
        array([1., 2.])
    """
    with _planned(fn, params, backend, device) as plan:
        call = plan.bind(fn, data)
        outputs = _flat_outputs(call, has_aux, plan.adapter, "jacobian")
        rows = plan.adapter.jacobian(outputs, plan.inputs)
        result = _nested(plan, outputs.treedef, rows)
        return (result, _aux_at(plan, call)) if has_aux else result


def hessian(
    loss_fn: Callable[..., Any],
    params: PyTree,
    data: Any = None,
    *,
    backend: str | None = None,
    device: Any = None,
    has_aux: bool = False,
) -> Any:
    """The Hessian of a scalar loss with respect to ``params``.

    Args:
        loss_fn: as for :func:`unigrad.grad`: returns a real floating scalar, or ``(loss, aux)``.
        params: as for :func:`unigrad.grad`.
        data: passed to ``loss_fn``, not differentiated.
        backend: as for :func:`unigrad.grad`.
        device: as for :func:`unigrad.grad` (where converted leaves are placed).
        has_aux: ``loss_fn`` returns ``(loss, aux)``; the result is then ``(hessian, aux)``.

    Returns:
        JAX's nesting: a pytree like ``params`` of pytrees like ``params``; ``H[p][q]`` has shape
        ``p.shape + q.shape``. A single array parameter of shape ``s`` gives shape ``s + s``.

    Raises:
        InvalidLossError: the loss is not a real floating scalar.
        InvalidParamsError: a parameter is complex (its Hessian is a real matrix over the real and
            imaginary parts, which no complex array holds: use :func:`hvp`; docs/complex.md).

    Example:
        >>> import numpy as np, unigrad as ug
        >>> def loss_fn(p):
        ...     return ug.namespace(p).sum(p["x"] ** 2 * p["y"])
        >>> H = ug.hessian(loss_fn, {"x": np.array([1.0]), "y": np.array(2.0)}, backend="tensorflow")
        >>> row_x, row_y = H["x"], H["y"]
        >>> row_x["x"], row_x["y"], row_y["y"]
        (array([[4.]]), array([2.]), array(0.))
    """
    with _planned(loss_fn, params, backend, device) as plan:
        refuse_complex_params(params, plan.inputs, plan.adapter, "hessian")
        finish = output_checker(plan.adapter, has_aux)
        call = plan.bind(loss_fn, data)
        rows = plan.adapter.hessian(call, plan.inputs, finish)
        result = _nested(plan, plan.treedef, rows)
        return (result, _aux_at(plan, call)) if has_aux else result


def hvp(
    loss_fn: Callable[..., Any],
    params: PyTree,
    vector: PyTree,
    data: Any = None,
    *,
    backend: str | None = None,
    device: Any = None,
    has_aux: bool = False,
) -> Any:
    """The Hessian-vector product ``H @ vector``, without forming the Hessian.

    Costs about two gradients, whatever the number of parameters: forward over reverse on JAX and
    TensorFlow, reverse over reverse on PyTorch (a double backward; ``torch.func``'s forward over
    reverse is several times slower there), forward over reverse inside ``torch.compile`` or
    ``torch.func`` transforms. For many products at points of one shape, see :func:`unigrad.hvp_fn`.

    Args:
        loss_fn: as for :func:`unigrad.grad`: returns a real floating scalar, or ``(loss, aux)``.
        params: as for :func:`unigrad.grad`.
        vector: a pytree like ``params`` (same structure, shapes and dtypes). For a complex
            parameter, ``H`` is the real Hessian over its real and imaginary parts, applied to the
            vector's parts and joined as ``first + i·second``.
        data: passed to ``loss_fn``, not differentiated.
        backend: as for :func:`unigrad.grad`.
        device: as for :func:`unigrad.grad` (where converted leaves are placed).
        has_aux: ``loss_fn`` returns ``(loss, aux)``; the result is then ``(hvp, aux)``.

    Returns:
        A pytree like ``params``, each leaf with its parameter's framework, dtype and device.

    Raises:
        StructureMismatchError, DtypeMismatchError: ``vector`` does not match ``params``.
        InvalidLossError: the loss is not a real floating scalar.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> ug.hvp(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]), np.array([1.0, 1.0]), backend="torch")
        array([ 6., 12.])
    """
    if not callable(loss_fn):
        _require_callable(loss_fn)
    adapter = None if backend is not None or has_aux else bare_native_adapter(params)
    if (
        adapter is not None
        and type(vector) is type(params)
        and vector.shape == params.shape
        and vector.dtype == params.dtype
        and (data is None or adapter.data_preparer() is None)
    ):
        # A solver's call (one native array as the point, one as the direction): what the general
        # path below does, in fewer steps (it costs ~10% of a small product in a real call).
        if data is None:
            call = lambda leaves: loss_fn(leaves[0])  # noqa: E731
        else:
            call = lambda leaves: loss_fn(leaves[0], data)  # noqa: E731
        vector_input = adapter.prepare_data_leaf(vector)
        return adapter.hvp(call, [params], [vector_input], output_checker(adapter, False))[0]
    with _planned(loss_fn, params, backend, device) as plan:
        vector_inputs = like_params(vector, "vector", params, plan)
        finish = output_checker(plan.adapter, has_aux)
        call = plan.bind(loss_fn, data)
        products = plan.adapter.hvp(call, plan.inputs, vector_inputs, finish)
        result = plan.treedef.unflatten(plan.restore_grads(products))
        return (result, _aux_at(plan, call)) if has_aux else result


def per_example_grads(
    loss_fn: Callable[[Any, Any], Any],
    params: PyTree,
    batch: Any,
    *,
    backend: str | None = None,
    device: Any = None,
) -> PyTree:
    """The gradient of ``loss_fn(params, example)`` for every example of ``batch``, vectorised.

    ``jax.vmap`` on JAX, ``torch.func.vmap`` on PyTorch, ``tf.vectorized_map`` on TensorFlow (which
    falls back to a Python loop over the examples, with a warning, if it cannot convert the loss).

    Args:
        loss_fn: ``loss_fn(params, example)`` returning a scalar loss; ``example`` has the structure
            of ``batch`` with each array's leading axis removed.
        params: as for :func:`unigrad.grad`.
        batch: a pytree whose arrays (any framework; converted) share their leading axis, the batch
            axis. Non-array leaves are passed to every example unchanged.
        backend: as for :func:`unigrad.grad`.
        device: as for :func:`unigrad.grad` (where converted leaves are placed).

    Returns:
        A pytree like ``params``; each leaf has shape ``(batch_size,) + param.shape`` and its
        parameter's framework, dtype and device.

    Raises:
        StructureMismatchError: ``batch`` holds no array, an array without a leading axis, or
            arrays whose leading axes differ (the error names two of them and their sizes).
        InvalidLossError: the loss is not a real floating scalar.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> def loss_fn(w, example):
        ...     return (example["x"] * w - example["y"]) ** 2
        >>> batch = {"x": np.array([1.0, 2.0], np.float32), "y": np.zeros(2, np.float32)}
        >>> ug.per_example_grads(loss_fn, np.array(1.0, np.float32), batch, backend="jax")
        array([2., 8.], dtype=float32)
    """
    with _planned(loss_fn, params, backend, device) as plan:
        adapter = plan.adapter
        leaves, batch_def = _flatten_tree(batch, "batch")
        positions = [index for index, leaf in enumerate(leaves) if backend_name_of(leaf) is not None]
        check_batch(batch, leaves, positions)
        batched = [plan.to_backend(leaves[index]) for index in positions]
        treedef = plan.treedef

        def call(param_leaves: list[Any], example: list[Any]) -> Any:
            example_leaves = list(leaves)
            for index, value in zip(positions, example, strict=True):
                example_leaves[index] = value
            return loss_fn(treedef.unflatten(param_leaves), batch_def.unflatten(example_leaves))

        finish = output_checker(adapter, False)
        grads = adapter.per_example_grads(call, plan.inputs, batched, finish)
        return treedef.unflatten(plan.restore_grads(grads))
