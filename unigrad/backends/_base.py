"""The protocol every backend adapter implements, and what is the same for all of them.

An adapter knows how to differentiate a function of a flat list of leaves on its framework and how to
move arrays in and out of it. Everything else (pytrees, validation, dispatch) lives in the core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

#: dtype names that can be differentiated, as every backend spells them.
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})

#: ``finish(out) -> (loss, aux)``: splits and validates what the loss function returned.
OutputCheck = Callable[[Any], tuple[Any, Any]]


class Adapter:
    """Base class of the per-framework adapters (one instance per backend)."""

    name: ClassVar[str]

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

    # -- moving arrays between frameworks ------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy view or copy of ``x`` (on the host)."""
        raise NotImplementedError

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

    def match(self, x: Any, like: Any) -> Any:
        """``x`` cast to the dtype and moved to the device of ``like`` (both of this framework)."""
        raise NotImplementedError

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
        """Hook applied to data leaves of this framework before the call (identity by default)."""
        return x

    def detach(self, x: Any) -> Any:
        """``x`` without autodiff history (identity where arrays carry none)."""
        return x
