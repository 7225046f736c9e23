"""`unigrad check` and `unigrad info` end to end, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import unigrad as ug

BACKENDS = ug.installed_backends()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "unigrad", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def check_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    out = tmp_path_factory.mktemp("check")
    outputs = ["--json", str(out / "report.json"), "--markdown", str(out / "report.md")]
    outputs += ["--plot", str(out / "report.png")]
    result = run_cli(
        "check", "--cases", "reduce_sum,kink_abs_at_zero", "--dtypes", "float64,float32", "--all-rows",
        *outputs,
    )  # fmt: skip
    return result, out


def test_check_prints_the_matrix_and_exits_zero(check_run) -> None:
    result, _ = check_run
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    header = lines[0]
    for backend in BACKENDS:
        assert f"{backend}/cpu/f64" in header and f"{backend}/cpu/f32" in header
    columns = len(header.split()) - 1  # after "case": every backend/device/dtype, GPU ones included
    assert columns >= 2 * len(BACKENDS)
    assert any(line.strip().startswith("reduce_sum") and line.split()[1:] == ["ok"] * columns
               for line in lines)  # fmt: skip
    assert "kink" in lines and "reduction" in lines  # grouped by area
    assert "all backends agree" in lines[-1]


def test_check_hides_all_ok_rows_by_default() -> None:
    if not BACKENDS:
        pytest.skip("no framework installed (pip install 'unigrad[all]')")
    result = run_cli("check", "--cases", "reduce_sum", "--backends", BACKENDS[0], "--dtypes", "float64")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert not any(line.strip().startswith("reduce_sum") for line in lines)
    assert "reduction: 1 row, all ok" in lines
    assert "1 row with every cell ok not shown (--all-rows shows them)" in lines
    assert "all backends agree" in lines[-1]


def test_the_summary_shows_only_rows_that_are_not_all_ok() -> None:
    from unigrad.conformance.drift import catalogue_areas, load_report
    from unigrad.conformance.render import render_markdown, render_text

    # torch 2.14.1: kink_clip_at_bounds is known at float64, reduce_sum ok everywhere
    report = load_report(Path(__file__).parent / "data" / "check-torch-2.14.1-derived.json")
    areas = catalogue_areas()
    lines = render_text(report, areas).splitlines()
    assert lines[0].split() == ["case", "torch/cpu/f64", "torch/cpu/f32"]
    assert lines[1] == "kink" and lines[2].split() == ["kink_clip_at_bounds", "known", "ok"]
    assert lines[3] == "reduction: 1 row, all ok"
    assert "1 row with every cell ok not shown (--all-rows shows them)" in lines
    every = render_text(report, areas, all_rows=True).splitlines()
    assert "reduction" in every and any(line.split() == ["reduce_sum", "ok", "ok"] for line in every)
    assert not any("not shown" in line for line in every)
    markdown = render_markdown(report, areas)  # the Markdown keeps every row, counted per area
    assert "| `reduce_sum` | ok | ok |" in markdown and "1 row, 1 with every cell ok." in markdown


def test_the_heatmap_has_one_panel_per_area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from unigrad.conformance.drift import catalogue_areas, load_report
    from unigrad.conformance.render_plot import render_plot

    titles = []
    save = matplotlib.figure.Figure.savefig

    def savefig(figure, *args, **kwargs):
        titles.extend(axes.get_title(loc="left") for axes in figure.axes if axes.get_title(loc="left"))
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    report = load_report(Path(__file__).parent / "data" / "check-torch-2.14.1-derived.json")
    render_plot(report, catalogue_areas(), tmp_path / "report.png")
    assert titles == ["kink (1)", "reduction (1)"]
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_check_writes_json_with_the_report_schema(check_run) -> None:
    _, out = check_run
    raw = json.loads((out / "report.json").read_text())
    assert set(raw) == {"seed", "cases", "backends", "dtypes", "devices", "versions", "comparisons"}
    assert raw["cases"] == ["kink_abs_at_zero", "reduce_sum"]
    comparison = raw["comparisons"][0]
    assert {
        "case",
        "kind",
        "backend",
        "device",
        "dtype",
        "against",
        "status",
        "rtol",
        "atol",
        "leaves",
    } <= set(comparison)
    leaf = next(c for c in raw["comparisons"] if c["leaves"])["leaves"][0]
    assert {"path", "max_abs_err", "max_rel_err", "passed", "worst_index", "got", "want"} <= set(leaf)


def test_check_writes_markdown_and_a_png_that_opens(check_run) -> None:
    _, out = check_run
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# unigrad conformance report")
    assert "| `reduce_sum` |" in markdown
    png = out / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_check_exits_one_on_a_disagreement(tmp_path: Path) -> None:
    if "torch" not in BACKENDS or len(BACKENDS) < 2:
        pytest.skip("needs torch and another backend")
    (tmp_path / "mylosses.py").write_text(
        textwrap.dedent(
            """
            import unigrad as ug

            def planted(params, data):
                xp = ug.namespace(params)
                scale = 1.5 if xp.name == "torch" else 1.0
                return xp.sum((params["w"] * data["x"]) ** 2) * scale
            """
        )
    )
    np.savez(tmp_path / "params.npz", w=np.array([0.5, -1.0, 2.0]))
    np.savez(tmp_path / "data.npz", x=np.array([1.0, 2.0, 3.0]))
    result = run_cli(
        "check", "mylosses:planted", "--params", "params.npz", "--data", "data.npz", cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "DISAGREEMENTS FOUND" in result.stdout
    assert "params['w']" in result.stdout and "DISAGREES" in result.stdout


def test_check_runs_a_user_loss_that_agrees(tmp_path: Path) -> None:
    if not BACKENDS:
        pytest.skip("no framework installed")
    (tmp_path / "goodloss.py").write_text(
        "import unigrad as ug\n"
        "def mse(params, data):\n"
        "    xp = ug.namespace(params)\n"
        "    return xp.mean((xp.matmul(data['X'], params['w']) - data['y']) ** 2)\n"
    )
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "p.npz", w=rng.normal(size=3))
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(5, 3)), y=rng.normal(size=5))
    result = run_cli("check", "goodloss:mse", "--params", "p.npz", "--data", "d.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "per leaf" in result.stdout and "params['w']" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check", "--cases", "no_such_case"), "no conformance case matches 'no_such_case'"),
        (("check", "--backends", "mxnet"), "unknown backend 'mxnet'"),
        (("check", "--dtypes", "float8"), "unknown dtype 'float8'"),
        (("check", "nosuchmodule_xyz:loss", "--params", "p.npz"), "cannot import 'nosuchmodule_xyz'"),
        (("check", "json:dumps", "--params", "missing.npz"), "params file 'missing.npz' does not exist"),
        (("check", "json:dumps", "--params", "bad.npz"), "is not a readable .npz"),
        (("check", "json"), "module.path:function"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_two(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "bad.npz").write_text("this is not a zip file")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr


def test_list_and_info() -> None:
    listed = run_cli("check", "--list", "--cases", "kink")
    assert listed.returncode == 0
    assert "kink_relu_at_zero" in listed.stdout and "reduce_sum" not in listed.stdout
    info = run_cli("info")
    assert info.returncode == 0
    assert info.stdout.startswith(f"unigrad {ug.__version__}")
    for backend in ("torch", "tensorflow", "jax"):
        assert backend in info.stdout
    if "jax" in BACKENDS:
        assert "x64 off" in info.stdout
