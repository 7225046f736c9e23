"""The examples in public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest
from conftest import require

# module -> frameworks its examples use
MODULES = {
    "unigrad": ["torch"],
    "unigrad._api": ["torch"],
    "unigrad._compiled": ["torch"],
    "unigrad._convert": ["torch"],
    "unigrad._compiled_hvp": ["torch"],
    "unigrad._reusable": [],
    "unigrad._transforms": ["torch", "tensorflow", "jax"],
    "unigrad._matching": [],
    "unigrad.conformance.transforms": [],
    "unigrad.conformance.transform_cases": [],
    "unigrad._errors": [],
    "unigrad._complex": [],
    "unigrad.backends._numpy": [],
    "unigrad.backends._mlx": ["mlx"],
    "unigrad._namespace._mlx": ["mlx"],
    "unigrad.conformance.cases.mlx_differences": [],
    "unigrad._tree": [],
    "unigrad._host": [],
    "unigrad._namespace": [],
    "unigrad.conformance": [],
    "unigrad.conformance.case": [],
    "unigrad.conformance.compare": [],
    "unigrad.conformance.devices": [],
    "unigrad.conformance.report_text": [],
    "unigrad.conformance.results": [],
    "unigrad.conformance.tolerances": [],
    "unigrad.conformance.known_differences": [],
    "unigrad.conformance.subgradients": [],
    "unigrad.conformance.wire": [],
    "unigrad.conformance.pool": [],
    "unigrad.conformance.isolated": [],
    "unigrad.conformance.worker": [],
    "unigrad.conformance.gradients": [],
    "unigrad.conformance.user_loss": [],
    "unigrad.backends": [],
    "unigrad.backends._gpu_memory": [],
    "unigrad.backends._base": [],
    "unigrad._precision": [],
    "unigrad.backends._torch_devices": ["torch"],
    "unigrad.backends._torch_autograd": ["torch"],
    "unigrad.backends._tensorflow_tape": ["tensorflow"],
    "unigrad.backends._own_thread": [],
    "unigrad._dispatch": ["torch"],
    "unigrad._plan": ["torch"],
    "unigrad._leaves": [],
    "unigrad._validate": [],
    "unigrad.conformance.drift": [],
    "unigrad.conformance.transform_case": ["torch"],
    "unigrad.demo": [],
    "unigrad.distributed": ["torch"],
    "unigrad.distributed._batch": [],
    "unigrad.distributed._torch": ["torch"],
    "unigrad.distributed._jax": ["jax"],
    "unigrad.distributed._tensorflow": ["tensorflow"],
    "unigrad.distributed._launch": [],
    "unigrad.distributed._worker": [],
    "unigrad.distributed._job": [],
    "unigrad.distributed.cases": [],
    "unigrad.cli._data_parallel": [],
    "unigrad.fuzz": ["torch"],  # and Hypothesis (the test extra)
    "unigrad.fuzz.campaign": ["torch"],
    "unigrad.fuzz.evaluate": ["torch"],
    "unigrad.fuzz.generator": ["torch"],
    "unigrad.fuzz.op_table": ["torch"],
    "unigrad.fuzz.parallel": ["torch"],
    "unigrad.fuzz.program": ["torch"],
    "unigrad.fuzz.reference": ["torch"],
    "unigrad.fuzz.report": ["torch"],
    "unigrad.fuzz.reproducer": ["torch"],
    "unigrad.fuzz.runner": ["torch"],
    "unigrad.fuzz.shrink": ["torch"],
}


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_docstring_examples(module_name: str) -> None:
    require(*MODULES[module_name])
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module_name} has no examples"
    assert result.failed == 0
