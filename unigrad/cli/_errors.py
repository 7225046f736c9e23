"""The one exception the command line turns into exit code 2."""


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""
