"""What crosses the process boundary of an isolated conformance run: plain JSON, never pickle.

A worker sends each result as the flat list of its leaves (float64 values with their shape; a
complex leaf as its real and imaginary parts, two float64 lists); the parent puts them back into the
tree of the reference it computed itself, so no container type has to be described on the wire.
JSON's ``NaN`` / ``Infinity`` extension (Python's default) carries the non-finite gradients that kink
cases produce, and ``repr``-exact floats keep float64 (and complex128) bit for bit.

Example:
    >>> import numpy as np
    >>> leaves = decode_leaves(json.loads(json.dumps(encode_leaves({"w": np.array([1.5, np.nan])}))))
    >>> leaves[0]
    array([1.5, nan])
    >>> decode_leaves(json.loads(json.dumps(encode_leaves([np.array([1 - 2j])]))))[0]
    array([1.-2.j])
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from unigrad import _tree


def encode_leaves(tree: Any) -> list[dict[str, Any]]:
    """The leaves of a float64 result tree as JSON-ready records (``shape`` and flat ``values``, or
    flat ``real`` and ``imag`` for a complex leaf)."""
    records = []
    for leaf in _tree.flatten(tree)[0]:
        array = np.asarray(leaf)
        if array.dtype.kind == "c":
            flat = array.astype(np.complex128).ravel()
            records.append(
                {"shape": list(array.shape), "real": flat.real.tolist(), "imag": flat.imag.tolist()}
            )
        elif array.dtype.kind in "fiub":
            records.append({"shape": list(array.shape), "values": array.astype(np.float64).ravel().tolist()})
        else:  # a string or other non-numeric leaf of the result (none today): sent as its text
            records.append({"text": str(leaf)})
    return records


def decode_leaves(records: list[dict[str, Any]]) -> list[Any]:
    """The leaves :func:`encode_leaves` wrote, as float64 arrays (complex128 for complex leaves)."""
    return [_decode_leaf(record) for record in records]


def _decode_leaf(record: dict[str, Any]) -> Any:
    if "values" in record:
        return np.asarray(record["values"], dtype=np.float64).reshape(record["shape"])
    if "real" in record:
        # Parts assigned, not real + 1j * imag: 1j * inf would put a NaN in the real part.
        leaf = np.empty(len(record["real"]), dtype=np.complex128)
        leaf.real, leaf.imag = record["real"], record["imag"]
        return leaf.reshape(record["shape"])
    return record["text"]


def rebuild(records: list[dict[str, Any]], like: Any) -> Any:
    """The result tree: the decoded leaves in the structure of ``like`` (the reference).

    Raises:
        ValueError: the worker sent another number of leaves than the reference has.
    """
    leaves = decode_leaves(records)
    reference_leaves, treedef = _tree.flatten(like)
    if len(leaves) != len(reference_leaves):
        raise ValueError(f"the result has {len(leaves)} leaves, the reference {len(reference_leaves)}")
    return treedef.unflatten(leaves)


def dumps(message: dict[str, Any]) -> str:
    """One message as one line of JSON."""
    return json.dumps(message, separators=(",", ":"))


def loads(line: str) -> dict[str, Any]:
    """One message from one line of JSON."""
    return json.loads(line)
