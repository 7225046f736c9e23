"""Arrays of any framework as NumPy on the host: what every oracle and comparison in unigrad reads.

``reference_grad``, the conformance runner and ``unigrad.testing`` all compare in float64 NumPy; this
is the one place that converts for them (through each backend's adapter, so bfloat16 and GPU arrays
work the same way everywhere).

Example:
    >>> import numpy as np
    >>> from unigrad._host import tree_to_float64
    >>> tree_to_float64({"w": np.ones(2, np.float32), "labels": np.array([1, 0]), "name": "x"})
    {'w': array([1., 1.]), 'labels': array([1, 0]), 'name': 'x'}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unigrad import _tree
from unigrad.backends import (
    COMPLEX_DTYPES,
    FLOAT_DTYPES,
    backend_name_of,
    framework_backends,
    get_adapter,
    listed,
)


def to_float64(x: Any) -> np.ndarray:
    """Any framework's array (bfloat16 and accelerator arrays included) as float64 NumPy on the host.

    Raises:
        TypeError: ``x`` is no framework's array.
    """
    owner = backend_name_of(x)
    if owner is None:
        known = listed([*framework_backends(), "numpy"])
        raise TypeError(f"expected an array of {known}, got {type(x).__name__}")
    return np.asarray(get_adapter(owner).to_numpy(x), dtype=np.float64)


def tree_to_float64(tree: Any) -> Any:
    """``tree`` with floating array leaves as float64 NumPy, complex ones as complex128 NumPy, other
    array leaves as NumPy of their own dtype (labels stay integers), and every other leaf as it is."""

    def convert(leaf: Any) -> Any:
        owner = backend_name_of(leaf)
        if owner is None:
            return leaf
        adapter = get_adapter(owner)
        host = adapter.to_numpy(leaf)
        name = adapter.dtype_name(leaf)
        if name in FLOAT_DTYPES:
            return np.asarray(host, dtype=np.float64)
        if name in COMPLEX_DTYPES:
            return np.asarray(host, dtype=np.complex128)
        return np.asarray(host)

    return _tree.tree_map(convert, tree)
