"""Assembling one backend's guaranteed functions and dtypes, the first time its namespace is asked for.

PyTorch, JAX and NumPy: array-api-compat's namespace for the backend, with the corrections and the
extras of ``_extras``. TensorFlow and MLX, which array-api-compat does not cover: the shim module
``unigrad._namespace._<backend>``, which has ``functions(skip)`` (every guaranteed function but
those in ``skip``) and ``DTYPES``; adding such a backend means adding that module, nothing here.
Either way the ``linalg`` aliases of core names (``linalg.matmul``...) are the core function itself.
This module is imported only when a namespace is built; it imports the backend's framework.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from unigrad._namespace._extras import corrections_for, extras_for
from unigrad._namespace._names import DTYPE_NAMES, GUARANTEED, LINALG_ALIASES
from unigrad.backends import get_adapter

_ALIASED = frozenset(f"linalg.{alias}" for alias in LINALG_ALIASES)


def functions_and_dtypes(owner: str, leaf: Any) -> tuple[dict[str, Callable[..., Any]], dict[str, Any]]:
    """Every guaranteed function of backend ``owner`` by name, and its dtypes by name.

    ``leaf`` is an array of the backend (``None`` when it was asked for by name).
    """
    extras = extras_for(owner)
    shim = _shim(owner)
    if shim is not None:
        functions = {**shim.functions(skip=extras), **extras}
        dtypes = dict(shim.DTYPES)
    else:
        import array_api_compat

        if leaf is None:  # asked for by name: any array of the framework tells array-api-compat
            import numpy as np

            leaf = get_adapter(owner).from_numpy(np.zeros(0, np.float32))
        module = array_api_compat.array_namespace(leaf)
        dtypes = {name: getattr(module, name) for name in DTYPE_NAMES if hasattr(module, name)}
        if owner == "numpy" and "bfloat16" not in dtypes and importlib.util.find_spec("ml_dtypes"):
            import ml_dtypes

            dtypes["bfloat16"] = ml_dtypes.bfloat16
        skipped = {*extras, *_ALIASED}
        functions = {name: _lookup(module, name) for name in GUARANTEED if name not in skipped}
        functions.update(corrections_for(owner, module))
        functions.update(extras)
    for alias in LINALG_ALIASES:  # one function under both names, corrections included
        functions[f"linalg.{alias}"] = functions[alias]
    return functions, dtypes


def _shim(owner: str) -> Any:
    """``unigrad._namespace._<owner>`` for a framework array-api-compat does not cover, else ``None``."""
    name = f"unigrad._namespace._{owner}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def _lookup(module: Any, dotted: str) -> Callable[..., Any]:
    target = module
    for part in dotted.split("."):
        target = getattr(target, part)
    return target
