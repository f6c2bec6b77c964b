"""Options of ``gitool quickstart``."""

from __future__ import annotations

from dataclasses import dataclass

from gitool.config.base import Options, option


@dataclass
class QuickstartOptions(Options):
    """Everything ``gitool quickstart`` takes."""

    out: str = "gitool-quickstart"
    # The default keeps the whole quickstart under 5 minutes on 2 CPU cores.
    steps: int = option(200, ge=1)
    example_data: str | None = None  # None: the example_data/ beside the installed gitool
    device: str | None = None  # None: cuda when available, else cpu
    force: bool = False
