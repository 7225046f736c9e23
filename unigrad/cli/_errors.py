"""The one exception the command line turns into exit code 2.

It is defined below the command line, in :mod:`unigrad.conformance.user_loss`, because the isolated
conformance workers load the user's loss too and raise it there.
"""

from unigrad.conformance.user_loss import UsageError

__all__ = ["UsageError"]
