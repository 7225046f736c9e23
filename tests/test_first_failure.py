"""A failed data-parallel run names the worker that failed first, ahead of its peers' consequential errors.

When rank 1's loss raises, rank 0 fails too, later, in a collective ("Connection closed by peer"); the
report must lead with rank 1's own error. End to end with two local processes (torch gloo, JAX
``jax.distributed``; a few seconds each), and the ordering itself on fake worker results.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
from conftest import require
from data_parallel_losses import mlp_problem

from unigrad import DistributedSetupError
from unigrad.distributed._launch import _failure_report, _read_failure
from unigrad.testing import assert_data_parallel_matches

WHERE = "of 3 (torch, launch 'processes', world size 3)"


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_the_worker_that_raised_first_leads_the_report(backend: str) -> None:
    require(backend)
    params, batch = mlp_problem()
    start = time.perf_counter()
    with pytest.raises(DistributedSetupError) as caught:
        assert_data_parallel_matches(
            "data_parallel_losses:losses_raising_on_rank_1", params, batch, backend=backend,
            world_size=2, launches=["processes"],
        )  # fmt: skip
    seconds = time.perf_counter() - start
    message = str(caught.value)
    print(f"{backend}: the failure reported in {seconds:.1f} s:\n{message}")
    assert message.startswith(f"worker 1 of 2 ({backend}, launch 'processes', world size 2) failed first")
    first_line = message.splitlines()[0]
    assert first_line.endswith("with ValueError: boom on rank 1")
    assert 'raise ValueError("boom on rank 1")' in message  # its innermost frame
    assert "losses_raising_on_rank_1" in message
    assert message.index("ValueError: boom on rank 1") < message.index("worker 0")
    assert "\n  worker 0: " in message  # one line for the peer, after it
    assert seconds < 60  # the peer stuck in its collective is not waited for until the timeout


def _write_error(
    folder: Path, rank: int, error_type: str, message: str, when: float, *, output: str = ""
) -> None:
    (folder / f"log{rank}.txt").write_text(output)
    frames = f'  File "losses.py", line {rank + 1}, in loss\n    raise {error_type}\n'
    result = {
        "error": f"Traceback (most recent call last):\n{frames}{error_type}: {message}\n",
        "error_time": when,
        "error_type": error_type,
        "error_message": message,
        "error_frames": frames,
    }
    with open(folder / f"result{rank}.pkl", "wb") as file:
        pickle.dump(result, file)


GLOO_LOST = (
    "[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1234. Remote worker crashed?"
)


def test_a_lower_rank_that_raised_later_in_a_collective_comes_after(tmp_path: Path) -> None:
    """The old report took the lowest rank that wrote an error: rank 0, with gloo's lost connection."""
    _write_error(tmp_path, 0, "RuntimeError", GLOO_LOST, when=101.0)
    _write_error(tmp_path, 2, "ValueError", "boom on rank 2", when=100.0)
    failures = [_read_failure(str(tmp_path), rank, 1, killed=False, ended=102.0) for rank in (0, 2)]
    report = _failure_report(failures, WHERE, None)
    lines = report.splitlines()
    assert lines[0] == f"worker 2 {WHERE} failed first, with ValueError: boom on rank 2"
    assert lines[1:4] == [
        "Traceback (innermost frames):",
        '  File "losses.py", line 3, in loss',
        "    raise ValueError",
    ]
    assert lines[4] == "ValueError: boom on rank 2"
    assert lines[5].startswith("The other workers that failed, after it")
    assert lines[6].startswith(
        "  worker 0: RuntimeError: [gloo/transport/tcp/pair.cc:553] Connection closed by peer"
    )
    assert len(lines) == 7


def test_a_collective_error_comes_after_a_user_error_even_if_stamped_earlier(tmp_path: Path) -> None:
    _write_error(
        tmp_path, 0, "torch.distributed.DistBackendError", "NCCL communicator was aborted", when=99.0
    )
    _write_error(tmp_path, 1, "KeyError", "'x'", when=100.0)
    failures = [_read_failure(str(tmp_path), rank, 1, killed=False, ended=102.0) for rank in (0, 1)]
    assert _failure_report(failures, WHERE, None).startswith(
        f"worker 1 {WHERE} failed first, with KeyError: 'x'"
    )


def test_of_two_user_errors_the_earlier_leads_and_killed_workers_are_listed(tmp_path: Path) -> None:
    _write_error(tmp_path, 0, "ZeroDivisionError", "division by zero", when=100.5)
    _write_error(tmp_path, 1, "ValueError", "bad shape (3, 4)\nsecond line", when=100.0)
    (tmp_path / "log2.txt").write_text("waiting in all_reduce\n")
    failures = [
        _read_failure(str(tmp_path), 0, 1, killed=False, ended=101.0),
        _read_failure(str(tmp_path), 1, 1, killed=False, ended=100.1),
        _read_failure(str(tmp_path), 2, -9, killed=True, ended=102.0),
    ]
    lines = _failure_report(failures, WHERE, None).splitlines()
    assert lines[0] == f"worker 1 {WHERE} failed first, with ValueError: bad shape (3, 4)"
    heading = lines.index("The other workers that failed, after it (likely in consequence):")
    assert lines[heading - 2 : heading] == [
        "ValueError: bad shape (3, 4)",
        "second line",
    ]  # the whole message
    assert lines[heading + 1 :] == [
        "  worker 0: ZeroDivisionError: division by zero",
        "  worker 2: killed by the launcher (it was still running)",
    ]


def test_a_crash_without_a_result_leads_with_the_end_of_its_output(tmp_path: Path) -> None:
    """A worker that died without raising (a segfault, the OOM killer) wrote no result: its output tells."""
    (tmp_path / "log1.txt").write_text("loading\nFatal Python error: Segmentation fault\n")
    _write_error(tmp_path, 0, "RuntimeError", GLOO_LOST, when=100.0)
    (tmp_path / "result2.pkl").write_bytes(b"\x80\x05truncated")  # unreadable: as if none
    (tmp_path / "log2.txt").write_text("")
    failures = [
        _read_failure(str(tmp_path), 0, 1, killed=False, ended=100.2),
        _read_failure(str(tmp_path), 1, -11, killed=False, ended=100.1),
        _read_failure(str(tmp_path), 2, -9, killed=True, ended=102.0),
    ]
    report = _failure_report(failures, WHERE, None)
    assert report.startswith(
        f"worker 1 {WHERE} failed first: exited with -11 without a result; its last output line: "
        "Fatal Python error: Segmentation fault; the end of its output:\nloading\n"
    )
    assert report.index("  worker 0: RuntimeError") < report.index("  worker 2: killed by the launcher")


def test_a_timeout_names_the_first_worker_and_its_output(tmp_path: Path) -> None:
    for rank in (0, 1):
        (tmp_path / f"log{rank}.txt").write_text(f"rank {rank} compiling\n")
    failures = [_read_failure(str(tmp_path), rank, -9, killed=True, ended=400.0) for rank in (0, 1)]
    lines = _failure_report(failures, WHERE, 300.0).splitlines()
    assert lines[:2] == [
        f"worker 0 {WHERE} timed out after 300 s; the end of its output:",
        "rank 0 compiling",
    ]
    assert lines[-1] == "  worker 1: killed by the launcher (it was still running)"
