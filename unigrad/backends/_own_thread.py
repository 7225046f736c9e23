"""Trying a framework's private fast path once, in a thread of its own (see :func:`passes`).

Example:
    >>> from unigrad.backends._own_thread import passes
    >>> passes(lambda: 2 + 2 == 4, "unigrad-example-check")
    True
    >>> passes(lambda: 1 / 0, "unigrad-example-check")  # raising counts as failing
    False
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def passes(check: Callable[[], bool], name: str) -> bool:
    """Whether ``check()`` returns true, run in a new thread named ``name``.

    A fresh thread has none of the caller's thread-local state (torch's grad, inference and dispatch
    modes; TensorFlow's tapes and device scopes): the check neither sees it nor changes it. Any
    exception, and a process that can start no thread (at interpreter shutdown), count as failing.
    """
    passed: list[bool] = []

    def run() -> None:
        try:
            passed.append(bool(check()))
        except Exception:  # noqa: BLE001 - any failure: the private path is not what it was
            passed.append(False)

    thread = threading.Thread(target=run, name=name, daemon=True)
    try:
        thread.start()
        thread.join()
    except RuntimeError:
        return False
    return passed == [True]
