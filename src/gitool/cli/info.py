"""``gitool info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.console import stdout_console


@app.command("info")
def info_command(
    data: Annotated[Path, typer.Argument(help="A store folder made by `gitool build-dataset`.")],
) -> None:
    """Summarise a store: genome, window geometry, splits, tracks and their value ranges."""
    # lazy: keeps `gitool --help` from importing numpy and yaml (gitool.data.summary)
    from gitool.data.summary import describe_store

    stdout_console().print(describe_store(data))
