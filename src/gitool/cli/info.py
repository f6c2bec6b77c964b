"""``gitool info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gitool.cli.app import app
from gitool.console import stdout_console


@app.command("info")
def info_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="A store folder made by `gitool build-dataset` (or a label store from `gitool synth-motifs`)."
        ),
    ],
) -> None:
    """Summarise a store: genome, window geometry, splits, tracks and their value ranges (a label store: tasks and splits). Checks every array's size against the manifest."""
    # lazy: keeps `gitool --help` from importing numpy and yaml (gitool.data.summary)
    from gitool.data.summary import describe_store

    stdout_console().print(describe_store(data))
