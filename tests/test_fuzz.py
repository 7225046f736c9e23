"""``unigrad fuzz``: a planted wrong gradient is found, shrunk and reproduced; clean runs stay clean.

Everything runs on PyTorch (the fastest framework to start), in this process, with small budgets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="unigrad fuzz generates programs with Hypothesis")
torch = pytest.importorskip("torch", reason="the fuzzer's tests run on PyTorch")

import unigrad as ug  # noqa: E402
from unigrad.cli import main  # noqa: E402
from unigrad.fuzz import FuzzConfig, run_fuzz  # noqa: E402
from unigrad.fuzz.evaluate import evaluate_plan  # noqa: E402
from unigrad.fuzz.generator import programs  # noqa: E402
from unigrad.fuzz.program import Program, Step, make_plan  # noqa: E402
from unigrad.fuzz.shrink import run_round  # noqa: E402

#: A plant: PyTorch's sin with a backward 1.5 times too large; installable in a reproducer's process.
PLANT = textwrap.dedent(
    """
    import torch

    _sin = torch.sin


    class WrongSin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return _sin(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * torch.cos(x) * 1.5


    def install():
        torch.sin = WrongSin.apply
    """
)

SMALL_OPS = ["sin", "exp", "square", "tanh", "add", "multiply", "sum"]


def _plant_module(directory: Path) -> Path:
    (directory / "planted_sin.py").write_text(PLANT, encoding="utf-8")
    sys.path.insert(0, str(directory))
    try:
        import planted_sin  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(directory))
    return Path(planted_sin.__file__)


def _run(path: Path, plant_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    # unigrad made unimportable: the reproducer must stand alone
    code = "import runpy, sys; sys.argv = [sys.argv[1]]; sys.modules['unigrad'] = None; "
    if plant_dir is not None:
        code += f"sys.path.insert(0, {str(plant_dir)!r}); import planted_sin; planted_sin.install(); "
    code += "runpy.run_path(sys.argv[0], run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300, check=False
    )


def test_a_planted_wrong_gradient_is_found_shrunk_and_reproduced(tmp_path, monkeypatch):
    plant = _plant_module(tmp_path)
    import planted_sin  # type: ignore[import-not-found]

    monkeypatch.setattr(ug.namespace("torch"), "sin", planted_sin.WrongSin.apply)
    out = tmp_path / "findings"
    config = FuzzConfig(
        backends=["torch"], programs=30, seed=1, ops=SMALL_OPS, extras=(), out=str(out), verify=False
    )
    report = run_fuzz(config)

    assert report.exit_code() == 1
    causes = {f.cause: f for f in report.findings.values()}
    sin_findings = [f for f in causes.values() if f.op == "sin" and f.check == "reverse"]
    assert sin_findings, causes
    assert all(f.op == "sin" for f in causes.values()), causes  # nothing else is blamed
    finding = sin_findings[0]
    assert finding.shrunk_steps is not None and len(finding.shrunk_steps) <= 3, finding.shrunk_steps
    assert any("sin(" in step for step in finding.shrunk_steps)

    source = Path(finding.reproducer).read_text(encoding="utf-8")
    assert "import unigrad" not in source and "from unigrad" not in source
    with_plant = _run(Path(finding.reproducer), plant.parent)
    assert with_plant.returncode == 1, with_plant.stdout + with_plant.stderr
    assert "DISAGREE" in with_plant.stdout
    without_plant = _run(Path(finding.reproducer))
    assert without_plant.returncode == 0, without_plant.stdout + without_plant.stderr


def test_the_programs_and_the_report_are_a_function_of_the_seed():
    def draw(seed: int) -> list[Program]:
        drawn: list[Program] = []
        run_round(programs(SMALL_OPS, ["float64", "float32"]), seed, 15, drawn.append)
        return drawn

    assert draw(4) == draw(4)
    assert draw(4) != draw(5)

    def run() -> dict:
        report = run_fuzz(FuzzConfig(backends=["torch"], programs=12, seed=7, extras=("jvp",), out=None))
        data = report.to_dict()
        data.pop("seconds")
        return data

    assert run() == run()


def test_a_clean_run_has_no_false_alarm():
    report = run_fuzz(FuzzConfig(backends=["torch"], programs=40, seed=2, extras=("jvp", "hvp"), out=None))
    assert report.plans > 30
    assert report.findings == {}, report.summary()
    assert report.exit_code() == 0
    assert not report.fuzzer_errors, report.fuzzer_errors


def _verdicts(program: Program) -> dict[str, tuple[str, str, str]]:
    plan = make_plan(program)
    assert plan is not None
    result = evaluate_plan(plan, ["torch"], "none")
    return {v.check: (v.status, v.family, v.detail) for v in result.verdicts}


def test_clip_at_its_bounds_is_known_with_the_framework_version():
    # x = -1 and x = 1 sit on the bounds of clip(x, -1, 1): torch picks 1 (2.13) or 0 (2.14), both valid
    program = Program(((3,),), (-1.0, 1.0, 0.25), (Step("clip", (0, 0, 0), 0, 0.0),))
    status, family, detail = _verdicts(program)["reverse"]
    assert (status, family) == ("known", "clip at bound")
    assert detail.startswith(f"torch {torch.__version__.split('+')[0]}")


def test_abs_at_zero_is_a_kink_and_another_valid_choice_there_is_known(monkeypatch):
    program = Program(((3,),), (0.0, -2.0, 1.5), (Step("abs", (0, 0, 0), 0, 0.0),))
    assert make_plan(program).sites  # abs at 0 is recognised as a kink
    assert _verdicts(program)["reverse"][0] == "pass"  # torch picks sign(0) = 0, the midpoint

    class AbsChoosingOne(torch.autograd.Function):  # abs'(0) = 1: in the subdifferential [-1, 1]
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.abs(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    monkeypatch.setattr(ug.namespace("torch"), "abs", AbsChoosingOne.apply)
    status, family, detail = _verdicts(program)["reverse"]
    assert (status, family) == ("known", "abs at zero")
    assert "abs at zero: 1" in detail

    class AbsChoosingTwo(AbsChoosingOne):  # abs'(0) = 2: outside the subdifferential
        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * torch.where(x > 0, 1.0, torch.where(x < 0, -1.0, 2.0)).to(x.dtype)

    monkeypatch.setattr(ug.namespace("torch"), "abs", AbsChoosingTwo.apply)
    assert _verdicts(program)["reverse"][0] == "finding"


def test_nan_at_a_singular_point_is_known():
    # std of a constant vector: sqrt'(0) is infinite; torch returns nan (or 0) for the gradient
    program = Program(((3,),), (1.0, 1.0, 1.0), (Step("std", (0, 0, 0), 0, 0.0),))
    plan = make_plan(program)
    assert plan.singular == ((0, "constant slice"),)
    status, family, _ = _verdicts(program)["reverse"]
    assert status in ("pass", "known")
    if status == "known":
        assert family == "std at constant slice"


def test_the_command_line(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    options = ["--out", str(tmp_path / "out"), "--json", str(report_path), "--ops", ",".join(SMALL_OPS)]
    code = main(
        ["fuzz", "--programs", "4", "--backends", "torch", "--no-progress", "--checks", "jvp", *options]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("unigrad fuzz: 4 programs")
    data = json.loads(report_path.read_text(encoding="utf-8"))
    assert data["programs"] == 4 and data["findings"] == []
    assert main(["fuzz", "--backends", "mlx"]) == 2
    assert main(["fuzz", "--ops", "no_such_op", "--backends", "torch"]) == 2


def test_float32_inputs_are_float32_exact():
    plan = make_plan(Program(((2,),), (0.1, 1 / 3), (Step("sin", (0, 0, 0), 0, 0.0),), dtype="float32"))
    assert all(np.array_equal(x, x.astype(np.float32).astype(np.float64)) for x in plan.inputs)


def test_every_op_has_a_faithful_pytorch_reproducer(tmp_path, capsys):
    """Each op of the table, alone at generic inputs: its reproducer agrees with the fuzzer (exit 0)."""
    import contextlib
    import io
    import runpy

    from unigrad.fuzz.op_table import available_ops
    from unigrad.fuzz.reproducer import reproducer_source

    rng = np.random.default_rng(0)
    shape_sets = [((3,),), ((2, 3),), ((3, 3),), ((3,), (3,)), ((3, 3), (3,)), ((3,), (2, 3), (3,))]
    failures, covered = [], 0
    for name in available_ops():
        plan = None
        for shapes in shape_sets:
            size = sum(int(np.prod(shape)) for shape in shapes)
            values = tuple(float(np.float32(v)) for v in rng.uniform(0.2, 0.9, size))
            selectors = (*range(len(shapes))[::-1], 0, 0)[:3]
            plan = make_plan(Program(shapes, values, (Step(name, selectors, 1, 0.5),)))
            if plan is not None and plan.steps[0].op.name == name:
                break
            plan = None
        if plan is None:  # acosh needs values >= 1
            continue
        covered += 1
        path = tmp_path / f"op{covered}.py"
        path.write_text(reproducer_source(plan, "reverse", ["torch"], title=name), encoding="utf-8")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                runpy.run_path(str(path), run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        if code != 0:
            failures.append((name, code))
    assert covered > 60
    assert failures == []


def test_where_with_an_unsafe_branch_and_the_norm_at_zero_are_known():
    # where(sqrt(x) > 0, sqrt(x), x) at x = -1: PyTorch multiplies sqrt's nan derivative by the
    # zero cotangent of the untaken branch (nan); finite differences see the taken branch (1)
    unsafe = Program(
        ((3,),), (-1.0, 0.5, 2.0), (Step("sqrt", (0, 0, 0), 0, 0.0), Step("where", (0, 0, 1), 0, 0.0))
    )
    assert _verdicts(unsafe)["reverse"][:2] == ("known", "where with an unsafe branch")
    # the 2-norm of the zero vector: any vector of the unit ball is valid; torch returns 0
    norm = Program(((3,),), (0.0, 0.0, 0.0), (Step("vector_norm", (0, 0, 0), 0, 0.0),))
    assert make_plan(norm).singular == ((0, "zero vector"),)
    assert _verdicts(norm)["reverse"][0] in ("pass", "known")


def test_rounds_in_worker_processes_give_the_serial_report(tmp_path, monkeypatch):
    """``--jobs 2``: the same programs, counts and causes as one worker; the earlier round's
    reproducer is kept, and no round folder is left behind. The workers are new interpreters: the
    plant reaches them as a ``sitecustomize`` on ``PYTHONPATH``. (Both runs are in fresh workers:
    this process has run other tests, whose leftovers, such as cached namespaces, are not the
    campaign's.)"""
    from unigrad.fuzz.parallel import run_parallel

    _plant_module(tmp_path)
    (tmp_path / "sitecustomize.py").write_text(
        "import planted_sin, unigrad as ug\nug.namespace('torch').sin = planted_sin.WrongSin.apply\n",
        encoding="utf-8",
    )

    def config(out: Path) -> FuzzConfig:
        return FuzzConfig(
            backends=["torch"], programs=24, round_size=6, seed=1, ops=SMALL_OPS, extras=("jvp",),
            out=str(out), verify=False,
        )  # fmt: skip

    # tmp_path holds both files (the module ``import planted_sin`` gives here may be an earlier
    # test's, from its own folder, without a sitecustomize beside it)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{':' + sys.path[0] if sys.path[0] else ''}")
    serial = run_parallel(config(tmp_path / "serial"), jobs=1)
    parallel = run_parallel(config(tmp_path / "parallel"), jobs=2)

    assert serial.exit_code() == parallel.exit_code() == 1
    first, second = serial.to_dict(), parallel.to_dict()
    for key in ("programs", "plans", "statuses", "known", "choices_at_kinks", "ops_generated"):
        assert first[key] == second[key], key
    assert {f.cause: f.count for f in serial.findings.values()} == {
        f.cause: f.count for f in parallel.findings.values()
    }
    for finding in parallel.findings.values():
        assert Path(finding.reproducer).parent == tmp_path / "parallel" and Path(finding.reproducer).exists()
    assert not list((tmp_path / "parallel").glob(".round-*"))


def test_worker_runs_refuse_bad_options_before_starting_workers():
    """An unsupported backend or an unknown op is a ValueError in the caller, as in one process,
    not an error inside a worker (a broken process pool)."""
    from unigrad.fuzz.parallel import run_parallel

    with pytest.raises(ValueError, match="not on mlx"):
        run_parallel(FuzzConfig(backends=["mlx"], programs=2, out=None), jobs=2)
    with pytest.raises(ValueError, match=r"unknown or unavailable ops \['no_such_op'\]"):
        run_parallel(FuzzConfig(backends=["torch"], ops=["no_such_op"], programs=2, out=None), jobs=2)
