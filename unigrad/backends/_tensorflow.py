"""TensorFlow adapter: one non-persistent ``tf.GradientTape`` per call, watching exactly the params.

``watch_accessed_variables=False`` keeps variables the loss reads from elsewhere (a Keras layer
captured by closure) out of the gradient, so the result matches the other backends: gradients with
respect to ``params`` only. Unconnected leaves get zeros and ``IndexedSlices`` come back dense.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad.backends._base import Adapter, OutputCheck


class TensorFlowAdapter(Adapter):
    name = "tensorflow"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, (tf.Tensor, tf.Variable))

    def dtype_name(self, x: Any) -> str:
        return x.dtype.name

    def device_of(self, x: Any) -> str:
        device = x.device or "cpu"
        return tf.DeviceSpec.from_string(device).device_type.lower() if ":" in device else device

    def version(self) -> str:
        return str(tf.__version__)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.numpy()

    def dlpack_source(self, x: Any) -> Any:
        return tf.experimental.dlpack.to_dlpack(tf.convert_to_tensor(x))

    def from_numpy(self, array: np.ndarray) -> Any:
        return tf.convert_to_tensor(array)

    def from_dlpack(self, source: Any) -> Any:
        capsule = source.__dlpack__() if hasattr(source, "__dlpack__") else source
        return tf.experimental.dlpack.from_dlpack(capsule)

    def match(self, x: Any, like: Any) -> Any:
        with tf.device(like.device or "/cpu:0"):
            return tf.identity(tf.cast(x, like.dtype))

    def value_and_grad(
        self, fn: Callable[[list[Any]], Any], leaves: list[Any], finish: OutputCheck
    ) -> tuple[Any, Any, list[Any]]:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(leaves)
            loss, aux = finish(fn(leaves))
        grads = tape.gradient(loss, leaves, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        del tape  # release the recorded graph now rather than at the next garbage collection
        dense = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return loss, aux, dense


ADAPTER = TensorFlowAdapter()
