"""Sessions: tests per backend (each installs only that framework), all backends, lint, docs.

Run ``nox -l`` to list them; ``nox`` runs the default set CI runs.
"""

from __future__ import annotations

import pathlib

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "tests-torch",
    "tests-tensorflow",
    "tests-jax",
    "tests-oldest",
    "tests-mlx",
    "tests-all",
    "lint",
    "docs",
]

CONSTRAINTS = ("-c", "ci/constraints.txt")
# CPU builds: tensorflow-cpu instead of tensorflow, torch pinned to the CPU wheel by the constraints.
FRAMEWORKS = {
    "torch": ["torch"],
    "tensorflow": ["tensorflow-cpu"],
    "jax": ["jax[cpu]"],
    "mlx": ["mlx[cpu]"],  # Linux: the CPU build (plain `mlx` there has no backend to run on)
}


# JAX compiles every eager operation on first use (~65 ms each on CPU): the sessions share JAX's
# persistent compilation cache, so the sessions after the first read most of them back.
JAX_COMPILE_CACHE = {
    "JAX_COMPILATION_CACHE_DIR": str(pathlib.Path(__file__).parent / ".nox" / "jax-compile-cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
}


# pytest-xdist: one test process per core (most tests keep one core busy; CI has two).
PARALLEL = ("-n", "auto", "--dist", "worksteal")

# The pinned run's `unigrad check --json` report, kept by tests-all for tests-latest to diff against.
PINNED_REPORT = pathlib.Path(__file__).parent / ".nox" / "reports" / "pinned.json"


def _run_tests(session: nox.Session, frameworks: list[str]) -> None:
    session.install(*CONSTRAINTS, "-e", ".[test]", *frameworks)
    session.env.update(JAX_COMPILE_CACHE)
    # pytest exits 5 when it collects nothing; nox treats every non-zero code as a failure.
    session.run("pytest", *PARALLEL, *session.posargs)


@nox.session(name="tests-torch")
def tests_torch(session: nox.Session) -> None:
    """Unit tests with PyTorch only (proves the other frameworks are never needed)."""
    _run_tests(session, FRAMEWORKS["torch"])


@nox.session(name="tests-tensorflow")
def tests_tensorflow(session: nox.Session) -> None:
    """Unit tests with TensorFlow only."""
    _run_tests(session, FRAMEWORKS["tensorflow"])


@nox.session(name="tests-jax")
def tests_jax(session: nox.Session) -> None:
    """Unit tests with JAX only."""
    _run_tests(session, FRAMEWORKS["jax"])


def _lowest(extra: str, name: str) -> str:
    """The oldest version of ``name`` that pyproject.toml's ``extra`` allows (its ``>=`` bound)."""
    import tomllib

    project = tomllib.loads((pathlib.Path(__file__).parent / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"][extra]:
        package, _, version = requirement.partition(">=")
        if package.strip() == name:
            return version.split(";")[0].strip()
    raise LookupError(f"pyproject.toml's [{extra}] extra gives no '{name}>=' bound")


#: framework -> (pyproject.toml extra, the requirement in it whose ``>=`` bound is the oldest allowed,
#: what this session installs at that version: CPU builds, as the other sessions).
OLDEST = {
    "jax": ("jax", "jax", "jax[cpu]=={}"),
    "tensorflow": ("tensorflow", "tensorflow", "tensorflow-cpu=={}"),
    "mlx": ("mlx", "mlx[cpu]", "mlx[cpu]=={}"),
}


@nox.session(name="tests-oldest")
@nox.parametrize("framework", list(OLDEST))
def tests_oldest(session: nox.Session, framework: str) -> None:
    """Unit tests with the oldest release of one framework that pyproject.toml allows: users keep
    older releases than CI pins, and pip does not upgrade one that meets the bound (JAX 0.10.2 alone
    had ``jax.tree_util.flatten_one_level``; MLX 0.31 has no ``mx.unstack``; TensorFlow 2.16 needs
    NumPy 1.x). PyTorch's is not run: an older torch is a multi-GB CUDA install here."""
    extra, requirement, install = OLDEST[framework]
    session.install("-e", ".[test]", install.format(_lowest(extra, requirement)))
    session.env.update(JAX_COMPILE_CACHE)
    session.run("pytest", *PARALLEL, *session.posargs)


@nox.session(name="tests-mlx")
def tests_mlx(session: nox.Session) -> None:
    """Unit tests with MLX only."""
    _run_tests(session, FRAMEWORKS["mlx"])


@nox.session(name="tests-all")
def tests_all(session: nox.Session) -> None:
    """Unit tests with every framework in one process (cross-framework tests run here), then
    ``unigrad check`` on the pinned versions, whose report (``.nox/reports/pinned.json``) tests-latest
    compares with its own (1-2 minutes on 2 cores, JAX's compile cache warm from the tests; skipped
    when pytest arguments are given, e.g. ``nox -s tests-all -- tests/test_cli.py``)."""
    _run_tests(session, [pkg for pkgs in FRAMEWORKS.values() for pkg in pkgs])
    if session.posargs:
        return
    PINNED_REPORT.parent.mkdir(parents=True, exist_ok=True)
    PINNED_REPORT.unlink(missing_ok=True)  # a crash must not leave an older run's report behind
    session.run("unigrad", "check", "--no-progress", "--json", str(PINNED_REPORT))


@nox.session(name="tests-latest")
def tests_latest(session: nox.Session) -> None:
    """What a user gets: ``pip install ".[all,cli,test]"`` with no constraints file, then the tests and
    ``unigrad check`` end to end (not in the default set; ``.ci/run`` runs it after the pinned ones).

    On Linux pip resolves torch to its CUDA build, which ships triton (several GB, minutes to install);
    it runs on the CPU. The resolved versions are printed first, for the record. Last,
    ``unigrad diff`` prints the drift table from the pinned run's report (kept by tests-all) to this
    one's; it does not fail the session (see docs/conformance.md, "Comparing two installs").
    """
    session.install("-e", ".[all,cli,test]")
    session.run(
        "python", "-c",
        "import importlib.metadata as m\n"
        "for name in ('torch', 'triton', 'tensorflow', 'keras', 'jax', 'jaxlib', 'numpy', 'optree'):\n"
        "    try: print(f'{name}=={m.version(name)}')\n"
        "    except m.PackageNotFoundError: print(f'{name}: not installed')",
    )  # fmt: skip
    session.env.update(JAX_COMPILE_CACHE)
    session.run("pytest", *PARALLEL, *session.posargs)
    report = pathlib.Path(session.create_tmp()) / "report.json"
    report.unlink(missing_ok=True)
    try:
        # The README's first command, with every output a user can ask for; exit code 0 is required.
        session.run(
            "unigrad", "check", "--no-progress",
            "--json", str(report),
            "--markdown", f"{report.parent}/report.md",
            "--plot", f"{report.parent}/report.png",
        )  # fmt: skip
    finally:
        # The drift table from the pinned versions (tests-all's report) to these, also when the check
        # failed. It never fails the session itself: a new failure is unigrad check's exit code above,
        # and drift (another valid subgradient, a moved error) is news, not a failure.
        if not PINNED_REPORT.exists():
            session.log(f"no pinned report at {PINNED_REPORT} (run tests-all first): unigrad diff skipped")
        elif report.exists():
            session.run("unigrad", "diff", str(PINNED_REPORT), str(report), success_codes=[0, 1])
    session.run("unigrad", "info")


@nox.session(name="conformance-low-precision")
def conformance_low_precision(session: nox.Session) -> None:
    """The catalogue, transform cases included, at float16 and bfloat16 on every backend (slow; not in
    the default set)."""
    session.install(*CONSTRAINTS, "-e", ".[test]", *[p for ps in FRAMEWORKS.values() for p in ps])
    session.run(
        "pytest",
        "-m",
        "slow",
        "tests/test_conformance.py",
        "tests/test_conformance_transforms.py",
        *session.posargs,
    )


@nox.session(name="tests-distributed")
def tests_distributed(session: nox.Session) -> None:
    """Multi-process data-parallel runs on localhost with the pinned frameworks: torch (2 and 3 gloo
    processes), JAX (2 processes joined by jax.distributed), TensorFlow (2 TF_CONFIG workers); the
    tests marked ``distributed`` (about 3 minutes of tests on 2 cores; not in the default set)."""
    engines = FRAMEWORKS["torch"] + FRAMEWORKS["tensorflow"] + FRAMEWORKS["jax"]
    session.install(*CONSTRAINTS, "-e", ".[test]", *engines)
    session.run("pytest", "-m", "distributed", "tests/test_data_parallel_distributed.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with mkdocs --strict."""
    session.install(*CONSTRAINTS, "-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def demo(session: nox.Session) -> None:
    """Install everything and print one loss's gradients from every backend side by side."""
    session.install(*CONSTRAINTS, "-e", ".", *[p for ps in FRAMEWORKS.values() for p in ps])
    session.run("python", "-m", "unigrad.demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against native code (not in the default set); writes docs/benchmarks.md.

    ``nox -s bench -- --quick`` is the smoke-sized run; other arguments go to ``python -m benchmarks``.
    """
    session.install(*CONSTRAINTS, "-e", ".", *[p for ps in FRAMEWORKS.values() for p in ps])
    # The peer comparison needs EagerPy; the benchmarks mark it pending if it does not install.
    session.run("python", "-m", "pip", "install", "--quiet", "eagerpy", success_codes=[0, 1])
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(venv_backend="none")
def gpu(session: nox.Session) -> None:
    """The GPU check with the Python on the PATH, whose torch/JAX see the GPU (not in the default set):
    ``python3 ci/gpu_check.py`` runs unigrad check on CPU and GPU, ``pytest -m gpu`` and the GPU
    benchmarks, and writes its summary to ``$OUT`` or ``--out DIR`` (``nox -s gpu -- --quick``)."""
    session.run("python3", "ci/gpu_check.py", *session.posargs, external=True)
