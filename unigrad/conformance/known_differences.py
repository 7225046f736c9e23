"""Write the "Known differences" docs page from measured choices at kinks, ties and bounds.

Run ``python -m unigrad.conformance.known_differences docs/known-differences.md`` (optionally
``--backends torch,jax``). It evaluates each documented case at float64 on the CPU with the backends
given, records each backend's gradients under its framework version in ``kink_choices.json`` (next
to this module; the other backends' and versions' records are kept), and renders the page from that
file: per case the convention, the valid set of each element, and what each backend returns with the
newest version measured, plus the choices of older versions where they differ. Running it in two
environments (say torch 2.13 and torch 2.14) therefore documents both.

``kink_choices.json`` holds ``case → {"inputs": {path: values}, "grads": {backend → {version →
{path: values}}}}``, values as nested lists (``"nan"``, ``"inf"``, ``"-inf"`` as strings, to stay
JSON); a case whose inputs changed forgets its records.

Example:
    >>> from unigrad.conformance.known_differences import format_value, version_key
    >>> format_value(float("nan")), format_value(0.5)
    ('nan', '0.5')
    >>> sorted(["2.9.0", "2.13.0", "2.10.1"], key=version_key)
    ['2.9.0', '2.10.1', '2.13.0']
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import unigrad as ug
from unigrad import _tree
from unigrad.conformance.case import Case
from unigrad.conformance.cases import CASES
from unigrad.conformance.devices import strict_precision
from unigrad.conformance.gradients import evaluate, reference
from unigrad.conformance.subgradients import (
    EXACT,
    Subdifferential,
    format_value,
    framework_version,
    release,
    valid_set_of,
)

#: Where measured choices are kept (shipped in the wheel with the package).
CHOICES_PATH = Path(__file__).with_name("kink_choices.json")

#: Column order on the page; backends not listed here follow, sorted.
BACKEND_ORDER = ("torch", "tensorflow", "jax")

__all__ = ["CHOICES_PATH", "documented_cases", "format_value", "main", "record", "render", "version_key"]


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a version string by its release numbers (``'2.10.1'`` after ``'2.9.0'``)."""
    return tuple(int(part) for part in re.findall(r"\d+", release(version)))


def documented_cases() -> list[Case]:
    """The cases the page covers: kinks and ties with a stated convention, and declared differences.

    Not yet the op table's cases (tag ``op``): their differences are stated in the table's rows.
    """
    return [
        case
        for case in CASES
        if "op" not in case.tags
        and (
            ("kink" in case.tags and (case.expected_grad is not None or case.valid_grads is not None))
            or case.known_differences
        )
    ]


def _encode(values: Any) -> Any:
    if isinstance(values, list):
        return [_encode(v) for v in values]
    return values if np.isfinite(values) else format_value(values)


def _decode(values: Any) -> np.ndarray:
    raw = np.asarray(values, dtype=object)
    return np.frompyfunc(float, 1, 1)(raw).astype(np.float64) if raw.size else raw.astype(np.float64)


def _by_path(tree: Any, root: str) -> dict[str, Any]:
    if tree is None:
        return {}
    leaves = _tree.flatten(tree)[0]
    return {
        path: _encode(np.asarray(leaf, np.float64).tolist())
        for path, leaf in zip(_tree.leaf_paths(tree, root), leaves, strict=True)
    }


def load_choices(path: Path = CHOICES_PATH) -> dict[str, Any]:
    """The recorded choices (``{}`` when the file does not exist yet)."""
    return json.loads(path.read_text()) if path.exists() else {}


def record(choices: dict[str, Any], backends: Sequence[str]) -> dict[str, Any]:
    """Measure every documented case on ``backends`` (float64, CPU) and record it under each version.

    Other backends and versions keep their records; cases no longer documented are dropped.
    """
    cases = documented_cases()
    for stale in set(choices) - {case.name for case in cases}:
        del choices[stale]
    with strict_precision(list(backends)):
        for case in cases:
            params, data = case.make_inputs(seed=0)
            inputs = {**_by_path(params, "params"), **_by_path(data, "data")}
            entry = choices.setdefault(case.name, {"inputs": inputs, "grads": {}})
            if entry["inputs"] != inputs:  # the case changed: old measurements no longer apply
                entry.update(inputs=inputs, grads={})
            for backend in backends:
                outcome = evaluate(case, backend, "cpu", "float64", params, data)
                measured = {"error": outcome.error} if outcome.error else _by_path(outcome.grads, "params")
                version = release(framework_version(backend))
                entry["grads"].setdefault(backend, {})[version] = measured
    return choices


def save_choices(choices: Mapping[str, Any], path: Path = CHOICES_PATH) -> None:
    """Write ``choices`` as stable, diff-friendly JSON: one line per leaf's values."""
    path.write_text(_dumps(choices, "") + "\n")


def _dumps(value: Any, indent: str) -> str:
    if not isinstance(value, Mapping):
        return json.dumps(value)  # a leaf's values (or an error message) on one line
    inner = indent + " "
    items = [f"{inner}{json.dumps(key)}: {_dumps(value[key], inner)}" for key in sorted(value)]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"


def _ordered_backends(choices: Mapping[str, Any]) -> list[str]:
    found = {backend for entry in choices.values() for backend in entry["grads"]}
    return [b for b in BACKEND_ORDER if b in found] + sorted(found - set(BACKEND_ORDER))


def _versions(choices: Mapping[str, Any], backend: str) -> list[str]:
    """Every version of ``backend`` measured, newest first."""
    found = {v for entry in choices.values() for v in entry["grads"].get(backend, {})}
    return sorted(found, key=version_key, reverse=True)


def _elements(values: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in index) for index in np.ndindex(values.shape)]


def _version_changes(path_values: dict[str, dict[str, np.ndarray]], backend: str) -> str:
    """``"torch 2.14.1: 0 at p[0], p[1]; 2.13.0: 1"`` where versions differ, else ``""``."""
    versions = sorted(path_values, key=version_key, reverse=True)
    newest = path_values[versions[0]]
    changed = []
    for path, values in newest.items():
        for element in _elements(values):
            others = [path_values[v].get(path) for v in versions[1:]]
            if any(
                o is not None and not np.isclose(o[element], values[element], equal_nan=True) for o in others
            ):
                changed.append((path, element))
    if not changed:
        return ""
    parts = []
    for version in versions:
        groups: dict[str, list[str]] = {}
        for path, element in changed:
            values = path_values[version].get(path)
            shown = "not measured" if values is None else format_value(float(values[element]))
            groups.setdefault(shown, []).append(f"`{path}{''.join(f'[{i}]' for i in element)}`")
        if version != versions[0] and len(groups) == 1:
            parts.append(f"{version}: {next(iter(groups))}")
        else:
            parts.append(f"{version}: " + ", ".join(f"{v} at {', '.join(w)}" for v, w in groups.items()))
    return f"- **{backend}** changed its choice: " + "; ".join(parts)


def _conditions(valid: Subdifferential) -> list[str]:
    """The valid set's conditions across elements, in words."""

    def terms(weights: Any) -> list[str]:
        found = []
        for path, leaf in zip(_tree.leaf_paths(weights), _tree.flatten(weights)[0], strict=True):
            leaf = np.asarray(leaf, np.float64)
            for element in _elements(leaf):
                if leaf[element]:
                    weight = "" if leaf[element] == 1 else f"{format_value(leaf[element])}·"
                    found.append(f"{weight}`{path}{''.join(f'[{i}]' for i in element)}`")
        return found

    lines = [f"- valid only if {' + '.join(terms(c.weights))} = {format_value(c.total)}" for c in valid.sums]
    lines += [
        f"- valid only if ‖({', '.join(terms(c.weights))})‖₂ ≤ {format_value(c.radius)} (nan is not)"
        for c in valid.norms
    ]
    return lines


def _case_section(case: Case, entry: Mapping[str, Any], backends: Sequence[str]) -> list[str]:
    params, data = case.make_inputs(seed=0)
    _, ref_grads, ref_name = reference(case, params, data)
    valid = valid_set_of(case, (params, data))
    lines = [f"## `{case.name}`", ""]
    if case.convention:
        lines += [f"Convention ({ref_name}): {case.convention}.", ""]
    notes = [f"- **{', '.join(d.backends)}**: {d.reason}" for d in case.known_differences]
    notes += _conditions(valid) if valid is not None else []
    measured: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for backend in backends:
        by_version = entry["grads"].get(backend, {})
        measured[backend] = {
            version: {path: _decode(values) for path, values in grads.items() if path != "error"}
            for version, grads in by_version.items()
        }
        if len(measured[backend]) > 1:
            notes.append(_version_changes(measured[backend], backend))
        notes += [f"- error on {backend} {v}: {g['error']}" for v, g in by_version.items() if "error" in g]
    notes = [note for note in notes if note]
    lines += [*notes, ""] if notes else []
    newest = {b: sorted(measured[b], key=version_key)[-1] if measured[b] else None for b in backends}
    header = ["parameter", "input", "valid", "convention"]
    header += [f"{b} {newest[b]}" if newest[b] else b for b in backends]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sets = _tree.flatten(valid.elements)[0] if valid is not None else None
    paths = _tree.leaf_paths(params)
    for leaf_index, (path, values, ref) in enumerate(
        zip(paths, _tree.flatten(params)[0], _tree.flatten(ref_grads)[0], strict=True)
    ):
        values, ref = np.asarray(values), np.asarray(ref, np.float64)
        columns = []
        for backend in backends:
            got = measured[backend].get(newest[backend] or "", {}).get(path)
            valid_here = sets[leaf_index].contains(got) if sets is not None and got is not None else None
            columns.append((got, valid_here))
        for element in _elements(values):
            described = sets[leaf_index].describe(element, values.shape) if sets is not None else "—"
            row = [f"`{path}{''.join(f'[{i}]' for i in element)}`"]
            row += [format_value(float(values[element])), described, format_value(float(ref[element]))]
            row += [
                "—" if got is None else _mark(float(got[element]), float(ref[element]), valid_here, element)
                for got, valid_here in columns
            ]
            lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _mark(value: float, want: float, valid: np.ndarray | None, element: tuple[int, ...]) -> str:
    """Plain: the convention; **bold**: another valid value; **bold**†: outside the valid set."""
    if np.isclose(value, want, rtol=EXACT.rtol, atol=EXACT.atol, equal_nan=True):
        return format_value(value)
    inside = valid is not None and bool(valid[element])
    return f"**{format_value(value)}**" + ("" if inside else "†")


HEADER = """\
# Known differences

Where a function has a kink, a tie or a bound, every value of its subdifferential is a correct
gradient, and frameworks do not always pick the same one, nor keep their pick from one release to
the next. unigrad does **not** change what a framework computes: it records each choice. Every case
below is in the conformance catalogue (tag `kink`). The **valid** column is the set of correct
gradients of each element (ties also share one unit of gradient, listed under the case); the
**convention** column is the value unigrad compares with first. In the backend columns, plain
values follow the convention, **bold** ones are another valid choice (the suite reports them as
`known`, naming the framework version), and **bold**† ones lie outside the valid set (declared
differences, such as nan where a finite gradient exists; anything else outside it fails the suite).

{generated}

## Complex parameters: the one convention unigrad changes

For a real loss of a complex parameter `z = x + iy`, PyTorch and TensorFlow return
`∂L/∂x + i·∂L/∂y`, the direction of steepest ascent, so `z - lr * g` descends. JAX's `grad`
returns its complex conjugate, `∂L/∂x - i·∂L/∂y`, as its Autodiff Cookbook documents (the
convention under which the gradient of a holomorphic function is its complex derivative). Here
unigrad *does* change what a framework returns: it conjugates JAX's results for complex leaves
(`grad`, `value_and_grad`, compiled steps, `vjp`, `jacobian`, `hvp`, `per_example_grads`), so every
backend returns `∂L/∂x + i·∂L/∂y`. The conformance cases tagged `complex` check it against finite
differences taken on the real and imaginary parts separately, with no declared difference; see
[Complex parameters](complex.md) for what `jvp` and `hvp` mean there and why `hessian` refuses them.

## Float32 matrix products on GPUs (TF32)

On Ampere and later NVIDIA GPUs a framework may round the inputs of float32 matrix products to TF32
(10 mantissa bits instead of 23). The defaults differ: PyTorch computes them in full float32
(`torch.get_float32_matmul_precision() == "highest"`), JAX uses TF32-class products unless told
otherwise (`jax_default_matmul_precision`), TensorFlow turns TF32 on
(`tf.config.experimental.tensor_float_32_execution_enabled()`). Measured on an NVIDIA H200 (torch
2.11.0+cu130, JAX 0.11.2), the gradient of a float32 MLP loss, maximum relative error against a
float64 reference:

| computed by | setting | max relative error |
|---|---|---|
| PyTorch | default (`"highest"`) | 4.5e-7 |
| PyTorch | `torch.backends.cuda.matmul.allow_tf32 = True` | 5.2e-2 |
| JAX | default | 5.2e-2 |
| JAX | `jax.default_matmul_precision("highest")` | 4.5e-7 |
| TensorFlow | (not measured: no TensorFlow on that machine) | |

So the same float32 loss can be 1e5 times less accurate on one framework's GPU than on another's.
unigrad keeps each framework's own setting for its own params, and in a **cross-framework call**
(`backend=` another framework than the params', NumPy included) computes at no less than the params'
framework would: torch float32 CUDA params with `backend="jax"` run under
`jax.default_matmul_precision("highest")` (thread-local, for the call only); NumPy params count as
full float32. Where the computing framework's setting is process-global (PyTorch, TensorFlow),
unigrad does not change it but warns once with `ug.PrecisionWarning`. `unigrad check` and
`unigrad.testing` compare with TF32 off everywhere. See [Running on a GPU](gpu.md).

## Troubleshooting

With the CUDA build of torch (which ships triton), `import tensorflow` followed by `import triton`
(what `torch.compile` does when it first compiles) crashes the process with a segmentation fault.
Import torch's compiler first (`import triton` or `import torch._inductor`) and TensorFlow after it,
or keep the two frameworks in separate processes. `unigrad check` runs each backend in its own
process, so it is not affected.
"""


def render(choices: Mapping[str, Any]) -> str:
    """The whole page as Markdown, from recorded ``choices`` (see the module docstring)."""
    backends = _ordered_backends(choices)
    measured_with = ", ".join(f"{b} {' and '.join(_versions(choices, b))}" for b in backends)
    generated = (
        "Generated by `python -m unigrad.conformance.known_differences docs/known-differences.md`\n"
        "(`--backends torch,jax` measures only those; the others keep their recorded values) at\n"
        f"float64 on the CPU, measured with {measured_with or 'no backend'}. Each column shows the\n"
        "newest version measured; a case lists older versions' choices where they differ."
    )
    lines = [HEADER.format(generated=generated)]
    for case in documented_cases():
        if case.name in choices:
            lines += _case_section(case, choices[case.name], backends)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure, record and write the page: ``[target] [--backends a,b] [--choices file.json]``."""
    parser = argparse.ArgumentParser(prog="python -m unigrad.conformance.known_differences")
    parser.add_argument("target", nargs="?", default="docs/known-differences.md", type=Path)
    parser.add_argument("--backends", help="comma-separated (default: every installed backend)")
    parser.add_argument("--choices", type=Path, default=CHOICES_PATH, help="the recorded choices (JSON)")
    args = parser.parse_args(argv)
    backends = args.backends.split(",") if args.backends else ug.installed_backends()
    choices = record(load_choices(args.choices), backends)
    save_choices(choices, args.choices)
    args.target.write_text(render(choices))
    print(f"wrote {args.target} and {args.choices}")


if __name__ == "__main__":
    main()
