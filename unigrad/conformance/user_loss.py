"""Load a user's loss (``module.path:function``) and its ``.npz`` inputs as a conformance case.

``unigrad check mypkg.losses:my_loss --params params.npz`` builds this case in the command line's
process, and each isolated worker (:mod:`unigrad.conformance.worker`) builds it again in its own, so
it lives here, below the command line; :class:`UsageError` too, which the command line turns into
exit code 2 (``unigrad.cli._errors`` re-exports it).

Example:
    >>> from unigrad.conformance.user_loss import UsageError, load_loss
    >>> load_loss("math:hypot")(3.0, 4.0)
    5.0
    >>> try:
    ...     load_loss("math.hypot")
    ... except UsageError as err:
    ...     print(err)
    unigrad check: loss must be given as module.path:function, got 'math.hypot'
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

import unigrad as ug
from unigrad.conformance.case import Case


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


#: Above this many parameter elements, finite differences (2 loss calls per element) are too slow;
#: the float64 result of the first backend becomes the reference instead.
MAX_FINITE_DIFFERENCE_ELEMENTS = 5000


def load_loss(target: str) -> Callable[..., Any]:
    """The function named by ``module.path:function`` (the current directory is importable)."""
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise UsageError(f"unigrad check: loss must be given as module.path:function, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise UsageError(
            f"unigrad check: cannot import {module_name!r}: {type(err).__name__}: {err}"
        ) from err
    loss = getattr(module, function_name, None)
    if not callable(loss):
        raise UsageError(f"unigrad check: {module_name!r} has no function {function_name!r}")
    return loss


def load_npz(path: str, what: str) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file as a dict (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: np.array(archive[name]) for name in archive.files}
    except FileNotFoundError:
        raise UsageError(f"unigrad check: {what} file {path!r} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UsageError(f"unigrad check: {what} file {path!r} is not a readable .npz: {err}") from None
    if not arrays:
        raise UsageError(f"unigrad check: {what} file {path!r} holds no arrays")
    return arrays


def _float64(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v for k, v in arrays.items()}


def user_case(target: str, params_path: str | None, data_path: str | None, backends: list[str]) -> Case:
    """A one-off :class:`Case` running the user's loss on the given inputs."""
    loss = load_loss(target)
    if params_path is None:
        raise UsageError("unigrad check: a user loss needs --params PATH.npz")
    params = _float64(load_npz(params_path, "params"))
    for name, value in params.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise UsageError(
                f"unigrad check: params[{name!r}] in {params_path!r} is {value.dtype}, not floating"
            )
    data = _float64(load_npz(data_path, "data")) if data_path else None

    def case_loss(p: Any, d: Any) -> Any:
        return loss(p) if d is None else loss(p, d)

    size = sum(math.prod(v.shape) for v in params.values())
    expected_grad = None
    reference_name = "finite differences"
    if size > MAX_FINITE_DIFFERENCE_ELEMENTS and backends:
        first = backends[0]
        reference_name = f"{first} float64"

        def expected_grad(p: Any, d: Any) -> Any:
            return (
                ug.grad(case_loss, p, d, backend=first)
                if d is not None
                else ug.grad(lambda q: case_loss(q, None), p, backend=first)
            )

    return Case(
        name=target.partition(":")[2],
        tags=("user",),
        loss=case_loss,
        inputs=lambda rng: (params, data),
        expected_grad=expected_grad,
        convention=reference_name if expected_grad else "",
        reference_name=reference_name,
    )
