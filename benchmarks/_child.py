"""Running a snippet in a fresh Python process and reading back the JSON it prints last.

Cold start and peak memory must be measured in processes that have imported nothing yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: The repository root, so children import this checkout's ``benchmarks`` and ``unigrad``.
ROOT = Path(__file__).resolve().parent.parent


def child_env() -> dict[str, str]:
    """The current environment with the repository root first on ``PYTHONPATH``, and bytecode
    caching on: a user's Python keeps compiled modules, while with ``PYTHONDONTWRITEBYTECODE`` set
    (as on this project's CI machine) every fresh process compiles every module it imports again,
    about 20 ms for unigrad alone, which is no part of what importing it costs a user."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_python(code: str, timeout: float = 600.0) -> tuple[float, str]:
    """Run ``python -c code`` in a fresh process; return (wall seconds, stdout).

    Raises:
        RuntimeError: the child failed (its stderr's last lines are in the message).
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"child python failed ({done.returncode}):\n{tail}")
    return wall, done.stdout


def run_json(code: str, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``code`` in a fresh process; it must print one JSON object as its last line of output."""
    _, stdout = run_python(code, timeout)
    return json.loads(stdout.strip().splitlines()[-1])
