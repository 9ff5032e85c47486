"""Help screens that show flags as flags.

typer (0.29) labels every option with its type, flags included (``--json <bool>``),
which reads as if the flag took a value. The group below blanks the label of flags, for
its own options and for every command's (commands added later included).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from typer.core import TyperGroup

__all__ = ["PlainFlagsGroup"]


def _plain(params: Iterable[Any]) -> None:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # the help shows the label; an empty one shows nothing


class PlainFlagsGroup(TyperGroup):
    """The ``gemstone`` group: flags appear without a type in every help screen."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _plain(params)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain(command.get_params(ctx))
        return command
