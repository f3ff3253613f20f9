"""Errors the command line turns into exit statuses."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input or options: the message says what is wrong, where, and how to fix it.

    The command line prints the message as one line and exits with status 2.
    """
