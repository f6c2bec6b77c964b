"""``gitool models``."""

from __future__ import annotations

from gitool.cli.app import app
from gitool.console import stdout_console


@app.command("models")
def models_command() -> None:
    """List the models and presets: parameters, input and output shapes.

    Use a name with `gitool train --model NAME`; presets fix a model's sizes (`*-basenji-small`: 17,712 bp → 80 bins of 128 bp; `enformer`: the full 196,608-bp model; `can-*`: the GLIFAC paper's 200-bp motif models). Parameter counts are for the default heads.
    """
    # lazy: keeps `gitool --help` from importing torch
    from gitool.models.summary import models_table

    stdout_console().print(models_table())
