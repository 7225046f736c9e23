"""The guaranteed namespace on TensorFlow, with NumPy / Array API semantics: the whole, assembled.

array-api-compat does not cover TensorFlow, so the shim implements the standard names on top of
``tf``, ``tf.math``, ``tf.linalg`` and ``tf.signal``, one module per job: this one (the assembly
and the dtypes), ``_tensorflow_creation``, ``_tensorflow_elementwise``, ``_tensorflow_reductions``
(reductions, scans, sorting, searching), ``_tensorflow_manipulation``, ``_tensorflow_linalg``,
``_tensorflow_fft``, and ``_tensorflow_base`` (what they share). It never switches on
TensorFlow's global NumPy behaviour (``tf.experimental.numpy.experimental_enable_numpy_behavior``):
raw tensors keep TensorFlow's own rules, only these functions follow NumPy's. Where TensorFlow
differs, the functions bridge the gap:

* functions of several arrays promote mixed floating dtypes (float32 with float64 gives float64)
  and treat Python scalars as having the array's dtype, as the Array API does;
* ``matmul`` accepts vector operands and broadcasts batch dimensions, ``linalg.solve`` takes a
  vector or a matrix right-hand side and broadcasts batch dimensions;
* ``var`` / ``std`` take ``correction`` (default 0), ``take`` / ``take_along_axis`` count negative
  indices from the end, ``where`` broadcasts, ``clip`` takes either bound or both; ``tile``,
  ``roll``, ``repeat``, ``sort`` and ``cumulative_prod`` follow NumPy (the latter with a correct
  gradient at zeros, where TensorFlow's own is wrong); the ``fft`` functions take ``n`` / ``s``,
  any ``axis`` / ``axes`` and ``norm``.

Creation functions take the Array API's ``device=`` (a device string such as ``x.device`` or
``'/GPU:1'``) and create under ``tf.device``; without one, ``asarray`` of a tensor and
``zeros_like`` / ``ones_like`` / ``full_like`` keep their argument's device (TensorFlow alone would
use its default device), the others use TensorFlow's placement (``tf.device`` blocks included).

Default dtypes stay TensorFlow's: ``zeros(3)``, ``asarray(1.5)`` and ``linspace(0, 1, 5)`` are
float32, ``arange(3)`` and ``full(2, 1)`` are int32. These modules import TensorFlow, so they are
only imported once a TensorFlow array has been seen. Functions are named as in the standard, so
``abs``, ``sum``, ``max``, ``min``, ``round``, ``all``, ``any`` and ``pow`` shadow the builtins in
the shim's modules.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import tensorflow as tf

from unigrad._namespace import _tensorflow_creation as creation
from unigrad._namespace import _tensorflow_elementwise as elementwise
from unigrad._namespace import _tensorflow_fft as fourier
from unigrad._namespace import _tensorflow_linalg as linear_algebra
from unigrad._namespace import _tensorflow_manipulation as manipulation
from unigrad._namespace import _tensorflow_reductions as reductions
from unigrad._namespace._names import gather


def functions(skip: Collection[str] = ()) -> dict[str, Callable[..., Any]]:
    """Every guaranteed function on TensorFlow but those in ``skip`` (the extras, built elsewhere)."""
    core = [creation, elementwise, reductions, manipulation, linear_algebra]
    return gather({"": core, "linalg": [linear_algebra], "fft": [fourier.FUNCTIONS]}, skip=skip)


DTYPES: dict[str, Any] = {
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
    "float32": tf.float32,
    "float64": tf.float64,
    "complex64": tf.complex64,
    "complex128": tf.complex128,
    "int32": tf.int32,
    "int64": tf.int64,
    "bool": tf.bool,
}
