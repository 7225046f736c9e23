"""``python -m unigrad``: the same as the ``unigrad`` command."""

from unigrad.cli import console_main

console_main()
