"""The isolated conformance run: one backend per worker process, JSON results, crashes as ``err`` rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import require

import unigrad as ug
from unigrad.conformance import run_conformance
from unigrad.conformance.pool import compile_cache_dir, default_jobs, signal_name, worker_environment
from unigrad.conformance.wire import decode_leaves, encode_leaves, rebuild

BACKENDS = ug.installed_backends()


def _cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unigrad", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_wire_round_trip_is_exact_and_keeps_non_finite_values() -> None:
    tree = {"b": [np.array([1 / 3, np.nan, -np.inf]), np.float64(2.5)], "a": np.zeros((0, 3))}
    records = json.loads(json.dumps(encode_leaves(tree)))
    back = rebuild(records, tree)
    assert back["a"].shape == (0, 3)
    np.testing.assert_array_equal(back["b"][0], tree["b"][0])  # bit for bit, nan and inf included
    assert back["b"][1].shape == () and float(back["b"][1]) == 2.5


def test_wire_rebuild_refuses_another_number_of_leaves() -> None:
    records = encode_leaves([np.ones(2)])
    with pytest.raises(ValueError, match="1 leaves, the reference 2"):
        rebuild(records, [np.ones(2), np.ones(2)])
    assert decode_leaves(records)[0].tolist() == [1.0, 1.0]


def test_signal_names() -> None:
    assert signal_name(-11) == "SIGSEGV (signal 11)"
    assert signal_name(3) == "exit code 3"


def test_workers_are_quiet_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    assert worker_environment(verbose=False)["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert "TF_CPP_MIN_LOG_LEVEL" not in worker_environment(verbose=True)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")  # the user's own setting wins
    assert worker_environment(verbose=False)["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_workers_share_the_cores_and_keep_jax_compiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "OMP_NUM_THREADS",
        "JAX_COMPILATION_CACHE_DIR",
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cores = default_jobs()
    env = worker_environment(verbose=False, jobs=cores, compile_cache=True)
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "unigrad" / "jax") == str(compile_cache_dir())
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert worker_environment(verbose=False, jobs=1)["OMP_NUM_THREADS"] == str(cores)
    assert "JAX_COMPILATION_CACHE_DIR" not in worker_environment(verbose=False, compile_cache=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")  # the user's own cache wins
    assert worker_environment(verbose=False, compile_cache=True)["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"


def test_jax_worker_fills_the_compile_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("jax")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    report = run_conformance(cases=["reduce_sum"], backends=["jax"], dtypes=["float64"])
    assert report.ok, report.counts()
    cached = set((tmp_path / "unigrad" / "jax").iterdir())
    assert cached
    report = run_conformance(cases=["reduce_mean"], backends=["jax"], dtypes=["float64"], compile_cache=False)
    assert report.ok and set((tmp_path / "unigrad" / "jax").iterdir()) == cached


def test_isolated_and_in_process_runs_give_the_same_report() -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    cases = ["reduce_sum", "kink_maximum_tie", "transform_jvp_layer"]
    isolated = run_conformance(cases=cases, backends=BACKENDS, dtypes=["float64", "float32"], jobs=2)
    in_process = run_conformance(cases=cases, backends=BACKENDS, dtypes=["float64", "float32"], isolate=False)
    assert isolated.cases == in_process.cases
    assert isolated.devices == in_process.devices
    assert {b: isolated.versions[b] for b in BACKENDS} == {b: in_process.versions[b] for b in BACKENDS}

    def key(c):
        return (c.case, c.kind, c.backend, c.device, c.dtype, c.against)

    got = {key(c): c for c in isolated.comparisons}
    want = {key(c): c for c in in_process.comparisons}
    assert got.keys() == want.keys()
    for name, comparison in want.items():
        assert got[name].status == comparison.status, name
        assert got[name].max_rel_err == comparison.max_rel_err, name  # same numbers, through JSON


def test_the_parent_imports_no_framework() -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    code = (
        "import sys\n"
        "from unigrad.conformance import run_conformance\n"
        f"r = run_conformance(cases=['reduce_sum'], backends={BACKENDS!r}, dtypes=['float64'])\n"
        "assert r.ok, r.failures()\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


CRASHING_LOSS = """
import os, signal
import unigrad as ug

def crash_on_{victim}(params):
    xp = ug.namespace(params)
    if xp.name == "{victim}":
        os.kill(os.getpid(), signal.SIGSEGV)  # what a native fault in a framework does
    return xp.sum(params["w"] ** 2)
"""


def test_a_native_crash_is_an_err_row_and_the_other_backends_still_report(tmp_path: Path) -> None:
    if len(BACKENDS) < 2:
        pytest.skip("needs two installed frameworks")
    victim = BACKENDS[0]
    (tmp_path / "crashing.py").write_text(textwrap.dedent(CRASHING_LOSS.format(victim=victim)))
    np.savez(tmp_path / "p.npz", w=np.array([0.5, -1.0]))
    report_path = tmp_path / "report.json"
    result = _cli(
        "check", f"crashing:crash_on_{victim}", "--params", "p.npz", "--json", str(report_path), cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    report = json.loads(report_path.read_text())
    crashed = [c for c in report["comparisons"] if c["backend"] == victim and c["kind"] == "reference"]
    assert crashed and all(c["status"] == "error" for c in crashed)
    assert all("SIGSEGV (signal 11)" in c["reason"] and f"crash_on_{victim}" in c["reason"] for c in crashed)
    others = [c for c in report["comparisons"] if c["backend"] != victim and c["kind"] == "reference"]
    assert others and all(c["status"] == "pass" for c in others)
    assert "err" in result.stdout and "SIGSEGV" in result.stdout


def test_check_keeps_framework_log_lines_out_unless_verbose() -> None:
    if "tensorflow" not in BACKENDS:
        pytest.skip("tensorflow is not installed (pip install 'unigrad[tensorflow]'): it is the noisy one")
    # TensorFlow at its noisiest (C++ info lines too): what it prints depends on the build and the
    # machine, and at the CLI's default level (warnings and up) it may print nothing at all.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | {"TF_CPP_MIN_LOG_LEVEL": "0"}
    quiet = _cli("check", "--cases", "reduce_sum", "--backends", "tensorflow", "--no-progress", env=env)
    assert quiet.returncode == 0, quiet.stdout[-2000:]
    assert quiet.stderr.strip() == "", quiet.stderr[-2000:]
    loud = _cli("check", "--cases", "reduce_sum", "--backends", "tensorflow", "--verbose", env=env)
    assert loud.returncode == 0
    assert loud.stderr.strip() != ""  # TensorFlow's own start-up lines come through with --verbose


def test_info_shows_tf32_only_with_a_gpu() -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    info = _cli("info", env=env)
    assert info.returncode == 0, info.stdout + info.stderr
    assert info.stderr.strip() == ""
    for line in info.stdout.splitlines():
        backend = line.split(" ")[0]
        if backend in ("torch", "tensorflow") and "devices:" in line and "gpu" not in line:
            assert "TF32" not in line, line
