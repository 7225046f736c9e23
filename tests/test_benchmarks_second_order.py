"""Smoke test of ``benchmarks/second_order.py``: its contenders compute the same products, its rows
are well formed, and its section of the page is replaced in place. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conftest import require  # noqa: E402

from benchmarks import second_order  # noqa: E402
from benchmarks._results import Result  # noqa: E402


def as_numpy(x: object) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


@pytest.mark.parametrize("compiled", [False, True])
def test_contenders_agree(backend: str, compiled: bool) -> None:
    if backend not in ("torch", "tensorflow", "jax"):  # as second_order.hvp_rows (a pending row there)
        pytest.skip(f"benchmarks/second_order.py has no hand-written HVP for {backend} yet")
    if compiled and backend == "torch":
        pytest.skip("torch.compile of two contenders takes ~15 s; the eager torch case runs here")
    a, _, v = second_order._matrix_problem()
    want = -2 * a @ v
    for name, fn in second_order._contenders(backend, compiled).items():
        np.testing.assert_allclose(as_numpy(fn()), want, rtol=1e-10, err_msg=name)


def test_rows_and_section(tmp_path: Path) -> None:
    require("torch")
    rows = second_order.hvp_rows(("torch",), rounds=1, compiled=False) + second_order.numpy_path_rows(1)
    assert all(isinstance(row, Result) and row.met in (True, False) for row in rows)
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nother sections\n", encoding="utf-8")
    second_order.write_section(page, second_order.section(rows, 1, 1.0))
    second_order.write_section(page, second_order.section(rows, 1, 2.0))  # replaced, not appended
    text = page.read_text(encoding="utf-8")
    assert text.count(second_order.BEGIN) == 1 and "other sections" in text
    assert "| 8. hvp" in text and "| 10. NumPy path" in text
