"""unigrad's benchmarks against hand-written native code (not part of the unit tests).

Run ``nox -s bench`` or ``python -m benchmarks [--quick]`` from the repository root; the run writes
``docs/benchmarks.md``. One module per job:

- :mod:`benchmarks.workloads`: the problems (tiny loss, MLP, 1,000-leaf pytree, transformer block,
  50M parameters) on each backend, with their losses and native gradient code;
- :mod:`benchmarks.eager` (cases 1-4), :mod:`benchmarks.compiled` (5), :mod:`benchmarks.cold_start`
  (6), :mod:`benchmarks.memory` (7), :mod:`benchmarks.peer` (8, EagerPy);
- :mod:`benchmarks._timing` (interleaved rounds, medians and IQRs), :mod:`benchmarks.report` (the
  page), :mod:`benchmarks.machine` (CPU and versions).

Importing this package imports no framework.
"""
