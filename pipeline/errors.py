"""Errors the command line turns into exit statuses, and how messages name options.

An error's message names an option in backquotes (``use `missing` drop``): the
library shows it by the parameter's name (``use missing drop``), and a command
line by its flag with :meth:`InputError.named` (``use --missing drop``). A
warning, formatted as it is logged, calls :func:`option_name` instead, which a
command line points at its flags with :func:`call_options_by`.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable

__all__ = ["InputError", "OptionError", "call_options_by", "name_options", "option_name"]

_NAME_OF: contextvars.ContextVar[Callable[[str], str]] = contextvars.ContextVar(
    "option names", default=str
)


def option_name(parameter: str) -> str:
    """How a warning calls an option: by its name, or by its flag under a command line."""
    return _NAME_OF.get()(parameter)


def call_options_by(name_of: Callable[[str], str]) -> contextvars.Token[Callable[[str], str]]:
    """Have :func:`option_name` call options ``name_of(parameter)`` in this context (and
    the tasks and threads it starts); returns the token that undoes it."""
    return _NAME_OF.set(name_of)


_OPTION = re.compile(r"`([a-z_]+)`")


def name_options(message: str, name_of: Callable[[str], str]) -> str:
    """``message`` with each option it names in backquotes called ``name_of(parameter)``:
    how :meth:`InputError.named` shows an error's message."""
    return _OPTION.sub(lambda m: name_of(m.group(1)), message)


class InputError(ValueError):
    """Bad input or options: the message says what is wrong, where, and how to fix it.

    The command line prints the message as one line and exits with status 2.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.named(str)

    def named(self, name_of: Callable[[str], str]) -> str:
        """The message with each option it names called ``name_of(parameter)``."""
        return name_options(self.message, name_of)


class OptionError(InputError):
    """A bad option, named as the caller wrote it: ``k: every k must be at least 1``.

    ``parameter`` is the library's name for the option (``k``, ``skip_rows``),
    ``value`` the value it is about when the message quotes one (a file name),
    and ``detail`` what is wrong and how to fix it.
    """

    def __init__(self, parameter: str, detail: str, *, value: str | None = None) -> None:
        self.parameter = parameter
        self.detail = detail
        self.value = value
        where = f"`{parameter}`" if value is None else f"`{parameter}` {value}"
        super().__init__(f"{where}: {detail}")
