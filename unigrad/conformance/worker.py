"""A conformance worker: one process, one backend; evaluates the cases the parent names, one at a time.

Started by :mod:`unigrad.conformance.isolated` as ``python -m unigrad.conformance.worker``. It reads
JSON lines on stdin and answers JSON lines on its original stdout:

1. the request ``{"backend", "devices", "dtypes", "seed", "user"}`` → ``{"event": "ready", "version",
   "devices"}`` (or ``{"event": "error", "message"}`` when the framework cannot start);
2. then ``{"case": name}`` → ``{"event": "result", "case", "outcomes": [...]}``, until stdin closes.

Whatever the frameworks print (C++ start-up logs, warnings) goes to stderr, which the parent keeps
out of the report; only the protocol uses stdout. A native crash ends the process, and the parent
turns it into ``err`` rows for the case it was running.

Example:
    >>> from unigrad.conformance.worker import outcome_record
    >>> from unigrad.conformance.gradients import Outcome
    >>> outcome_record(("jax", "cpu", "float64"), Outcome(error="TypeError: no"))["error"]
    'TypeError: no'
"""

from __future__ import annotations

import faulthandler
import os
import sys
from typing import Any, TextIO

from unigrad.backends import get_adapter
from unigrad.conformance.case import Case
from unigrad.conformance.cases import CASES
from unigrad.conformance.devices import available_devices, strict_precision
from unigrad.conformance.gradients import Outcome, evaluate_case
from unigrad.conformance.transforms import TRANSFORM_CASES, TransformCase, evaluate_transform_case
from unigrad.conformance.user_loss import user_case
from unigrad.conformance.wire import dumps, encode_leaves, loads


def outcome_record(key: tuple[str, str, str], outcome: Outcome) -> dict[str, Any]:
    """One gradient-case outcome as a JSON-ready record."""
    _, device, dtype = key
    if outcome.error:
        return {"device": device, "dtype": dtype, "error": outcome.error}
    return {
        "device": device,
        "dtype": dtype,
        "error": "",
        "loss": float(outcome.loss),  # type: ignore[arg-type]
        "grads": encode_leaves(outcome.grads),
    }


def transform_record(key: tuple[str, str, str], result: Any) -> dict[str, Any]:
    """One transform-case result (a float64 tree, or the error text) as a JSON-ready record."""
    _, device, dtype = key
    if isinstance(result, str):
        return {"device": device, "dtype": dtype, "error": result}
    return {"device": device, "dtype": dtype, "error": "", "result": encode_leaves(result)}


def _catalogue(request: dict[str, Any]) -> dict[str, Case | TransformCase]:
    user = request.get("user")
    if user:
        case = user_case(user["target"], user["params"], user["data"], [])
        return {case.name: case}
    return {case.name: case for case in [*CASES, *TRANSFORM_CASES]}


def _devices(backend: str, wanted: list[str] | None) -> list[str]:
    found = available_devices(backend)
    if wanted is None:
        return found
    kept = [d for d in found if d in wanted or d.split(":")[0] in wanted]
    if not kept:
        raise LookupError(
            f"no {backend} device matches {', '.join(wanted)} in the worker process (it has "
            f"{', '.join(found)}); logical devices set up in your own process are not seen by the "
            "workers: pass isolate=False to run_conformance (--in-process for unigrad check)"
        )
    return kept


def serve(requests: TextIO, answers: TextIO) -> int:
    """Answer the parent's requests (see the module docstring); returns the exit code."""

    def send(message: dict[str, Any]) -> None:
        answers.write(dumps(message) + "\n")
        answers.flush()

    request = loads(requests.readline())
    backend, dtypes, seed = request["backend"], request["dtypes"], request["seed"]
    try:
        version = get_adapter(backend).version()  # imports the framework
        devices = _devices(backend, request.get("devices"))
        catalogue = _catalogue(request)
    except Exception as err:  # noqa: BLE001 - reported to the parent as the backend's error rows
        send({"event": "error", "message": f"{type(err).__name__}: {err}".splitlines()[0][:300]})
        return 1
    send({"event": "ready", "version": version, "devices": devices})
    with strict_precision([backend]):
        for line in requests:
            name = loads(line)["case"]
            case = catalogue[name]
            if isinstance(case, TransformCase):
                results = evaluate_transform_case(case, backend, devices, dtypes, seed)
                records = [transform_record(key, result) for key, result in results.items()]
            else:
                outcomes = evaluate_case(case, backend, devices, dtypes, seed)
                records = [outcome_record(key, outcome) for key, outcome in outcomes.items()]
            send({"event": "result", "case": name, "outcomes": records})
    return 0


def main() -> int:
    """Entry point: keep the protocol on the original stdout, send everything else to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    faulthandler.enable()  # a native crash leaves its Python stack in the captured stderr
    return serve(sys.stdin, answers)


if __name__ == "__main__":
    sys.exit(main())
