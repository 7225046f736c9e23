"""PyTorch adapter: reverse mode with ``torch.autograd.grad`` on detached aliases of the parameters.

Differentiating ``leaf.detach().requires_grad_()`` aliases (no copy) instead of the user's tensors
means no ``.grad`` is written and no ``requires_grad`` flag is flipped on anything the user owns; it
is also as fast as ``loss.backward()`` (see the Core issue's measurements).

Inside ``torch.compile`` the gradient comes from ``torch.func.grad`` instead: Dynamo cannot trace
``torch.autograd.grad`` and would break the graph there. The other transformations use ``torch.func``
(``jvp``, ``vjp``, ``jacrev``, ``hessian``, ``vmap``) on detached inputs.

Under ``torch.inference_mode()`` autograd records nothing, even beneath ``enable_grad``: the gradient
is computed outside it (as it is outside ``no_grad``), and tensors created under it (inference
tensors, which autograd refuses) are differentiated or read through copies.
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import optree
import torch

from unigrad.backends._base import (
    Adapter,
    ExampleFn,
    FlatFn,
    OutputCheck,
    StepFn,
    example_loss,
    split_arrays,
)
from unigrad.backends._torch_autograd import (
    autograd_inputs,
    backward,
    dense,
    differentiable,
    is_contiguous,
    requires_grad,
)
from unigrad.backends._torch_devices import on_accelerator, placer


class TorchAdapter(Adapter):
    name = "torch"
    calls_loss_on_given_leaves = True  # parameters requiring grad are used as they are

    def is_array(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def dtype_name(self, x: Any) -> str:
        return str(x.dtype).removeprefix("torch.")

    def device_of(self, x: Any) -> str:
        return str(x.device)

    def version(self) -> str:
        return str(torch.__version__)

    def placer(self, device: Any) -> Callable[[Any], Any] | None:
        return placer(device)

    def on_accelerator(self) -> bool:
        return on_accelerator()

    def float32_matmul_precision(self) -> str:
        # "high" also when TF32 was turned on with torch.backends.cuda.matmul.allow_tf32 (linked)
        return str(torch.get_float32_matmul_precision())

    def precision_hint(self) -> str:
        return "torch.set_float32_matmul_precision('highest')"

    def to_numpy(self, x: Any) -> np.ndarray:
        try:  # the common case (a CPU tensor outside any graph): one call, no copy
            return x.numpy()
        except (RuntimeError, TypeError):  # requires grad, on an accelerator, bfloat16, a conjugate
            pass  # or negative bit set (hfft's gradient), a ZeroTensor (an unused input's tangent)
        if x.dtype == torch.bfloat16:
            import ml_dtypes  # shipped with JAX and TensorFlow; NumPy itself has no bfloat16

            return x.detach().cpu().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return x.numpy(force=True)  # detach, to the CPU, the conjugate and negative bits resolved

    def buffer_address(self, x: Any) -> int | None:
        return int(x.data_ptr())

    def dlpack_source(self, x: Any) -> Any:
        return x.detach()

    def from_numpy(self, array: np.ndarray) -> Any:
        if type(array) is not np.ndarray:
            array = np.asarray(array)
        # The common case first, in as few Python steps as possible (this runs per leaf per call of
        # every NumPy call): a writable, aligned array of a dtype torch knows ("V" is bfloat16).
        if array.flags.behaved and array.dtype.kind != "V":
            try:
                return torch.from_numpy(array)
            except ValueError:  # negative strides (x[::-1], np.flip), which no torch tensor can have
                return torch.from_numpy(np.ascontiguousarray(array))
        if array.dtype.kind == "V" and array.dtype.name == "bfloat16":
            return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
        # torch.from_numpy warns on read-only memory (and needs aligned memory): copy to stay silent
        return torch.from_numpy(array.copy())

    def from_dlpack(self, source: Any) -> Any:
        return torch.from_dlpack(source)

    def match(self, x: Any, like: Any) -> Any:
        return x.to(device=like.device, dtype=like.dtype)

    def detach(self, x: Any) -> Any:
        return x.detach() if isinstance(x, torch.Tensor) else x

    def data_preparer(self) -> Callable[[Any], Any] | None:
        return self.prepare_data_leaf if torch.is_inference_mode_enabled() else None

    def prepare_data_leaf(self, x: Any) -> Any:
        # An inference tensor cannot be saved for backward, as most ops with a differentiated input
        # must do: the loss reads a normal copy (made outside inference mode, or it would be one too).
        if x.is_inference():
            with torch.inference_mode(False):
                return x.clone()
        return x

    def signature(self, x: Any) -> Hashable:
        return (type(x), x.shape, x.dtype, x.device)

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        if torch.compiler.is_compiling():
            return self._functional_value_and_grad(fn, leaves, finish)
        if torch.is_inference_mode_enabled():
            # enable_grad does not reach beneath inference mode: the loss would record no graph and
            # every gradient would be zero. Differentiate outside it, as outside no_grad below.
            with torch.inference_mode(False):
                return self.value_and_grad(fn, leaves, finish)
        if not torch.is_grad_enabled():  # under no_grad: autograd must record here
            with torch.enable_grad():
                return self.value_and_grad(fn, leaves, finish)
        # (Grad mode is on: no enable_grad context, whose Python enter and exit cost a few us a call.)
        try:
            aliases = autograd_inputs(leaves)
        except RuntimeError:  # an inference tensor cannot require grad: see differentiable
            aliases = [differentiable(leaf) for leaf in leaves]
        loss, aux = finish(fn(aliases))
        if loss.requires_grad:
            grads = backward(loss, aliases)
            # An unused leaf's gradient is None: zeros instead. The gradient of a sum comes back
            # expanded (stride 0), and in-place updates of it (g.mul_, clipping) fail: hand back
            # dense ones, as loss.backward() leaves in .grad. (The usual case asked in one C-level
            # pass, without a list comprehension's frame: a GPU step pays host time in full. A None
            # makes the unbound is_contiguous raise TypeError.)
            try:
                dense_already = all(map(is_contiguous, grads))
            except TypeError:
                dense_already = False
            if dense_already:
                grads = list(grads)
            else:
                grads = [
                    g if g is not None and g.is_contiguous() else dense(g, alias, leaf)
                    for g, alias, leaf in zip(grads, aliases, leaves, strict=True)
                ]
        else:  # the loss never touched the parameters
            grads = [torch.zeros_like(leaf) for leaf in leaves]
        if aux is not None:  # the common case skips a pytree walk
            aux = optree.tree_map(self.detach, aux, namespace="unigrad")
        return loss.detach(), aux, grads

    def _functional_value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        # torch.func.grad's aux must hold tensors only: carry the other leaves around it.
        carried: dict[str, Any] = {}

        def scalar_loss(diff_leaves: list[Any]) -> tuple[Any, Any]:
            loss, aux = finish(fn(diff_leaves))
            tensors, carried["rebuild"] = split_arrays(aux, self.is_array)
            return loss.reshape(()), (loss, tensors)

        grads, (loss, tensors) = torch.func.grad(scalar_loss, has_aux=True)(list(leaves))
        return loss.detach(), carried["rebuild"](tensors), list(grads)

    def jvp(self, fn: FlatFn, leaves: list[Any], tangents: list[Any]) -> tuple[list[Any], list[Any]]:
        _load_forward_mode()
        out, out_tangents = torch.func.jvp(_positional(fn), _detached(leaves), _detached(tangents))
        return list(out), list(out_tangents)

    def vjp(self, fn: FlatFn, leaves: list[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        out, pullback = torch.func.vjp(_positional(fn), *_detached(leaves))
        return [o.detach() for o in out], lambda cotangents: list(pullback(tuple(cotangents)))

    def jacobian(self, fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
        if any(leaf.is_complex() for leaf in leaves):
            return _jacobian_by_pullbacks(fn, leaves)
        argnums = tuple(range(len(leaves)))
        rows = torch.func.jacrev(_positional(fn), argnums=argnums)(*_detached(leaves))
        return [list(row) for row in rows]

    def hessian(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> list[list[Any]]:
        _load_forward_mode()  # torch.func.hessian is forward over reverse
        argnums = tuple(range(len(leaves)))
        rows = torch.func.hessian(_positional(_scalar(fn, finish)), argnums=argnums)(*_detached(leaves))
        return [list(row) for row in rows]

    def hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        if torch.compiler.is_compiling():  # Dynamo cannot trace autograd.grad
            return self._functional_hvp(fn, leaves, vector, finish)
        if torch._C._functorch.peek_interpreter_stack() is not None:  # inside vmap, torch.func.grad...
            _load_forward_mode()
            return self._functional_hvp(fn, leaves, vector, finish)
        if torch.is_inference_mode_enabled():
            with torch.inference_mode(False):
                return self.hvp(fn, leaves, vector, finish)
        # Reverse over reverse on detached aliases: the gradient with a graph of its own, then one
        # more autograd.grad with the vector as its cotangent (H is symmetric). About the cost of a
        # hand-written double backward; torch.func's forward over reverse costs ~3-4x on CPU.
        if not torch.is_grad_enabled():  # under no_grad: autograd must record here
            with torch.enable_grad():
                return self.hvp(fn, leaves, vector, finish)
        try:
            aliases = autograd_inputs(leaves)
        except RuntimeError:  # an inference tensor cannot require grad: see differentiable
            aliases = [differentiable(leaf) for leaf in leaves]
        loss, _ = finish(fn(aliases))
        if not loss.requires_grad:
            return [torch.zeros_like(leaf) for leaf in leaves]
        grads = torch.autograd.grad(loss, aliases, create_graph=True, allow_unused=True)
        # A gradient that is None or has no graph (a loss constant or linear in that leaf) adds
        # nothing to the product. (materialize_grads=True would cost ~3% of this small call.)
        pairs = [(g, v) for g, v in zip(grads, vector, strict=True) if g is not None and g.requires_grad]
        if not pairs:
            return [torch.zeros_like(leaf) for leaf in leaves]
        # Without create_graph the products carry no graph, whether or not the vector requires grad:
        # no detach needed (each costs ~1 us, a few % of a small product).
        products = torch.autograd.grad(
            [g for g, _ in pairs], aliases, grad_outputs=[v for _, v in pairs], allow_unused=True
        )
        return [torch.zeros_like(leaf) if p is None else p for p, leaf in zip(products, leaves, strict=True)]

    def _functional_hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        # Forward over reverse: one JVP of the gradient, never the Hessian itself. (No
        # _load_forward_mode here: under torch.compile its warnings filter would break the graph.)
        argnums = tuple(range(len(leaves)))
        gradient = torch.func.grad(_positional(_scalar(fn, finish)), argnums=argnums)
        return list(torch.func.jvp(gradient, _detached(leaves), _detached(vector))[1])

    def per_example_grads(
        self, fn: ExampleFn, leaves: list[Any], batch: list[Any], finish: OutputCheck
    ) -> list[Any]:
        loss = example_loss(fn, finish, _as_scalar)
        per_example = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))
        return list(per_example(list(_detached(leaves)), list(_detached(batch))))

    def compile(
        self, fn: StepFn, param_leaves: list[Any], data_leaves: list[Any], options: Mapping[str, Any]
    ) -> StepFn:
        # One compiled function (with its own code object) per cache key, so Dynamo only ever sees
        # one signature per code object: its graphs stay static-shaped without dynamic=False, whose
        # per-call config patching would cost about 10 us a call.
        compiled = torch.compile(_own_code(fn), **options)
        warm = False

        def run(params: list[Any], data: list[Any]) -> tuple[Any, Any, list[Any]]:
            nonlocal warm
            # Detached inputs: the result must not hold a graph back to the caller's tensors.
            params, data = _detached_list(params), _detached_list(data)
            if warm:
                return compiled(params, data)
            # Dynamo guards on the Python state the traced code reads, lazy caches included
            # (unigrad's backend-of-type and namespace caches): one eager run fills them first, so
            # the guards see their steady state and later calls do not recompile.
            fn(params, data)
            with warnings.catch_warnings():
                # ug.namespace reaches array-api-compat's lru_cache'd type predicates; they are
                # pure, so Dynamo tracing through the cache is exact and its warning is noise.
                warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")
                result = compiled(params, data)
            warm = True
            return result

        return run


@functools.cache
def _load_forward_mode() -> None:
    """Import what forward-mode AD loads on first use, without its ``torch.jit.script`` warning.

    ``fwAD.make_dual`` imports ``torch._decomp.decompositions_for_jvp``, which scripts a few
    decompositions and so raises torch's own "torch.jit.script is deprecated" once per process
    (a ``DeprecationWarning`` up to torch 2.14, a ``FutureWarning``, shown to every user, from
    2.15): noise for users who never called ``torch.jit``.
    """
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", ".*torch.jit.script.* is deprecated", category)
        import torch._decomp.decompositions_for_jvp  # noqa: F401


def _jacobian_by_pullbacks(fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
    """The Jacobian of real outputs in complex leaves: the pullback of each output's one-hot
    cotangents, vectorised. ``torch.func.jacrev`` refuses complex inputs (torch 2.13); each row is
    the gradient of one output element, ``d/dRe + i·d/dIm`` as for ``grad``."""
    out, pullback = torch.func.vjp(_positional(fn), *_detached(leaves))
    rows = []
    for i, target in enumerate(out):
        basis = torch.eye(target.numel(), dtype=target.dtype, device=target.device)
        basis = basis.reshape(target.numel(), *target.shape)

        def pull(cotangent: Any, i: int = i) -> tuple[Any, ...]:
            return pullback(tuple(cotangent if k == i else torch.zeros_like(o) for k, o in enumerate(out)))

        pulled = torch.func.vmap(pull)(basis)
        rows.append([p.reshape(*target.shape, *leaf.shape) for p, leaf in zip(pulled, leaves, strict=True)])
    return rows


def _own_code(fn: Any) -> Any:
    """``fn`` with a code object of its own.

    Dynamo keeps its compiled graphs, and its budget of recompilations (``recompile_limit``, 8),
    per code object. Every compiled step body shares one code object, so without a copy the ninth
    signature compiled in a process would silently run eagerly.
    """
    return types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )


def _as_scalar(loss: Any) -> Any:
    return loss.reshape(())


def _detached(tensors: list[Any]) -> tuple[Any, ...]:
    return tuple(t.detach() for t in tensors)


def _detached_list(values: list[Any]) -> list[Any]:
    # Only what requires grad: a detach costs ~1 us per tensor, a flag read a tenth of that. The
    # usual inputs require none: asked at C level first, they are handed on without a new list.
    try:
        if not any(map(requires_grad, values)):
            return values
    except AttributeError:  # an item that is not a tensor
        pass
    return [v.detach() if isinstance(v, torch.Tensor) and v.requires_grad else v for v in values]


def _positional(fn: Callable[[list[Any]], Any]) -> Callable[..., Any]:
    """``fn`` taking the leaves as positional arguments, as ``torch.func`` wants them."""

    def positional(*leaves: Any) -> Any:
        out = fn(list(leaves))
        return tuple(out) if isinstance(out, list) else out

    return positional


def _scalar(fn: Callable[[list[Any]], Any], finish: OutputCheck) -> Callable[[list[Any]], Any]:
    def scalar_loss(leaves: list[Any]) -> Any:
        loss, _ = finish(fn(leaves))
        return loss.reshape(())

    return scalar_loss


ADAPTER = TorchAdapter()
