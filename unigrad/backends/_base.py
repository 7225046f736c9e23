"""The protocol every backend adapter implements, and what is the same for all of them.

An adapter knows how to differentiate a function of a flat list of leaves on its framework and how to
move arrays in and out of it. Everything else (pytrees, validation, dispatch) lives in the core.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import numpy as np

from unigrad import _tree
from unigrad._errors import InvalidDeviceError, UnsupportedTransformError

#: dtype names that can be differentiated, as every backend spells them.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})

#: complex dtype names that can be differentiated (a real loss of complex parameters; see docs/complex.md).
COMPLEX_DTYPES = frozenset({"complex64", "complex128"})


class OutputCheck(Protocol):
    """``finish(out) -> (loss, aux)``: splits and validates what the loss function returned.

    ``has_aux`` says whether the loss function returns ``(loss, aux)``; with ``False``, ``aux`` is
    always ``None`` and an adapter may take a cheaper path without auxiliary outputs.
    """

    has_aux: bool

    def __call__(self, out: Any) -> tuple[Any, Any]: ...


#: A function of a flat list of leaves returning a flat list of arrays (``jvp``, ``vjp``, ``jacobian``).
FlatFn = Callable[[list[Any]], list[Any]]

#: ``fn(param_leaves, data_leaves) -> (loss, aux, grads)``: the body of a compiled training step.
StepFn = Callable[[list[Any], list[Any]], tuple[Any, Any, list[Any]]]

#: ``fn(param_leaves, example_leaves) -> loss``: the loss of one example of a batch (``per_example_grads``).
ExampleFn = Callable[[list[Any], list[Any]], Any]


class Adapter:
    """Base class of the per-framework adapters (one instance per backend)."""

    name: ClassVar[str]
    #: Whether this adapter implements :meth:`compile_trees` and :meth:`compiler_flatten`: its
    #: compiler keys shapes, dtypes and placement itself (``jax.jit``), so compiled steps need no key
    #: of their own for them (see ``unigrad._compiled_by_structure``).
    compiler_keys_shapes: ClassVar[bool] = False
    #: Whether :meth:`value_and_grad` calls ``fn`` on the very list of leaves it was given when it
    #: differentiates those leaves as they are (TensorFlow's tape, torch's parameters requiring grad):
    #: the loss then gets the params object itself. Never for an adapter whose framework calls ``fn``
    #: on a list it may fill with tracers (JAX, MLX).
    calls_loss_on_given_leaves: ClassVar[bool] = False
    #: dtype names this framework does not have at all (MLX: complex128); the conformance runner
    #: reports a case needing one as unsupported there (``n/a``), not as an error.
    missing_dtypes: ClassVar[frozenset[str]] = frozenset()
    #: dtype names whose :meth:`param_problem` depends on a global mode that can change between calls.
    mode_dependent_dtypes: ClassVar[frozenset[str]] = frozenset()
    #: dtype names that arrays this backend creates from other frameworks' leaves keep only inside
    #: :meth:`precision_scope` (JAX's 64-bit dtypes, while its x64 mode is off).
    scoped_dtypes: ClassVar[frozenset[str]] = frozenset()
    #: Every differentiating backend unigrad knows, in the registry's order, for error messages that
    #: name the alternatives; set by the registry (``unigrad.backends``), which imports this module.
    framework_names: ClassVar[tuple[str, ...]] = ()

    # -- recognising and describing arrays ---------------------------------------------------
    def is_array(self, x: Any) -> bool:
        """Whether ``x`` is an array of this framework (tracers included)."""
        raise NotImplementedError

    def dtype_name(self, x: Any) -> str:
        """The dtype of ``x`` as a NumPy-style name (``'float32'``, ``'bfloat16'``, ``'int64'``...)."""
        raise NotImplementedError

    def shape(self, x: Any) -> tuple[int, ...]:
        """The shape of ``x`` as a tuple of ints."""
        return tuple(int(d) for d in x.shape)

    def device_of(self, x: Any) -> str:
        """A short device name for ``x`` (``'cpu'``, ``'cuda:0'``, ...)."""
        return "cpu"

    def version(self) -> str:
        """The framework's version string."""
        raise NotImplementedError

    def param_problem(self, dtype_name: str) -> str | None:
        """Why a parameter of this dtype cannot be differentiated here, or ``None`` when it can."""
        return None

    def precision_scope(self) -> AbstractContextManager[Any]:
        """A context, for this thread only, under which :attr:`scoped_dtypes` keep their precision.

        Entered around a whole call whose arrays unigrad creates itself (NumPy or other frameworks'
        leaves with ``backend=``), and left afterwards: no global mode is changed.
        """
        return contextlib.nullcontext()

    # -- placement of the arrays unigrad creates (``device=``) ---------------------------------
    def placer(self, device: Any) -> Callable[[Any], Any] | None:
        """A function moving arrays this adapter made from NumPy (or another framework) onto
        ``device``, or ``None`` when they are made there already. ``device=None`` means the
        framework's own default device. The same device gives the same function (it keys caches).

        Raises:
            InvalidDeviceError: ``device`` is not one of this framework's devices here.
        """
        if device is None or str(device).lower() == "cpu":
            return None
        raise InvalidDeviceError(
            f"backend {self.name!r} computes on the host only: got device={device!r}; pass device=None "
            f"or 'cpu'"
        )

    # -- float32 matmul precision on accelerators (unigrad._precision) -------------------------
    def on_accelerator(self) -> bool:
        """Whether this framework may compute on a GPU (or other accelerator) in this process, where
        float32 matmuls can be rounded to TF32; ``False`` means every float32 matmul is full."""
        return False

    def float32_matmul_precision(self) -> str:
        """This framework's current float32 matmul precision on an accelerator: ``'highest'``
        (full float32), ``'high'`` (TF32-class) or ``'medium'`` (bfloat16-class)."""
        return "highest"

    def matmul_precision_scope(self, level: str) -> Callable[[], AbstractContextManager[Any]] | None:
        """A factory of a thread-local context computing float32 matmuls at ``level`` or better, or
        ``None`` when this framework's setting is process-global (unigrad then warns instead)."""
        return None

    def precision_hint(self) -> str:
        """How a user raises this framework's float32 matmul precision for the whole program."""
        return "see the framework's documentation on TF32"

    # -- moving arrays between frameworks ------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy view or copy of ``x`` (on the host)."""
        raise NotImplementedError

    def buffer_address(self, x: Any) -> int | None:
        """The address of ``x``'s first element in its device's memory, or ``None`` when unknown.

        Lets a framework with alignment requirements (TensorFlow) decide whether it can share the
        buffer through DLPack or must copy it.
        """
        return None

    def dlpack_source(self, x: Any) -> Any:
        """An object (or capsule) other frameworks' ``from_dlpack`` accepts, for zero-copy exchange."""
        return x

    def from_numpy(self, array: np.ndarray) -> Any:
        """An array of this framework holding ``array``'s values and dtype."""
        raise NotImplementedError

    def from_dlpack(self, source: Any) -> Any:
        """Import a DLPack source (see :meth:`dlpack_source`) without copying when possible."""
        raise NotImplementedError

    def from_foreign(self, x: Any, origin: Adapter) -> Any:
        """Convert ``x``, an array of ``origin``'s framework, into this framework.

        Tries DLPack first (zero-copy where both frameworks allow it) and falls back to a NumPy
        round trip, which always works for the dtypes NumPy knows.
        """
        if origin.name == "numpy":
            return self.from_numpy(x)
        try:
            return self.from_dlpack(origin.dlpack_source(x))
        except Exception:  # noqa: BLE001 - any DLPack refusal means: take the copying route
            return self.from_numpy(origin.to_numpy(x))

    def importer_from(self, origin: Adapter) -> Callable[[Any], Any]:
        """A function converting ``origin``'s arrays into this framework, as :meth:`from_foreign`
        does: for NumPy arrays straight :meth:`from_numpy` (one Python call less per leaf; an
        override of ``from_foreign`` must treat NumPy arrays as ``from_numpy`` does)."""
        if origin.name == "numpy":
            return self.from_numpy
        return functools.partial(_from_foreign, self.from_foreign, origin)

    def match(self, x: Any, like: Any) -> Any:
        """``x`` cast to the dtype and moved to the device of ``like`` (both of this framework)."""
        raise NotImplementedError

    def restore(self, x: Any, origin: Adapter, like: Any) -> Any:
        """``x``, an array of ``origin``'s framework, as an array of this framework like ``like``
        (its dtype and device): how a gradient goes back to its parameter's framework."""
        return self.match(self.from_foreign(x, origin), like)

    # -- differentiation -------------------------------------------------------------------------
    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        """Differentiate ``fn(leaves)`` with respect to every leaf.

        Args:
            fn: takes the list of (aliased) leaves and returns what the user's loss function returned.
            leaves: floating arrays of this framework.
            finish: splits ``fn``'s output into ``(loss, aux)`` and validates the loss; raises on bad
                output. Must be called on the output inside the differentiated region.

        Returns:
            ``(loss, aux, grads)``: the loss detached from any graph, the aux output with its arrays
            detached, and one gradient per leaf with the leaf's dtype and device (zeros for leaves
            the loss does not depend on).
        """
        raise NotImplementedError

    def prepare_data_leaf(self, x: Any) -> Any:
        """Hook applied to data leaves of this framework before the call (identity by default).

        Applied to this framework's own data leaves whenever the data is flattened (calls with
        ``backend=``, or with a :meth:`data_preparer`), and to converted leaves when
        :meth:`data_preparer` returns it.
        """
        return x

    def data_preparer(self) -> Callable[[Any], Any] | None:
        """What this call must do to each data leaf converted into this framework, and whether native
        data must be flattened at all: usually :meth:`prepare_data_leaf`, or ``None`` when nothing
        (the default).

        Asked once per call: the answer may depend on a mode (PyTorch's inference mode). Data is
        flattened only for calls with ``backend=`` (to convert foreign leaves) or with a preparer.
        """
        return None

    def detach(self, x: Any) -> Any:
        """``x`` without autodiff history (identity where arrays carry none)."""
        return x

    # -- devices, for the conformance runner and ``unigrad info`` (unigrad.conformance.devices) ---
    # PyTorch, TensorFlow and JAX are handled there; a newer backend answers here instead.
    def available_devices(self) -> list[str]:
        """Device names this backend computes on here: ``'cpu'`` first, then ``'gpu'``, ``'gpu:1'``..."""
        return ["cpu"]

    def place(self, values: np.ndarray, dtype: str | None, device: str) -> Any:
        """``values`` as an array of this framework on ``device``, cast to ``dtype`` (a dtype name)
        when given; integer and boolean values keep their dtype (the caller passes ``None``)."""
        raise NotImplementedError

    def settings(self, devices: list[str]) -> str:
        """Precision settings worth showing in ``unigrad info`` for these devices (``''``: none)."""
        return ""

    def signature(self, x: Any) -> Hashable:
        """What a compiled step's cache key records of ``x``: type, shape, dtype and device."""
        return (type(x), self.shape(x), self.dtype_name(x), self.device_of(x))

    # -- transformations beyond the gradient (see unigrad._transforms) -------------------------------
    # Every ``fn`` below takes the flat list of parameter leaves; results are flat lists too. Nesting
    # (``jacobian[output][param]``) follows JAX: outer index = output leaf, inner = parameter leaf.
    def jvp(self, fn: FlatFn, leaves: list[Any], tangents: list[Any]) -> tuple[list[Any], list[Any]]:
        """Forward mode: ``(fn(leaves), J @ tangents)``, one output tangent per output leaf."""
        raise self._unsupported("jvp")

    def vjp(self, fn: FlatFn, leaves: list[Any]) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        """Reverse mode: ``(fn(leaves), pullback)``; ``pullback(cotangents)`` gives one array per leaf."""
        raise self._unsupported("vjp")

    def jacobian(self, fn: FlatFn, leaves: list[Any]) -> list[list[Any]]:
        """``J[i][j]`` of shape ``out_i.shape + leaf_j.shape``."""
        raise self._unsupported("jacobian")

    def hessian(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> list[list[Any]]:
        """``H[i][j]`` of shape ``leaf_i.shape + leaf_j.shape``; ``finish`` validates the scalar loss."""
        raise self._unsupported("hessian")

    def hvp(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], vector: list[Any], finish: OutputCheck
    ) -> list[Any]:
        """The Hessian-vector product ``H @ vector``, one array per leaf, without forming ``H``."""
        raise self._unsupported("hvp")

    def per_example_grads(
        self, fn: ExampleFn, leaves: list[Any], batch: list[Any], finish: OutputCheck
    ) -> list[Any]:
        """Gradients of ``fn(leaves, example)`` for each slice along axis 0 of the ``batch`` arrays.

        Returns one array per leaf, of shape ``(batch_size,) + leaf.shape``.
        """
        raise self._unsupported("per_example_grads")

    def compile(
        self, fn: StepFn, param_leaves: list[Any], data_leaves: list[Any], options: Mapping[str, Any]
    ) -> StepFn:
        """``fn`` compiled for inputs with the signatures of ``param_leaves`` and ``data_leaves``.

        Called once per cache key of a compiled step (see unigrad._compiled), so the result never
        needs to handle other shapes. The default runs ``fn`` as it is.
        """
        return fn

    def compile_trees(
        self, fn: Callable[[Any, Any], tuple[Any, Any]], options: Mapping[str, Any]
    ) -> Callable[[Any, Any], tuple[Any, Any]]:
        """``fn(params, data)`` compiled once for inputs of every shape and dtype, taking the pytrees
        as they are (only where :attr:`compiler_keys_shapes`)."""
        raise self._unsupported("compile_trees")

    def compiler_flatten(self, tree: Any) -> tuple[list[Any], Hashable]:
        """``tree``'s leaves and treedef as :meth:`compile_trees`' compiler sees them."""
        raise self._unsupported("compiler_flatten")

    def concat_flat(self, arrays: list[Any]) -> Any:
        """``arrays`` (of one dtype) raveled and joined into one 1-D array, inside a compiled step
        (only where :attr:`compiler_keys_shapes`)."""
        raise self._unsupported("concat_flat")

    def _unsupported(self, transform: str) -> UnsupportedTransformError:
        others = [name for name in self.framework_names if name != self.name]
        return UnsupportedTransformError(
            f"backend {self.name!r} does not implement {transform}: use {listed(others, quoted=True)}"
        )


def listed(names: list[str], quoted: bool = False) -> str:
    """``names`` as an error message lists them: ``"torch, tensorflow, jax or mlx"``.

    Example:
        >>> listed(["torch", "jax", "numpy"], quoted=True)
        "'torch', 'jax' or 'numpy'"
    """
    shown = [repr(name) if quoted else name for name in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def example_loss(fn: ExampleFn, finish: OutputCheck, as_scalar: Callable[[Any], Any]) -> ExampleFn:
    """``fn``'s loss of one example, validated by ``finish`` and given shape ``()`` by ``as_scalar``: what
    a framework's per-example transform (``vmap`` of ``grad``) differentiates."""

    def loss_of_example(params: list[Any], example: list[Any]) -> Any:
        loss, _ = finish(fn(params, example))
        return as_scalar(loss)

    return loss_of_example


def split_arrays(
    tree: Any, is_array: Callable[[Any], bool]
) -> tuple[dict[int, Any], Callable[[dict[int, Any]], Any]]:
    """The array leaves of ``tree`` by position, and a function putting (transformed) arrays back.

    Transformations (``jax.jit``, ``torch.func.grad``'s aux, ``tf.function``) only carry arrays; the
    other leaves (strings, numbers, NumPy arrays) cannot depend on the inputs and are carried around
    them unchanged by the returned function.
    """
    leaves, treedef = _tree.flatten(tree, "aux")
    arrays = {index: leaf for index, leaf in enumerate(leaves) if is_array(leaf)}

    def rebuild(new_arrays: dict[int, Any]) -> Any:
        return treedef.unflatten([new_arrays.get(index, leaf) for index, leaf in enumerate(leaves)])

    return arrays, rebuild


def _from_foreign(from_foreign: Callable[[Any, Adapter], Any], origin: Adapter, x: Any) -> Any:
    return from_foreign(x, origin)
