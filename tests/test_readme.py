"""The README's example runs as written (it is the first thing a new user copies)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from conftest import require

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_its_gradients_agree() -> None:
    require("torch", "jax")
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README.md has no python example"
    namespace: dict = {}
    exec(compile(block.group(1), str(README), "exec"), namespace)
    grads, grads_np = namespace["grads"], namespace["grads_np"]
    assert set(grads) == set(grads_np) == {"w", "b"}
    for name in grads:
        assert isinstance(grads_np[name], np.ndarray) and grads_np[name].dtype == np.float32
        np.testing.assert_allclose(grads[name].numpy(), grads_np[name], rtol=1e-5, atol=1e-6)
