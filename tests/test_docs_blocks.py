"""Every fenced code block of docs/*.md runs as written, in order within its page.

What happens to a block is decided by its language tag:

- ``python``: run. The Python blocks of a page share one namespace and run in order (later blocks
  use names from earlier ones), in a temporary directory that is the working directory and is on
  ``sys.path``. A block whose first line names a file (``# mypkg/losses.py``) is a file the reader
  saves: it is also written there, and runs in a namespace of its own.
- ``text``: what a command prints; never run.
- ``bash``: run when every command in it is ``unigrad ...`` or ``python ...`` (each a subprocess of
  this environment, in the page's directory, that must exit 0).

Any other block (another command, another language, a run too slow for the suite) is run only if it
is listed in ``EXEMPT`` with the reason, so that a new block is never skipped silently. A page whose
blocks import a framework, or name it as a backend, is skipped when that framework is missing.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FRAMEWORK_BACKENDS, is_installed, skip_reason

from unigrad.backends import BACKENDS

DOCS = Path(__file__).resolve().parents[1] / "docs"

# (page, first line of the block with runs of spaces made one) -> why the block is not run
EXEMPT = {
    ("cli.md", "unigrad check # every case, installed backend and device; float64 and float32"): (
        "the whole catalogue (a minute or more) and a GPU run; the user-loss check further down runs"
    ),
    ("testing.md", "pytest -rs # every backend; -rs shows why one was skipped"): (
        "runs the reader's own test suite; the plugin itself is tested in tests/test_pytest_plugin.py"
    ),
    ("distributed.md", "# on each of the 2 machines (NODE_RANK 0 and 1), 8 GPUs each:"): (
        "needs two machines with GPUs; the same script runs on one machine in the block above it"
    ),
    ("distributed.md", "# two processes (on several machines: the coordinator's host name)"): (
        "two processes started together (&), which the block runner cannot do; the same 2-process "
        "jax.distributed run is in tests/test_data_parallel_distributed.py"
    ),
    ("distributed.md", "# worker 0 and worker 1: the same cluster list, each its own index"): (
        "two TF_CONFIG workers started together (&); the same 2-worker run is in "
        "tests/test_data_parallel_distributed.py"
    ),
    ("gpu.md", "python3 ci/gpu_check.py # files go to $OUT, else /tmp/unigrad-gpu-check; or --out DIR"): (
        "the whole GPU check (minutes, made for a GPU machine); tests/test_gpu_check.py runs its "
        "--quick form with the GPUs hidden and its --dry-run form"
    ),
    ("conformance-report.md", "unigrad check --dtypes float64,float32,float16,bfloat16 \\"): (
        "regenerates this generated page: the whole catalogue at four dtypes (6 min 25 s, four backends)"
    ),
}
OUTPUT_LANGUAGES = {"text"}
SHELL_LANGUAGES = {"bash"}
# a name the reader types -> the command run for it, from this environment
SHELL_COMMANDS = {
    "python": [sys.executable],
    "unigrad": [script]
    if (script := shutil.which("unigrad", path=Path(sys.executable).parent))
    else [sys.executable, "-m", "unigrad"],
}
# top-level modules that need a framework, from the registry (mlx.core: mlx); Keras 3 runs on TF here
FRAMEWORK_OF_MODULE = {BACKENDS[b].module.partition(".")[0]: b for b in FRAMEWORK_BACKENDS} | {
    "keras": "tensorflow"
}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)``` *$", re.M | re.S)
FILE_NAME = re.compile(r"# ([\w/.-]+\.py)$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str

    @property
    def first_line(self) -> str:
        return next((" ".join(line.split()) for line in self.code.splitlines() if line.strip()), "")

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        code = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        blocks.append(Block(page.name, text.count("\n", 0, match.start()) + 1, match["lang"], code))
    return blocks


def shell_commands(block: Block) -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in block.code.replace("\\\n", " ").splitlines()]


def kind_of(block: Block) -> str:
    """'python', 'shell', 'output' or 'exempt'; raises for a block no rule covers."""
    if (block.page, block.first_line) in EXEMPT:
        return "exempt"
    if block.lang == "python":
        return "python"
    if block.lang in OUTPUT_LANGUAGES:
        return "output"
    if block.lang in SHELL_LANGUAGES and all(
        argv[0] in SHELL_COMMANDS for argv in shell_commands(block) if argv
    ):
        return "shell"
    raise ValueError(
        f"{block.where}: this {block.lang or 'untagged'} block is neither run nor exempt. Make it "
        f"runnable (python, or bash whose commands are all {' or '.join(SHELL_COMMANDS)}) or add "
        f"({block.page!r}, {block.first_line!r}) to EXEMPT in {Path(__file__).name}, with the reason."
    )


def frameworks_needed(blocks: list[Block]) -> set[str]:
    """Frameworks the Python blocks import or name as a string (backend="torch"), and --backends."""
    needed = set()
    for block in blocks:
        if block.lang == "python":
            for node in ast.walk(ast.parse(block.code)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                elif isinstance(node, ast.Constant) and node.value in FRAMEWORK_BACKENDS:
                    modules = [node.value]
                else:
                    continue
                needed |= {
                    FRAMEWORK_OF_MODULE[m]
                    for m in (m.split(".")[0] for m in modules)
                    if m in FRAMEWORK_OF_MODULE
                }
        elif kind_of(block) == "shell":
            for argv in shell_commands(block):
                for flag, value in itertools.pairwise(argv):
                    if flag == "--backends":
                        needed |= set(value.split(","))
    return needed


def run_python(block: Block, namespace: dict, directory: Path) -> None:
    file_name = FILE_NAME.fullmatch(block.first_line)
    if file_name:
        path = directory / file_name[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code)
        namespace = {"__name__": file_name[1].removesuffix(".py").replace("/", ".")}
    # Blank lines in front keep the page's line numbers in a traceback.
    exec(compile("\n" * block.line + block.code, str(DOCS / block.page), "exec"), namespace)


def run_shell(block: Block, directory: Path) -> None:
    for argv in shell_commands(block):
        if not argv:
            continue
        paths = [str(directory), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        done = subprocess.run(
            SHELL_COMMANDS[argv[0]] + argv[1:],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (
            f"{block.where}: `{shlex.join(argv)}` exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )


@pytest.fixture
def jax_default_precision() -> Iterator[None]:
    """The docs describe a fresh process, with JAX's 64-bit mode off (conftest turns it on)."""
    if not is_installed("jax"):
        yield
        return
    import jax

    enabled = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", enabled)


PAGES = {page.name: blocks_of(page) for page in sorted(DOCS.glob("*.md"))}


def test_every_block_is_run_or_exempt() -> None:
    problems = []
    for blocks in PAGES.values():
        for block in blocks:
            try:
                kind_of(block)
            except ValueError as error:
                problems.append(str(error))
    found = {(block.page, block.first_line) for blocks in PAGES.values() for block in blocks}
    problems += [f"EXEMPT names no block: {key}" for key in EXEMPT if key not in found]
    assert not problems, "\n".join(problems)


@pytest.mark.usefixtures("jax_default_precision")
@pytest.mark.filterwarnings("error::unigrad.CompileFallbackWarning")  # a page that says "compiled" compiles
@pytest.mark.parametrize("page", [name for name, blocks in PAGES.items() if blocks])
def test_page_blocks_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = PAGES[page]
    for framework in sorted(frameworks_needed(blocks)):
        if not is_installed(framework):
            pytest.skip(f"docs/{page}: {skip_reason(framework)}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # A real module, so that what looks globals up by module name (torch.compile) finds them.
    module = types.ModuleType(f"docs_{Path(page).stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        for block in blocks:
            kind = kind_of(block)
            if kind == "python":
                run_python(block, vars(module), tmp_path)
            elif kind == "shell":
                run_shell(block, tmp_path)
    finally:
        # Modules the page wrote (mylib, mypkg) must not leak into other tests.
        for name, loaded in list(sys.modules.items()):
            location = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), "")
            if str(location).startswith(str(tmp_path)):
                del sys.modules[name]
